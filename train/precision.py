"""python -m train.precision: what bf16 autocast (the trainers' --bf16) buys here, and what it changes.

For each trainer, at shipped weights and on real crops of the training split: the seconds of one training step
as the trainer takes it (forward, backward, gradient clipping, optimizer; the codec's with its discriminator's
update, the denoiser's with its moving average) in fp32 and in bf16 autocast,
alternated in one run (medians, so both meet the same machine), and how far bf16 moves a step on the same batch:
the loss's relative error, and the gradient's cosine and relative norm error against fp32's."""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from core.audio import load_audio
from core.codec import Codec
from core.denoiser import load_denoiser
from core.manifest import CorpusError, corpus_files
from core.io import load_checkpoint
from core.precond import edm_loss
from train.codec import DEFAULT_WEIGHTS, DISC_FORMAT, GeneratorLoss, disc_path, discriminator_loss
from train.common import ema_update, forward_precision


def agreement(loss_fn, params: list[torch.Tensor], precision) -> dict:
    """bf16 against fp32 on one batch: loss relative error, gradient cosine and relative norm error."""
    out = {}
    for name, ctx in (("fp32", forward_precision(torch.device("cpu"), False)), ("bf16", precision)):
        loss = loss_fn(ctx)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        flat = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])
        out[name] = (float(loss.detach()), flat.double())
    (l32, g32), (l16, g16) = out["fp32"], out["bf16"]
    return dict(loss_rel_error=abs(l16 - l32) / max(abs(l32), 1e-12),
                grad_cosine=float(torch.nn.functional.cosine_similarity(g16, g32, dim=0)),
                grad_norm_rel_error=float(abs(g16.norm() - g32.norm()) / g32.norm().clamp_min(1e-30)))


def alternate(step_fn, rounds: int, steps: int) -> dict:
    """Median seconds per step of `step_fn(bf16)` for fp32 and bf16, alternated round by round (one warm-up step
    each first)."""
    times = {False: [], True: []}
    for bf16 in (False, True):
        step_fn(bf16)
    for _ in range(rounds):
        for bf16 in (False, True):
            t0 = time.perf_counter()
            for _ in range(steps):
                step_fn(bf16)
            times[bf16].append((time.perf_counter() - t0) / steps)
    return dict(fp32_s=statistics.median(times[False]), bf16_s=statistics.median(times[True]))


def audio_crops(corpus: Path, sample_rate: int, batch: int, samples: int, seed: int) -> torch.Tensor:
    """`batch` crops of `samples`, one file each, drawn over every instrument's training files."""
    rng = np.random.default_rng(seed)
    files = [f for fs in corpus_files(corpus, "train").values() for f in fs]
    crops = []
    for i in rng.permutation(len(files))[:batch]:
        wav = load_audio(files[i], sample_rate)
        start = int(rng.integers(0, max(1, len(wav) - samples)))
        crops.append(np.pad(wav[start: start + samples], (0, max(0, samples - len(wav)))))
    return torch.from_numpy(np.stack(crops))[:, None].float()


def load_codec_and_discriminator(codec_file: Path):
    """The codec file's weights in fp32, and its discriminator's where one lies beside it (else a fresh one)."""
    from encodec.msstftd import MultiScaleSTFTDiscriminator

    codec = Codec.load(codec_file).float().train()
    disc = MultiScaleSTFTDiscriminator(filters=16)
    if disc_path(codec_file).is_file():
        disc.load_state_dict({k: v.float() for k, v in
                              load_checkpoint(disc_path(codec_file), DISC_FORMAT)["disc"].items()})
    return codec, disc


def codec_figures(codec_file: Path, corpus: Path, batch: int, segment: float, rounds: int, steps: int,
                  seed: int) -> dict:
    codec, disc = load_codec_and_discriminator(codec_file)
    seg = int(segment * codec.sample_rate) // codec.hop_length * codec.hop_length
    x = audio_crops(corpus, codec.sample_rate, batch, seg, seed)
    gen_loss = GeneratorLoss(codec.sample_rate, dict(mel=1.0, **DEFAULT_WEIGHTS))  # a new run's weights
    bf16 = forward_precision(torch.device("cpu"), True)
    generator = agreement(lambda ctx: gen_loss(codec, disc, x, True, ctx)[0], list(codec.parameters()), bf16)
    with torch.no_grad():
        y = codec(x)[..., : x.shape[-1]]
    discriminator = agreement(lambda ctx: discriminator_loss(disc, x, y, ctx), list(disc.parameters()), bf16)

    codec_t, disc_t = load_codec_and_discriminator(codec_file)  # weight norm refuses deepcopy: loaded again
    opt = torch.optim.Adam(codec_t.parameters(), lr=1e-4, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc_t.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def step(use_bf16: bool):
        ctx = forward_precision(torch.device("cpu"), use_bf16)
        loss, _, y = gen_loss(codec_t, disc_t, x, True, ctx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(codec_t.parameters(), 10.0)  # as train.codec's step (its --ema is off)
        opt.step()
        l_d = discriminator_loss(disc_t, x, y.detach(), ctx)
        opt_d.zero_grad(set_to_none=True)
        l_d.backward()
        opt_d.step()

    return dict(batch=batch, segment_s=round(seg / codec.sample_rate, 3), generator=generator,
                discriminator=discriminator, **alternate(step, rounds, steps))


def denoiser_figures(denoiser_file: Path, codec_file: Path, corpus: Path, batch: int, frames: int, rounds: int,
                     steps: int, seed: int) -> dict:
    model, _ = load_denoiser(denoiser_file)
    model.train()
    codec = Codec.load(codec_file).float().eval()
    wav = audio_crops(corpus, codec.sample_rate, batch, frames * codec.hop_length, seed)
    with torch.no_grad():
        x = codec.encode(wav)[..., :frames]  # the codec's statistics normalize, as shared latents are
    gen_seed = seed + 1

    def loss_fn(ctx):
        with ctx():
            return edm_loss(model, x, generator=torch.Generator().manual_seed(gen_seed))[0].mean()

    figures = agreement(loss_fn, list(model.parameters()), forward_precision(torch.device("cpu"), True))
    model_t = copy.deepcopy(model)
    ema_t = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model_t.parameters(), lr=1e-4, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)

    def step(use_bf16: bool):
        with forward_precision(torch.device("cpu"), use_bf16)():
            loss = edm_loss(model_t, x, generator=gen)[0].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model_t.parameters(), 1.0)  # as train.denoiser's step, its EMA included
        opt.step()
        ema_update(ema_t, model_t, 0.999)

    return dict(batch=batch, frames=frames, step=figures, **alternate(step, rounds, steps))


def table(results: dict) -> str:
    rows = ["| trainer, loss | batch | fp32 s/step | bf16 s/step | speed-up | loss error | gradient cosine | "
            "gradient norm error |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        timing = f"{r['batch']} | {r['fp32_s']:.3f} | {r['bf16_s']:.3f} | {r['fp32_s'] / r['bf16_s']:.2f}×"
        for part, a in ((k, v) for k, v in r.items() if isinstance(v, dict)):
            rows.append(f"| {name}, {part} | {timing} | {a['loss_rel_error']:.2%} | {a['grad_cosine']:.4f} | "
                        f"{a['grad_norm_rel_error']:.2%} |")
            timing = " | | |"
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.precision", description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--codec", type=Path, default=Path("models/codec.pt"))
    ap.add_argument("--denoiser", type=Path, default=Path("models/denoisers/clarinet.pt"))
    ap.add_argument("--codec-batch", type=int, default=8, help="the CPU recipe's (a GPU's: 32)")
    ap.add_argument("--denoiser-batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="steps per round")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for path in (args.codec, args.denoiser):
        if not path.is_file():
            raise SystemExit(f"error: {path} not found")
    try:
        results = dict(codec=codec_figures(args.codec, args.corpus, args.codec_batch, 0.53, args.rounds, args.steps,
                                           args.seed),
                       denoiser=denoiser_figures(args.denoiser, args.codec, args.corpus, args.denoiser_batch, 64,
                                                 args.rounds, args.steps, args.seed))
    except CorpusError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"bf16 autocast against fp32 on {torch.get_num_threads()} threads ({args.rounds} alternated rounds of "
          f"{args.steps} steps; loss and gradient on one batch at the shipped weights)")
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
