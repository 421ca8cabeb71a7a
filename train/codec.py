"""Train the compact EnCodec-architecture codec on the corpus (all instruments).

Losses: time-domain L1 + multi-resolution log-mel L1 (+ optional relative linear-mel and log-STFT L1s); after
`--adv-start` steps the MS-STFT discriminator of ``encodec.msstftd`` adds hinge and feature-matching terms, and
itself updates on `--disc-share` of the steps. Resumable (RUN/last.pt), CPU or CUDA, torchrun-ready.

    python -m train.codec --corpus data/corpus --run runs/codec --minutes 30
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from core.cli import comma_list, instrument_weights, ranged
from core.codec import Codec, decoder_width, encoder_config, save_own_decoder
from core.io import load_checkpoint
from core.manifest import split_summary
from train.common import (AudioPool, Clock, CropFeeder, RunRecord, TrainState, as_fp32, corpus_files, ema_update,
                          forward_precision, hardware, interrupt_on_sigterm, keep_going, load_training, precision_name,
                          progress_bar, reseed_rank, save_training, saved_on_interrupt, setup_runtime, wrap_ddp)
from core.spectral import BandEnvelopeLoss, HarmonicPeakLoss, LogStftLoss, MelLoss, even_part
from train.losses import feature_matching_loss, hinge_d_loss, hinge_g_loss, si_sdr

FORMAT = "timbre-codec-training/1"
DISC_FORMAT = "timbre-codec-discriminator/1"


def disc_path(codec_file: Path) -> Path:
    """Where a codec file's discriminator lives (beside it), for resuming adversarial training from fp16 files."""
    return Path(codec_file).with_name(Path(codec_file).stem + ".disc.pt")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m train.codec", description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--run-dir", "--run", dest="run", type=Path, default=Path("runs/codec"))
    ap.add_argument("--instruments", type=comma_list(), default=None,
                    help="comma-separated (default: all in the corpus; a resumed run keeps its own)")
    ap.add_argument("--instrument-weights", type=instrument_weights, default=None, metavar="NAME=W,...",
                    help="each instrument's share of the crops in proportion to W (default 1 each), e.g. "
                         "violin=2,clarinet=2 for the ones the codec keeps worst; a resumed run keeps its record's "
                         "(\"\": every instrument alike again), a run from --init starts alike")
    ap.add_argument("--synthetic-share", type=ranged(float, 0.0, 0.9), default=None,
                    help="fraction of crops that are synthetic harmonic tones with random spectra (train.synth), "
                         "so the codec carries any harmonic balance rather than its fonts' (default "
                         f"{DEFAULT_SYNTHETIC_SHARE}; a resumed run keeps its record's)")
    ap.add_argument("--dark-share", type=ranged(float, 0.0, 1.0), default=None,
                    help="fraction of crops darkened by a roll-off from 1.5-6 kHz at 12-48 dB/octave before the "
                         "microphone chain (core.degrade.darken), so the codec keeps a darker instrument's envelope "
                         "rather than giving back its fonts' (default 0; a resumed run keeps its record's)")
    ap.add_argument("--freeze-encoder", action=argparse.BooleanOptionalAction, default=None,
                    help="train the decoder (and discriminator) only: the latents, their statistics and every "
                         "denoiser trained on them stay valid, so a better decoder ships without retraining them "
                         "(a resumed run, or one from a frozen run's file, keeps its record's choice unless "
                         "--no-freeze-encoder is given; needs --init or a run to resume)")
    ap.add_argument("--freeze-decoder", action=argparse.BooleanOptionalAction, default=None,
                    help="train the encoder (and discriminator) only: the encoder learns to give the decoder the "
                         "latents it renders right (it can render the hollow tone it is not given, docs/HISTORY.md), "
                         "so the latent space stays the decoder's and keeps its statistics; the latents still move, "
                         "by the `drift` the run logs (RMS change since this process started, in units of the "
                         "statistics' std; python -m evaluation.ceiling --drift-from measures it from any codec), "
                         "which says whether the denoisers trained on them can stay (kept as --freeze-encoder is; "
                         "either one given thaws the other; needs --init or a run)")
    ap.add_argument("--n-filters", type=int, default=16)
    ap.add_argument("--decoder-filters", type=ranged(int, 1, 256), default=None, metavar="N",
                    help="the decoder's base width, where it differs from --n-filters (default: the run's or the "
                         "--init file's, else --n-filters). Wider than the --init file's decoder: that decoder is "
                         "widened without changing its output (train.widen), to go on with more capacity; with "
                         "--freeze-encoder the latent space, and every denoiser trained on it, stays")
    ap.add_argument("--dimension", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--segment", type=float, default=0.53, help="seconds per training crop")
    ap.add_argument("--lr", type=float, default=None,
                    help="Adam rate of codec and discriminator (default 1e-3 for a new run; a resumed run keeps its "
                         "checkpoint's rate unless this is given: lower it to anneal)")
    ap.add_argument("--steps", type=int, default=1_000_000, help="stop after this many steps in total")
    ap.add_argument("--minutes", type=float, default=None, help="stop after this much wall time (this run)")
    ap.add_argument("--adv-start", type=int, default=None,
                    help="step at which the discriminator joins (after a short reconstruction-only warm-up: "
                         f"without it this codec smears harmonics under a noise floor); default {DEFAULT_ADV_START} "
                         "for a new run, a resumed or initialized run keeps its record's")
    ap.add_argument("--augment", type=float, default=0.5,
                    help="probability of each microphone effect (room, EQ colour, noise) per crop; 0: clean crops")
    ap.add_argument("--mel-weight", type=float, default=1.0)
    ap.add_argument("--stft-weight", type=ranged(float, 0.0), default=None,
                    help="weight of a linear-frequency log-STFT L1 (core.spectral.LogStftLoss): resolves the upper "
                         f"harmonics that mel bands lump together (default {DEFAULT_WEIGHTS['stft']}; a resumed run "
                         "keeps its record's, as for the three below and --disc-share)")
    ap.add_argument("--lin-weight", type=ranged(float, 0.0), default=None,
                    help="weight of a relative linear-mel L1 (core.spectral.MelLoss.log_and_linear): the loud "
                         "harmonics that make a timbre, which the log-mel loss weighs like the quiet floor (default "
                         f"{DEFAULT_WEIGHTS['lin']}; a resumed run keeps its record's)")
    ap.add_argument("--peak-weight", type=ranged(float, 0.0), default=None,
                    help="weight of an L1 between log levels at the spectral peaks of input and output "
                         "(core.spectral.HarmonicPeakLoss): each harmonic alike, the quiet ones too, such as the "
                         f"even harmonics a hollow clarinet lacks (default {DEFAULT_WEIGHTS['peak']}; a resumed run "
                         "keeps its record's)")
    ap.add_argument("--band-weight", type=ranged(float, 0.0), default=None,
                    help="weight of an L1 between log band levels of input and output above 1 kHz, frame by frame "
                         "(core.spectral.BandEnvelopeLoss): each band alike down to 70 dB under the loudest, such as "
                         "the floor the codec lays over a dark instrument's 5-10 kHz (default "
                         f"{DEFAULT_WEIGHTS['band']}; a resumed run keeps its record's)")
    ap.add_argument("--polarity-weight", type=ranged(float, 0.0), default=None,
                    help="weight of the even part's level (core.spectral.even_part, (C(x) + C(-x)) / 2, against x "
                         "in linear mel magnitudes): what of the output does not flip with the input's sign, the "
                         "even-order products that fill in a hollow clarinet's even harmonics; costs a second "
                         f"generator pass (default {DEFAULT_WEIGHTS['polarity']}; a resumed run keeps its record's)")
    ap.add_argument("--adv-weight", type=ranged(float, 0.0), default=None,
                    help=f"weight of the generator's hinge loss (default {DEFAULT_WEIGHTS['adv']})")
    ap.add_argument("--fm-weight", type=ranged(float, 0.0), default=None,
                    help=f"weight of the relative feature-matching loss (default {DEFAULT_WEIGHTS['fm']})")
    ap.add_argument("--disc-share", type=ranged(float, 0.01, 1.0), default=None,
                    help="fraction of adversarial steps that also update the discriminator, spread evenly (default "
                         "2/3, EnCodec's rate at 24 kHz; the discriminator is most of a CPU step)")
    ap.add_argument("--ema", type=ranged(float, 0.0, 0.99999), default=None, metavar="DECAY",
                    help="also keep an exponential moving average of the codec's weights (each step: ema += "
                         "(1 − DECAY)·(w − ema)), which --export and the snapshots then write: an average over the last "
                         "~1/(1 − DECAY) steps of a batch-8 adversarial run rather than one draw of them (0: off, "
                         "the default for a new run; a resumed run or a file's keeps its record's)")
    ap.add_argument("--save-every", type=float, default=120, help="seconds between checkpoints")
    ap.add_argument("--snapshot-every", type=ranged(int, 1), default=None, metavar="STEPS",
                    help="also keep a codec file (fp16, as --export writes) every STEPS steps in RUN/snapshots/: an "
                         "adversarial run's last step is one draw of many, so choose among them on a split the bar "
                         "does not judge (python -m evaluation.ceiling --split valid)")
    ap.add_argument("--max-files", type=int, default=None, help="at most this many files per instrument")
    ap.add_argument("--init", type=Path, default=None, metavar="CODEC_FILE",
                    help="start from a codec file's weights (fresh optimizers) when RUN has no checkpoint")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--bf16", action="store_true",
                    help="the codec's and the discriminator's forward passes in bf16 autocast (weights, optimizers "
                         "and losses stay fp32): faster on a CPU with bf16 instructions and on a GPU; each run's "
                         "record says which precision trained it")
    ap.add_argument("--loader-workers", type=int, default=None,
                    help="processes that cut and augment crops ahead of the trainer (default: 0 on a CPU, where the "
                         "cores are the trainer's; up to 8 with a GPU, which the in-loop microphone chain would starve)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    return ap


DEFAULT_LR = 1e-3
DEFAULT_ADV_START = 3_000
DEFAULT_DISC_SHARE = 2 / 3
DEFAULT_SYNTHETIC_SHARE = 0.0
# Feature matching carries what the mel loss lumps together (a bright instrument's upper harmonics): at fm 0.3 its
# gradient was 1/60 of the mel loss's and the violin stayed 10 dB dark at 4-8 kHz through 10k GPU steps; at fm 10
# (adv 0.3) 3.8k steps took it to +1.6 dB and the judge from 0 to 8/8 (docs/HISTORY.md). EnCodec gives both 3x the
# reconstruction's share of the gradient.
DEFAULT_WEIGHTS = dict(stft=0.0, lin=0.0, peak=0.0, band=0.0, polarity=0.0, adv=0.3, fm=10.0)


def resolve_recorded(args, runs: list[dict], resuming: bool) -> None:
    """Options not given take the run record's value (a resumed run goes on as it was), else the default. The crop
    shares carry over when resuming only: a run from a file draws its own (a GPU pack holds audio in proportion)."""
    last = runs[-1] if runs else {}
    # one half frozen on the command line thaws the other (a file from the other kind of run would refuse both)
    if args.freeze_decoder and args.freeze_encoder is None:
        args.freeze_encoder = False
    if args.freeze_encoder and args.freeze_decoder is None:
        args.freeze_decoder = False
    if args.disc_share is None:
        args.disc_share = float(last.get("disc_share", DEFAULT_DISC_SHARE))
    if args.instrument_weights is None:
        if resuming and "instrument_weights" not in last and str(last.get("crops", "")).startswith("shares"):
            # records before session 25 kept the shares as text only: say so rather than change them silently
            raise SystemExit(f"error: the run this goes on from drew crops in {last['crops'][7:]} and its record "
                             "does not keep the weights: give them again with --instrument-weights (\"\": every "
                             "instrument alike)")
        args.instrument_weights = dict(last.get("instrument_weights") or {}) if resuming else {}
    if args.synthetic_share is None:
        args.synthetic_share = float(last.get("synthetic_share", DEFAULT_SYNTHETIC_SHARE))
    if args.dark_share is None:
        args.dark_share = float(last.get("dark_share", 0.0))
    if args.ema is None:
        args.ema = float(last.get("ema", 0.0))
    if args.freeze_encoder is None:
        args.freeze_encoder = bool(last.get("freeze_encoder", False))
    if args.freeze_decoder is None:
        args.freeze_decoder = bool(last.get("freeze_decoder", False))
    for key in DEFAULT_WEIGHTS:
        if getattr(args, f"{key}_weight") is None:
            setattr(args, f"{key}_weight", float((last.get("weights") or {}).get(key, DEFAULT_WEIGHTS[key])))


def loss_weights(args) -> dict:
    """The generator's loss weights, as the run record keeps them (time-domain L1: 1)."""
    return dict(mel=args.mel_weight, stft=args.stft_weight, lin=args.lin_weight, peak=args.peak_weight,
                band=args.band_weight, polarity=args.polarity_weight, adv=args.adv_weight, fm=args.fm_weight)


def generator_adversarial_losses(disc, x: torch.Tensor, y: torch.Tensor,
                                 precision=contextlib.nullcontext) -> tuple[torch.Tensor, torch.Tensor]:
    """Hinge and feature-matching losses of the output y against the real x, through a frozen discriminator:
    the generator step needs gradients into y only, and the discriminator's weight gradients cost a quarter of it.
    `precision`: the forward passes' context (train.common.forward_precision); the losses are taken in fp32."""
    disc.requires_grad_(False)
    try:
        with precision():
            fake_logits, fake_fmaps = as_fp32(disc(y))
            with torch.no_grad():
                _, real_fmaps = as_fp32(disc(x))
    finally:
        disc.requires_grad_(True)
    return hinge_g_loss(fake_logits), feature_matching_loss(real_fmaps, fake_fmaps)


class GeneratorLoss(torch.nn.Module):
    """The codec's training loss on a batch x: time-domain L1 + the weighted spectral terms (a weight of 0 skips
    its term) + the adversarial ones from the discriminator, frozen (the plain module, not a DDP wrapper)."""

    def __init__(self, sample_rate: int, weights: dict):
        super().__init__()
        self.weights = dict(weights)
        self.mel = MelLoss(sample_rate)
        self.stft = LogStftLoss()
        self.peak = HarmonicPeakLoss(sample_rate=sample_rate)
        self.band = BandEnvelopeLoss(sample_rate=sample_rate)

    def forward(self, model, disc, x: torch.Tensor, adversarial: bool,
                precision=contextlib.nullcontext) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """(loss, its terms detached, the output y in fp32); `precision`: the forward passes' context."""
        w = self.weights
        with precision():
            y = model(x)[..., : x.shape[-1]]
        y = y.float()
        l_time = (y - x).abs().mean()
        l_mel, l_lin = self.mel.log_and_linear(y, x)  # the linear term is logged at any weight, 0 included
        loss = l_time + w["mel"] * l_mel + w["lin"] * l_lin
        logs = dict(time=l_time, mel=l_mel, lin=l_lin)
        for key in ("stft", "peak", "band"):
            if w[key]:
                logs[key] = getattr(self, key)(y, x)
                loss = loss + w[key] * logs[key]
        if w["polarity"]:  # the negated crop's pass feeds this term alone
            with precision():
                y_neg = model(-x)[..., : x.shape[-1]]
            logs["polarity"] = self.mel.relative_level(even_part(y, y_neg.float()), x)
            loss = loss + w["polarity"] * logs["polarity"]
        if adversarial:
            logs["g"], logs["fm"] = generator_adversarial_losses(disc, x, y, precision)
            loss = loss + w["adv"] * logs["g"] + w["fm"] * logs["fm"]
        # the caller reads them every 50 steps: no GPU sync per step
        return loss, {k: v.detach() for k, v in logs.items()}, y


def discriminator_loss(disc, x: torch.Tensor, y: torch.Tensor, precision=contextlib.nullcontext) -> torch.Tensor:
    """The discriminator's hinge loss, real x against the codec's y (detached), in fp32."""
    with precision():
        logits, _ = disc(torch.cat([x, y]))  # one forward per step: what DDP expects
    logits = as_fp32(logits)
    return hinge_d_loss([lg[: len(x)] for lg in logits], [lg[len(x):] for lg in logits])


def disc_updates(step: int, share: float) -> bool:
    """Whether adversarial step `step` updates the discriminator: `share` of the steps, evenly spread
    (step k updates when floor((k + 1)·share) > floor(k·share)); a function of the step, so a resumed run keeps it."""
    return math.floor((step + 1) * share + 1e-9) > math.floor(step * share + 1e-9)


def batch_latent_drift(codec: Codec, encoder_at_start: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """RMS change of the normalized latents of x since `encoder_at_start`: (z − z₀) / std, over frames and channels
    (1 is a whole standard deviation, the scale at which a denoiser trained on z₀ no longer knows its data)."""
    return ((codec.encoder(x) - encoder_at_start(x)) / codec.latent_std[:, None]).pow(2).mean().sqrt()


def frozen_copy(codec: Codec) -> Codec:
    """A gradient-free copy of the codec on its device (weight norm's tensors refuse copy.deepcopy)."""
    twin = Codec.compact(**codec.config)
    twin.load_state_dict(codec.state_dict())
    return twin.to(codec.latent_std.device).requires_grad_(False).eval()


def decoder_widening(init: Codec, codec: Codec) -> int | None:
    """The init file's decoder width where `codec` differs from it only by a wider decoder (else None)."""
    narrow, wide = decoder_width(init.config), decoder_width(codec.config)
    return narrow if encoder_config(init.config) == encoder_config(codec.config) and wide > narrow else None


def widened(init: Codec, config: dict, gen: torch.Generator) -> Codec:
    """`init` with its decoder widened to `config`'s width, computing the same (train.widen); the encoder and the
    latent statistics as they were."""
    from train.widen import widen_decoder_state

    wide = Codec.compact(**config)
    state = {k: v for k, v in init.state_dict().items() if not k.startswith("decoder.")}
    decoder = widen_decoder_state(init.decoder.state_dict(), wide.decoder.state_dict(), gen)
    wide.load_state_dict(state | {f"decoder.{k}": v for k, v in decoder.items()})
    wide.train_info = dict(init.train_info)
    return wide


def set_lr(lr: float, *opts: torch.optim.Optimizer) -> None:
    """Every parameter group of every optimizer to `lr`."""
    for o in opts:
        for g in o.param_groups:
            g["lr"] = lr


def train(args) -> Codec:
    rt = setup_runtime(args.device, args.threads)
    last = args.run / "last.pt"
    resumed = load_checkpoint(last, FORMAT) if last.is_file() else None
    if args.instruments is None and resumed is not None:  # a resumed run draws from the instruments it drew from
        args.instruments = (resumed.get("args") or {}).get("instruments")
    instruments = args.instruments or None
    by_instrument = corpus_files(args.corpus, "train", instruments)
    files = [f for fs in by_instrument.values() for f in fs[: args.max_files]]
    groups = [name for name, fs in by_instrument.items() for _ in fs[: args.max_files]]
    if not files:
        raise SystemExit(f"error: no training audio in {args.corpus}")
    with torch.random.fork_rng(devices=[]):  # loading builds a codec, drawing weights it overwrites: not our draws
        init = Codec.load(args.init) if args.init and resumed is None else None
    if args.decoder_filters is None:  # as the run, or the file it starts from, has it
        args.decoder_filters = (resumed["config"] if resumed else init.config if init else {}).get("decoder_filters")
    torch.manual_seed(args.seed)  # the same initial weights on every rank and every run
    codec = Codec.compact(n_filters=args.n_filters, dimension=args.dimension, decoder_filters=args.decoder_filters)
    if resumed and resumed["config"] != codec.config:  # a width is widened from --init, never in a run
        raise SystemExit(f"error: {last} has config {resumed['config']}, this run {codec.config}: resume it with "
                         "its own --n-filters / --dimension / --decoder-filters")
    seg = int(args.segment * codec.sample_rate) // codec.hop_length * codec.hop_length
    gen = torch.Generator().manual_seed(args.seed + rt.rank)
    codec.to(rt.device)
    from encodec.msstftd import MultiScaleSTFTDiscriminator

    disc = MultiScaleSTFTDiscriminator(filters=16).to(rt.device)
    lr = args.lr if args.lr is not None else DEFAULT_LR
    opt = torch.optim.Adam(codec.parameters(), lr=lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.9))
    state, recorded, kept_stats, widened_from, ema_state = TrainState(), None, None, None, None
    if last.is_file():
        state = load_training(last, FORMAT, gen, checkpoint=resumed, codec=codec, disc=disc, opt=opt, opt_d=opt_d)
        resolve_recorded(args, state.runs, resuming=True)
        if args.freeze_encoder or args.freeze_decoder:  # the space the checkpoint's statistics were fitted in
            kept_stats = (resumed.get("train_info") or {}).get("latent_stats")
        ema_state = resumed.get("ema")
        del resumed  # its tensors are loaded; a CUDA run would otherwise hold a second copy
        was = opt.param_groups[0]["lr"]
        if args.lr is not None:
            set_lr(args.lr, opt, opt_d)
        if rt.main:
            print(f"resumed from {last} at step {state.step}, rate {opt.param_groups[0]['lr']:g}"
                  + (f" (was {was:g})" if opt.param_groups[0]["lr"] != was else ""))
        if rt.world > 1:
            reseed_rank(gen, args.seed, rt.rank, state.step)
    elif args.init:
        if init.config != codec.config:
            widened_from = decoder_widening(init, codec)
            if widened_from is None:
                raise SystemExit(f"error: {args.init} has config {init.config}, this run {codec.config}")
            init = widened(init, codec.config, torch.Generator().manual_seed(args.seed))
        state.step = int(init.train_info.get("steps", 0))
        state.wall_seconds = float(init.train_info.get("wall_seconds", 0.0))
        state.runs = list(init.train_info.get("session_runs", []))
        resolve_recorded(args, state.runs, resuming=False)  # a file from a frozen-encoder run goes on frozen
        # a frozen encoder keeps the init's latent space, so its statistics stay true, and a frozen decoder keeps
        # the space it renders (the encoder drifts in it, logged); otherwise they go stale
        keep = args.freeze_encoder or args.freeze_decoder
        codec.load_state_dict({k: v for k, v in init.state_dict().items()
                               if keep or not k.startswith("latent_")}, strict=False)
        kept_stats = init.train_info.get("latent_stats") if keep else None
        recorded = init.train_info.get("adv_start")  # a file from before run records
        disc_file = disc_path(args.init)
        if disc_file.is_file():  # an adversarial run continues with its discriminator, not a fresh one
            disc.load_state_dict({k: v.float() for k, v in load_checkpoint(disc_file, DISC_FORMAT)["disc"].items()})
        if rt.main:
            print(f"initialized from {args.init} (step {state.step}; "
                  f"{'discriminator from ' + str(disc_file) if disc_file.is_file() else 'fresh discriminator'}; "
                  f"optimizer state starts fresh)")
    if args.adv_start is None:  # the record says when this codec's adversarial stage began: keep it true
        recorded = state.runs[-1].get("adversarial_from", recorded) if state.runs else recorded
        args.adv_start = int(recorded) if recorded is not None else DEFAULT_ADV_START
    resolve_recorded(args, state.runs, resuming=last.is_file())
    # the average starts at the weights this run starts from (a file's are already trained: no warm-up to skip)
    with torch.random.fork_rng(devices=[]):  # building the copy draws weights it overwrites: not the run's draws
        ema = frozen_copy(codec) if args.ema else None
    if ema is not None and ema_state is not None:
        ema.load_state_dict(ema_state)
    weights = args.instrument_weights
    unknown = sorted(set(weights) - set(by_instrument))
    if unknown:
        raise SystemExit(f"error: --instrument-weights (given or recorded) names {', '.join(unknown)}, "
                         f"not in the corpus ({', '.join(sorted(by_instrument))})")
    if args.freeze_encoder and args.freeze_decoder:
        raise SystemExit("error: --freeze-encoder and --freeze-decoder together leave nothing to train "
                         "(a run or file goes on frozen as it was: --no-freeze-encoder / --no-freeze-decoder)")
    for part in ("encoder", "decoder"):
        if getattr(args, f"freeze_{part}") and not (last.is_file() or args.init):
            raise SystemExit(f"error: --freeze-{part} keeps a{'n' * (part == 'encoder')} {part}: give --init "
                             "CODEC_FILE or a run to resume")
    # Adam skips parameters that get no gradient: a frozen half is never stepped, with one optimizer either way
    codec.encoder.requires_grad_(not args.freeze_encoder)
    codec.decoder.requires_grad_(not args.freeze_decoder)
    # where the latents stood when this process started, to log how far the encoder moves them in the space whose
    # statistics it keeps (the denoisers' concern); a run that refits them is a new space, with nothing to compare
    encoder_at_start = frozen_copy(codec).encoder if args.freeze_decoder else None
    # every instrument its share of crops, and synthetic tones theirs
    pool = AudioPool(files, codec.sample_rate, seg, groups, weights, args.synthetic_share, args.dark_share)
    model, disc_p = wrap_ddp(codec, rt), wrap_ddp(disc, rt)
    run = RunRecord(state, str(last) if last.is_file() else str(args.init or "scratch"), batch=args.batch * rt.world,
                    lr=opt.param_groups[0]["lr"], adversarial_from=args.adv_start, augment=args.augment,
                    disc_share=round(args.disc_share, 4), synthetic_share=args.synthetic_share,
                    dark_share=args.dark_share, ema=args.ema,
                    instrument_weights=dict(weights),
                    **({"decoder_widened_from": widened_from} if widened_from else {}),
                    freeze_encoder=args.freeze_encoder, freeze_decoder=args.freeze_decoder,
                    weights=loss_weights(args),
                    device=str(rt.device), hardware=hardware(rt.device), threads=args.threads,
                    precision=precision_name(args.bf16),
                    corpus=split_summary(args.corpus, "train", instruments),
                    crops=("each instrument an equal share" if not weights else "shares " + ", ".join(
                        f"{g} {s:.0%}" for g, s in sorted(pool.group_shares.items()))))
    precision = forward_precision(rt.device, args.bf16)
    generator_loss = GeneratorLoss(codec.sample_rate, loss_weights(args)).to(rt.device)
    clock = Clock(state, args.save_every)
    deadline = time.time() + args.minutes * 60 if args.minutes else None
    bar = progress_bar("codec", args.steps, state.step, deadline, disable=not rt.main)

    def save():
        if rt.main:
            state.runs = run.entry(state)
            codec.train_info = dict(session_runs=state.runs, steps=state.step,
                                    wall_seconds=round(state.wall_seconds, 1),
                                    hours_audio=round(pool.seconds / codec.sample_rate / 3600, 3),
                                    device=str(rt.device), hardware=hardware(rt.device), world=rt.world, segment=seg,
                                    batch=args.batch, augment=args.augment, adv_start=args.adv_start,
                                    **({"latent_stats": kept_stats} if kept_stats else {}))
            save_training(last, FORMAT, state, resume_state, codec=codec, disc=disc, opt=opt, opt_d=opt_d,
                          **({"ema": ema} if ema is not None else {}), config=codec.config, train_info=codec.train_info,
                          args=vars(args) | {"corpus": str(args.corpus), "run": str(args.run)})

    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    workers = args.loader_workers if args.loader_workers is not None else (
        0 if rt.device.type == "cpu" else max(1, min(8, ((os.cpu_count() or 2) - 2 * ranks_here) // ranks_here)))
    feeder = CropFeeder(pool, args.batch, seg, gen, args.augment, codec.sample_rate, workers)
    resume_state = feeder.generator_state()  # what a checkpoint saved now resumes from: the next uncounted batch
    interrupt_on_sigterm()
    with feeder, saved_on_interrupt(save, bar):
        while keep_going(state.step, args.steps, deadline, rt):
            resume_state = feeder.generator_state()  # an interrupt inside this step redoes this batch
            x = feeder.next().to(rt.device, non_blocking=True)
            adversarial = state.step >= args.adv_start
            loss, logs, y = generator_loss(model, disc, x, adversarial, precision)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(codec.parameters(), 10.0)
            opt.step()
            if ema is not None:
                ema_update(ema, codec, args.ema)
            if adversarial and disc_updates(state.step - args.adv_start, args.disc_share):
                l_d = discriminator_loss(disc_p, x, y.detach(), precision)
                opt_d.zero_grad(set_to_none=True)
                l_d.backward()
                opt_d.step()
                logs["d"] = l_d.detach()
            state.step += 1
            resume_state = feeder.generator_state()
            clock.tick()
            bar.update(1)
            if state.step % 50 == 0:
                with torch.no_grad():
                    logs["si_sdr"] = si_sdr(y[:, 0], x[:, 0]).mean()
                    if encoder_at_start is not None:
                        logs["drift"] = batch_latent_drift(codec, encoder_at_start, x)
                logs = {k: float(v) for k, v in logs.items()}
                state.history.append(dict(step=state.step, wall=round(state.wall_seconds, 1), **logs))
                bar.set_postfix(mel=f"{logs['mel']:.3f}", sdr=f"{logs['si_sdr']:.1f}",
                                **({"drift": f"{logs['drift']:.3f}"} if "drift" in logs else {}))
            snapshot = bool(args.snapshot_every) and state.step % args.snapshot_every == 0
            if clock.due() or snapshot:  # the clock first: a snapshot's save is also the one it was due for
                save()
            if snapshot and rt.main:  # the export of the checkpoint just saved, so a snapshot is what --export gives
                codec_file_from_run(last, snapshot_path(args.run, state.step))
        bar.close()
        save()  # before the feeder closes
    rt.finish()
    return codec


@torch.no_grad()
def evaluate_codec(codec: Codec, corpus: Path, split: str = "test", seconds: float = 6.0, max_files: int = 3,
                   instruments: list[str] | None = None) -> dict:
    """Round trip on held-out audio: mel distance, SI-SDR and pitch accuracy (PESTO, ±50 cents on frames voiced in
    both; core.pitch) per instrument and overall."""
    import numpy as np

    from core.audio import load_audio
    from core.pitch import PitchTracker, melody_score

    tracker = PitchTracker()

    mel = MelLoss(codec.sample_rate)
    codec = codec.float().eval()
    per, rows = {}, []
    files = corpus_files(corpus, split, instruments)
    for inst, fs in tqdm(sorted(files.items()), desc="codec eval", unit="instrument"):
        r = []
        for f in fs[:max_files]:
            x = load_audio(f, codec.sample_rate)[: int(seconds * codec.sample_rate)]
            xt = torch.from_numpy(x).view(1, 1, -1)
            y = codec(xt)[..., : xt.shape[-1]]
            r.append(dict(mel=float(mel(y, xt)), si_sdr=float(si_sdr(y[:, 0], xt[:, 0])),
                          pitch=melody_score(x, y[0, 0].numpy(), codec.sample_rate, tracker).pitch_acc))
        per[inst] = {k: float(np.nanmean([v[k] for v in r])) for k in ("mel", "si_sdr", "pitch")}
        rows += r
    # a clip with no frame voiced in both has no pitch score (nan): it is left out, not counted as 0
    overall = {k: float(np.nanmean([v[k] for v in rows])) for k in ("mel", "si_sdr", "pitch")}
    return dict(split=split, seconds_per_file=seconds, files_per_instrument=max_files, overall=overall,
                per_instrument=per)


def snapshot_path(run: Path, step: int) -> Path:
    """Where --snapshot-every keeps the codec file of this step."""
    return run / "snapshots" / f"codec-{step:07d}.pt"


def codec_from_run(training_checkpoint: Path, raw: bool = False) -> tuple[Codec, dict]:
    """(the run's codec, its training checkpoint): its moving average where the run keeps one (--ema), unless raw
    (the last step's own weights), with the run's record in train_info."""
    ck = load_checkpoint(training_checkpoint, FORMAT)
    codec = Codec.compact(**ck["config"])
    averaged = "ema" in ck and not raw
    codec.load_state_dict(ck["ema"] if averaged else ck["codec"])
    # new weights, new latent space: statistics (python -m train.latents) and denoisers must follow, unless the
    # encoder was frozen (its run kept the statistics in train_info)
    codec.train_info = dict(ck.get("train_info") or {}, steps=ck["state"]["step"],
                            wall_seconds=round(ck["state"]["wall_seconds"], 1),
                            last=ck["state"]["history"][-1] if ck["state"]["history"] else None,
                            args={k: str(v) for k, v in (ck.get("args") or {}).items()},
                            weights="moving average" if averaged else "last step")
    return codec, ck


def own_decoder_from_run(training_checkpoint: Path, instrument: str, out: Path, raw: bool = False) -> Codec:
    """An instrument's own decoder file (core.codec.save_own_decoder) from a run that kept its encoder frozen: the
    bundle then decodes every output bound for that instrument with it, every denoiser unchanged."""
    codec, ck = codec_from_run(training_checkpoint, raw)
    if not (ck.get("args") or {}).get("freeze_encoder"):
        raise SystemExit(f"error: {training_checkpoint}: its run trained the encoder too; an own decoder comes from "
                         "a run with the encoder frozen (--init CODEC_FILE --freeze-encoder), so it decodes that "
                         "codec's latents")
    if not codec.stats_fitted:
        raise SystemExit(f"error: {training_checkpoint}: its codec has no latent statistics (start the run from a "
                         "codec file that has them)")
    save_own_decoder(codec, instrument, out)
    return codec


def codec_file_from_run(training_checkpoint: Path, out: Path, half: bool = True, with_disc: bool = False,
                        raw: bool = False) -> Codec:
    """A codec file (weights only, fp16 by default: small enough for the repository) from a training checkpoint:
    its moving average where the run keeps one (--ema), unless raw (the last step's own weights); with_disc: the
    discriminator too, beside it (disc_path), so a later session resumes the adversarial stage."""
    from core.io import save_atomic

    codec, ck = codec_from_run(training_checkpoint, raw)
    codec.save(out, half=half)
    if with_disc:
        save_atomic(dict(format=DISC_FORMAT, step=ck["state"]["step"],
                         disc={k: v.half() if half and v.is_floating_point() else v for k, v in ck["disc"].items()}),
                    disc_path(out))
    return codec


def main(argv=None) -> int:
    ap = build_parser()
    ap.add_argument("--export", type=Path, default=None, metavar="CODEC_FILE",
                    help="do not train: write RUN/last.pt as a codec file (fp16) to this path")
    ap.add_argument("--raw", action="store_true",
                    help="with --export: the last step's own weights, not the run's moving average (--ema)")
    ap.add_argument("--own-decoder", default=None, metavar="INSTRUMENT",
                    help="with --export: write the run's decoder as INSTRUMENT's own decoder file (a run from "
                         "--init CODEC_FILE with the encoder frozen), which python -m export.onnx takes beside the "
                         "codec: the bundle decodes what is bound for INSTRUMENT with it")
    ap.add_argument("--with-disc", action="store_true",
                    help="with --export: also write the discriminator beside the codec file (to resume from it)")
    ap.add_argument("--evaluate", type=Path, default=None, metavar="CODEC_FILE",
                    help="do not train: score this codec file's round trip on the test split and store the figures")
    args = ap.parse_args(argv)
    if args.evaluate:
        codec = Codec.load(args.evaluate)
        report = evaluate_codec(codec, args.corpus)
        codec.train_info["evaluation"] = report
        codec.save(args.evaluate)
        o = report["overall"]
        print(f"test round trip: mel distance {o['mel']:.3f}, SI-SDR {o['si_sdr']:.1f} dB, "
              f"pitch agreement {100 * o['pitch']:.1f}%")
        for inst, v in report["per_instrument"].items():
            print(f"  {inst:12s} mel {v['mel']:.3f}  SI-SDR {v['si_sdr']:6.1f} dB  pitch {100 * v['pitch']:.1f}%")
        return 0
    if args.own_decoder and not args.export:
        ap.error("--own-decoder goes with --export FILE")
    if args.own_decoder:
        own_decoder_from_run(args.run / "last.pt", args.own_decoder, args.export, raw=args.raw)
        print(f"{args.own_decoder}'s own decoder → {args.export}")
        return 0
    if args.export:
        codec_file_from_run(args.run / "last.pt", args.export, with_disc=args.with_disc, raw=args.raw)
        print(f"codec file → {args.export}")
        return 0
    codec = train(args)
    print(f"codec training stopped at step {codec.train_info.get('steps')}; checkpoint {args.run / 'last.pt'}")
    return 0


if __name__ == "__main__":
    from core.cli import run_main

    sys.exit(run_main(main))
