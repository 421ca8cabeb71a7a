"""The evaluation pipeline behind `python -m evaluation`: clips → transfers over a σmax × steps sweep → scores.

For every pair A → B (source clips of A, real clips of B as the timbre reference) it produces rows of kind:

    transfer  the sweep: each σmax × steps, rendered with `mode` (default "offline": the streaming engine with the
              offline-quality windows, as `python -m live.render --mode offline` does, at exactly these steps)
    lower     lower bound: the input unchanged (pitch accuracy 100% by construction, timbre still A)
    codec     the input through the codec alone, no bridge (the σmax → 0 limit; the melody any σmax can keep)
    transposed  (pairs whose preset transposes or folds) the input moved so, through the codec, no bridge: what the
              shifter alone does to the melody and to the judge (a judge that hears register as timbre names a
              violin an octave down a sax before any model touched it)
    upper     upper bound: real B clips through the codec (the timbre any transfer can reach)
    as-live   the pair's preset at the recommended σmax, streamed block by block exactly as live (render_array);
              with `live_rows`, every swept σmax × steps so (the recommendation then asks the preset to be heard
              as live within evaluation.report.LIVE_GAP of offline)
    offline-quality  the same through live.render.offline_preset (long windows, more steps)

and cycle rows A → B → A (whole-clip bridge on the latents, at the recommended σmax or --cycle-sigma) for
each of `cycle_steps`: latent MSE against the input latents and the melody scores of the decoded cycle.

Every row carries the melody scores of core.pitch against the input clip, moved by the row's `transpose` (the
reference for `upper` is the real B clip) and, with a classifier, `target_acc` (fraction of crops classified as
B), `target_acc_clip` (one vote per clip) and `fd` (Fréchet distance between classifier embeddings of the row's
audio and of the real B clips). `rtf` is render time / audio time on this machine.
"""
from __future__ import annotations

import logging

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.audio import AudioError, list_audio_files, load_audio, write_audio_atomic
from core.io import write_json_atomic
from core.pitchshift import shift_track
from evaluation.frechet import frechet_between
from core.pitch import CONFIDENCE, GATE_DB, MelodyScore, PitchTracker, compare_tracks

log = logging.getLogger(__name__)

SWEEP_SIGMAS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
MODES = ("offline", "as-live", "whole")


@dataclass
class EvalConfig:
    bundle: Path
    out: Path = Path("out/eval")
    corpus: Path | None = Path("data/corpus")
    folders: dict[str, Path] | None = None  # instrument → folder of audio (instead of the corpus)
    split: str = "heldout"
    pairs: list[tuple[str, str]] | None = None  # default: every ordered pair of bundle instruments with clips
    sigmas: list[float] = field(default_factory=lambda: list(SWEEP_SIGMAS))
    steps: list[int] = field(default_factory=lambda: [3, 8])
    cycle_steps: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    cycle_sigma: float | None = None  # default: the pair's recommended σmax
    mode: str = "offline"
    clips: int = 8  # per instrument
    seconds: float = 8.0  # per clip
    classifier: Path | None = None
    presets: Path | None = None  # presets to stream with (pairs without one use the Preset defaults)
    prior: str | None = None  # the bridge's prior for every pair (None: each preset's)
    transpose: int | None = None  # semitones for every pair (None: each preset's)
    fold_centre: int | None = None  # register fold's centre (MIDI) for every pair (None: each preset's; 0: off)
    at_presets: bool = False  # no sweep: each pair at its preset's σmax and steps (checking presets on more clips)
    live_rows: bool = False  # stream every swept σmax as live too (an as-live row beside each transfer row)
    keep: float = 0.9  # recommendation rule: see evaluation.report.recommend
    confidence: float = CONFIDENCE
    gate_db: float = GATE_DB
    examples: bool = True
    streaming: bool = True
    block: int = 512
    threads: int = 2
    provider: str = "cpu"
    progress: bool = True

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (str(v) if isinstance(v, Path) else {n: str(p) for n, p in v.items()} if k == "folders" and v
                    else [list(p) for p in v] if k == "pairs" and v else v) for k, v in d.items()}


@dataclass
class Clip:
    instrument: str
    name: str
    audio: np.ndarray  # mono float32 at the bundle's rate, a whole number of (hop × time factor) samples


def pair_name(a: str, b: str) -> str:
    return f"{a}-to-{b}"


# ---------------------------------------------------------------- clips
def _segment(x: np.ndarray, n: int, unit: int) -> np.ndarray:
    """From the first non-silent sample (a few ms early) on, at most n samples, cut to a multiple of unit."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    loud = np.flatnonzero(np.abs(x) > 0.05 * peak) if peak > 0 else np.zeros(0, int)
    start = max(0, int(loud[0]) - unit) if len(loud) else 0
    seg = x[start:start + n]
    return seg[: len(seg) // unit * unit]


def load_clips(cfg: EvalConfig, instruments: list[str], sr: int, unit: int) -> dict[str, list[Clip]]:
    """Up to cfg.clips clips of cfg.seconds per instrument, from --folders or the corpus split."""
    if cfg.folders:
        files = {name: list_audio_files(d) for name, d in cfg.folders.items() if name in instruments}
    else:
        from core.manifest import corpus_files

        files = corpus_files(Path(cfg.corpus), cfg.split, instruments, sort=True)  # split by split, path order
    n = int(round(cfg.seconds * sr))
    out: dict[str, list[Clip]] = {}
    for name, fs in sorted(files.items()):
        for f in fs:
            if len(out.get(name, [])) >= cfg.clips:
                break
            try:
                seg = _segment(load_audio(f, sr), n, unit)
            except AudioError as e:
                log.warning("skipping %s", e)
                continue
            if len(seg) >= max(4 * unit, sr // 2):
                have = out.setdefault(name, [])
                stem = Path(f).stem
                label = stem if all(c.name != stem for c in have) else f"{stem}-{len(have)}"
                have.append(Clip(name, label, seg.astype(np.float32)))
    return out


# ---------------------------------------------------------------- the evaluator
class Evaluator:
    def __init__(self, cfg: EvalConfig):
        from live.bundle import Bundle

        self.cfg = cfg
        self.bundle = Bundle(cfg.bundle, provider=cfg.provider, threads=cfg.threads)
        self.sr = self.bundle.sample_rate
        self.tf = max(int(i.get("time_factor", 1)) for i in self.bundle.meta["instruments"].values())
        self.tracker = PitchTracker()
        self.classifier = None
        if cfg.classifier is not None:
            from core.timbre import TimbreClassifier

            self.classifier = TimbreClassifier.load(cfg.classifier)
        self._tracks: dict[str, object] = {}
        self._emb: dict[str, np.ndarray] = {}
        self.presets = self._load_presets(cfg.presets)
        self.bar = None

    # -------------------------------------------------- helpers
    @staticmethod
    def _load_presets(folder: Path | None) -> dict[tuple[str, str], object]:
        from live.preset import PresetError, load_preset

        found = {}
        if folder is None or not Path(folder).is_dir():
            return found
        for p in sorted(Path(folder).glob("*.json")):
            try:  # a broken preset is an error, not a pair measured at the defaults under its name
                pr = load_preset(p)
            except PresetError as e:
                raise ValueError(f"{e} (fix or move the file out of {folder})") from None
            found.setdefault((pr.source, pr.target), pr)
        return found

    def base_preset(self, a: str, b: str):
        from live.preset import Preset

        p = self.presets.get((a, b))
        p = Preset(name=pair_name(a, b), source=a, target=b) if p is None else dataclasses.replace(p, path=None)
        p = dataclasses.replace(p, prior=self.cfg.prior) if self.cfg.prior else p
        p = dataclasses.replace(p, transpose=self.cfg.transpose) if self.cfg.transpose is not None else p
        return dataclasses.replace(p, fold_centre=self.cfg.fold_centre) if self.cfg.fold_centre is not None else p

    def moved(self, x: np.ndarray, preset) -> tuple[np.ndarray, float | np.ndarray]:
        """The input as the preset's shifter hears it (transposed, folded), and the semitones it moved: the
        transpose, or per sample where a fold moves by octaves (the engine's shifter, on the same 24 kHz samples,
        makes the same moves)."""
        if not preset.shifts_pitch:
            return x, 0
        y, moves = shift_track(x, preset.transpose, fold_centre=preset.fold_centre, sample_rate=self.sr)
        return y, (moves if preset.fold_centre else preset.transpose)

    def moved_clips(self, clips: list, preset) -> tuple[list[np.ndarray], list[float | np.ndarray]]:
        """moved for every clip: the moved audio per clip, and what each was moved by."""
        pairs = [self.moved(c.audio, preset) for c in clips]
        return [m for m, _ in pairs], [mv for _, mv in pairs]

    def track(self, key: str, audio: np.ndarray):
        if key not in self._tracks:
            self._tracks[key] = self.tracker(audio, self.sr)
        return self._tracks[key]

    def melody(self, ref_key: str, ref: np.ndarray, est: np.ndarray, est_key: str | None = None,
               transpose: float | np.ndarray = 0) -> MelodyScore:
        """transpose: semitones, or per sample of `ref` (a fold's moves: read at each pitch frame's time)."""
        est_track = self.track(est_key, est) if est_key else self.tracker(est, self.sr)
        ref_track = self.track(ref_key, ref)
        return compare_tracks(ref_track, est_track, self.cfg.confidence, self.cfg.gate_db,
                              transpose=self.frame_moves(ref_track, transpose))

    def frame_moves(self, track, moves: float | np.ndarray) -> float | np.ndarray:
        """Moves per sample (a fold's) read at each pitch frame's time in `track`; a transpose stays as it is."""
        if not np.ndim(moves):
            return moves
        at = np.rint(np.arange(len(track)) * track.step_ms * self.sr / 1000).astype(int)
        return np.asarray(moves)[np.minimum(at, len(moves) - 1)]

    def analyse(self, audio: np.ndarray, key: str | None = None):
        if self.classifier is None:
            return None
        if key is not None and key in self._emb:
            return self._emb[key]
        res = self.classifier.analyse(audio, self.sr)
        if key is not None:
            self._emb[key] = res
        return res

    def tick(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    # -------------------------------------------------- renders
    def render(self, x: np.ndarray, a: str, b: str, sigma: float, steps: int, mode: str, base=None) -> np.ndarray:
        from live.render import OFFLINE

        if mode == "whole":
            x = self.moved(x, base or self.base_preset(a, b))[0]
            return self.decode(self.bridge(self.encode(x), a, b, sigma, steps), b)
        p = dataclasses.replace(base or self.base_preset(a, b), source=a, target=b, sigma_max=float(sigma),
                                steps=int(steps))
        if mode == "offline":
            p = dataclasses.replace(p, **OFFLINE)
        elif mode != "as-live":
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        return self.stream(x, p)

    def stream(self, x: np.ndarray, preset) -> np.ndarray:
        from live.engine import StreamingEngine
        from live.render import render_array

        # fail_fast: a quality figure is never computed over a dry copy of the input
        y, _ = render_array(x, self.sr, lambda rate: StreamingEngine(self.bundle, preset, rate, fail_fast=True),
                            self.cfg.block)
        return y

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.bundle.encode(x)

    def decode(self, z: np.ndarray, instrument: str) -> np.ndarray:
        """Latents bound for `instrument` (a bridge's target, a round trip's own) → audio: with its own decoder
        where the bundle has one, as the engine decodes them."""
        return self.bundle.decode(z, instrument)

    def bridge(self, z: np.ndarray, a: str, b: str, sigma: float, steps: int) -> np.ndarray:
        t = z.shape[1]
        pad = -t % self.tf
        if pad:  # whole-clip denoising needs a multiple of the time factor: pad with silence, cut after
            z = np.concatenate([z, np.repeat(self.bundle.silence_latent[:, None], pad, axis=1)], axis=1)
        p = self.base_preset(a, b)  # the pair's solver and schedule; σmax and steps are the sweep's
        if sigma <= p.sigma_min:
            raise ValueError(f"σmax {sigma:g} is not above {pair_name(a, b)}'s σmin {p.sigma_min:g}")
        y = self.bundle.transfer(z, a, b, float(sigma), int(steps), p.sigma_min, p.rho, p.solver, p.prior)
        return np.asarray(y, dtype=np.float32)[:, :t]

    # -------------------------------------------------- scoring
    def score(self, kind: str, a: str, b: str, refs: list[Clip], outs: list[np.ndarray], ref_emb: np.ndarray | None,
              seconds: float = 0.0, ref_prefix: str = "in", out_keys: list[str] | None = None, transpose: int = 0,
              moves: list | None = None, **extra) -> dict:
        """One row. transpose: the semitones the output was asked to move; moves: per clip, what it moved (a
        fold's per-sample moves), when that is not the transpose alone."""
        mel = MelodyScore()
        crops_ok = crops_n = clip_ok = clip_n = 0
        embs = []
        ti = self.classifier.instruments.index(b) if self.classifier and b in self.classifier.instruments else None
        for i, (c, y) in enumerate(zip(refs, outs)):
            mel = mel + self.melody(f"{ref_prefix}:{c.instrument}:{c.name}", c.audio, y,
                                    out_keys[i] if out_keys else None, transpose if moves is None else moves[i])
            res = self.analyse(y, out_keys[i] if out_keys else None)
            if res is not None:
                logits, emb = res
                embs.append(emb)
                if ti is not None:
                    crops_ok += int(np.sum(np.argmax(logits, axis=1) == ti))
                    crops_n += len(logits)
                    clip_ok += int(np.argmax(logits.mean(axis=0)) == ti)
                    clip_n += 1
        audio_s = sum(len(y) for y in outs) / self.sr
        row = dict(pair=pair_name(a, b), source=a, target=b, kind=kind, sigma_max=None, steps=None, mode=None,
                   clips=len(outs), **mel.summary(),
                   target_acc=crops_ok / crops_n if crops_n else None,
                   target_acc_clip=clip_ok / clip_n if clip_n else None,
                   fd=frechet_between(np.concatenate(embs), ref_emb) if embs and ref_emb is not None else None,
                   rtf=seconds / audio_s if seconds and audio_s else None)
        if transpose:
            row["transpose"] = int(transpose)
        row.update(extra)
        return row

    def timed_renders(self, render, clips: list) -> tuple[list[np.ndarray], float]:
        """render(audio) of each clip, a tick of the progress bar each; the outputs and the seconds they took."""
        t0 = time.perf_counter()
        outs = []
        for c in clips:
            outs.append(render(c.audio))
            self.tick()
        return outs, time.perf_counter() - t0

    def swept_live(self, a: str, b: str) -> bool:
        """Whether the sweep's live rows include the preset as live at the recommended σmax (its steps swept)."""
        return self.cfg.live_rows and (self.cfg.at_presets or self.base_preset(a, b).steps in self.cfg.steps)

    # -------------------------------------------------- the run
    def run(self) -> dict:
        from tqdm import tqdm

        from evaluation.report import RULE, recommend

        cfg = self.cfg
        if cfg.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {cfg.mode!r}")
        if cfg.live_rows and cfg.mode == "as-live":
            raise ValueError("live rows stand beside a sweep rendered offline or whole; this one is rendered as live")
        instruments = self.bundle.instruments
        if cfg.pairs:
            bad = sorted({n for p in cfg.pairs for n in p if n not in instruments})
            if bad:
                raise ValueError(f"instrument(s) {', '.join(bad)} not in the bundle (it has {', '.join(instruments)})")
        wanted = sorted({n for p in cfg.pairs for n in p}) if cfg.pairs else instruments
        clips = load_clips(cfg, wanted, self.sr, self.bundle.samples_per_frame * self.tf)
        if cfg.pairs:
            pairs = list(cfg.pairs)
        else:
            pairs = [(a, b) for a in instruments for b in instruments if a != b and a in clips]
        missing = sorted({a for a, _ in pairs if a not in clips})
        if missing:
            raise ValueError(f"no clips for instrument(s) {', '.join(missing)} "
                             f"({'folders' if cfg.folders else f'corpus {cfg.corpus} split {cfg.split}'})")
        if not pairs:
            raise ValueError("no instrument pair to evaluate")

        # reference embeddings of the real target audio
        ref_emb: dict[str, np.ndarray | None] = {}
        for name in sorted({n for p in pairs for n in p}):
            res = [self.analyse(c.audio, f"in:{name}:{c.name}") for c in clips.get(name, [])]
            ref_emb[name] = np.concatenate([r[1] for r in res]) if res and res[0] is not None else None

        n_sweep = (1 if cfg.at_presets else len(cfg.sigmas) * len(cfg.steps)) * (1 + cfg.live_rows)
        per_pair = sum(len(clips[a]) * (n_sweep + 1 + self.base_preset(a, b).shifts_pitch
                                        + (2 - self.swept_live(a, b)) * cfg.streaming + len(cfg.cycle_steps))
                       for a, b in pairs)
        self.bar = tqdm(total=per_pair + sum(len(clips.get(b, [])) for b in {b for _, b in pairs}),
                        desc="evaluating", unit="render", disable=not cfg.progress)
        rows, cycle, recs, examples = [], [], {}, {}
        upper: dict[str, dict] = {}
        for a, b in pairs:
            src = clips[a]
            name = pair_name(a, b)
            self.bar.set_description(name)
            # bounds
            rows.append(self.score("lower", a, b, src, [c.audio for c in src], ref_emb[b],
                                   out_keys=[f"in:{a}:{c.name}" for c in src]))
            t0 = time.perf_counter()
            rt = [self.decode(self.encode(c.audio), a) for c in src]
            rows.append(self.score("codec", a, b, src, rt, ref_emb[b], time.perf_counter() - t0))
            self.tick(len(src))
            if b not in upper and clips.get(b):
                t0 = time.perf_counter()
                rt_b = [self.decode(self.encode(c.audio), b) for c in clips[b]]
                upper[b] = self.score("upper", b, b, clips[b], rt_b, ref_emb[b], time.perf_counter() - t0)
                self.tick(len(clips[b]))
            if b in upper:
                rows.append({**upper[b], "pair": name, "source": a, "target": b})
            base = self.base_preset(a, b)
            if cfg.live_rows and not self.swept_live(a, b):
                log.warning("%s: its preset plays %d steps, not swept: the live rows are at the swept steps", name,
                            base.steps)
            t0 = time.perf_counter()
            # the input as the pair's preset hears it (transposed or folded if it does): shifted once, read by the
            # rows below; `moves` what each clip was moved by (per sample where a fold moved it)
            moved, moves = self.moved_clips(src, base)
            fold = dict(fold_centre=base.fold_centre) if base.fold_centre else {}
            if base.shifts_pitch:
                rt = [self.decode(self.encode(m), a) for m in moved]  # the input moved, no bridge: still a
                rows.append(self.score("transposed", a, b, src, rt, ref_emb[b], time.perf_counter() - t0,
                                       transpose=base.transpose, moves=moves, **fold))
                self.tick(len(src))
            # the sweep
            ex = examples.setdefault(name, {"input": src[0].audio})
            grid = [(base.steps, base.sigma_max)] if cfg.at_presets else [(s, g) for s in cfg.steps for g in cfg.sigmas]
            for steps, sigma in grid:
                outs, took = self.timed_renders(lambda x: self.render(x, a, b, sigma, steps, cfg.mode), src)
                rows.append(self.score("transfer", a, b, src, outs, ref_emb[b], took,
                                       transpose=base.transpose, moves=moves, **fold, sigma_max=float(sigma),
                                       steps=int(steps),
                                       mode=cfg.mode, solver=base.solver, prior=base.prior))
                ex[(float(sigma), int(steps))] = outs[0]
                if cfg.live_rows:  # the same σmax and steps as the musician hears them, block by block
                    outs, took = self.timed_renders(lambda x: self.render(x, a, b, sigma, steps, "as-live"), src)
                    rows.append(self.score("as-live", a, b, src, outs, ref_emb[b], took,
                                           transpose=base.transpose, moves=moves, **fold, sigma_max=float(sigma),
                                           steps=int(steps), mode="as-live", window=base.window, hop=base.hop,
                                           prior=base.prior))
            rec = recommend(rows, name, cfg.keep, base.steps)
            recs[name] = rec
            sigma_rec = rec["sigma_max"] if rec else float(np.median(cfg.sigmas))
            # streaming as live vs offline quality, at the recommended σmax
            if cfg.streaming:
                from live.render import offline_preset

                live_p = dataclasses.replace(self.base_preset(a, b), sigma_max=float(sigma_rec))
                for kind, p in (("as-live", live_p), ("offline-quality", offline_preset(live_p))):
                    if kind == "as-live" and self.swept_live(a, b):
                        continue  # the sweep's live row at the recommended σmax is this row
                    outs, took = self.timed_renders(lambda x: self.stream(x, p), src)
                    rows.append(self.score(kind, a, b, src, outs, ref_emb[b], took,
                                           transpose=p.transpose, moves=moves, **fold, sigma_max=float(sigma_rec),
                                           steps=int(p.steps),
                                           mode=kind, window=p.window, hop=p.hop, prior=p.prior))
            # cycle consistency A → B → A against steps
            sigma_c = float(cfg.cycle_sigma or sigma_rec)
            for steps in cfg.cycle_steps:  # from the input as the pair's preset hears it
                mse, outs = [], []
                t0 = time.perf_counter()
                for m in moved:
                    z0 = self.encode(m)
                    z2 = self.bridge(self.bridge(z0, a, b, sigma_c, steps), b, a, sigma_c, steps)
                    mse.append(float(np.mean((z2 - z0) ** 2)))
                    outs.append(self.decode(z2, a))
                    self.tick()
                r = self.score("cycle", a, a, src, outs, ref_emb.get(a), time.perf_counter() - t0,
                               transpose=base.transpose, moves=moves, **fold, sigma_max=sigma_c, steps=int(steps),
                               mode="whole",
                               latent_mse=float(np.mean(mse)), via=b, prior=base.prior)
                r["pair"] = name
                cycle.append(r)
        self.bar.close()
        from live.bundle import models_sha256  # results name the models, not only the folder

        results = dict(
            format="timbre-eval/1", created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            config=cfg.to_json(), bundle=dict(path=str(cfg.bundle), instruments=instruments,
                                              sample_rate=self.sr, frame_rate=self.bundle.frame_rate,
                                              models_sha256=models_sha256(cfg.bundle)),
            classifier=None if self.classifier is None else dict(
                path=str(cfg.classifier), instruments=self.classifier.instruments,
                test_accuracy=self.classifier.info.get("test_accuracy"),
                test_crop_accuracy=self.classifier.info.get("test_crop_accuracy")),
            clips={k: [c.name for c in v] for k, v in clips.items()},
            clip_seconds={k: round(sum(len(c.audio) for c in v) / self.sr, 2) for k, v in clips.items()},
            pairs=[pair_name(a, b) for a, b in pairs], rows=rows, cycle=cycle, recommended=recs, rule=RULE)
        self.examples = examples
        return results


# ---------------------------------------------------------------- outputs
def write_examples(out: Path, examples: dict, recs: dict, sr: int) -> list[Path]:
    """Per pair: the input and the first clip's outputs at the lowest, the recommended and the highest σmax."""
    written = []
    for name, ex in examples.items():
        keys = [k for k in ex if k != "input"]
        if not keys:
            continue
        rec = recs.get(name) or {}
        steps = rec.get("steps") or keys[0][1]
        sig = sorted(s for s, k in keys if k == steps)
        chosen = {sig[0], sig[-1]} | ({rec["sigma_max"]} if rec.get("sigma_max") in sig else set())
        items = [("input", ex["input"])] + [(f"sigma-{s:g}_steps-{steps}", ex[(s, steps)]) for s in sorted(chosen)]
        for label, y in items:
            peak = float(np.max(np.abs(y))) if len(y) else 0.0
            y = y * (0.98 / peak) if peak > 0.98 else y
            written.append(write_audio_atomic(Path(out) / "examples" / name / f"{label}.flac", y, sr))
    return written


def evaluate(cfg: EvalConfig) -> dict:
    """Run the evaluation and write results.json, results.md, tradeoff.png and the examples into cfg.out."""
    from evaluation.report import plot_tradeoff, write_markdown

    ev = Evaluator(cfg)
    results = ev.run()
    out = Path(cfg.out)
    write_json_atomic(out / "results.json", results)
    write_markdown(results, out / "results.md")
    plot_tradeoff(results, out / "tradeoff.png")
    if cfg.examples:
        results["examples"] = [str(p) for p in write_examples(out, ev.examples, results["recommended"], ev.sr)]
        write_json_atomic(out / "results.json", results)
    return results
