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
"""
from __future__ import annotations

import numpy as np

FRAME = 1024  # N: 42.7 ms at 24 kHz; bins 23.4 Hz apart resolve the harmonics of notes from about MIDI 43 up
OVERLAP = 4  # N / R
PEAK_FLOOR_DB = -80.0  # peaks below the frame's loudest by more than this are not peaks (their bins join a region)


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
    """Streaming pitch shift by `semitones`; `delay` samples of latency; call with blocks of mono float audio."""

    def __init__(self, semitones: float, frame: int = FRAME, overlap: int = OVERLAP):
        if frame % overlap or overlap < 3:
            raise ValueError(f"frame ({frame}) must be a multiple of overlap ({overlap}), and overlap at least 3 "
                             "(the squared Hann windows' sum is flat from there)")
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
        if self.r != 1.0:
            X = self._shift(X)
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


def shift_pitch(x: np.ndarray, semitones: float, frame: int = FRAME, overlap: int = OVERLAP) -> np.ndarray:
    """Offline: the whole signal shifted, aligned with the input (the streaming delay removed), same length."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if semitones == 0:
        return x.copy()
    s = PitchShifter(semitones, frame, overlap)
    return s(np.concatenate([x, np.zeros(s.delay, np.float32)]))[s.delay:]
