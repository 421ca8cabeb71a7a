def stft_np(x, n=1024, h=256):
    w = np.hanning(n); fr = np.lib.stride_tricks.sliding_window_view(np.pad(x, (n//2, n//2)), n)[::h] * w
    return np.fft.rfft(fr, axis=1)
def istft_np(X, length, n=1024, h=256):
    w = np.hanning(n); fr = np.fft.irfft(X, n, axis=1) * w
    out = np.zeros(length + n); norm = np.zeros(length + n)
    for i, f in enumerate(fr): out[i*h:i*h+n] += f; norm[i*h:i*h+n] += w**2
    return (out / np.maximum(norm, 1e-8))[n//2:n//2+length].astype(np.float32)
_f = np.fft.rfftfreq(1024, 1/24000)
def envmatch(x, y, edges):
    X, Y = stft_np(x), stft_np(y)
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (_f >= lo) & (_f < hi)
        g = np.sqrt((np.abs(X[:, m])**2).sum(1) + 1e-12) / np.sqrt((np.abs(Y[:, m])**2).sum(1) + 1e-12)
        Y[:, m] *= g[:, None]
    return istft_np(Y, len(y))
