"""Latency vs cost vs quality of the live engine's settings (window, hop, crossfade, steps).

    python -m evaluation.streaming [--preset violin-to-flute] [--clips 4 --seconds 6] [--out out/streaming]

For each candidate setting (live.bench.SWEEP_GRID × steps) it times the engine as live.bench does (RTF, the
latency split with the live margin measured through the worker thread) and streams held-out clips of the preset's
source through the engine as live (render_array, at the models' 24 kHz: the quality figures leave out the
device-rate resamplers, whose FIR passes up to 10.8 kHz), scoring them with the honest judge (target recognition, one vote per
clip and per crop) and PESTO (pitch accuracy against the input). Two reference rows frame the figures: the codec
round trip (the ceiling: no setting can keep more melody or reach the target better than the codec allows) and
the offline-quality render (long windows, more steps). Prints a table, writes JSON and a plot: latency vs RTF,
coloured by target recognition. A command that prints figures: timings are this machine's, compare within a run.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from core.cli import comma_list, ranged, run_main
from core.io import write_json_atomic
from live.params import add_options, given

DEFAULT_CLASSIFIER = Path("models/classifier.pt")


def quality_rows(ev, preset, settings: list[tuple[int, int, int, int]], clips) -> list[dict]:
    """One scored row per (window, hop, crossfade, steps), plus the codec and offline-quality references."""
    from evaluation.run import pair_name
    from live.render import offline_preset

    a, b, t = preset.source, preset.target, preset.transpose
    refs = clips[a]
    # the reference a transposing or folding preset can reach: its input moved, through the codec (pitch against the
    # melody as moved: `moves`, per sample where a fold moved it)
    moved, moves = ev.moved_clips(refs, preset)
    codec = [ev.decode(ev.encode(m), a) for m in moved]
    rows = [dict(ev.score("codec", a, b, refs, codec, None, transpose=t, moves=moves), setting="codec")]
    off = offline_preset(preset)
    rows.append(dict(ev.score("offline", a, b, refs, [ev.stream(c.audio, off) for c in refs], None, transpose=t,
                              moves=moves), setting=f"offline W{off.window} H{off.hop} C{off.crossfade} s{off.steps}"))
    from tqdm import tqdm

    for w, h, c, n in tqdm(settings, desc="quality", unit="setting"):
        p = dataclasses.replace(preset, window=w, hop=h, crossfade=c, steps=n)
        outs = [ev.stream(clip.audio, p) for clip in refs]
        rows.append(dict(ev.score("as-live", a, b, refs, outs, None, transpose=t, moves=moves), window=w, hop=h,
                         crossfade=c, steps=n, setting=f"W{w} H{h} C{c} s{n}"))
    for r in rows:
        r["pair"] = pair_name(a, b)
    return rows


def main(argv=None) -> int:
    from live.bench import SWEEP_GRID
    from live.engine import LIVE_THREADS

    ap = argparse.ArgumentParser(prog="python -m evaluation.streaming", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="violin-to-flute")
    ap.add_argument("--steps", type=comma_list(int), default=[1, 2, 3], help="steps per leg to try (default 1,2,3)")
    ap.add_argument("--grid", type=comma_list(str), default=None,
                    help="settings as W:H:C (default: live.bench's sweep grid)")
    add_options(ap, ["solver"])
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--clips", type=ranged(int, 1, 64), default=4)
    ap.add_argument("--seconds", type=ranged(float, 1, 60), default=6.0)
    ap.add_argument("--classifier", type=Path, default=DEFAULT_CLASSIFIER)
    ap.add_argument("--rate", type=ranged(int, 8000, 384_000), default=48_000, help="device rate for the timings")
    ap.add_argument("--block", type=ranged(int, 16, 16384), default=256)
    ap.add_argument("--threads", type=ranged(int, 1, 64), default=LIVE_THREADS)
    ap.add_argument("--out", type=Path, default=Path("out/streaming"))
    a = ap.parse_args(argv)
    grid = [tuple(int(v) for v in g.split(":")) for g in a.grid] if a.grid else SWEEP_GRID
    if any(len(g) != 3 for g in grid):
        raise ValueError("--grid items are W:H:C, e.g. 32:8:3")

    from tqdm import tqdm

    from evaluation.report import pct
    from evaluation.run import EvalConfig, Evaluator, load_clips
    from live.bench import bench_preset, plot_sweep, print_table
    from live.preset import load_preset

    preset = dataclasses.replace(load_preset(a.preset), **given(a, ["solver"]))
    cfg = EvalConfig(bundle=preset.bundle_path(), corpus=a.corpus, split=a.split, pairs=[(preset.source, preset.target)],
                     clips=a.clips, seconds=a.seconds, classifier=a.classifier if a.classifier.is_file() else None,
                     threads=a.threads, progress=False)
    ev = Evaluator(cfg)
    clips = load_clips(cfg, [preset.source], ev.sr, ev.bundle.samples_per_frame * ev.tf)
    if not clips.get(preset.source):
        raise ValueError(f"no {preset.source} clips in {a.corpus} split {a.split}")
    settings = [(w, h, c, n) for (w, h, c) in grid for n in a.steps]
    timing = []
    for w, h, c in tqdm(grid, desc="timing", unit="setting"):
        timing += bench_preset(ev.bundle, dataclasses.replace(preset, window=w, hop=h, crossfade=c), a.steps,
                               a.rate, a.block, 8.0)
    quality = quality_rows(ev, preset, settings, clips)
    by_setting = {(r["window"], r["hop"], r["crossfade"], r["steps"]): r for r in quality if "window" in r}
    rows = []
    for t in timing:
        q = by_setting[(t["window"], t["hop"], t["crossfade"], t["steps"])]
        rows.append(dict(t, target_clip=q["target_acc_clip"], target_crop=q["target_acc"], pitch=q["pitch_acc"],
                         chroma=q["chroma_acc"]))
    print(f"{preset.name}: {len(clips[preset.source])} held-out {preset.source} clips × {a.seconds:g} s; "
          f"judge {cfg.classifier or 'none'}; timings at {a.rate} Hz, block {a.block}, {a.threads} thread(s)")
    for r in quality[:2]:
        print(f"  reference {r['setting']:28s} target {pct(r['target_acc_clip'])} (crops {pct(r['target_acc'])})  "
              f"pitch {pct(r['pitch_acc'])}  pitch class {pct(r['chroma_acc'])}")
    for r in rows:
        for k in ("target_clip", "target_crop", "pitch", "chroma"):
            r[k] = None if r[k] is None else round(float(r[k]), 3)
    print_table(rows, extra=["target_clip", "target_crop", "pitch", "chroma"])
    a.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(a.out / "streaming.json", dict(
        preset=preset.name, rate=a.rate, block=a.block, threads=a.threads, clips=len(clips[preset.source]),
        seconds=a.seconds, references=[{k: v for k, v in r.items() if not isinstance(v, np.ndarray)} for r in quality[:2]],
        rows=rows))
    plot_sweep(rows, a.out / "streaming.png", quality="target_clip" if cfg.classifier else "pitch")
    print(f"json → {a.out / 'streaming.json'}; plot → {a.out / 'streaming.png'}")
    return 0


if __name__ == "__main__":
    from live.bundle import BundleError
    from live.engine import EngineError
    from live.preset import PresetError

    sys.exit(run_main(main, errors=(PresetError, BundleError, EngineError, ValueError)))
