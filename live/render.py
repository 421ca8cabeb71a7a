"""Offline rendering of files through a preset: the exact live path ("as live") or an offline-quality pass.

    python -m live.render IN OUT --preset violin-to-flute [--sigma-max 20] [--steps 6] [--mode offline]

IN and OUT are files (WAV/FLAC/OGG, any rate, stereo mixed down) or folders (every audio file inside).
"as-live" feeds the file through the streaming engine in blocks of --block samples at the file's own rate, the
same code and the same samples as live monitoring; "offline" uses longer windows and more steps. The latency
is removed (--keep-latency keeps it, which is exactly what a listener hears live). Output is written through a
temporary file, so a failure never leaves a partial file.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from core.audio import AUDIO_SUFFIXES, AudioError, list_audio_files, read_audio, write_audio_atomic
from live.bundle import Bundle, BundleError
from live.engine import StreamingEngine
from live.preset import Preset, PresetError, load_preset

OFFLINE = dict(window=128, hop=64, crossfade=16)  # offline quality: long windows, more steps


def offline_preset(preset: Preset) -> Preset:
    return dataclasses.replace(preset, steps=max(2 * preset.steps, 8), **OFFLINE)


def read_input(path: Path) -> tuple[np.ndarray, int, list[str]]:
    """Mono float32 at the file's rate, plus warnings (silent, clipped); AudioError for unusable files."""
    x, sr = read_audio(path)
    warnings = []
    peak = float(np.max(np.abs(x)))
    if peak < 1e-4:
        warnings.append(f"{path}: the input is silent (peak {20 * np.log10(peak + 1e-12):.0f} dBFS); the output will be too")
    clipped = int(np.sum(np.abs(x) >= 0.999))
    if clipped > 0.001 * len(x):
        warnings.append(f"{path}: {clipped} samples sit at full scale: the input is clipped, expect artefacts")
    return x, sr, warnings


def render_array(x: np.ndarray, sr: int, engine_factory: Callable[[int], StreamingEngine], block: int = 512,
                 keep_latency: bool = False, progress: Callable[[float], None] | None = None) -> np.ndarray:
    """Stream x (mono, rate sr) through a fresh engine in blocks; returns the output at rate sr."""
    engine = engine_factory(sr)
    tail = engine.delay + engine.H * engine.hop * sr // engine.sr + block  # flush what is still in flight
    padded = np.concatenate([x.astype(np.float32), np.zeros(tail, np.float32)])
    out = np.empty_like(padded)
    for i in range(0, len(padded), block):
        out[i:i + block] = engine.process(padded[i:i + block])
        if progress is not None:
            progress(min(1.0, (i + block) / len(padded)))
    if keep_latency:
        return out[: len(x) + engine.delay]
    return out[engine.delay: engine.delay + len(x)]


def render_file(in_path, out_path, preset: Preset, mode: str = "as-live", block: int = 512,
                keep_latency: bool = False, threads: int = 2, provider: str = "auto", bundle: Bundle | None = None,
                progress: Callable[[float], None] | None = None, **overrides) -> list[str]:
    """Render one file; returns warnings. `overrides` are live parameters (sigma_max, steps, target, ...)."""
    if mode not in ("as-live", "offline"):
        raise ValueError(f"mode must be 'as-live' or 'offline', not {mode!r}")
    in_path, out_path = Path(in_path), Path(out_path)
    if out_path.suffix.lower() not in AUDIO_SUFFIXES:
        raise AudioError(f"{out_path}: unsupported output format (use one of {', '.join(AUDIO_SUFFIXES)})")
    x, sr, warnings = read_input(in_path)
    p = dataclasses.replace(preset, **{k: v for k, v in overrides.items() if v is not None and k in
                                       ("sigma_max", "steps", "source", "target", "dry_wet")})
    p = offline_preset(p) if mode == "offline" else p
    bundle = bundle or Bundle(preset.bundle_path(), provider=provider, threads=threads)
    p.validate(bundle.instruments)
    gain = float(overrides.get("input_gain") or 1.0)
    quality = "HQ" if mode == "offline" else "LQ"
    y = render_array(x, sr, lambda rate: StreamingEngine(bundle, p, rate, resample_quality=quality, input_gain=gain),
                     block, keep_latency, progress)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.999:  # never write a clipped file: scale the whole render down
        warnings.append(f"{out_path}: output peaked at {peak:.2f}; scaled to -0.1 dBFS")
        y = y * (0.989 / peak)
    write_audio_atomic(out_path, y, sr)
    return warnings


def _pairs(inp: Path, out: Path) -> list[tuple[Path, Path]]:
    if inp.is_dir():
        files = list_audio_files(inp)
        if not files:
            raise AudioError(f"{inp}: no audio files found")
        if out.suffix:
            raise AudioError(f"{out}: the input is a folder, so the output must be a folder too")
        return [(f, out / f.relative_to(inp).with_suffix(".wav")) for f in files]
    return [(inp, out / (inp.stem + ".wav") if out.is_dir() or not out.suffix else out)]


def main(argv=None) -> int:
    from tqdm import tqdm

    ap = argparse.ArgumentParser(prog="python -m live.render", description=__doc__.split("\n")[0])
    ap.add_argument("input", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--preset", required=True, help="preset name (presets/NAME.json) or path")
    ap.add_argument("--sigma-max", type=float, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--source", default=None)
    ap.add_argument("--target", default=None)
    ap.add_argument("--dry-wet", type=float, default=None)
    ap.add_argument("--mode", choices=("as-live", "offline"), default="as-live")
    ap.add_argument("--block", type=int, default=512, help="as-live block size in samples")
    ap.add_argument("--keep-latency", action="store_true", help="keep the live delay at the start")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto")
    a = ap.parse_args(argv)
    try:
        preset = load_preset(a.preset)
        bundle = Bundle(preset.bundle_path(), provider=a.provider, threads=a.threads)
        pairs = _pairs(a.input, a.output)
        for src, dst in pairs:
            bars = []  # opened on the first progress report, so a file refused up front prints only its error

            def progress(f, src=src, bars=bars):
                if not bars:
                    bars.append(tqdm(total=100, desc=src.name, unit="%", bar_format="{l_bar}{bar}| {elapsed}<{remaining}"))
                bars[0].update(round(100 * f) - bars[0].n)

            try:
                warnings = render_file(src, dst, preset, a.mode, a.block, a.keep_latency, bundle=bundle,
                                       progress=progress, sigma_max=a.sigma_max, steps=a.steps, source=a.source,
                                       target=a.target, dry_wet=a.dry_wet)
            finally:
                for b in bars:
                    b.close()
            for w in warnings:
                print(f"warning: {w}", file=sys.stderr)
            print(f"{src} → {dst}")
    except (AudioError, PresetError, BundleError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
