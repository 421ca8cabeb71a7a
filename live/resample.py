"""Streaming resamplers between the device rate and the models' 24 kHz; chunking never changes their output.

Two kinds, because latency is what a live effect pays for quality:
- "fir": for integer ratios (48 kHz ↔ 24 kHz, 96 kHz ↔ 24 kHz): a linear-phase Kaiser low-pass (scipy) run with
  its state kept (lfilter's zi), zero-stuffing up / keeping every k-th sample down. Its delay is the filter's
  group delay, (taps − 1)/2 samples at the high rate: 0.8 ms per side. Stop band about −60 dB, pass band to
  0.45 of the low rate (10.8 kHz at 24 kHz).
- soxr ("QQ", "LQ", "MQ", "HQ", "VHQ") for any ratio: better filters, but its streaming API holds back about
  20 ms per side at LQ and 35–40 ms at HQ (python -m live.bench prints it), so offline renders use it.
"""
from __future__ import annotations

import numpy as np

SOXR_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
FIR_STOPBAND_DB = 60.0
FIR_PASSBAND = 0.45  # of the low rate: the pass band edge (the stop band starts at 0.55)


def integer_ratio(sr_a: int, sr_b: int) -> int | None:
    """k when one rate is k times the other (k ≥ 2), else None."""
    hi, lo = max(sr_a, sr_b), min(sr_a, sr_b)
    return hi // lo if hi != lo and hi % lo == 0 else None


def pick_quality(sr_in: int, sr_out: int, quality: str = "auto") -> str:
    """'auto': the low-latency FIR for integer ratios, soxr LQ otherwise."""
    if quality == "auto":
        return "fir" if integer_ratio(sr_in, sr_out) else "LQ"
    if quality == "fir" and sr_in != sr_out and not integer_ratio(sr_in, sr_out):
        raise ValueError(f"the FIR resampler needs an integer ratio; {sr_in} → {sr_out} Hz is not one")
    if quality != "fir" and quality not in SOXR_QUALITIES:
        raise ValueError(f"resampler quality {quality!r}: use auto, fir or one of {', '.join(SOXR_QUALITIES)}")
    return quality


def kaiser_lowpass(k: int) -> np.ndarray:
    """Linear-phase low-pass for a k:1 rate change, designed at the high rate (odd length, unit DC gain)."""
    from scipy.signal import firwin, kaiserord

    # frequencies as fractions of the high rate's Nyquist (firwin's and kaiserord's unit): the low rate is 2/k
    width = 2 * (1 - 2 * FIR_PASSBAND) / k  # from 0.45 to 0.55 of the low rate
    taps, beta = kaiserord(FIR_STOPBAND_DB, width)
    taps = 2 * k * -(-(taps - 1) // (2 * k)) + 1  # group delay (taps − 1)/2: a whole number of low-rate samples
    return firwin(taps, 1.0 / k, window=("kaiser", beta)).astype(np.float64)  # cut at half the low rate


class StreamResampler:
    """x at sr_in → y at sr_out, chunk by chunk; identity at equal rates. `delay` (in sr_out samples) is the
    signal delay not visible in the sample counts (the FIR's group delay; soxr compensates its own)."""

    def __init__(self, sr_in: int, sr_out: int, quality: str = "auto"):
        self.identity = sr_in == sr_out
        self.quality = pick_quality(sr_in, sr_out, quality) if not self.identity else "none"
        self.delay = 0
        if self.identity:
            return
        if self.quality == "fir":
            from scipy.signal import lfilter_zi

            self.k = integer_ratio(sr_in, sr_out)
            self.up = sr_out > sr_in
            self.h = kaiser_lowpass(self.k) * (self.k if self.up else 1)  # zero-stuffing divides the gain by k
            self.zi = lfilter_zi(self.h, [1.0]) * 0.0
            self.seen = 0  # input samples so far (the decimation phase)
            gd = (len(self.h) - 1) // 2  # at the high rate
            self.delay = gd if self.up else gd // self.k
        else:
            import soxr

            self.rs = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality=self.quality)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.identity:
            return x
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.quality != "fir":
            return self.rs.resample_chunk(x)
        from scipy.signal import lfilter

        if self.up:
            stuffed = np.zeros(len(x) * self.k)
            stuffed[:: self.k] = x
            y, self.zi = lfilter(self.h, [1.0], stuffed, zi=self.zi)
            return y.astype(np.float32)
        y, self.zi = lfilter(self.h, [1.0], x.astype(np.float64), zi=self.zi)
        first = (-self.seen) % self.k  # keep input samples whose overall index is a multiple of k
        self.seen += len(x)
        return y[first:: self.k].astype(np.float32)


def holdback(sr_in: int, sr_out: int, quality: str, chunk: int) -> int:
    """Most samples (at sr_out) a streaming resampler fed `chunk`-sample pieces is ever behind the ideal output
    count: its share of the latency in the sample counts (a FIR's group delay is in the signal instead: see
    StreamResampler.delay). Measured, since soxr's hold-back depends on the chunking."""
    if sr_in == sr_out:
        return 0
    rs = StreamResampler(sr_in, sr_out, quality)
    piece = np.zeros(chunk, np.float32)
    fed = produced = worst = 0
    for _ in range(max(8, sr_in // chunk)):  # a second of audio
        produced += len(rs(piece))
        fed += chunk
        worst = max(worst, int(np.ceil(fed * sr_out / sr_in)) - produced)
    return worst
