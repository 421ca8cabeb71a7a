"""Train the timbre judge (core.timbre): the instrument classifier the evaluation listens with.

    python -m train.judge [--corpus data/corpus] [--out models/classifier.pt] [--steps 1000]

An honest judge: it never hears this project's codec or denoisers. It trains on clean audio of the corpus train
split plus copies of it with generic damage (core.degrade.judge_chain: low-pass, noise, quantization, reverb, EQ
tilt; `--damage` can add a band limit), so no artefact of ours can become an instrument cue; codec round trips are
scored only as the ceiling row of the evaluation. Training takes random crops (1.4 s, class-balanced, mostly
non-silent) of every instrument (or --instruments), checks the valid split (training fonts, unseen chorales) now
and then and keeps the best state, and finally scores the `heldout` split (unseen chorales in a soundfont no model
trained on), clean and degraded: `test_accuracy` (one prediction per file, logits averaged over its crops),
`test_crop_accuracy` and `degraded_test_accuracy` are stored in the output file with the confusion matrix. Its
progress is saved every --save-every seconds (and on Ctrl-C or `kill`) to OUT with the suffix .train.pt; running
the command again resumes from there (--fresh starts over; a larger --steps continues a finished run). Budget:
about 1000 steps of 32 crops, a few minutes on 2 CPU cores. Score a saved judge again with python -m
evaluation.classifier.

Why the judge also learns the held-out font (its `judge` split: train chorales only): trained on the two
training fonts alone it heard the held-out font's violin as a flute (0/8 violin clips right, 71 % overall on
`heldout`), which would make it useless exactly where it must judge. A listener knows instruments in many
renditions; what it must never know is this project's codec and denoisers.
"""
from __future__ import annotations

import argparse
import copy
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.cli import comma_list
from core.degrade import JUDGE_DAMAGE, JUDGE_DAMAGE_DEFAULT, check_judge_damage, judge_chain
from core.io import CheckpointError, load_any, save_atomic
from core.manifest import CorpusError
from core.timbre import (DEFAULT_PATH, FORMAT, MelConfig, NetConfig, TimbreClassifier, active_frames, crop_starts,
                         format_score, load_split, log_mel, take_crop)
from train.common import Clock, TrainState, interrupt_on_sigterm, saved_on_interrupt, load_training, progress_bar, save_training

TRAIN_FORMAT = "timbre-classifier-training/1"
LEGACY_TRAIN_FORMAT = FORMAT + "+train"  # states written before the judge's trainer used train.common
ERRORS = (CorpusError, CheckpointError, ValueError)
logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    steps: int = 1000
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    eval_every: int = 250
    seed: int = 0
    save_every_s: float = 60.0
    history: list = field(default_factory=list)


def _lr(step: int, tc: TrainConfig) -> float:
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    p = min(1.0, (step - tc.warmup) / max(1, tc.steps - tc.warmup))
    return tc.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))


class MelPool:
    """Clips per class as log-mel, with class-balanced random crops that are mostly non-silent."""

    def __init__(self, clips: dict[str, list[np.ndarray]], cfg: MelConfig, names: list[str] | None = None):
        self.cfg, self.names = cfg, list(names or sorted(clips))
        self.mels: list[list[torch.Tensor]] = []
        self.starts: list[list[np.ndarray]] = []
        for name in self.names:
            ms = [log_mel(w, cfg).half() for w in clips.get(name, [])]
            self.mels.append(ms)
            self.starts.append([crop_starts(active_frames(m.float()), cfg.crop) for m in ms])
        empty = [n for n, ms in zip(self.names, self.mels) if not ms]
        if empty:
            raise ValueError(f"no audio for class(es) {', '.join(empty)}")

    def sample(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, len(self.names), (batch,), generator=gen)
        xs = []
        for k in y.tolist():
            w = torch.tensor([len(s) for s in self.starts[k]], dtype=torch.float64)
            i = int(torch.multinomial(w, 1, generator=gen))
            st = self.starts[k][i]
            s = int(st[int(torch.randint(0, len(st), (1,), generator=gen))])
            xs.append(take_crop(self.mels[k][i], s, self.cfg.crop).float())
        return torch.stack(xs), y


def _upgrade_legacy(ck: dict) -> dict:
    """A state of the old layout (step, wall_seconds, history at the top) in train.common's layout."""
    return dict(format=TRAIN_FORMAT, state=dict(step=ck["step"], wall_seconds=ck["wall_seconds"], history=ck["history"]),
                generator=ck["generator"], torch_rng=torch.get_rng_state(), model=ck["state_dict"],
                opt=ck["optimizer"], instruments=ck["instruments"], mel=ck["mel"], best=ck.get("best"))


def _resume(path: Path, names: list[str], cfg: MelConfig, gen: torch.Generator, **parts) -> tuple[TrainState, dict] | None:
    """The saved state at `path` loaded into `parts`, with its best-valid record; None (a warning logged) when the
    file is unreadable or was trained with other instruments or mel settings: training starts over."""
    try:
        ck = load_any(path)
        legacy = ck.get("format") == LEGACY_TRAIN_FORMAT
        if legacy:
            ck = _upgrade_legacy(ck)
        elif ck.get("format") != TRAIN_FORMAT:
            raise CheckpointError(f"{path}: expected a {TRAIN_FORMAT!r} checkpoint, found {ck.get('format')!r}")
    except CheckpointError as e:
        logger.warning("%s; starting over", e)
        return None
    if ck["instruments"] != names or MelConfig.from_record(ck["mel"]) != cfg:
        logger.warning("%s was trained with other instruments or mel settings; starting over", path)
        return None
    if legacy:  # rewritten in the new layout only once it is known to be resumed from
        save_atomic(ck, path)
    return load_training(path, TRAIN_FORMAT, gen, **parts), ck.get("best")


def train_classifier(train: dict[str, list[np.ndarray]], sr: int, valid: dict[str, list[np.ndarray]] | None = None,
                     tc: TrainConfig = TrainConfig(), cfg: MelConfig = MelConfig(), net: NetConfig = NetConfig(),
                     state_path: str | Path | None = None, fresh: bool = False, progress: bool = True,
                     log=print) -> TimbreClassifier:
    """Train on {instrument: [mono audio at sr]}; resumable through `state_path` (saved every tc.save_every_s and
    on KeyboardInterrupt).

    With `valid`, the state with the best valid crop accuracy (checked every tc.eval_every steps and at the
    end) is the one returned.
    """
    from core.audio import resample

    names = sorted(train)
    if len(names) < 2:
        raise ValueError(f"a classifier needs at least 2 instruments, got {names}")
    t_load = time.time()
    prep = lambda d: {k: [resample(np.asarray(w, np.float32), sr, cfg.sample_rate) for w in v] for k, v in d.items()}  # noqa: E731
    pool = MelPool(prep(train), cfg, names)
    vclips = prep({k: v for k, v in (valid or {}).items() if k in names})
    clf = TimbreClassifier.new(names, cfg, net)
    model = clf.model
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    gen = torch.Generator().manual_seed(tc.seed)
    state, best = TrainState(), None
    state_path = Path(state_path) if state_path else None
    if state_path and state_path.is_file() and not fresh:
        resumed = _resume(state_path, names, cfg, gen, model=model, opt=opt)
        if resumed is not None:
            state, best = resumed
            log(f"resuming {state_path} at step {state.step}")

    def save():
        if state_path:
            save_training(state_path, TRAIN_FORMAT, state, gen, model=model, opt=opt, instruments=names,
                          mel=asdict(cfg), best=best)

    def check():
        nonlocal best
        if not vclips:
            return
        clf.model.eval()
        acc = clf.score(vclips, cfg.sample_rate)["crop_accuracy"]
        model.train()
        state.history.append(dict(step=state.step, valid_crop_accuracy=acc))
        if best is None or acc >= best["valid_crop_accuracy"]:
            best = dict(step=state.step, valid_crop_accuracy=acc, state_dict=copy.deepcopy(model.state_dict()))

    log(f"classifier: {len(names)} instruments, features ready in {time.time() - t_load:.0f} s")
    clock = Clock(state, tc.save_every_s)
    model.train()
    bar = progress_bar("classifier", tc.steps, min(state.step, tc.steps), None, disable=not progress)
    running = None
    with saved_on_interrupt(save, bar):
        while state.step < tc.steps:
            for g in opt.param_groups:
                g["lr"] = _lr(state.step, tc)
            x, y = pool.sample(tc.batch, gen)
            loss = F.cross_entropy(model(x), y, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state.step += 1
            clock.tick()
            running = float(loss.detach()) if running is None else 0.95 * running + 0.05 * float(loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}")
            if tc.eval_every and state.step % tc.eval_every == 0 and state.step < tc.steps:
                check()
            if clock.due():
                save()
    bar.close()
    if not state.history or state.history[-1]["step"] != state.step:
        check()
    if best is not None:
        model.load_state_dict(best["state_dict"])
    save()
    model.eval()
    clf.info.update(steps=state.step, wall_seconds=round(state.wall_seconds, 1), history=state.history,
                    valid_crop_accuracy=best["valid_crop_accuracy"] if best else None,
                    best_step=best["step"] if best else state.step)
    return clf


# ---------------------------------------------------------------- corpus and command line
def degraded_copies(clips: dict[str, list[np.ndarray]], sr: int, copies: int, seed: int,
                    damage=JUDGE_DAMAGE_DEFAULT) -> dict[str, list[np.ndarray]]:
    """`copies` versions of every clip through core.degrade.judge_chain with the named damage (seeded)."""
    rng = np.random.default_rng(seed)
    return {k: [judge_chain(w, rng, sr, damage) for w in v for _ in range(copies)] for k, v in clips.items()}


def _merge(a: dict, b: dict) -> dict:
    return {k: list(a.get(k, [])) + list(b.get(k, [])) for k in sorted(set(a) | set(b))}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m train.judge", description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--instruments", type=comma_list(), default=None, help="comma-separated (default: all in the corpus)")
    ap.add_argument("--out", type=Path, default=DEFAULT_PATH)
    ap.add_argument("--split", default="heldout", help="split scored at the end (heldout: unseen font)")
    ap.add_argument("--train-splits", type=comma_list(), default=["train", "judge"],
                    help="corpus splits to learn from (judge: train chorales in the held-out font, rendered for the "
                         "judge alone; no model under test ever trains on them)")
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=20.0, help="train audio per instrument (minutes)")
    ap.add_argument("--save-every", type=float, default=60.0, help="seconds between resumable saves")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="ignore a saved training state")
    ap.add_argument("--degraded-copies", type=int, default=1,
                    help="generically degraded copies of each training clip (low-pass, noise, quantization, reverb)")
    ap.add_argument("--damage", type=comma_list(), default=list(JUDGE_DAMAGE_DEFAULT),
                    help=f"the generic damage those copies draw from, comma-separated, of: {', '.join(JUDGE_DAMAGE)} "
                         f"(default: {','.join(JUDGE_DAMAGE_DEFAULT)}, the shipped judge's)")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    check_judge_damage(a.damage)  # before minutes of loading
    torch.set_num_threads(a.threads)
    inst = a.instruments or None
    cfg = MelConfig()
    train: dict[str, list[np.ndarray]] = {}
    for split in a.train_splits:
        train = _merge(train, load_split(a.corpus, split, inst, cfg.sample_rate, 60 * a.max_minutes))
    valid = load_split(a.corpus, "valid", inst, cfg.sample_rate, 60 * a.max_minutes / 4)
    if a.degraded_copies:
        train = _merge(train, degraded_copies(train, cfg.sample_rate, a.degraded_copies, a.seed, a.damage))
        valid = _merge(valid, degraded_copies(valid, cfg.sample_rate, 1, a.seed + 1, a.damage))
    tc = TrainConfig(steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed, save_every_s=a.save_every)
    interrupt_on_sigterm()
    clf = train_classifier(train, cfg.sample_rate, valid, tc, cfg, state_path=a.out.with_suffix(".train.pt"),
                           fresh=a.fresh)
    del train, valid
    test = load_split(a.corpus, a.split, clf.instruments, cfg.sample_rate)
    res = clf.score(test, cfg.sample_rate)
    clf.info.update(test_accuracy=res["accuracy"], test_crop_accuracy=res["crop_accuracy"],
                    test_clips=res["clips"], test_split=a.split, per_instrument=res["per_instrument"],
                    confusion=res["confusion"], corpus=str(a.corpus))
    print(format_score(res, a.split))
    res_d = clf.score(degraded_copies(test, cfg.sample_rate, 1, a.seed + 2, a.damage), cfg.sample_rate)
    clf.info.update(degraded_test_accuracy=res_d["accuracy"], degraded_test_crop_accuracy=res_d["crop_accuracy"],
                    degraded_copies=a.degraded_copies, damage=list(a.damage), train_splits=a.train_splits,
                    never_heard="this project's codec and denoisers")
    print(format_score(res_d, a.split + ", generically degraded"))
    clf.save(a.out)
    print(f"saved {a.out}")
    return 0


if __name__ == "__main__":
    from core.cli import run_main

    sys.exit(run_main(main, errors=ERRORS))
