import numpy as np
def expander(y, sr=24000, n_fft=1024, hop=256, thr_db=45.0, ratio=2.0, fmin=4000.0, smooth_bins=4, max_cut_db=30.0):
    """Downward expander per STFT bin above fmin: a bin more than thr_db under the frame's loudest bin is pushed
    further down, (ratio-1) dB per dB under the threshold (at most max_cut_db). Non-causal STFT prototype."""
    y = np.asarray(y, np.float64)
    win = np.hanning(n_fft + 1)[:-1]
    pad = n_fft
    yp = np.concatenate([np.zeros(pad), y, np.zeros(pad)])
    nfr = (len(yp) - n_fft) // hop + 1
    idx = np.arange(n_fft)[None] + hop * np.arange(nfr)[:, None]
    S = np.fft.rfft(yp[idx] * win, axis=1)
    mag = np.abs(S) + 1e-12
    p = mag ** 2
    if smooth_bins > 1:
        k = np.ones(smooth_bins) / smooth_bins
        p = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, p)
    L = 10 * np.log10(p + 1e-20)
    P = L.max(axis=1, keepdims=True)
    under = np.clip((P - thr_db) - L, 0, None)
    cut = np.minimum(under * (ratio - 1), max_cut_db)
    f = np.fft.rfftfreq(n_fft, 1 / sr)
    cut[:, f < fmin] = 0
    S = S * 10 ** (-cut / 20)
    out = np.zeros(len(yp)); wsum = np.zeros(len(yp))
    fr = np.fft.irfft(S, n_fft, axis=1) * win
    np.add.at(out, idx, fr); np.add.at(wsum, idx, np.broadcast_to(win ** 2, idx.shape))
    out = out / np.maximum(wsum, 1e-8)
    return out[pad:pad + len(y)].astype(np.float32)
