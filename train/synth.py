"""Harmonic tones with random spectra, for the codec to learn to carry any harmonic balance (numpy only).

Why: a codec trained only on a few soundfonts learns their instruments' spectra as a prior and snaps new ones
to it. Measured with `python -m evaluation.tones` on `models/wip/codec.pt` at step 40,052 (docs/HISTORY.md): a pure
294 Hz sine comes back with harmonics 2-8 at -28 to -16 dB; a tone with the held-out font's clarinet balance
(h3 -1 dB, h5 -8 dB, no even harmonics) comes back with h2 and h4 filled in and h3 10 dB down, and the judge
hears that font's low clarinet as a sax or a violin.
A share of crops drawn from this generator (`train.codec --synthetic-share`) asks the codec to reproduce
whatever balance it is given: levels per harmonic drawn from a slope, a hollow (odd-only) option, per-harmonic
scatter and a formant, on a random melody with glides and vibrato, plus some breath noise. Nothing here is
tuned to an instrument or a font.

`harmonic_tone(n, sr, rng)` → float32 [n], the same for the same generator state.
"""
from __future__ import annotations

import numpy as np

from core.degrade import bell_db

MIDI_RANGE = (36, 96)  # C2-C7: 65 Hz - 2.1 kHz, beyond every shipped instrument's range
TOP = 0.45  # harmonics fade out between 0.40 and 0.45 of the sample rate (0.8-0.9 Nyquist): nothing aliases
FADE = 0.05
# Tones with their even harmonics far down (a closed pipe: a clarinet's low register). A third of the tones at a
# fifth, then three tenths, of the crops left a 294 Hz hollow probe tone's h2 where it was (-11 dB) in 3,800 CPU
# steps; 200 steps on hollow tones alone took it to -31 dB (and every tone's even harmonics down with it). Half.
HOLLOW_SHARE = 0.5


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


def n_harmonics(f0: np.ndarray, sr: int) -> int:
    """Harmonics of the lowest pitch below TOP · sr: every tone reaches the top of the band."""
    return max(1, int(TOP * sr / float(np.min(f0))))


def random_spectrum(rng: np.random.Generator, k: int) -> tuple[np.ndarray, float, float, float]:
    """(levels of harmonics 1..k in dB before normalization, formant centre Hz, width in octaves, boost dB):
    a spectral slope, even harmonics far down on HOLLOW_SHARE of the tones (a clarinet's low register), per-harmonic
    scatter (the fundamental's too), and a formant that lifts whichever harmonics pass through it."""
    h = np.arange(1, k + 1)
    db = -rng.uniform(2.0, 18.0) * np.log2(h)  # dB per octave
    if rng.random() < HOLLOW_SHARE:
        db[1::2] -= rng.uniform(10.0, 40.0)  # even harmonics down: a hollow tone
    db += rng.normal(0.0, rng.uniform(0.0, 8.0), k)
    return db, rng.uniform(300.0, 4000.0), rng.uniform(0.3, 1.5), rng.uniform(0.0, 15.0)


def harmonic_gain(fk: np.ndarray, level_db: float, centre: float, width: float, boost: float, sr: int) -> np.ndarray:
    """Amplitude of one harmonic along its frequency track fk (Hz): its level, the formant's lift at fk, and a
    linear fade to 0 between (TOP - FADE) · sr and TOP · sr, so a harmonic under vibrato glides out of the band
    instead of switching off."""
    formant = bell_db(fk, centre, boost, width)
    fade = np.clip((TOP * sr - fk) / (FADE * sr), 0.0, 1.0)
    return 10.0 ** ((level_db + formant) / 20.0) * fade


def harmonic_tone(n: int, sr: int, rng: np.random.Generator, breath: bool | None = None) -> np.ndarray:
    """One crop of a synthetic harmonic tone: melody, spectrum, note envelopes and breath noise (on half the
    tones, unless `breath` says) all random; peak at -20 to -3 dBFS."""
    f0 = melody_f0(n, sr, rng)
    k_max = n_harmonics(f0, sr)
    db, centre, width, boost = random_spectrum(rng, k_max)
    phase = 2 * np.pi * np.cumsum(f0) / sr + rng.uniform(0, 2 * np.pi)
    x = np.zeros(n)
    for k in range(1, k_max + 1):
        x += harmonic_gain(k * f0, db[k - 1], centre, width, boost, sr) * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    x *= note_envelope(f0, sr, rng)
    if breath if breath is not None else rng.random() < 0.5:
        # white noise 15-45 dB under the tone, high-passed by a first difference
        noise = np.diff(rng.standard_normal(n + 1))
        x += noise * np.sqrt(np.mean(x ** 2) / np.mean(noise ** 2)) * 10.0 ** (-rng.uniform(15.0, 45.0) / 20.0)
    peak = np.max(np.abs(x))
    return (x / peak * 10.0 ** (-rng.uniform(3.0, 20.0) / 20.0) if peak > 0 else x).astype(np.float32)


def note_envelope(f0: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A level per sample. Notes start where f0 jumps by more than 1/4 semitone; each note swells or decays
    linearly to a random level. Detached tones (a third) start every note from silence with a 5-80 ms attack
    and end it with a 30 ms release; legato tones attack once and carry the level across note changes (no
    step, no re-articulation)."""
    n = len(f0)
    jumps = np.flatnonzero(np.abs(np.diff(np.log2(f0))) > 1 / 48) + 1
    env = np.empty(n)
    detached = rng.random() < 1 / 3
    level = 1.0
    for s, e in zip(np.concatenate([[0], jumps]), np.concatenate([jumps, [n]])):
        m = e - s
        start = 1.0 if detached or s == 0 else level
        level = rng.uniform(0.5, 1.2)  # where this note's swell or decay ends
        shape = np.linspace(start, level, m)
        if detached or s == 0:
            attack = min(m, int(rng.uniform(0.005, 0.08) * sr))
            shape[:attack] *= np.linspace(0.0, 1.0, attack, endpoint=False)
        if detached:
            release = min(m - min(m, int(0.005 * sr)), int(0.03 * sr))
            if release > 0:
                shape[m - release:] *= np.linspace(1.0, 0.0, release)
        env[s:e] = shape
    return env
