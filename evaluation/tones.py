"""Does a codec keep a tone's harmonic balance? Steady tones of known spectra in, harmonic levels out.

A codec trained on a few soundfonts can snap an unfamiliar balance to a familiar one: the held-out font's
clarinet (no even harmonics, h3 almost as loud as h1) came back with h2 filled in to -13 dB and h3 10 dB down,
and the judge heard a sax or a violin. This probe needs no judge and no corpus: each test tone is a sum of
sines at exactly the levels named below, and the table gives, per tone and pitch, output minus input level of
harmonics 1-8 (relative to each one's fundamental) and their mean absolute error.

    python -m evaluation.tones models/wip/codec.pt [more codecs]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.cli import comma_list, ranged, run_main

# levels of harmonics 1..8 relative to the fundamental, dB (None: absent)
TONES: dict[str, list[float | None]] = {
    "sine": [0.0],
    "hollow": [0.0, None, -1.0, None, -8.0, None, -15.0, None],  # odd harmonics only, a strong third
    "hollow, soft third": [0.0, None, -9.0, None, -2.0, None, -8.0, None],
    "sawtooth": [-20 * np.log10(k) for k in range(1, 9)],  # every harmonic, 1/k
    "bright": [0.0, -3.0, -2.0, -6.0, -4.0, -9.0, -8.0, -12.0],
}
PITCHES_HZ = (196.0, 294.0, 440.0, 659.0)
N_HARMONICS = 8
TOP = 0.45  # no test harmonic at or above this fraction of the sample rate: nothing aliases
ABSENT_DB = -40.0  # a harmonic this far under the fundamental counts as absent (levels are floored here)


def steady_tone(f0: float, levels_db: list[float | None], sr: int, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Sum of sines at k·f0 with the given levels (those below TOP·sr) and random phases, 20 ms fades,
    peak -6 dBFS."""
    t = np.arange(int(seconds * sr)) / sr
    phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, len(levels_db))
    x = sum(10 ** (db / 20) * np.sin(2 * np.pi * f0 * (k + 1) * t + phases[k])
            for k, db in enumerate(levels_db) if db is not None and (k + 1) * f0 < TOP * sr)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return (0.5 * x / np.max(np.abs(x)) * fade).astype(np.float32)


def harmonic_levels(x: np.ndarray, f0: float, sr: int, n: int = N_HARMONICS) -> np.ndarray:
    """Energy of harmonics 1..n relative to the fundamental, dB, over the middle half of x (past any onset)."""
    seg = x[len(x) // 4: 3 * len(x) // 4]
    power = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
    freqs = np.fft.rfftfreq(len(seg), 1 / sr)
    energy = np.array([power[np.abs(freqs - k * f0) < 0.3 * f0].sum() for k in range(1, n + 1)])
    return 10 * np.log10(energy / (energy[0] + 1e-30) + 1e-30)


def balance_errors(through, sr: int, tones: dict = TONES, pitches=PITCHES_HZ, seconds: float = 2.0
                   ) -> dict[str, dict[float, np.ndarray]]:
    """Per tone and pitch: output minus input level of each harmonic below TOP·sr, dB, both floored at
    ABSENT_DB (a harmonic 60 dB down and one 40 dB down are both absent)."""
    out: dict[str, dict[float, np.ndarray]] = {}
    for name, levels in tones.items():
        for f0 in pitches:
            n = min(N_HARMONICS, int(TOP * sr / f0))
            x = steady_tone(f0, levels, sr, seconds)
            lx = np.maximum(harmonic_levels(x, f0, sr, n), ABSENT_DB)
            ly = np.maximum(harmonic_levels(through(x), f0, sr, n), ABSENT_DB)
            out.setdefault(name, {})[f0] = ly - lx
    return out


def main(argv=None) -> int:
    from core.io import CheckpointError

    return run_main(_main, argv, errors=(ValueError, CheckpointError))


def _main(argv=None) -> int:
    from evaluation.ceiling import codec_round_trip

    ap = argparse.ArgumentParser(prog="python -m evaluation.tones", description=__doc__.split("\n")[0])
    ap.add_argument("codecs", nargs="+", type=Path, help="codec files (.pt)")
    ap.add_argument("--pitches", type=comma_list(float), default=list(PITCHES_HZ), help="fundamentals, Hz")
    ap.add_argument("--seconds", type=ranged(float, 0.5, 60.0), default=2.0)
    a = ap.parse_args(argv)
    if not a.pitches or any(not (20.0 <= p <= 4000.0) for p in a.pitches):
        raise ValueError(f"--pitches: one or more fundamentals within 20-4000 Hz, got {a.pitches}")
    for c in a.codecs:
        if not c.is_file():
            raise ValueError(f"{c}: no such file")
    for c in a.codecs:
        through, sr = codec_round_trip(c)
        errors = balance_errors(through, sr, pitches=a.pitches, seconds=a.seconds)
        print(f"{c}: harmonic level out − in, dB (h1..h{N_HARMONICS}, relative to each fundamental; "
              f"absent = {ABSENT_DB:g} dB)")
        print("| tone | f0 Hz | " + " | ".join(f"h{k}" for k in range(1, N_HARMONICS + 1)) + " | mean abs |")
        print("|---|---|" + "---|" * (N_HARMONICS + 1))
        every = []
        for name, by_pitch in errors.items():
            for f0, e in by_pitch.items():
                every.append(np.abs(e[1:]).mean() if len(e) > 1 else 0.0)
                cells = [f"{v:+.1f}" for v in e] + [""] * (N_HARMONICS - len(e))
                print(f"| {name} | {f0:g} | " + " | ".join(cells) + f" | {every[-1]:.1f} |")
        print(f"mean absolute error over tones and pitches: {np.mean(every):.1f} dB")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
