"""Transpose: a streaming pitch shifter for one instrument's line (numpy only: the live engine uses it).

Why: a denoiser only knows its instrument's register. A violin melody (MIDI 64–78) asked of a tenor sax trained on
MIDI 45–75, or a cello line asked of a flute, comes out as neither; an octave down or up in front of the encoder
puts the melody where the target plays (pitch classes are kept, as the issue's bar counts them).

Method: Laroche & Dolson's peak-shifting phase vocoder ("New phase-vocoder techniques for pitch-shifting,
harmonizing and other exotic effects", WASPAA 1999). Each STFT frame's magnitude peaks are found; every bin goes
to its nearest peak's region; each region is moved rigidly by the whole number of bins nearest its peak's
frequency shift, (r − 1)·ω·N/2π, and rotated by a phase that advances by (r − 1)·ω·R per hop, so the
partial's phase runs at r·ω and the pitch is exact (the region's shape, and so the partial's envelope, is kept;
no resampler, no time-stretch). The whole-bin move leaves the envelope up to half a bin from the new frequency: the
level may drop by up to 10 %.

Streaming: frames of N samples every R samples, Hann analysis and synthesis windows; the squared window shifted by
every multiple of R sums to 3N/(8R) at every sample (1.5 at overlap 4), and the output is divided by that
(`_ola_gain`; overlap 3 or more, below that the sum is not flat). Input is taken in any block sizes; output
sample t is input sample t − `delay`: with `delay` = N the output count always equals the input count, whatever
the blocks, and the output does not depend on how the input was cut (tested). r = 1 reproduces the input exactly (delayed).

Fold (a preset's `fold_centre`): a fixed octave cannot put every melody where the target's model plays (the tenor
sax's keeps the pitch class of 95–100 % of frames from MIDI 52 to 67 and of 0–1 % below 48, and a clarinet's
held-out lines span 52–79). RegisterFold chooses the shift for each analysis frame from the frame's pitch (YIN),
moving by whole octaves only as far as the melody leaves the register, and holding a move until it leaves it again.
"""
from __future__ import annotations

import numpy as np

FRAME = 1024  # N: 42.7 ms at 24 kHz; bins 23.4 Hz apart resolve the harmonics of notes from about MIDI 43 up
OVERLAP = 4  # N / R
PEAK_FLOOR_DB = -80.0  # peaks below the frame's loudest by more than this are not peaks (their bins join a region)


FOLD_HALF_WIDTH = 8  # fold: the register kept is centre ± this many semitones (over half an octave: see RegisterFold)
FOLD_HOLD = 3  # fold: voiced frames in a row that must ask for the same new octave before it is taken (32 ms)
YIN_THRESHOLD = 0.15  # cumulative-mean-normalized difference under which a lag is a period (de Cheveigné 2002)
YIN_FLOOR_DB = -55.0  # frames quieter than this (RMS, dBFS) have no pitch: the engine's input gate closes there too


def frame_f0(frame: np.ndarray, sample_rate: int, fmin: float = 55.0, fmax: float = 2100.0,
             threshold: float = YIN_THRESHOLD, floor_db: float = YIN_FLOOR_DB) -> float | None:
    """The fundamental (Hz) of one frame by YIN (de Cheveigné & Kawahara 2002), None where it finds no period, where
    the frame is quieter than floor_db, or where what it finds falls outside [fmin, fmax]."""
    x = np.asarray(frame, np.float64)
    x = x - x.mean()
    lo, hi = int(sample_rate / fmax), min(int(sample_rate / fmin) + 1, len(x) // 2)
    w = len(x) - hi  # every lag compares the same w samples
    if lo < 2 or hi <= lo or np.sqrt(np.mean(x * x)) < 10 ** (floor_db / 20):
        return None
    # d(τ) = Σ_j (x_j − x_{j+τ})², j < w: the two energies from cumulative sums, the cross term by one FFT
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    n = 1 << int(np.ceil(np.log2(len(x) + w)))
    cross = np.fft.irfft(np.conj(np.fft.rfft(x[:w], n)) * np.fft.rfft(x, n), n)[:hi + 1]
    tau = np.arange(hi + 1)
    d = c2[w] + (c2[tau + w] - c2[tau]) - 2 * cross
    d[0] = 0.0
    cmnd = np.ones(hi + 1)  # d'(τ) = d(τ)·τ / Σ_{k≤τ} d(k)
    cmnd[1:] = d[1:] * tau[1:] / np.maximum(np.cumsum(d[1:]), 1e-12)
    below = np.flatnonzero(cmnd[lo:hi] < threshold)
    if not len(below):
        return None
    t = lo + int(below[0])
    while t + 1 < hi and cmnd[t + 1] < cmnd[t]:  # down to the dip's bottom
        t += 1
    a, b, c = cmnd[t - 1], cmnd[t], cmnd[t + 1]
    bend = a - 2 * b + c
    # the vertex of the parabola through the dip's three points, within a lag of the bottom (a flat dip: none)
    t_exact = t + (float(np.clip(0.5 * (a - c) / bend, -1.0, 1.0)) if bend > 1e-12 else 0.0)
    f0 = sample_rate / t_exact
    return float(f0) if fmin <= f0 <= fmax else None


class RegisterFold:
    """Octave moves that keep a melody within `centre` ± `half_width` semitones: a note above it goes down by
    octaves, one below it up, and the move holds until a note leaves the register again (the register is wider
    than an octave, so a note just past its edge lands well inside, and vibrato there cannot flip it back). A new
    move is taken once `hold` voiced frames in a row ask for it (one mis-tracked frame moves nothing)."""

    def __init__(self, centre: float, semitones: float = 0.0, half_width: float = FOLD_HALF_WIDTH,
                 hold: int = FOLD_HOLD):
        if half_width <= 6:
            raise ValueError(f"the register must be wider than an octave: half_width {half_width} ≤ 6")
        self.low, self.high, self.hold = centre - half_width, centre + half_width, int(hold)
        self.semitones = float(semitones)  # the move now: the preset's transpose ± whole octaves
        self._asked, self._count = self.semitones, 0
        self.moves = 0  # octave changes taken (a counter the engine can show)

    def wanted(self, midi: float) -> float:
        """The move that puts this note inside the register, changing the current one by as few octaves as can."""
        s = self.semitones
        while midi + s > self.high:
            s -= 12.0
        while midi + s < self.low:
            s += 12.0
        return s

    def __call__(self, midi: float | None) -> float:
        """One analysis frame's pitch (MIDI, None: unvoiced) in; the move for this frame out."""
        if midi is None or not np.isfinite(midi):
            self._count = 0
            return self.semitones
        s = self.wanted(midi)
        if s == self.semitones:
            self._count = 0
        else:
            self._count = self._count + 1 if s == self._asked else 1
            self._asked = s
            if self._count >= self.hold:
                self.semitones, self._count = s, 0
                self.moves += 1
        return self.semitones


def ratio(semitones: float) -> float:
    return float(2.0 ** (semitones / 12.0))  # r = 2^(s/12)


def princarg(phase: np.ndarray) -> np.ndarray:
    return (phase + np.pi) % (2 * np.pi) - np.pi  # wrapped to [−π, π)


def find_peaks(mag: np.ndarray, floor_db: float = PEAK_FLOOR_DB) -> np.ndarray:
    """Bins larger than both neighbours on either side (two bins each way) and within floor_db of the largest."""
    core = mag[2:-2]
    is_peak = (core > mag[1:-3]) & (core >= mag[3:-1]) & (core > mag[:-4]) & (core >= mag[4:])
    is_peak &= core > mag.max() * 10 ** (floor_db / 20)
    return np.flatnonzero(is_peak) + 2


def regions(peaks: np.ndarray, n_bins: int) -> np.ndarray:
    """For each bin, the index of its nearest peak (boundaries halfway between neighbouring peaks)."""
    bounds = (peaks[:-1] + peaks[1:] + 1) // 2  # first bin of each next region
    return np.searchsorted(bounds, np.arange(n_bins), side="right")


class PitchShifter:
    """Streaming pitch shift by `semitones`; `delay` samples of latency; call with blocks of mono float audio.

    fold (a RegisterFold) and sample_rate: the shift is chosen again for each analysis frame, from the frame's
    pitch (frame_f0), by the fold; `record` keeps each frame's shift in `shifts` (the frame that completes output
    samples [(k+1)·R, (k+2)·R) of the stream is the k-th), for whoever scores the output against its input."""

    def __init__(self, semitones: float, frame: int = FRAME, overlap: int = OVERLAP,
                 fold: RegisterFold | None = None, sample_rate: int | None = None, record: bool = False):
        if frame % overlap or overlap < 3:
            raise ValueError(f"frame ({frame}) must be a multiple of overlap ({overlap}), and overlap at least 3 "
                             "(the squared Hann windows' sum is flat from there)")
        if fold is not None and not sample_rate:
            raise ValueError("a register fold needs the sample rate (to read each frame's pitch)")
        self.fold, self.sample_rate = fold, sample_rate
        self.shifts: list[float] | None = [] if record else None
        self.semitones, self.r = float(semitones), ratio(semitones)
        self.N, self.R = frame, frame // overlap
        self.delay = self.N  # fixed, so every call returns as many samples as it was given
        n = np.arange(self.N)
        self.window = 0.5 - 0.5 * np.cos(2 * np.pi * n / self.N)  # periodic Hann: its shifted squares sum flat
        self._ola_gain = float(np.sum(self.window ** 2) / self.R)
        self.omega = 2 * np.pi * np.arange(self.N // 2 + 1) / self.N  # bin centre frequencies, rad/sample
        # the input as frames see it: N − R zeros first, so the first output samples have every overlapping frame
        self._in = np.zeros(self.N - self.R)
        self._acc = np.zeros(self.N)  # overlap-add accumulator; its first R samples complete after each frame
        self._out = np.zeros(self.R)  # completed output not yet returned (starts with R samples of delay)
        self._prev_phase = np.zeros(self.N // 2 + 1)
        self._prev_rotation = np.zeros(self.N // 2 + 1)  # the phase rotation each input bin got last frame

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        self._in = np.concatenate([self._in, x])
        done = [self._out]
        while len(self._in) >= self.N:
            done.append(self._frame(self._in[:self.N]))
            self._in = self._in[self.R:]
        out = np.concatenate(done)
        y, self._out = out[:len(x)], out[len(x):]
        return y.astype(np.float32)

    def _frame(self, frame: np.ndarray) -> np.ndarray:
        """One analysis frame in; the R output samples it completes out."""
        X = np.fft.rfft(frame * self.window)
        if self.fold is not None:
            f0 = frame_f0(frame, self.sample_rate)
            self.semitones = self.fold(None if f0 is None else 69.0 + 12.0 * np.log2(f0 / 440.0))
            self.r = ratio(self.semitones)
        if self.shifts is not None:
            self.shifts.append(self.semitones)
        if self.r != 1.0:
            X = self._shift(X)
        elif self.fold is not None:  # unshifted now, maybe shifted next frame: its phase advance starts from here
            self._prev_phase, self._prev_rotation[:] = np.angle(X), 0.0
        self._acc += np.fft.irfft(X, self.N) * self.window / self._ola_gain
        ready, self._acc = self._acc[:self.R].copy(), np.concatenate([self._acc[self.R:], np.zeros(self.R)])
        return ready

    def _shift(self, X: np.ndarray) -> np.ndarray:
        mag, phase = np.abs(X), np.angle(X)
        # instantaneous frequency from the phase advance over one hop: ω_k + princarg(Δφ − ω_k·R)/R
        inst = self.omega + princarg(phase - self._prev_phase - self.omega * self.R) / self.R
        self._prev_phase = phase
        peaks = find_peaks(mag)
        if not len(peaks):
            self._prev_rotation[:] = 0.0
            return np.zeros_like(X)
        region = regions(peaks, len(X))
        w_peak = inst[peaks]
        move = np.rint((self.r - 1.0) * w_peak * self.N / (2 * np.pi)).astype(int)  # whole bins per region
        # the partial's phase must advance by r·ω·R per hop: rotate by last frame's rotation + (r − 1)·ω·R
        rotation = princarg(self._prev_rotation[peaks] + (self.r - 1.0) * w_peak * self.R)
        self._prev_rotation = rotation[region]
        dst = np.arange(len(X)) + move[region]
        keep = (dst >= 0) & (dst < len(X))
        Y = np.zeros_like(X)
        np.add.at(Y, dst[keep], (X * np.exp(1j * self._prev_rotation))[keep])
        return Y


def shift_pitch(x: np.ndarray, semitones: float, frame: int = FRAME, overlap: int = OVERLAP,
                fold_centre: int = 0, sample_rate: int | None = None) -> np.ndarray:
    """Offline: the whole signal shifted, aligned with the input (the streaming delay removed), same length;
    fold_centre (MIDI, non-zero): moved by octaves into its register as well (RegisterFold)."""
    return shift_track(x, semitones, frame, overlap, fold_centre, sample_rate)[0]


def shift_track(x: np.ndarray, semitones: float, frame: int = FRAME, overlap: int = OVERLAP,
                fold_centre: int = 0, sample_rate: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """shift_pitch, and the shift (semitones) each output sample got, aligned with it."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if semitones == 0 and not fold_centre:
        return x.copy(), np.zeros(len(x))
    fold = RegisterFold(fold_centre, semitones) if fold_centre else None
    s = PitchShifter(semitones, frame, overlap, fold, sample_rate, record=True)
    y = s(np.concatenate([x, np.zeros(s.delay, np.float32)]))[s.delay:]
    # frame k spans input samples [k·R − (N − R), k·R + R) (N − R zeros lead), centred on k·R − N/2 + R:
    # output sample i (aligned with input i) takes the shift of the frame centred nearest to it
    k = np.rint((np.arange(len(x)) + s.N / 2 - s.R) / s.R).astype(int)
    return y, np.asarray(s.shifts, np.float64)[np.clip(k, 0, len(s.shifts) - 1)]
