"""Offline rendering of files through a preset: the exact live path ("as live") or an offline-quality pass.

    python -m live.render IN OUT --preset violin-to-flute [--sigma-max 20] [--steps 6] [--mode offline]

IN and OUT are files (WAV/FLAC/OGG, any rate, stereo mixed down) or folders (every audio file inside).
"as-live" feeds the file through the streaming engine in blocks of --block samples at the file's own rate, the
same code and the same samples as live monitoring; "offline" uses longer windows and more steps. The latency
is removed (--keep-latency keeps it, which is exactly what a listener hears live).

A render never loses a recording and never passes off a dry copy as a transfer:
- an output that would replace an input, two inputs that would render to one output, or an output folder
  inside the input folder are refused before anything is written;
- output goes through a temporary file, so a failure never leaves a partial file; the input's sample format
  (e.g. 24-bit) is kept unless --subtype says otherwise;
- a model that fails stops that file with an error (no file written); in a folder the other files are still
  rendered, every failure is listed, and the exit status is 1;
- the engine is primed with the file's own opening (played backwards, then discarded), so the first notes come
  out at full level rather than from a silent history (--no-prime: exactly what a live stream starting on the
  first sample gives).
"""
from __future__ import annotations

import logging

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from core.audio import AudioError, audio_format, list_audio_files, read_audio, write_audio_atomic
from core.cli import ranged, run_main
from live.bundle import Bundle, BundleError
from live.engine import EngineError, StreamingEngine
from live.params import add_options, given, param
from live.preset import Preset, PresetError, load_preset

log = logging.getLogger(__name__)

OFFLINE = dict(window=128, hop=64, crossfade=16)  # offline quality: long windows, more steps
# overridable per render
RENDER_PARAMS = ("source", "target", "sigma_max", "steps", "solver", "prior", "transpose", "fold_centre", "dry_wet",
                 "sigma_min", "rho")
EXIT_FAILED = 1  # some file could not be rendered (bad input is 2, as argparse)


def offline_preset(preset: Preset) -> Preset:
    """Longer windows and twice the steps (at least 8, at most the preset limit)."""
    return dataclasses.replace(preset, steps=min(max(2 * preset.steps, 8), param("steps").high), **OFFLINE)


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


def prime_length(engine: StreamingEngine, sr: int) -> int:
    """Input samples (at sr) the engine must have heard before a file's first sample is committed at full context:
    the window's past, the decoder's context and the encoder's left context."""
    frames = engine.W + engine.dec_ctx
    return int(np.ceil((frames * engine.F + engine.enc_ctx) * sr / engine.sr))


def render_array(x: np.ndarray, sr: int, engine_factory: Callable[[int], StreamingEngine], block: int = 512,
                 keep_latency: bool = False, progress: Callable[[float], None] | None = None,
                 prime: bool = True) -> tuple[np.ndarray, StreamingEngine]:
    """Stream x (mono, rate sr) through a fresh engine in blocks; returns the output at rate sr and the engine.

    prime: feed the file's opening backwards first and discard what it produces, so the engine's history holds
    the file's own sound instead of silence when the first sample arrives."""
    if block <= 0:
        raise ValueError(f"block must be a positive number of samples, got {block}")
    engine = engine_factory(sr)
    pre = x[: prime_length(engine, sr)][::-1] if prime else x[:0]
    tail = engine.delay + engine.H * engine.F * sr // engine.sr + block  # flush what is still in flight
    padded = np.concatenate([pre.astype(np.float32), x.astype(np.float32), np.zeros(tail, np.float32)])
    out = np.empty_like(padded)
    for i in range(0, len(padded), block):
        out[i:i + block] = engine.process(padded[i:i + block])
        if progress is not None:
            progress(min(1.0, (i + block) / len(padded)))
    out = out[len(pre):]
    if keep_latency:
        return out[: len(x) + engine.delay], engine
    return out[engine.delay: engine.delay + len(x)], engine


def output_subtype(in_path: Path, out_path: Path, subtype: str | None) -> str | None:
    """The sample format to write: `subtype` if given (checked), else the input's when the output format can
    hold it (24-bit stays 24-bit), else the output format's default."""
    import soundfile as sf

    fmt = audio_format(out_path)
    if subtype:
        if not sf.check_format(fmt, subtype):
            raise AudioError(f"{out_path}: a {fmt} file cannot hold sample format {subtype} "
                             f"(it can: {', '.join(sf.available_subtypes(fmt))})")
        return subtype
    try:
        src = sf.info(str(in_path)).subtype
    except Exception:  # noqa: BLE001 - read_audio already accepted the file; fall back to the format default
        return None
    return src if sf.check_format(fmt, src) else None


def render_file(in_path, out_path, preset: Preset, mode: str = "as-live", block: int = 512,
                keep_latency: bool = False, threads: int = 2, provider: str = "auto", bundle: Bundle | None = None,
                progress: Callable[[float], None] | None = None, subtype: str | None = None, prime: bool = True,
                **overrides) -> list[str]:
    """Render one file; returns warnings. `overrides` are live parameters (sigma_max, steps, target, ...).

    A model failure raises EngineError and writes nothing: a render is the transfer or nothing."""
    if mode not in ("as-live", "offline"):
        raise ValueError(f"mode must be 'as-live' or 'offline', not {mode!r}")
    in_path, out_path = Path(in_path), Path(out_path)
    audio_format(out_path)  # an unsupported output is refused before any work
    if out_path.exists() and in_path.exists() and out_path.resolve() == in_path.resolve():
        raise AudioError(f"{out_path}: is the input; choose another output (a render never replaces its input)")
    x, sr, warnings = read_input(in_path)
    out_subtype = output_subtype(in_path, out_path, subtype)
    p = dataclasses.replace(preset, **{k: v for k, v in overrides.items() if v is not None and k in RENDER_PARAMS})
    p = offline_preset(p) if mode == "offline" else p
    bundle = bundle or Bundle(preset.bundle_path(), provider=provider, threads=threads)
    p.validate(bundle.instruments)
    gain = float(overrides.get("input_gain") or 1.0)
    quality = "HQ" if mode == "offline" else "auto"  # as live: the same resampler as a live stream
    y, engine = render_array(
        x, sr, lambda rate: StreamingEngine(bundle, p, rate, resample_quality=quality, input_gain=gain,
                                            fail_fast=True), block, keep_latency, progress, prime)
    st = engine.stats
    if st.errors or st.dry_hops:  # fail_fast raises first; this guards the promise itself
        raise EngineError(f"{in_path}: {st.errors} model error(s), {st.dry_hops} dry hop(s); nothing written")
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.999:  # never write a clipped file: scale the whole render down
        warnings.append(f"{out_path}: output peaked at {peak:.2f}; scaled to -0.1 dBFS")
        y = y * (0.989 / peak)
    write_audio_atomic(out_path, y, sr, subtype=out_subtype)
    return warnings


def _pairs(inp: Path, out: Path) -> list[tuple[Path, Path]]:
    """(input, output) per file; refuses, before anything is written, any plan that would lose a recording."""
    if inp.is_dir():
        files = list_audio_files(inp)
        if not files:
            raise AudioError(f"{inp}: no audio files found")
        if out.suffix:
            raise AudioError(f"{out}: the input is a folder, so the output must be a folder too")
        o, i = out.resolve(), inp.resolve()
        if o == i or i in o.parents:
            raise AudioError(f"{out}: is inside the input folder {inp}; render into a folder outside it")
        pairs = [(f, out / f.relative_to(inp).with_suffix(".wav")) for f in files]
    else:
        pairs = [(inp, out / (inp.stem + ".wav") if out.is_dir() or not out.suffix else out)]
    inputs = {p.resolve() for p, _ in pairs}
    for src, dst in pairs:
        if dst.resolve() in inputs:
            raise AudioError(f"{dst}: is an input file; a render never replaces its input (choose another output)")
    by_dst: dict[Path, list[Path]] = {}
    for src, dst in pairs:
        by_dst.setdefault(dst.resolve(), []).append(src)
    clashes = {d: s for d, s in by_dst.items() if len(s) > 1}
    if clashes:
        lines = [f"{d.name} ← {', '.join(str(x) for x in s)}" for d, s in sorted(clashes.items())]
        raise AudioError("these inputs would render to the same output file; rename one of each:\n  " + "\n  ".join(lines))
    return pairs


def main(argv=None) -> int:
    """The command: one line per bad input (exit 2), per failed file (exit 1), or Ctrl-C (exit 130)."""
    return run_main(_main, argv, errors=(AudioError, PresetError, BundleError, ValueError, EngineError))


def _main(argv=None) -> int:
    from tqdm import tqdm

    import soundfile as sf

    ap = argparse.ArgumentParser(prog="python -m live.render", description=__doc__.split("\n")[0])
    ap.add_argument("input", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--preset", required=True, help="preset name (presets/NAME.json) or path")
    add_options(ap, RENDER_PARAMS)
    ap.add_argument("--mode", choices=("as-live", "offline"), default="as-live")
    ap.add_argument("--block", type=ranged(int, 1, 1 << 20), default=512, help="as-live block size in samples")
    ap.add_argument("--keep-latency", action="store_true", help="keep the live delay at the start")
    ap.add_argument("--no-prime", dest="prime", action="store_false",
                    help="start from silence, as a live stream does (the first ~0.4 s come out quieter)")
    ap.add_argument("--subtype", default=None, type=str.upper,
                    help=f"output sample format (default: the input's), e.g. {', '.join(list(sf.available_subtypes('WAV'))[:4])}")
    ap.add_argument("--threads", type=ranged(int, 1, 256), default=2)
    ap.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto")
    a = ap.parse_args(argv)
    preset = load_preset(a.preset)
    bundle = Bundle(preset.bundle_path(), provider=a.provider, threads=a.threads)
    pairs = _pairs(a.input, a.output)
    failed: list[str] = []
    for src, dst in pairs:
        bars = []  # opened on the first progress report, so a file refused up front prints only its error

        def progress(f, src=src, bars=bars):
            if not bars:
                bars.append(tqdm(total=100, desc=src.name, unit="%", bar_format="{l_bar}{bar}| {elapsed}<{remaining}"))
            bars[0].update(round(100 * f) - bars[0].n)

        try:
            warnings = render_file(src, dst, preset, a.mode, a.block, a.keep_latency, bundle=bundle,
                                   progress=progress, subtype=a.subtype, prime=a.prime,
                                   **given(a, RENDER_PARAMS))
        except (AudioError, EngineError, PresetError, BundleError) as e:
            if len(pairs) == 1 and not isinstance(e, EngineError):
                raise  # bad input: one line, exit 2
            failed.append(str(e))  # a folder: render the others, report every failure at the end
            print(f"{'failed' if len(pairs) > 1 else 'error'}: {e}", file=sys.stderr)
            continue
        finally:
            for b in bars:
                b.close()
        for w in warnings:
            log.warning("%s", w)
        print(f"{src} → {dst}")
    if failed:  # a model failed (or, in a folder, some files could not be rendered): nothing passed off as done
        if len(pairs) > 1:
            print(f"error: {len(failed)} of {len(pairs)} files were not rendered:\n  " + "\n  ".join(failed),
                  file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
