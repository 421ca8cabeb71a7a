"""Harmonic tones with random spectra, for the codec to learn to carry any harmonic balance (numpy only).

Why: a codec trained only on a few soundfonts learns their instruments' spectra as a prior and snaps new ones
to it. Measured on `models/wip/codec.pt` at step 42.6k (README, Results): a pure 294 Hz sine comes back with its
second harmonic at −25 dB; a tone with the held-out font's clarinet balance (h3 −1 dB, h5 −8 dB, no even
harmonics) comes back with h3 at −11 dB and h2 at −13 dB, while a tone with the training fonts' balance survives.
A share of crops drawn from this generator (`train.codec --synthetic-share`) asks the codec to reproduce
whatever balance it is given: levels per harmonic drawn from a slope, a hollow (odd-only) option, per-harmonic
scatter and a formant, on a random melody with glides and vibrato, plus some breath noise. Nothing here is
tuned to an instrument or a font.

`harmonic_tone(n, sr, rng)` → float32 [n], the same for the same generator state.
"""
from __future__ import annotations

import numpy as np

MAX_HARMONICS = 64
MIDI_RANGE = (36, 96)  # C2-C7: 65 Hz - 2.1 kHz, beyond every shipped instrument's range


def melody_f0(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """f0 in Hz per sample: notes of 60-600 ms, some joined by a glide, with vibrato on half the tones."""
    f0 = np.empty(n)
    pos, midi = 0, rng.uniform(*MIDI_RANGE)
    while pos < n:
        length = int(rng.uniform(0.06, 0.6) * sr)
        nxt = float(np.clip(midi + rng.normal(0, 4), *MIDI_RANGE))
        seg = np.full(min(length, n - pos), nxt)
        glide = min(len(seg), int(rng.uniform(0.01, 0.08) * sr)) if rng.random() < 0.3 else 0
        if glide:  # portamento from the previous note
            seg[:glide] = np.linspace(midi, nxt, glide)
        f0[pos:pos + len(seg)] = seg
        pos, midi = pos + len(seg), nxt
    if rng.random() < 0.5:  # vibrato: 4-7 Hz, up to 40 cents
        t = np.arange(n) / sr
        f0 = f0 + rng.uniform(0, 0.4) * np.sin(2 * np.pi * rng.uniform(4, 7) * t + rng.uniform(0, 2 * np.pi))
    return 440.0 * 2.0 ** ((f0 - 69.0) / 12.0)


def random_spectrum(rng: np.random.Generator, k: int = MAX_HARMONICS) -> tuple[np.ndarray, float, float, float]:
    """(levels of harmonics 1..k relative to the fundamental in dB, formant centre Hz, width in octaves, boost dB):
    a spectral slope, even harmonics far down on a third of the tones (a clarinet's low register), per-harmonic
    scatter, and a formant that lifts whichever harmonics pass through it."""
    h = np.arange(1, k + 1)
    db = -rng.uniform(2.0, 18.0) * np.log2(h)  # dB per octave
    if rng.random() < 1 / 3:
        db[1::2] -= rng.uniform(10.0, 40.0)  # even harmonics down: a hollow tone
    db += rng.normal(0.0, rng.uniform(0.0, 8.0), k)
    return db, rng.uniform(300.0, 4000.0), rng.uniform(0.3, 1.5), rng.uniform(0.0, 15.0)


def harmonic_tone(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One crop of a synthetic harmonic tone: melody, spectrum, note envelopes and breath noise all random."""
    f0 = melody_f0(n, sr, rng)
    db, centre, width, boost = random_spectrum(rng)
    phase = 2 * np.pi * np.cumsum(f0) / sr + rng.uniform(0, 2 * np.pi)
    x = np.zeros(n)
    for k in range(1, MAX_HARMONICS + 1):
        fk = k * f0
        audible = fk < 0.45 * sr  # no harmonic above 0.9 × Nyquist: nothing aliases
        if not audible.any():
            break
        formant = boost * np.exp(-0.5 * (np.log2(np.maximum(fk, 1.0) / centre) / width) ** 2)
        x += np.where(audible, 10.0 ** ((db[k - 1] + formant) / 20.0), 0.0) * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    x *= note_envelope(f0, sr, rng)
    if rng.random() < 0.5:  # breath: white noise 15-45 dB under the tone, high-passed by a first difference
        noise = np.diff(rng.standard_normal(n + 1))
        x += noise * np.sqrt(np.mean(x ** 2) / np.mean(noise ** 2)) * 10.0 ** (-rng.uniform(15.0, 45.0) / 20.0)
    peak = np.max(np.abs(x))
    return (x / peak * 10.0 ** (-rng.uniform(3.0, 20.0) / 20.0) if peak > 0 else x).astype(np.float32)


def note_envelope(f0: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Attack of 5-80 ms at each note change (where f0 jumps by > 1/4 semitone), a slow swell or decay between;
    a third of the tones detached, the rest legato."""
    n = len(f0)
    jumps = np.flatnonzero(np.abs(np.diff(np.log2(f0))) > 1 / 48) + 1
    starts = np.concatenate([[0], jumps])
    env = np.ones(n)
    detached = rng.random() < 1 / 3
    for s, e in zip(starts, np.concatenate([jumps, [n]])):
        m = e - s
        attack = min(m, int(rng.uniform(0.005, 0.08) * sr))
        shape = np.linspace(1.0, rng.uniform(0.5, 1.2), m)  # swell or decay across the note
        shape[:attack] *= np.linspace(0.0, 1.0, attack, endpoint=False) if detached or s == 0 else 1.0
        if detached:
            release = min(m - attack, int(0.03 * sr))
            if release > 0:
                shape[m - release:] *= np.linspace(1.0, 0.0, release)
        env[s:e] = shape
    return env
