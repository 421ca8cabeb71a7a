"""Few-step bridge solvers at equal cost: how far each lands from the converged bridge, and what is heard.

    python -m evaluation.solver [--preset violin-to-flute ... | --all] [--evals 8,12] [--rhos 5,7]
                                [--sigma-mins 0.001,0.02,0.05] [--apply 8]

Each candidate (solver, steps per leg, ρ, σmin) bridges held-out clips of the preset's source whole (no streaming:
this isolates the solver from the engine) at the preset's σmax. Figures per candidate:
- `error`: RMS distance, in normalized latent units, from a converged reference bridge (Heun, --ref-steps per leg,
  ρ 7 from σmin 10⁻³: EDM's schedule). The row "reference at half the steps" shows how converged that reference is.
- `pitch` / `chroma`: PESTO against the input (core.pitch), after decoding.
- `target`: the honest judge's vote per clip for the preset's target (when a judge file exists).
Equal cost means equal denoiser evaluations per bridge: Heun 4 per step (two per leg step), Euler 2.
Which solver wins depends on σmax (measured: Heun at σmax 1, Euler at 5 and 20, where few Heun steps overshoot), so
`--apply N` writes each preset's lowest-error setting at N evaluations into its file (solver, steps, σmin, ρ; its
other fields are kept). Without --apply it changes no preset.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from core.cli import comma_list, ranged, run_main
from core.io import write_json_atomic
from live.params import param

METHODS = param("solver").choices


@dataclasses.dataclass(frozen=True)
class SolverSetting:
    method: str
    steps: int
    rho: float
    sigma_min: float

    @property
    def evals(self) -> int:
        from core.sampling import evaluations_per_bridge

        return evaluations_per_bridge(self.steps, self.method)

    @property
    def label(self) -> str:
        return f"{self.method} {self.steps} step{'s' * (self.steps > 1)} ρ{self.rho:g} σmin {self.sigma_min:g}"


def candidates(evals: list[int], rhos: list[float], sigma_mins: list[float]) -> list[SolverSetting]:
    """Every (method, ρ, σmin) at each evaluation budget a method can spend exactly (Heun: multiples of 4)."""
    from core.sampling import evaluations_per_bridge

    out = []
    for e in evals:
        for m in METHODS:
            per_step = evaluations_per_bridge(1, m)
            if e % per_step:
                continue
            out += [SolverSetting(m, e // per_step, r, s) for r in rhos for s in sigma_mins]
    return out


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


def solver_rows(ev, preset, settings: list[SolverSetting], clips, ref_steps: int) -> tuple[list[dict], list[dict]]:
    """(reference rows, one row per setting): latent error against the converged bridge, melody, target votes.
    References: the codec alone (no bridge), the converged bridge, it at half the steps, the preset's own setting."""
    from tqdm import tqdm

    a, b, sigma = preset.source, preset.target, float(preset.sigma_max)
    refs = clips[a]
    # what a transposing or folding preset bridges, and what it moved (per sample where a fold moved it)
    moved, moves = ev.moved_clips(refs, preset)
    zs = [ev.encode(m) for m in moved]

    def bridged(s: SolverSetting) -> list[np.ndarray]:
        return [ev.bundle.transfer(z, a, b, sigma, s.steps, s.sigma_min, s.rho, s.method, preset.prior) for z in zs]

    from core.sampling import RHO, SIGMA_MIN

    ref_setting = SolverSetting("heun", ref_steps, RHO, SIGMA_MIN)
    half = dataclasses.replace(ref_setting, steps=max(1, ref_steps // 2))
    ref = bridged(ref_setting)

    def row(kind: str, s: SolverSetting | None, ys: list[np.ndarray]) -> dict:
        # bridged latents are bound for the target; the codec row's are the source's own round trip
        outs = [ev.decode(y, a if kind == "codec" else b)[: len(c.audio)] for y, c in zip(ys, refs)]
        r = ev.score(kind, a, b, refs, outs, None, transpose=preset.transpose, moves=moves)
        r.update(setting=(f"{kind}: " if kind == "the preset now" else "") + (s.label if s else kind),
                 evals=s.evals if s else 0,
                 error=float(np.mean([rms(y, yr) for y, yr in zip(ys, ref)])),
                 moved=float(np.mean([rms(y, z) for y, z in zip(ys, zs)])))
        if s:
            r.update(method=s.method, steps_per_leg=s.steps, rho=s.rho, sigma_min=s.sigma_min)
        return r

    current = SolverSetting(preset.solver, preset.steps, float(preset.rho), float(preset.sigma_min))
    references = [row("codec", None, zs), row("reference", ref_setting, ref),
                  row("reference at half the steps", half, bridged(half)),
                  row("the preset now", current, bridged(current))]
    rows = [row("candidate", s, bridged(s)) for s in tqdm(settings, desc="solvers", unit="setting")]
    return references, rows


def print_rows(references: list[dict], rows: list[dict]) -> None:
    from evaluation.report import pct

    head = f"{'setting':44s} {'evals':>5s} {'error':>6s} {'moved':>6s} {'pitch':>6s} {'chroma':>6s} {'target':>6s}"
    print(head)
    print("-" * len(head))
    for r in references + sorted(rows, key=lambda r: (r["evals"], r["error"])):
        print(f"{r['setting']:44s} {r['evals']:5d} {r['error']:6.3f} {r['moved']:6.3f} {pct(r['pitch_acc']):>6s} "
              f"{pct(r['chroma_acc']):>6s} {pct(r['target_acc_clip']):>6s}")


def best_at(rows: list[dict], evals: int) -> dict | None:
    """The candidate closest to the converged bridge among those spending `evals` evaluations."""
    at = [r for r in rows if r["evals"] == evals]
    return min(at, key=lambda r: r["error"]) if at else None


def main(argv=None) -> int:
    from live.bundle import BundleError
    from live.preset import PresetError

    return run_main(_main, argv, errors=(PresetError, BundleError, ValueError))


def _main(argv=None) -> int:
    from live.preset import DEFAULT_PRESET

    ap = argparse.ArgumentParser(prog="python -m evaluation.solver", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", action="append", default=None, help=f"preset name(s) (default {DEFAULT_PRESET})")
    ap.add_argument("--all", action="store_true", help="every preset")
    ap.add_argument("--evals", type=comma_list(int), default=[8, 12], help="denoiser evaluations per bridge")
    ap.add_argument("--rhos", type=comma_list(float), default=[5.0, 7.0])
    ap.add_argument("--sigma-mins", type=comma_list(float), default=[1e-3, 2e-2, 5e-2])
    ap.add_argument("--apply", type=int, default=None, metavar="EVALS",
                    help="write each preset's best setting at this many evaluations into its file")
    ap.add_argument("--ref-steps", type=ranged(int, 2, 512), default=48, help="Heun steps per leg of the reference")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--clips", type=ranged(int, 1, 64), default=4)
    ap.add_argument("--seconds", type=ranged(float, 1, 60), default=6.0)
    ap.add_argument("--classifier", type=Path, default=Path("models/classifier.pt"))
    ap.add_argument("--threads", type=ranged(int, 1, 64), default=2)
    ap.add_argument("--json", type=Path, default=Path("out/solver.json"))
    a = ap.parse_args(argv)
    if any(e < 2 for e in a.evals):
        raise ValueError("--evals must be ≥ 2")
    for name, values in (("rho", a.rhos), ("sigma_min", a.sigma_mins)):
        for v in values:  # every candidate must be a value a preset may hold
            param(name).check(v, f"--{name.replace('_', '-')}s")
    settings = [s for s in candidates(a.evals, a.rhos, a.sigma_mins) if s.steps <= param("steps").high]
    if not settings:
        raise ValueError(f"no solver spends exactly {a.evals} evaluations (Heun: multiples of 4, Euler: of 2)")
    if a.apply is not None and not any(s.evals == a.apply for s in settings):
        raise ValueError(f"--apply {a.apply}: no candidate spends {a.apply} evaluations "
                         f"(--evals {','.join(map(str, a.evals))})")

    from evaluation.run import EvalConfig, Evaluator, load_clips
    from live.preset import list_presets, load_preset, update_preset_file

    presets = list_presets() if a.all else [load_preset(p) for p in (a.preset or [DEFAULT_PRESET])]
    for p in presets:
        if any(s >= p.sigma_max for s in a.sigma_mins):
            raise ValueError(f"--sigma-mins must stay below {p.name}'s σmax {p.sigma_max:g}")
    ev, clips, results = None, {}, {}
    for preset in presets:
        cfg = EvalConfig(bundle=preset.bundle_path(), corpus=a.corpus, split=a.split,
                         pairs=[(preset.source, preset.target)], clips=a.clips, seconds=a.seconds,
                         classifier=a.classifier if a.classifier.is_file() else None, threads=a.threads,
                         progress=False)
        if ev is None or ev.cfg.bundle != cfg.bundle:
            ev, clips = Evaluator(cfg), {}
        if preset.source not in clips:
            clips.update(load_clips(cfg, [preset.source], ev.sr, ev.bundle.samples_per_frame * ev.tf))
        if not clips.get(preset.source):
            raise ValueError(f"no {preset.source} clips in {a.corpus} split {a.split}")
        references, rows = solver_rows(ev, preset, settings, clips, a.ref_steps)
        print(f"\n{preset.name} at σmax {preset.sigma_max:g}: {len(clips[preset.source])} {a.split} {preset.source} "
              f"clips × {a.seconds:g} s, whole-clip bridges; error = RMS from the Heun {a.ref_steps}-step bridge "
              f"(latent units)")
        print_rows(references, rows)
        results[preset.name] = dict(sigma_max=preset.sigma_max, clips=len(clips[preset.source]),
                                    references=references, rows=rows)
        if a.apply is not None:
            results[preset.name]["best"] = best_at(rows, a.apply)
    write_json_atomic(a.json, dict(seconds=a.seconds, ref_steps=a.ref_steps, split=a.split, presets=results))
    print(f"json → {a.json}")
    # presets change only once every one is measured and the figures are on disk
    for preset in presets if a.apply is not None else []:
        best = results[preset.name]["best"]
        update_preset_file(preset.path, solver=best["method"], steps=best["steps_per_leg"],
                           sigma_min=best["sigma_min"], rho=best["rho"])
        print(f"{preset.path}: {best['setting']} ({best['evals']} evaluations, error {best['error']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
