import numpy as np, sys
sys.path.insert(0, "/work/main")

def pitch_postfilter(x, sr=24000, sub=240, win=720, fmin=55.0, fmax=1400.0, gmax=0.6, r0=0.5, r1=0.9, taps=1):
    """Causal comb postfilter: per subframe, lag T from normalized autocorrelation of the last `win` samples
    (ending at the subframe's end); y = (x + g x[n-T]) / (1+g), gain g from voicing r, crossfaded per subframe."""
    x = np.asarray(x, np.float64)
    n = len(x)
    tmin, tmax = int(sr / fmax), int(np.ceil(sr / fmin))
    pad = tmax * taps + win + 2
    xp = np.concatenate([np.zeros(pad), x])
    y = np.zeros(n)
    prev = (0.0, 0.0)  # (T, g)
    ramp = np.arange(1, sub + 1) / sub
    lags = np.arange(tmin, tmax + 1)

    def comb(seg_idx, T, g):
        if g == 0:
            return xp[seg_idx]
        acc = xp[seg_idx].copy()
        norm = 1.0
        for k in range(1, taps + 1):
            d = T * k
            i0 = np.floor(d).astype(int); fr = d - i0
            delayed = (1 - fr) * xp[seg_idx - i0] + fr * xp[seg_idx - i0 - 1]
            acc += g ** k * delayed
            norm += g ** k
        return acc / norm

    for s in range(0, n, sub):
        e = min(s + sub, n)
        end = pad + e
        a = xp[end - win:end]
        ea = np.dot(a, a)
        T, g = 0.0, 0.0
        if ea > 1e-7 * win:
            # correlation with each lag via FFT
            seg = xp[end - win - tmax:end]
            N = 1 << int(np.ceil(np.log2(len(seg) + win)))
            c = np.fft.irfft(np.fft.rfft(seg, N) * np.conj(np.fft.rfft(a, N)), N)
            # c[m] = sum a[i] seg[i+m]; lag L corresponds to m = tmax - L
            m = tmax - lags
            num = c[m]
            cs = np.concatenate([[0], np.cumsum(seg ** 2)])
            eb = cs[m + win] - cs[m]
            r = num / np.sqrt(ea * eb + 1e-12)
            best = r.max()
            # the shortest lag near the best: avoids octave-down errors
            k = int(np.argmax(r >= 0.92 * best)) if best > 0 else int(np.argmax(r))
            # local max around k
            while k + 1 < len(r) and r[k + 1] > r[k]:
                k += 1
            rk = r[k]
            frac = 0.0
            if 0 < k < len(r) - 1:
                d = r[k - 1] - 2 * r[k] + r[k + 1]
                if d < 0:
                    frac = 0.5 * (r[k - 1] - r[k + 1]) / d
            T = lags[k] + frac
            g = gmax * float(np.clip((rk - r0) / (r1 - r0), 0, 1))
        idx = np.arange(pad + s, pad + e)
        new = comb(idx, T, g)
        old = comb(idx, *prev) if prev[1] > 0 else xp[idx]
        w = ramp[: e - s]
        y[s:e] = w * new + (1 - w) * old
        prev = (T, g)
    return y.astype(np.float32)
