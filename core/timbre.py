"""The timbre judge: a small CNN on log-mel crops that names the instrument it hears, and how it reads a corpus.

Everything the trainer (python -m train.judge) and the evaluation (python -m evaluation, evaluation.ceiling,
python -m evaluation.classifier) share: mel settings, the network, crop selection, the saved file (FORMAT, the
shipped DEFAULT_PATH) and `load_split`. An honest judge never hears this project's codec or denoisers; see
train.judge for how it learns.

The network: per-crop mean removal (gain invariance) → per-mel-band BatchNorm → 4 × [conv 3×3, BN, ReLU,
max-pool 2] → mean over frequency, mean+max over time → a 32-d embedding (linear) → ReLU, dropout → logits.
The embedding (before the ReLU) is what evaluation.frechet compares.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FORMAT = "timbre-classifier/1"
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "models" / "classifier.pt"
ACTIVE_DB = 40.0  # frames within this many dB of the clip's loudest count as active
MIN_ACTIVE = 0.5  # a crop needs this fraction of active frames


@dataclass
class MelConfig:
    sample_rate: int = 24_000
    n_fft: int = 1024
    stft_hop: int = 256  # samples between STFT frames
    n_mels: int = 64
    fmin: float = 30.0
    fmax: float = 11_000.0
    crop: int = 128  # frames per crop (1.37 s at 24 kHz / 256)

    @classmethod
    def from_record(cls, d: dict) -> "MelConfig":
        """From a saved record; files written before the rename call the STFT hop 'hop'."""
        d = dict(d)
        if "hop" in d:
            d["stft_hop"] = d.pop("hop")
        return cls(**d)


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
            cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.stft_hop, n_mels=cfg.n_mels, f_min=cfg.fmin,
            f_max=min(cfg.fmax, cfg.sample_rate / 2), power=2.0, center=True)
    x = torch.as_tensor(np.ascontiguousarray(wav, dtype=np.float32)).reshape(-1)
    if len(x) < cfg.n_fft:
        x = F.pad(x, (0, cfg.n_fft - len(x)))
    with torch.no_grad():
        return torch.log(_MEL_CACHE[key](x) + 1e-6)


def active_frames(mel: torch.Tensor) -> np.ndarray:
    energy = torch.logsumexp(mel, dim=0).numpy() * (10 / math.log(10))  # dB (relative scale)
    return energy >= energy.max() - ACTIVE_DB


def crop_starts(active: np.ndarray, crop: int, stride: int | None = None) -> np.ndarray:
    """Starts of crops (every `stride` frames, all starts when stride is None) with enough active frames; all of
    them when none qualifies (so a silent clip still gets crops). A clip shorter than a crop has start 0."""
    n = len(active)
    if n <= crop:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n - crop + 1, stride or 1)
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
        cfg, net = MelConfig.from_record(ck["mel"]), NetConfig(**{**ck["net"], "channels": tuple(ck["net"]["channels"])})
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
    def analyse(self, wav: np.ndarray, sr: int, stride: int | None = None, batch: int = 64
                ) -> tuple[np.ndarray, np.ndarray]:
        """Crops every `stride` frames (default a quarter crop) of the active part → (logits [n, K], emb [n, E])."""
        mel = log_mel(self._prepare(wav, sr), self.cfg)
        starts = crop_starts(active_frames(mel), self.cfg.crop, stride or max(1, self.cfg.crop // 4))
        self.model.eval()
        logits, embs = [], []
        for i in range(0, len(starts), batch):
            x = torch.stack([take_crop(mel, int(s), self.cfg.crop) for s in starts[i:i + batch]])
            e = self.model.embed(x)
            embs.append(e)
            logits.append(self.model.head(F.relu(e)))
        return torch.cat(logits).numpy(), torch.cat(embs).numpy()

    def clip_logits(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """[K] logits for a clip: averaged over its crops."""
        return self.analyse(wav, sr)[0].mean(axis=0)

    def predict(self, wav: np.ndarray, sr: int) -> str:
        """One label for a clip: its averaged logits' largest."""
        return self.instruments[int(np.argmax(self.clip_logits(wav, sr)))]

    def margin(self, logits: np.ndarray, name: str) -> float:
        """`name`'s logit minus the largest other: > 0 where the clip is heard as `name`, and how surely."""
        k = self.instruments.index(name)
        return float(logits[k] - np.max(np.delete(logits, k)))

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


# ---------------------------------------------------------------- corpus
def load_split(root: Path, split: str, instruments: list[str] | None, sr: int, max_seconds: float | None = None,
               progress: bool = True) -> dict[str, list[np.ndarray]]:
    """Audio of a corpus split (or several, comma-separated) per instrument; at most `max_seconds` per instrument (files
    in path order, spread over chorales by a fixed shuffle)."""
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


def format_score(res: dict, split: str) -> str:
    """TimbreClassifier.score's result in a few lines: overall, then per instrument."""
    lines = [f"{split}: accuracy {100 * res['accuracy']:.1f}% over {res['clips']} files "
             f"(crops {100 * res['crop_accuracy']:.1f}%)"]
    lines += [f"  {k:12s} {100 * v:5.1f}%" for k, v in sorted(res["per_instrument"].items())]
    return "\n".join(lines)
