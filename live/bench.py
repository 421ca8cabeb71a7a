"""Benchmark: real-time factor and latency of the streaming engine, per preset and step count.

    python -m live.bench [--preset NAME ...] [--steps 2,3,4] [--json out/bench.json] [--sweep --plot out/sweep.png]

Real-time factor = compute time / audio time while streaming a phrase in blocks (the live code path, resamplers
included). Latency = where an onset pushed through the engine appears in the output (wet only), plus the two
device buffers a live stream adds. --sweep measures the latency/cost curve over window, hop and steps.
A command that prints figures, not a test: absolute times on a shared machine are noisy, ratios within one run
are what to compare.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from core.cli import comma_list, ranged
from core.io import write_json_atomic
from live.bundle import Bundle
from core.sampling import evaluations_per_bridge
from live.engine import LIVE_THREADS, StreamingEngine, margin_from_hop_times, measure_hop_ms
from live.params import add_options, given, param
from live.preset import Preset, PRESET_DIR, list_presets, load_preset

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "violin_phrase.flac"


def test_signal(seconds: float, rate: int) -> np.ndarray:
    if EXAMPLE.is_file():
        from core.audio import load_audio

        x = load_audio(EXAMPLE, rate)
        reps = int(np.ceil(seconds * rate / len(x)))
        return np.tile(x, reps)[: int(seconds * rate)]
    t = np.arange(int(seconds * rate)) / rate  # fallback: a vibrato tone
    return (0.3 * np.sin(2 * np.pi * 440 * t + 3 * np.sin(2 * np.pi * 5 * t))).astype(np.float32)


def measure_rtf(bundle: Bundle, preset: Preset, x: np.ndarray, rate: int, block: int) -> dict:
    # fail_fast: a figure measured over hops that went out dry (a model raising) would be a lie
    warm = StreamingEngine(bundle, preset, rate, fail_fast=True)
    warm.process(x[: 3 * preset.hop * bundle.samples_per_frame * rate // bundle.sample_rate])  # first runs allocate
    e = StreamingEngine(bundle, preset, rate, fail_fast=True)
    hop_times = []
    t0 = time.perf_counter()
    for i in range(0, len(x), block):
        before = e.stats.hops
        e.process(x[i:i + block])
        if e.stats.hops > before:
            hop_times.append(e.stats.last_hop_ms)
    wall = time.perf_counter() - t0
    hops = max(e.stats.hops, 1)
    hop_ms = 1000 * preset.hop * bundle.samples_per_frame / bundle.sample_rate
    p50, p99 = (np.percentile(hop_times, [50, 99]) if hop_times else (float("nan"),) * 2)
    return dict(rtf=wall / (len(x) / rate), hop_ms=hop_ms, per_hop_ms={k: v / hops for k, v in e.stats.total_ms.items()},
                hop_p50_ms=float(p50), hop_p99_ms=float(p99), hop_times=np.asarray(hop_times),
                underruns=e.stats.underruns, errors=e.stats.errors, dry_hops=e.stats.dry_hops)


def measure_latency(bundle: Bundle, preset: Preset, rate: int, block: int, margin_ms: float = 0.0) -> tuple[float, dict]:
    """Onset in → onset out, in ms (wet signal only), through an engine with the live compute margin; and the
    engine's own account of that delay (algorithmic, resamplers, margin)."""
    p = dataclasses.replace(preset, dry_wet=1.0)
    n = 3 * rate
    x = np.zeros(n, np.float32)
    on = rate
    t = np.arange(n - on) / rate
    x[on:] = 0.5 * np.sin(2 * np.pi * 330 * t) * np.minimum(1, t / 0.002)
    e = StreamingEngine(bundle, p, rate, margin_ms=margin_ms, fail_fast=True)
    y = np.concatenate([e.process(x[i:i + block]) for i in range(0, n, block)])
    env = np.convolve(np.abs(y), np.ones(48) / 48, mode="same")
    floor = np.max(env[: on // 2]) if on else 0.0
    thr = floor + 0.2 * (np.max(env) - floor)
    hit = int(np.argmax(env > thr))
    return 1000.0 * (hit - on) / rate, e.latency_split_ms()


def bench_preset(bundle: Bundle, preset: Preset, steps: list[int], rate: int, block: int, seconds: float,
                 margin_ms: float | None = None) -> list[dict]:
    """One row per step count. margin_ms None: the live default, derived from this run's hop times."""
    x = test_signal(seconds, rate)
    rows = []
    for n in steps:
        p = dataclasses.replace(preset, steps=n)
        r = measure_rtf(bundle, p, x, rate, block)
        margin = (margin_from_hop_times(measure_hop_ms(bundle, p), 1000 * block / rate) if margin_ms is None
                  else margin_ms)  # None: what python -m live would choose on this machine
        lat, split = measure_latency(bundle, p, rate, block, margin)
        device = 2000 * block / rate  # the input and the output buffer of a live stream
        rows.append(dict(preset=preset.name, source=p.source, target=p.target, solver=p.solver, prior=p.prior, steps=n,
                         window=p.window, hop=p.hop,
                         crossfade=p.crossfade, rtf=round(r["rtf"], 3), latency_ms=round(lat, 1),
                         live_latency_ms=round(lat + device, 1),
                         algorithmic_ms=round(split["algorithmic"], 1), resampler_ms=round(split["resamplers"], 1),
                         margin_ms=round(split["margin"], 1), device_ms=round(device, 1),
                         evals_per_hop=evaluations_per_bridge(n, p.solver),
                         **{f"{k}_ms": round(v, 2) for k, v in r["per_hop_ms"].items()},
                         hop_p50_ms=round(r["hop_p50_ms"], 2), hop_p99_ms=round(r["hop_p99_ms"], 2),
                         hop_budget_ms=round(r["hop_ms"], 2), underruns=r["underruns"], errors=r["errors"],
                         dry_hops=r["dry_hops"]))
    return rows


COLUMNS = ["preset", "solver", "steps", "evals_per_hop", "window", "hop", "crossfade", "rtf", "live_latency_ms",
           "algorithmic_ms", "resampler_ms", "margin_ms", "device_ms", "encode_ms", "bridge_ms", "decode_ms", "resample_ms",
           "hop_p50_ms", "hop_p99_ms", "hop_budget_ms"]


def print_table(rows: list[dict], extra: list[str] = ()) -> None:
    cols = [c for c in COLUMNS + list(extra) if any(c in r for r in rows)]
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths)))


SWEEP_GRID = [(32, 8, 3), (24, 8, 3), (32, 4, 2), (24, 4, 2), (16, 4, 2), (24, 4, 1), (16, 2, 1), (24, 2, 1)]


def plot_sweep(rows: list[dict], path: Path, quality: str | None = None) -> None:
    """Latency vs real-time factor, one point per setting; with `quality` (a row key, 0…1) the points are coloured
    by it (e.g. target recognition or pitch accuracy from python -m evaluation.streaming)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    markers = "o^sDv*"
    sc = None
    for i, (solver, n) in enumerate(sorted({(r["solver"], r["steps"]) for r in rows})):
        sel = [r for r in rows if (r["solver"], r["steps"]) == (solver, n)]
        kw = dict(c=[r.get(quality, np.nan) for r in sel], cmap="viridis", vmin=0, vmax=1) if quality else {}
        sc = ax.scatter([r["live_latency_ms"] for r in sel], [r["rtf"] for r in sel], marker=markers[i % 6],
                        label=f"{n} {solver} step{'s' * (n > 1)}/leg", **kw)
        for r in sel:
            ax.annotate(f"W{r['window']} H{r['hop']} C{r['crossfade']}", (r["live_latency_ms"], r["rtf"]),
                        fontsize=6, alpha=0.7)
    if quality and sc is not None:
        fig.colorbar(sc, ax=ax, label=quality)
    for y, c in ((1.0, "red"), (0.4, "orange"), (0.3, "green")):
        ax.axhline(y, color=c, lw=0.8, ls="--")
    for x, c in ((150, "orange"), (100, "green")):
        ax.axvline(x, color=c, lw=0.8, ls="--")
    ax.set_xlabel("live latency, input → output incl. device buffers (ms)")
    ax.set_ylabel("real-time factor (compute / audio)")
    ax.set_title("Streaming engine: latency vs cost" + (f" vs {quality}" if quality else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    from core.io import atomic_output

    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m live.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", action="append", default=None, help="preset name(s); default: all")
    ap.add_argument("--preset-dir", type=Path, default=PRESET_DIR)
    ap.add_argument("--steps", type=comma_list(param("steps").parse), default=None,
                    help="comma-separated step counts (default: the preset's, and 2,4)")
    add_options(ap, ["solver"])
    ap.add_argument("--rate", type=ranged(int, 8000, 384_000), default=48_000, help="device sample rate")
    ap.add_argument("--block", type=ranged(int, 1, 16384), default=256)
    ap.add_argument("--seconds", type=ranged(float, 0.5, 3600), default=8.0)
    ap.add_argument("--threads", type=ranged(int, 1, 256), default=LIVE_THREADS)
    ap.add_argument("--margin-ms", type=ranged(float, 0, 2000), default=None,
                    help="live compute margin (default: as python -m live, from the measured hop times)")
    ap.add_argument("--provider", default="auto")
    ap.add_argument("--sweep", action="store_true", help="latency/cost sweep over window, hop and steps")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    a = ap.parse_args(argv)
    presets = [load_preset(p, a.preset_dir) for p in a.preset] if a.preset else list_presets(a.preset_dir)
    presets = [dataclasses.replace(p, **given(a, ["solver"])) for p in presets]
    if not presets:
        print("error: no presets", file=sys.stderr)
        return 2
    bundle = Bundle(presets[0].bundle_path(), provider=a.provider, threads=a.threads)
    print(f"onnxruntime providers: {', '.join(bundle.providers)}; {a.threads} threads; device rate {a.rate} Hz, "
          f"block {a.block}")
    rows = []
    if a.sweep:
        base = presets[0]
        steps = a.steps or [1, 2, 3]
        for w, h, c in SWEEP_GRID:
            p = dataclasses.replace(base, window=w, hop=h, crossfade=c)
            rows += bench_preset(bundle, p, steps, a.rate, a.block, a.seconds, a.margin_ms)
            print_table(rows[-len(steps):])
        if a.plot:
            plot_sweep(rows, a.plot)
            print(f"plot → {a.plot}")
    else:
        for p in presets:
            steps = sorted({p.steps, *a.steps} if a.steps else {p.steps, 2, 4})
            rows += bench_preset(bundle, p, steps, a.rate, a.block, a.seconds, a.margin_ms)
        print_table(rows)
    if a.json:
        write_json_atomic(a.json, dict(providers=bundle.providers, threads=a.threads, rate=a.rate, block=a.block,
                                       rows=rows))
        print(f"json → {a.json}")
    return 0


if __name__ == "__main__":
    from core.cli import run_main
    from live.bundle import BundleError
    from live.engine import EngineError
    from live.preset import PresetError

    sys.exit(run_main(main, errors=(PresetError, BundleError, EngineError)))
