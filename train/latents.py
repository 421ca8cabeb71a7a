"""Latent cache: encode each instrument's audio once (with pitch-shifted copies for training).

    python -m train.latents --codec models/codec.pt --corpus data/corpus --out data/latents [--shifts=-2,0,2]

Writes OUT/<instrument>/<split>.npz (raw latents, float16, one array per file and shift) and, when the codec has
no latent statistics yet, fits the per-channel mean/std on the training latents of every instrument encoded
and saves them into the codec file. Statistics are fitted once and then kept: every denoiser lives in the same
normalized space, which is what lets any two instruments form a bridge.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.cli import comma_list
from core.audio import load_audio, resample
from core.codec import Codec
from train.common import corpus_files


def pitch_shift(x: np.ndarray, semitones: float, sr: int) -> np.ndarray:
    """Varispeed shift (resampling): pitch and formants move together, duration by the same factor."""
    if semitones == 0:
        return x
    ratio = 2.0 ** (semitones / 12.0)
    return resample(x, int(round(sr * ratio)), sr)


def left_context(codec: Codec) -> int:
    """Samples of left context that make chunked encoding equal whole-file encoding (none for a pretrained
    EnCodec, which is encoded whole)."""
    return codec.encoder_context() if codec.kind == "compact" else 0


@torch.no_grad()
def encode_file(codec: Codec, x: np.ndarray, chunk_s: float = 30.0, ctx: int | None = None) -> np.ndarray:
    """Raw latents [C, T] of a whole file, encoded in chunks with left context (`ctx`, default left_context)
    so long files fit in memory."""
    hop = codec.hop_length
    ctx = left_context(codec) if ctx is None else ctx
    device = codec.latent_mean.device
    n = len(x)
    frames = codec.frames_for(n)
    step = int(chunk_s * codec.sample_rate) // hop * hop
    if codec.kind != "compact" or n <= step:
        return codec.encode_raw(torch.from_numpy(x).view(1, 1, -1).to(device))[0].cpu().numpy()
    padded = np.concatenate([np.zeros(ctx, np.float32), x, np.zeros(frames * hop - n, np.float32)])
    out = []
    for start in range(0, frames * hop, step):
        seg = padded[start: ctx + start + step]
        z = codec.encode_raw(torch.from_numpy(seg).view(1, 1, -1).to(device))[0]
        out.append(z[:, ctx // hop:].cpu().numpy())
    return np.concatenate(out, axis=1)[:, :frames]


def encode_instrument(codec: Codec, files: list[Path], shifts: list[float], desc: str) -> dict[str, np.ndarray]:
    arrays = {}
    ctx = left_context(codec)  # once: it is measured with a backward pass
    for i, f in enumerate(tqdm(files, desc=desc, unit="file")):
        x = load_audio(f, codec.sample_rate)
        for s in shifts:
            z = encode_file(codec, pitch_shift(x, s, codec.sample_rate), ctx=ctx)
            arrays[f"{i:05d}_{s:+g}"] = z.astype(np.float16)
    return arrays


def load_latents(path: Path, codec: Codec | None = None, mean=None, std=None) -> list[np.ndarray]:
    """Arrays of one cache file, normalized with the codec's statistics (or mean/std given)."""
    if codec is not None:
        mean, std = codec.latent_mean.numpy(), codec.latent_std.numpy()
    with np.load(path) as f:
        arrs = [f[k].astype(np.float32) for k in sorted(f.files)]
    if mean is not None:
        arrs = [(a - mean[:, None]) / std[:, None] for a in arrs]
    return arrs


def fit_stats(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    cat = np.concatenate([a.astype(np.float64) for a in arrays], axis=1)
    return cat.mean(axis=1), cat.std(axis=1)


@torch.no_grad()
def build_cache(codec_path: Path, corpus: Path, out: Path, instruments: list[str] | None, shifts: list[float],
                refit_stats: bool = False, max_files: int | None = None, device: str = "cpu") -> Codec:
    """`device` encodes: on a GPU machine "cuda" (the CPU there encoded a two-part pack in 2.3 minutes, time a
    device call pays for)."""
    codec = Codec.load(codec_path).to(device)
    have_stats = codec.stats_fitted and not refit_stats
    stat_pool = []
    for split in ("train", "valid", "test"):
        per_inst = corpus_files(corpus, split, instruments)
        if split == "train" and not per_inst:
            raise SystemExit(f"error: no training audio for {instruments or 'any instrument'} in {corpus}")
        for inst, files in sorted(per_inst.items()):
            arrays = encode_instrument(codec, files[:max_files], shifts if split == "train" else [0.0],
                                       f"{inst}/{split}")
            (out / inst).mkdir(parents=True, exist_ok=True)
            tmp = out / inst / f".{split}.partial.npz"
            np.savez(tmp, **arrays)
            tmp.replace(out / inst / f"{split}.npz")
            if split == "train":
                stat_pool += [a for k, a in arrays.items() if k.endswith("_+0")]
    codec.cpu()  # statistics, their hash and the file are made on the CPU
    if not have_stats:
        mean, std = fit_stats(stat_pool)
        codec.set_latent_stats(torch.from_numpy(mean).float(), torch.from_numpy(std).float())
        codec.train_info["latent_stats"] = dict(instruments=sorted(instruments or corpus_files(corpus, "train")),
                                                frames=int(sum(a.shape[1] for a in stat_pool)),
                                                hash=codec.stats_id())
        codec.save(codec_path)
    return codec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.latents", description=__doc__.split("\n")[0])
    ap.add_argument("--codec", type=Path, required=True, help="codec file (python -m train.codec --export ...); latent statistics are saved into it")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--out", type=Path, default=Path("data/latents"))
    ap.add_argument("--instruments", type=comma_list(), default=None)
    ap.add_argument("--shifts", type=comma_list(float), default=[-2.0, 0.0, 2.0], help="semitone shifts for training audio (0 must be included)")
    ap.add_argument("--refit-stats", action="store_true", help="fit latent statistics again (invalidates denoisers)")
    ap.add_argument("--max-files", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="where the codec encodes (cpu, cuda, cuda:1 ...)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    shifts = sorted(set(a.shifts) | {0.0})
    build_cache(a.codec, a.corpus, a.out, a.instruments or None, shifts,
                a.refit_stats, a.max_files, a.device)
    print(f"latent cache → {a.out}")
    return 0


if __name__ == "__main__":
    from core.cli import run_main

    sys.exit(run_main(main))
