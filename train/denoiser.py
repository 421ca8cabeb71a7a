"""Train one instrument's EDM denoiser on its cached latents (unpaired: that instrument's audio alone).

EDM loss with log-normal σ, random crops of the live window length (and longer ones for offline quality),
pitch-shifted copies from the latent cache, EMA weights, validation loss per σ band. Resumable, CPU or CUDA,
torchrun-ready.

    python -m train.denoiser --instrument violin --latents data/latents --codec models/codec.pt --minutes 30
    python -m train.denoiser --instrument violin --export models/denoisers/violin.pt   # fp16 EMA weights
    python -m train.denoiser --instrument violin --codec NEW.pt --latents data/latents-new \
        --refit-moments models/denoisers/violin.pt --export OUT.pt   # its moments in NEW.pt's latents
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

from core.cli import comma_list, ranged
from core.codec import Codec
from core.denoiser import MODEL_FORMAT, EDMDenoiser, denoiser_config, load_denoiser, trained_space
from core.io import load_checkpoint, save_atomic
from core.precond import edge_weights, edm_loss
from train.common import (Clock, TrainState, ema_update, forward_precision, interrupt_on_sigterm, keep_going,
                          load_training, precision_name, progress_bar, reseed_rank, save_training, saved_on_interrupt,
                          setup_runtime, wrap_ddp)
from train.latents import fit_stats, load_latents

FORMAT = "timbre-denoiser-training/1"
SIGMA_BANDS = (0.01, 0.1, 1.0, 10.0, 100.0)


class LatentCrops:
    """Normalized latent arrays cut into random [C, frames] crops (seeded).

    The arrays sit end to end in one tensor on the training device and a batch is cut with one gather: on a GPU
    a Python loop over the batch made the trainer CPU-bound. Draws come from a CPU generator, so a run is the
    same on any device and resumes exactly."""

    def __init__(self, arrays: list[np.ndarray], min_frames: int, device: torch.device | str = "cpu"):
        keep = [a for a in arrays if a.shape[1] >= min_frames]
        if not keep:
            raise ValueError(f"no latent sequence of at least {min_frames} frames")
        self.arrays = [torch.from_numpy(a) for a in keep]
        self.pool = torch.cat(self.arrays, dim=1).T.contiguous().to(device)  # [total frames, C]: rows gather fast
        lens = torch.tensor([a.shape[1] for a in keep], dtype=torch.float64)
        self.lengths = lens.long()
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths
        self.weights = lens / lens.sum()

    def crops(self, batch: int, frames: int, gen: torch.Generator) -> torch.Tensor:
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=gen)
        room = self.lengths[idx] - frames + 1  # valid starts per chosen array
        starts = self.offsets[idx] + (torch.rand(batch, generator=gen, dtype=torch.float64) * room).long()
        cols = (starts[:, None] + torch.arange(frames)).to(self.pool.device)  # [B, frames]
        return self.pool[cols].permute(0, 2, 1)  # [B, frames, C] → [B, C, frames]


def latent_space(kind: str, train_cache: Path, codec: Codec) -> dict:
    """The normalization a denoiser trains in: the codec's shared statistics, or its own instrument's, fitted on
    its unshifted training latents. Recorded in the model file and the bundle, so the engine can move a latent
    from the source's space to the target's; `moments` are the instrument's per-channel mean/std in that space
    (what the bridge matches at σmax; 0 and 1 in its own space)."""
    raw = _unshifted(train_cache)
    if kind == "shared":
        space = dict(kind="shared", mean=codec.latent_mean.tolist(), std=codec.latent_std.tolist())
    else:
        mean, std = fit_stats(raw)
        space = dict(kind="instrument", mean=mean.tolist(), std=np.maximum(std, 1e-5).tolist(),
                     frames=int(sum(a.shape[1] for a in raw)))
    return dict(space, moments=space_moments(raw, space))


def _unshifted(train_cache: Path) -> list[np.ndarray]:
    with np.load(train_cache) as f:
        return [f[k].astype(np.float32) for k in sorted(f.files) if k.endswith("_+0")]


def space_moments(raw: list[np.ndarray], space: dict) -> dict:
    """Per-channel mean/std and the channels' covariance of raw latents once normalized as `space` normalizes
    them (prior matched uses the first two, transport the mean and covariance)."""
    m, s = np.asarray(space["mean"], np.float64)[:, None], np.asarray(space["std"], np.float64)[:, None]
    cat = np.concatenate([(a.astype(np.float64) - m) / s for a in raw], axis=1)  # [C, frames]
    mean, std = fit_stats([cat])
    cov = np.cov(cat, bias=True)
    return dict(mean=mean.tolist(), std=np.maximum(std, 1e-5).tolist(), cov=cov.round(6).tolist())


def refit_moments(model_file: Path, codec: Codec, train_cache: Path, instrument: str, codec_name: str = "") -> dict:
    """A denoiser file whose recorded moments (what priors matched, transport and local match at σmax) are
    those of `codec`'s latents in `train_cache`, its weights untouched: for a codec whose encoder was fine-tuned
    with the latent statistics kept, so the denoiser's normalization still holds while its instrument's latents
    moved. Refuses a denoiser of another latent space (statistics of another codec)."""
    if not model_file.is_file():
        raise SystemExit(f"error: no denoiser file {model_file}")
    ck = load_checkpoint(model_file, MODEL_FORMAT)
    if ck.get("instrument") != instrument:
        raise SystemExit(f"error: {model_file} is the {ck.get('instrument')}'s denoiser, not the {instrument}'s")
    info = dict(ck.get("train_info") or {})
    trained_in = trained_space(ck)
    if trained_in is None:
        raise SystemExit(f"error: {model_file} records no codec statistics it was trained in: nothing to refit against")
    if trained_in != codec.stats_id():
        raise SystemExit(f"error: {model_file} was trained in latent space {trained_in}, {codec_name or 'the codec'}'s"
                         f" is {codec.stats_id()}: its normalization does not hold there (train it: --init)")
    space = dict(info.get("latent_space") or {})
    if "mean" not in space:
        raise SystemExit(f"error: {model_file} records no latent normalization to refit its moments in")
    if not train_cache.is_file():
        raise SystemExit(f"error: no latent cache {train_cache} (python -m train.latents --codec ... --shifts=0)")
    raw = _unshifted(train_cache)
    if not raw:
        raise SystemExit(f"error: {train_cache} holds no unshifted latents")
    space["moments"] = space_moments(raw, space)
    info["latent_space"] = space
    info["moments_refit"] = dict(codec=codec_name, latents=str(train_cache),
                                 frames=int(sum(a.shape[1] for a in raw)))
    return dict(ck, train_info=info)


@torch.no_grad()
def validation_by_band(model: EDMDenoiser, data: torch.Tensor, seed: int = 1234) -> dict[str, float]:
    """Mean EDM loss at fixed σ bands on a fixed validation batch (fixed noise)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for s in SIGMA_BANDS:
        sigma = torch.full((data.shape[0],), s, device=data.device, dtype=data.dtype)  # on the data's device
        loss, _ = edm_loss(model, data, generator=gen, sigma=sigma, sigma_data=model.sigma_data)
        out[f"{s:g}"] = float(loss.mean())
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m train.denoiser", description=__doc__.split("\n")[0])
    ap.add_argument("--instrument", required=True)
    ap.add_argument("--latents", type=Path, default=Path("data/latents"))
    ap.add_argument("--codec", type=Path, default=Path("models/codec.pt"), help="its latent statistics normalize")
    ap.add_argument("--run-dir", "--run", dest="run", type=Path, default=None, help="default runs/denoiser-INSTRUMENT")
    ap.add_argument("--stats", choices=("shared", "instrument"), default="shared",
                    help="latent normalization: the codec's statistics over all instruments (shared), or this "
                         "instrument's own (as the paper's official code); the bundle records which")
    ap.add_argument("--channels", type=comma_list(int), default=[64, 128, 128])
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--frames", type=comma_list(int), default=[32, 64], help="crop lengths in frames, alternated by step")
    ap.add_argument("--edge-weight", type=ranged(float, 1.0, 1000.0), default=1.0,
                    help="the loss on each crop's newest --edge-frames this many times the rest (1: uniform); the "
                         "live engine commits frames at its window's newest edge")
    ap.add_argument("--edge-frames", type=ranged(int, 1, 4096), default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--p-mean", type=float, default=-1.2)
    ap.add_argument("--p-std", type=float, default=1.2)
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--save-every", type=float, default=120)
    ap.add_argument("--valid-every", type=int, default=500)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--bf16", action="store_true",
                    help="the denoiser's forward pass in bf16 autocast (weights, optimizer, EMA, loss and "
                         "validation stay fp32); the exported file records which precision trained it")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", type=Path, default=None, metavar="MODEL_FILE",
                    help="start from a shipped denoiser file's weights (fresh optimizer) when RUN has no checkpoint")
    ap.add_argument("--init-other-space", action="store_true",
                    help="--init may come from another codec's latent space (a codec fine-tuned from that one): its "
                         "weights are a warm start there, not a run going on (the step count starts at 0)")
    ap.add_argument("--export", type=Path, default=None, metavar="MODEL_FILE",
                    help="do not train: write the run's EMA weights (fp16) as a denoiser file")
    ap.add_argument("--refit-moments", type=Path, default=None, metavar="MODEL_FILE",
                    help="do not train: with --export OUT, MODEL_FILE with its latent moments refit on --codec's "
                         "latents in --latents (same latent statistics, its weights untouched)")
    return ap


def train(args) -> TrainState:
    rt = setup_runtime(args.device, args.threads)
    run = args.run or Path(f"runs/denoiser-{args.instrument}")
    codec = Codec.load(args.codec)
    if not codec.stats_fitted:
        raise SystemExit(f"error: {args.codec} has no latent statistics; run python -m train.latents first")
    cache = args.latents / args.instrument
    if not (cache / "train.npz").is_file():
        raise SystemExit(f"error: no latent cache for {args.instrument!r} in {args.latents} "
                         f"(python -m train.latents --instruments {args.instrument} ...)")
    frames = list(args.frames)
    space = latent_space(args.stats, cache / "train.npz", codec)
    mean, std = np.asarray(space["mean"], np.float32), np.asarray(space["std"], np.float32)
    train_set = LatentCrops(load_latents(cache / "train.npz", mean=mean, std=std), max(frames), rt.device)
    valid_arrays = load_latents(cache / "valid.npz", mean=mean, std=std) if (cache / "valid.npz").is_file() else []
    vgen = torch.Generator().manual_seed(99)
    valid = (LatentCrops(valid_arrays, frames[0]) if valid_arrays else train_set).crops(64, frames[0], vgen)
    cfg = denoiser_config(latent_dim=codec.latent_dim, channels=list(args.channels),
                          blocks=args.blocks)
    torch.manual_seed(args.seed)  # the same initial weights on every rank and every run
    model = EDMDenoiser(cfg).to(rt.device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed + 1000 * rt.rank)
    state = TrainState()
    last = run / "last.pt"
    if last.is_file():
        state = load_training(last, FORMAT, gen, model=model, ema=ema, opt=opt)
        if rt.main:
            print(f"resumed from {last} at step {state.step}")
        if rt.world > 1:
            reseed_rank(gen, args.seed, rt.rank, state.step)
    elif args.init:
        init, ck = load_denoiser(args.init)
        if ck["config"] != cfg:
            raise SystemExit(f"error: {args.init} has config {ck['config']}, this run {cfg}")
        trained_in = trained_space(ck)
        same_space = trained_in == codec.stats_id()
        if not same_space and not args.init_other_space:
            raise SystemExit(f"error: {args.init} was trained in latent space {trained_in}, {args.codec}'s is "
                             f"{codec.stats_id()}: it cannot go on in this one (--init-other-space: use its "
                             "weights as a warm start)")
        model.load_state_dict(init.state_dict())
        ema.load_state_dict(init.state_dict())
        if same_space:  # the same run going on; in another space only the weights carry over
            state.step = int(ck.get("train_info", {}).get("steps", 0))
            state.wall_seconds = float(ck.get("train_info", {}).get("wall_seconds", 0.0))
            state.history = list(ck.get("train_info", {}).get("history", []))
        if rt.main:
            print(f"initialized from {args.init} (step {state.step}; optimizer state starts fresh)" if same_space else
                  f"warm start from {args.init}, trained in latent space {trained_in} (this codec's: "
                  f"{codec.stats_id()}): its weights only, from step 0")
    ddp = wrap_ddp(model, rt)
    precision = forward_precision(rt.device, args.bf16)
    clock = Clock(state, args.save_every)
    deadline = time.time() + args.minutes * 60 if args.minutes else None
    bar = progress_bar(f"denoiser {args.instrument}", args.steps, state.step, deadline, disable=not rt.main)
    meta = dict(instrument=args.instrument, config=cfg, args={k: str(v) for k, v in vars(args).items()},
                codec=str(args.codec), codec_stats=codec.train_info.get("latent_stats"), latent_space=space,
                train_frames=int(sum(a.shape[1] for a in train_set.arrays)),
                precision=precision_name(args.bf16))

    def save(gen_state=None):
        if rt.main:
            save_training(last, FORMAT, state, gen if gen_state is None else gen_state, model=model, ema=ema,
                          opt=opt, meta=meta | dict(device=str(rt.device), world=rt.world))

    interrupt_on_sigterm()  # `kill` saves like Ctrl-C: a background run loses no steps
    step_start = gen.get_state()
    # an interrupt inside a step saves the generator as the step found it: the resumed run draws that batch again
    with saved_on_interrupt(lambda: save(step_start), bar):
        while keep_going(state.step, args.steps, deadline, rt):
            step_start = gen.get_state()
            n_frames = frames[state.step % len(frames)]
            x = train_set.crops(args.batch, n_frames, gen).to(rt.device)
            warm = min(1.0, (state.step + 1) / 500)  # linear LR warm-up
            for g in opt.param_groups:
                g["lr"] = args.lr * warm
            with precision():  # the denoiser's output meets fp32 x in the loss: promoted back to fp32
                loss, _ = edm_loss(ddp, x, generator=gen, p_mean=args.p_mean, p_std=args.p_std,
                                   frame_weight=(edge_weights(n_frames, args.edge_frames, args.edge_weight)
                                                 if args.edge_weight != 1.0 else None))
            loss = loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            decay = min(args.ema, (1 + state.step) / (10 + state.step))
            ema_update(ema, model, decay)
            state.step += 1
            clock.tick()
            bar.update(1)
            if state.step % 50 == 0:
                state.history.append(dict(step=state.step, wall=round(state.wall_seconds, 1), loss=float(loss)))
                bar.set_postfix(loss=f"{float(loss):.3f}")
            if state.step % args.valid_every == 0 and rt.main:
                v = validation_by_band(ema, valid.to(rt.device))
                state.history.append(dict(step=state.step, wall=round(state.wall_seconds, 1), valid=v))
                bar.write(f"step {state.step}: validation loss by σ " + " ".join(f"{k}:{x:.3f}" for k, x in v.items()))
            if clock.due():
                save()
    bar.close()
    save()
    rt.finish()
    return state


def denoiser_file_from_run(run: Path, out: Path, half: bool = True) -> dict:
    """A denoiser file: EMA weights (fp16), config, instrument and training record."""
    ck = load_checkpoint(run / "last.pt", FORMAT)
    meta, st = ck["meta"], ck["state"]
    space = dict(meta.get("latent_space") or dict(kind="shared"))
    if "cov" not in (space.get("moments") or {}) and "mean" in space:  # a run begun before they were recorded
        cache = Path(meta["args"]["latents"]) / meta["instrument"] / "train.npz"
        if cache.is_file():
            space["moments"] = space_moments(_unshifted(cache), space)
        elif not space.get("moments"):
            raise SystemExit(f"error: {run} began before denoisers recorded their latents' moments, and its latents "
                             f"{cache} are gone: rebuild them (python -m train.latents) to export it")
        else:  # mean/std recorded: it exports for prior matched, without transport's covariance
            print(f"warning: {cache} is gone: {run} exports without its latents' covariance (no prior transport)",
                  file=sys.stderr)
    sd = {k: (v.half() if half and v.is_floating_point() else v) for k, v in ck["ema"].items()}
    valids = [h["valid"] for h in st["history"] if "valid" in h]
    blob = dict(format=MODEL_FORMAT, instrument=meta["instrument"], config=meta["config"], sigma_data=1.0,
                state_dict=sd, train_info=dict(steps=st["step"], wall_seconds=round(st["wall_seconds"], 1),
                                               device=meta.get("device"), train_frames=meta.get("train_frames"),
                                               precision=meta.get("precision", "fp32"),  # the last run's
                                               codec_stats=meta.get("codec_stats"),
                                               latent_space=space,
                                               loss=dict(edge_weight=float(meta["args"].get("edge_weight", 1.0)),
                                                         edge_frames=int(meta["args"].get("edge_frames", 8))),
                                               last_valid=valids[-1] if valids else None,
                                               history=[h for h in st["history"] if "valid" in h]))
    save_atomic(blob, out)
    return blob


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.refit_moments:
        if not args.export:
            raise SystemExit("error: --refit-moments writes a new file: name it with --export OUT")
        if args.export.resolve() == args.refit_moments.resolve():
            raise SystemExit(f"error: --export {args.export} would overwrite its input: name another file")
        blob = refit_moments(args.refit_moments, Codec.load(args.codec), args.latents / args.instrument / "train.npz",
                             args.instrument, str(args.codec))
        save_atomic(blob, args.export)
        print(f"denoiser {args.instrument}: moments of {blob['train_info']['moments_refit']['frames']} frames → "
              f"{args.export}")
        return 0
    if args.export:
        blob = denoiser_file_from_run(args.run or Path(f"runs/denoiser-{args.instrument}"), args.export)
        print(f"denoiser {blob['instrument']} ({blob['train_info']['steps']} steps) → {args.export}")
        return 0
    state = train(args)
    print(f"stopped at step {state.step}")
    return 0


if __name__ == "__main__":
    from core.cli import run_main

    sys.exit(run_main(main))
