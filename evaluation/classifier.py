"""Instrument classifier: a small CNN on log-mel crops, the judge of "does it sound like the target instrument".

    python -m evaluation.classifier --train [--corpus data/corpus] [--out models/classifier.pt] [--steps 1000]
    python -m evaluation.classifier --test models/classifier.pt [--corpus data/corpus] [--split heldout]

An honest judge: it never hears this project's codec or denoisers. It trains on clean audio of the corpus
train split plus copies of it with generic damage (core.degrade.judge_chain: low-pass, noise, quantization,
reverb), so no artefact of ours can become an instrument cue; codec round trips are scored only as the
ceiling row of the evaluation. Training takes random crops (1.4 s, class-balanced, mostly non-silent) of every
instrument (or --instruments), checks the valid split (training fonts, unseen chorales) now and then and keeps
the best state, and finally scores the `heldout` split (unseen chorales in a soundfont no model trained on),
clean and degraded: `test_accuracy` (one prediction per file, logits averaged over its crops),
`test_crop_accuracy` and `degraded_test_accuracy` are stored in the output file with the confusion matrix. Its progress is saved every
--save-every seconds to OUT with the suffix .train.pt; running the command again resumes from there
(--fresh starts over; a larger --steps continues a finished run). Budget: about 1000 steps of 32 crops, a few
minutes on 2 CPU cores.

Why the judge also learns the held-out font (its `judge` split: train chorales only): trained on the two
training fonts alone it heard the held-out font's violin as a flute (0/8 violin clips right, 71 % overall on
`heldout`), which would make it useless exactly where it must judge. A listener knows instruments in many
renditions; what it must never know is this project's codec and denoisers.

The network: per-crop mean removal (gain invariance) → per-mel-band BatchNorm → 4 × [conv 3×3, BN, ReLU,
max-pool 2] → mean over frequency, mean+max over time → a 32-d embedding (linear) → ReLU, dropout → logits.
The embedding (before the ReLU) is what evaluation.frechet compares.
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.cli import comma_list

FORMAT = "timbre-classifier/1"
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "models" / "classifier.pt"
ACTIVE_DB = 40.0  # frames within this many dB of the clip's loudest count as active
MIN_ACTIVE = 0.5  # a crop needs this fraction of active frames


@dataclass
class MelConfig:
    sample_rate: int = 24_000
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 64
    fmin: float = 30.0
    fmax: float = 11_000.0
    crop: int = 128  # frames per crop (1.37 s at 24 kHz / 256)


@dataclass
class NetConfig:
    channels: tuple = (16, 32, 64, 96)
    emb_dim: int = 32
    dropout: float = 0.2


_MEL_CACHE: dict = {}


def log_mel(wav: np.ndarray, cfg: MelConfig) -> torch.Tensor:
    """Mono audio at cfg.sample_rate → log-mel [n_mels, frames] (float32)."""
    import torchaudio

    key = tuple(asdict(cfg).items())
    if key not in _MEL_CACHE:
        _MEL_CACHE[key] = torchaudio.transforms.MelSpectrogram(
            cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop, n_mels=cfg.n_mels, f_min=cfg.fmin,
            f_max=min(cfg.fmax, cfg.sample_rate / 2), power=2.0, center=True)
    x = torch.as_tensor(np.ascontiguousarray(wav, dtype=np.float32)).reshape(-1)
    if len(x) < cfg.n_fft:
        x = F.pad(x, (0, cfg.n_fft - len(x)))
    with torch.no_grad():
        return torch.log(_MEL_CACHE[key](x) + 1e-6)


def active_frames(mel: torch.Tensor) -> np.ndarray:
    energy = torch.logsumexp(mel, dim=0).numpy() * (10 / math.log(10))  # dB (relative scale)
    return energy >= energy.max() - ACTIVE_DB


def crop_starts(active: np.ndarray, crop: int, hop: int | None = None) -> np.ndarray:
    """Starts of crops (every `hop` frames, all starts when hop is None) with enough active frames; all of
    them when none qualifies (so a silent clip still gets crops). A clip shorter than a crop has start 0."""
    n = len(active)
    if n <= crop:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n - crop + 1, hop or 1)
    c = np.concatenate([[0], np.cumsum(active)])
    good = starts[(c[starts + crop] - c[starts]) >= MIN_ACTIVE * crop]
    return good if len(good) else starts


def take_crop(mel: torch.Tensor, start: int, crop: int) -> torch.Tensor:
    x = mel[:, start:start + crop]
    if x.shape[1] < crop:  # short clip: pad with its quietest value
        x = F.pad(x, (0, crop - x.shape[1]), value=float(mel.min()))
    return x


class TimbreCNN(nn.Module):
    def __init__(self, n_classes: int, n_mels: int = 64, net: NetConfig = NetConfig()):
        super().__init__()
        self.inorm = nn.BatchNorm1d(n_mels)
        blocks, c_in = [], 1
        for c in net.channels:
            blocks.append(nn.Sequential(nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                                        nn.ReLU(inplace=True), nn.MaxPool2d(2)))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.emb = nn.Linear(2 * c_in, net.emb_dim)
        self.drop = nn.Dropout(net.dropout)
        self.head = nn.Linear(net.emb_dim, n_classes)

    def embed(self, logmel: torch.Tensor) -> torch.Tensor:
        """[B, n_mels, T] → [B, emb_dim]."""
        x = logmel - logmel.mean(dim=(1, 2), keepdim=True)
        x = self.blocks(self.inorm(x).unsqueeze(1)).mean(dim=2)  # [B, C, T']
        return self.emb(torch.cat([x.mean(-1), x.amax(-1)], dim=1))

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(F.relu(self.embed(logmel))))


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


class TimbreClassifier:
    """A trained TimbreCNN with its instruments and mel settings; numpy audio in, crop logits/embeddings out."""

    def __init__(self, model: TimbreCNN, instruments: list[str], cfg: MelConfig, net: NetConfig,
                 info: dict | None = None):
        self.model, self.instruments, self.cfg, self.net = model.eval(), list(instruments), cfg, net
        self.info = dict(info or {})

    @classmethod
    def new(cls, instruments: list[str], cfg: MelConfig = MelConfig(), net: NetConfig = NetConfig()):
        return cls(TimbreCNN(len(instruments), cfg.n_mels, net), instruments, cfg, net)

    @classmethod
    def load(cls, path: str | Path) -> "TimbreClassifier":
        from core.io import load_checkpoint

        ck = load_checkpoint(path, FORMAT)
        cfg, net = MelConfig(**ck["mel"]), NetConfig(**{**ck["net"], "channels": tuple(ck["net"]["channels"])})
        model = TimbreCNN(len(ck["instruments"]), cfg.n_mels, net)
        model.load_state_dict(ck["state_dict"])
        return cls(model, ck["instruments"], cfg, net, ck.get("info"))

    def save(self, path: str | Path) -> Path:
        from core.io import save_atomic

        return save_atomic(dict(format=FORMAT, instruments=self.instruments, mel=asdict(self.cfg),
                                net={**asdict(self.net), "channels": list(self.net.channels)},
                                state_dict=self.model.state_dict(), info=self.info), path)

    @property
    def test_accuracy(self) -> float | None:
        return self.info.get("test_accuracy")

    def _prepare(self, wav: np.ndarray, sr: int) -> np.ndarray:
        from core.audio import resample

        return resample(np.asarray(wav, np.float32).reshape(-1), sr, self.cfg.sample_rate)

    @torch.no_grad()
    def analyse(self, wav: np.ndarray, sr: int, hop: int | None = None, batch: int = 64
                ) -> tuple[np.ndarray, np.ndarray]:
        """Crops every `hop` frames (default a quarter crop) of the active part → (logits [n, K], emb [n, E])."""
        mel = log_mel(self._prepare(wav, sr), self.cfg)
        starts = crop_starts(active_frames(mel), self.cfg.crop, hop or max(1, self.cfg.crop // 4))
        self.model.eval()
        logits, embs = [], []
        for i in range(0, len(starts), batch):
            x = torch.stack([take_crop(mel, int(s), self.cfg.crop) for s in starts[i:i + batch]])
            e = self.model.embed(x)
            embs.append(e)
            logits.append(self.model.head(F.relu(e)))
        return torch.cat(logits).numpy(), torch.cat(embs).numpy()

    def predict(self, wav: np.ndarray, sr: int) -> str:
        """One label for a clip: logits averaged over its crops."""
        return self.instruments[int(np.argmax(self.analyse(wav, sr)[0].mean(axis=0)))]

    def score(self, clips: dict[str, list[np.ndarray]], sr: int) -> dict:
        """Accuracy on labelled clips: per clip (averaged logits), per crop, per instrument, confusion matrix."""
        k = len(self.instruments)
        conf = np.zeros((k, k), dtype=np.int64)
        crops_ok = crops_n = 0
        for name, waves in clips.items():
            if name not in self.instruments:
                continue
            t = self.instruments.index(name)
            for w in waves:
                logits, _ = self.analyse(w, sr)
                conf[t, int(np.argmax(logits.mean(axis=0)))] += 1
                crops_ok += int(np.sum(np.argmax(logits, axis=1) == t))
                crops_n += len(logits)
        n = int(conf.sum())
        per = {self.instruments[i]: float(conf[i, i] / conf[i].sum()) for i in range(k) if conf[i].sum()}
        return dict(accuracy=float(np.trace(conf) / n) if n else float("nan"),
                    crop_accuracy=crops_ok / crops_n if crops_n else float("nan"), clips=n,
                    per_instrument=per, confusion=conf.tolist(), labels=self.instruments)


# ---------------------------------------------------------------- training
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


def train_classifier(train: dict[str, list[np.ndarray]], sr: int, valid: dict[str, list[np.ndarray]] | None = None,
                     tc: TrainConfig = TrainConfig(), cfg: MelConfig = MelConfig(), net: NetConfig = NetConfig(),
                     state_path: str | Path | None = None, fresh: bool = False, progress: bool = True,
                     log=print) -> TimbreClassifier:
    """Train on {instrument: [mono audio at sr]}; resumable through `state_path` (saved every tc.save_every_s).

    With `valid`, the state with the best valid crop accuracy (checked every tc.eval_every steps and at the
    end) is the one returned.
    """
    from tqdm import tqdm

    from core.audio import resample
    from core.io import CheckpointError, load_checkpoint, save_atomic

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
    step, wall, history, best = 0, 0.0, [], None
    state_path = Path(state_path) if state_path else None
    if state_path and state_path.is_file() and not fresh:
        try:
            ck = load_checkpoint(state_path, FORMAT + "+train")
        except CheckpointError as e:
            log(f"warning: {e}; starting over")
            ck = None
        if ck is not None and (ck["instruments"] != names or ck["mel"] != asdict(cfg)):
            log(f"warning: {state_path} was trained with other instruments or mel settings; starting over")
            ck = None
        if ck is not None:
            model.load_state_dict(ck["state_dict"])
            opt.load_state_dict(ck["optimizer"])
            gen.set_state(ck["generator"])
            step, wall, history, best = ck["step"], ck["wall_seconds"], ck["history"], ck.get("best")
            log(f"resuming {state_path} at step {step}")

    def save_state():
        if state_path:
            save_atomic(dict(format=FORMAT + "+train", instruments=names, mel=asdict(cfg), state_dict=model.state_dict(),
                             optimizer=opt.state_dict(), generator=gen.get_state(), step=step, wall_seconds=wall,
                             history=history, best=best), state_path)

    def check():
        nonlocal best
        if not vclips:
            return
        clf.model.eval()
        acc = clf.score(vclips, cfg.sample_rate)["crop_accuracy"]
        model.train()
        history.append(dict(step=step, valid_crop_accuracy=acc))
        if best is None or acc >= best["valid_crop_accuracy"]:
            best = dict(step=step, valid_crop_accuracy=acc, state_dict=copy.deepcopy(model.state_dict()))

    log(f"classifier: {len(names)} instruments, features ready in {time.time() - t_load:.0f} s")
    t0, last_save = time.time() - wall, time.time()
    model.train()
    bar = tqdm(total=tc.steps, initial=min(step, tc.steps), desc="classifier", unit="step", disable=not progress)
    running = None
    while step < tc.steps:
        for g in opt.param_groups:
            g["lr"] = _lr(step, tc)
        x, y = pool.sample(tc.batch, gen)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        wall = time.time() - t0
        running = float(loss.detach()) if running is None else 0.95 * running + 0.05 * float(loss.detach())
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}")
        if tc.eval_every and step % tc.eval_every == 0 and step < tc.steps:
            check()
        if time.time() - last_save >= tc.save_every_s:
            save_state()
            last_save = time.time()
    bar.close()
    if not history or history[-1]["step"] != step:
        check()
    if best is not None:
        model.load_state_dict(best["state_dict"])
    save_state()
    model.eval()
    clf.info.update(steps=step, wall_seconds=round(wall, 1), history=history,
                    valid_crop_accuracy=best["valid_crop_accuracy"] if best else None,
                    best_step=best["step"] if best else step)
    return clf


# ---------------------------------------------------------------- corpus and command line
def load_split(root: Path, split: str, instruments: list[str] | None, sr: int, max_seconds: float | None = None,
               progress: bool = True) -> dict[str, list[np.ndarray]]:
    """Audio of one corpus split per instrument; at most `max_seconds` per instrument (files in manifest order,
    spread over chorales by a fixed shuffle)."""
    from tqdm import tqdm

    from core.audio import load_audio
    from core.manifest import corpus_files

    files = corpus_files(Path(root), split, instruments)
    out: dict[str, list[np.ndarray]] = {}
    for name in tqdm(sorted(files), desc=f"loading {split}", unit="instrument", disable=not progress):
        fs = sorted(files[name])
        np.random.default_rng(0).shuffle(fs)
        total = 0.0
        for f in fs:
            if max_seconds is not None and total >= max_seconds:
                break
            x = load_audio(f, sr)
            out.setdefault(name, []).append(x)
            total += len(x) / sr
    return out


def degraded_copies(clips: dict[str, list[np.ndarray]], sr: int, copies: int, seed: int
                    ) -> dict[str, list[np.ndarray]]:
    """`copies` versions of every clip through core.degrade.judge_chain (seeded)."""
    from core.degrade import judge_chain

    rng = np.random.default_rng(seed)
    return {k: [judge_chain(w, rng, sr) for w in v for _ in range(copies)] for k, v in clips.items()}


def _merge(a: dict, b: dict) -> dict:
    return {k: list(a.get(k, [])) + list(b.get(k, [])) for k in sorted(set(a) | set(b))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.classifier", description=__doc__.split("\n")[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--train", action="store_true", help="train on the corpus train split, save to --out")
    what.add_argument("--test", type=Path, metavar="CLASSIFIER", help="score a saved classifier on --split")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--instruments", type=comma_list(), default=None, help="comma-separated (default: all in the corpus)")
    ap.add_argument("--out", type=Path, default=DEFAULT_PATH)
    ap.add_argument("--split", default="heldout", help="split scored at the end / by --test (heldout: unseen font)")
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
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from core.io import CheckpointError
    from core.manifest import CorpusError

    inst = a.instruments or None
    try:
        if a.test:
            clf = TimbreClassifier.load(a.test)
            res = clf.score(load_split(a.corpus, a.split, clf.instruments, clf.cfg.sample_rate), clf.cfg.sample_rate)
            _print_score(res, a.split)
            return 0
        cfg = MelConfig()
        train: dict[str, list[np.ndarray]] = {}
        for split in a.train_splits:
            train = _merge(train, load_split(a.corpus, split, inst, cfg.sample_rate, 60 * a.max_minutes))
        valid = load_split(a.corpus, "valid", inst, cfg.sample_rate, 60 * a.max_minutes / 4)
        if a.degraded_copies:
            train = _merge(train, degraded_copies(train, cfg.sample_rate, a.degraded_copies, a.seed))
            valid = _merge(valid, degraded_copies(valid, cfg.sample_rate, 1, a.seed + 1))
        tc = TrainConfig(steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed, save_every_s=a.save_every)
        clf = train_classifier(train, cfg.sample_rate, valid, tc, cfg, state_path=a.out.with_suffix(".train.pt"),
                               fresh=a.fresh)
        del train, valid
        test = load_split(a.corpus, a.split, clf.instruments, cfg.sample_rate)
        res = clf.score(test, cfg.sample_rate)
        clf.info.update(test_accuracy=res["accuracy"], test_crop_accuracy=res["crop_accuracy"],
                        test_clips=res["clips"], test_split=a.split, per_instrument=res["per_instrument"],
                        confusion=res["confusion"], corpus=str(a.corpus))
        _print_score(res, a.split)
        res_d = clf.score(degraded_copies(test, cfg.sample_rate, 1, a.seed + 2), cfg.sample_rate)
        clf.info.update(degraded_test_accuracy=res_d["accuracy"], degraded_test_crop_accuracy=res_d["crop_accuracy"],
                        degraded_copies=a.degraded_copies, train_splits=a.train_splits,
                        never_heard="this project's codec and denoisers")
        _print_score(res_d, a.split + ", generically degraded")
        clf.save(a.out)
        print(f"saved {a.out}")
    except (CorpusError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _print_score(res: dict, split: str) -> None:
    print(f"{split}: accuracy {100 * res['accuracy']:.1f}% over {res['clips']} files "
          f"(crops {100 * res['crop_accuracy']:.1f}%)")
    for k, v in sorted(res["per_instrument"].items()):
        print(f"  {k:12s} {100 * v:5.1f}%")


if __name__ == "__main__":
    from core.cli import run_main

    sys.exit(run_main(main))
