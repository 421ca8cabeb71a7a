"""How a judge hears the unseen font's own inputs through generic damage, each at a fixed setting.

    python -m evaluation.robustness [--classifier models/classifier.pt] [--split heldout] [--clips 8] [--json FILE]

No model of this project is involved: each row is the held-out inputs through one damage (a band limit, a
low-pass, noise, quantization, reverb, an EQ tilt), each cell the share of an instrument's clips the judge still
names right / the share of the other instruments' clips it names as this one. A judge that names an instrument by
what such a damage removes or adds takes a codec's or a bridge's artefact of that kind for timbre: session 38
found the shipped judge hears no violin brick-walled at 8 kHz as a violin and most clips brick-walled at 4 kHz as
a clarinet (`docs/eval/s38/`). Read a judge here before its verdict on a codec.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from core.cli import comma_list, run_main
from core.degrade import add_noise, band_limit, convolve, eq_tilt, one_pole_lowpass, quantize, room_impulse
from core.io import CheckpointError
from core.manifest import CorpusError


def _butterworth(cutoff: float):
    def apply(x, sr):
        from scipy.signal import butter, sosfilt

        return sosfilt(butter(8, cutoff, fs=sr, output="sos"), x).astype(np.float32)
    return apply


def _room(rt60: float, drr_db: float):
    return lambda x, sr: convolve(x, room_impulse(np.random.default_rng(0), sr, rt60, drr_db))


# Each probe once, at a fixed setting: (x, sr) → y. Seeded where random, so every judge hears the same audio.
PROBES = {
    "band limit 4 kHz": lambda x, sr: band_limit(x, sr, 4000.0),
    "band limit 6 kHz": lambda x, sr: band_limit(x, sr, 6000.0),
    "band limit 8 kHz": lambda x, sr: band_limit(x, sr, 8000.0),
    "Butterworth order 8, 6 kHz": _butterworth(6000.0),
    "one-pole low-pass 2 kHz": lambda x, sr: one_pole_lowpass(x, sr, 2000.0),
    "one-pole low-pass 4 kHz": lambda x, sr: one_pole_lowpass(x, sr, 4000.0),
    "pink noise, 20 dB SNR": lambda x, sr: add_noise(x, np.random.default_rng(0), 20.0),
    "white noise, 20 dB SNR": lambda x, sr: add_noise(x, np.random.default_rng(0), 20.0, colour="white"),
    "quantized to 8 bits": lambda x, sr: quantize(x, 8),
    "reverb, RT60 0.8 s, 3 dB direct to reverberant": _room(0.8, 3.0),
    "EQ tilt +3 dB/octave": lambda x, sr: eq_tilt(x, sr, 3.0),
    "EQ tilt -3 dB/octave": lambda x, sr: eq_tilt(x, sr, -3.0),
}


def robustness(judge, clips: dict[str, list[np.ndarray]], sr: int, probes: dict | None = None) -> dict[str, dict]:
    """{row: {instrument: {recognized, attracts, heard_as}}}: the inputs as they are ("input"), then through each
    probe (default PROBES)."""
    from evaluation.ceiling import _identity, score

    rows = {"input": _identity, **{k: (lambda x, p=p: p(x, sr)) for k, p in (probes or PROBES).items()}}
    out = {}
    for label, through in rows.items():
        r = score(judge, None, clips, through, sr)
        out[label] = {i: {"recognized": v["recognized"], "attracts": v["attracts"], "heard_as": v["heard_as"]}
                      for i, v in r.items()}
    return out


def format_robustness(rows: dict[str, dict], instruments: list[str]) -> str:
    lines = ["| row | " + " | ".join(instruments) + " |", "|---|" + "---|" * len(instruments)]
    for label, r in rows.items():
        lines.append(f"| {label} | " + " | ".join(
            f"{100 * r[i]['recognized']:.0f}% / {100 * r[i]['attracts']:.0f}%" for i in instruments) + " |")
    lines.append("cells: clips heard as the instrument / share of the other instruments' clips heard as it")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from core.timbre import DEFAULT_PATH

    ap = argparse.ArgumentParser(prog="python -m evaluation.robustness", description=__doc__.split("\n")[0])
    ap.add_argument("--classifier", type=Path, default=DEFAULT_PATH, help="the judge file")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--split", default="heldout", help="split(s), comma-separated (heldout: the unseen font)")
    ap.add_argument("--instruments", type=comma_list(), default=None, help="comma-separated (default: the judge's)")
    ap.add_argument("--clips", type=int, default=8, help="clips per instrument")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    return ap


def main(argv=None) -> int:
    return run_main(_main, argv, errors=(CorpusError, CheckpointError, ValueError, FileNotFoundError))


def _main(argv=None) -> int:
    from core.timbre import TimbreClassifier
    from evaluation.ceiling import judged_instruments, load_clips

    a = build_parser().parse_args(argv)
    if a.clips < 1 or a.seconds <= 0:
        raise ValueError(f"--clips {a.clips} --seconds {a.seconds}: both must be positive")
    if not a.classifier.exists():
        raise FileNotFoundError(f"{a.classifier}: no such judge file")
    judge = TimbreClassifier.load(a.classifier)
    instruments = judged_instruments(judge, a.instruments, a.classifier)
    sr = judge.cfg.sample_rate
    clips = load_clips(a.corpus, a.split, instruments, sr, a.clips, a.seconds)
    rows = robustness(judge, clips, sr)
    print(f"{a.split}: {len(clips[instruments[0]])} clips × {a.seconds:g} s per instrument, the inputs through generic "
          f"damage (no model of ours); judge {a.classifier}")
    print(format_robustness(rows, instruments))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
