"""Pieces every trainer shares: device and torchrun set-up, audio pools, resumable checkpoints, progress."""
from __future__ import annotations

import atexit
import math
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.audio import load_audio
from core.io import load_checkpoint, save_atomic
from core.manifest import corpus_files  # noqa: F401 - re-exported for the trainers


# ---------------------------------------------------------------- devices and torchrun
@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def finish(self) -> None:
        """Under torchrun: wait for every rank (rank 0 is still saving when the others are done), then leave the
        group together. A rank that left alone aborted its peer now and then ("terminate called without an
        active exception", once in a clean-clone CI run)."""
        import torch.distributed as dist

        if self.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def setup_runtime(device: str = "auto", threads: int | None = None) -> Runtime:
    """CPU or CUDA; under torchrun (WORLD_SIZE > 1) joins the process group, one GPU per rank."""
    if threads:
        torch.set_num_threads(threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if world > 1:
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device == "cuda":
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
            # torn down before the interpreter's own exit: a live gloo group there aborts a rank now and then
            # ("terminate called without an active exception")
            atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed crop shapes: let cuDNN pick its fastest convolutions once
    return Runtime(torch.device(device), rank, world)


def forward_precision(device: torch.device, bf16: bool):
    """A context factory for the forward passes: bf16 autocast where asked (convolutions and matmuls in bf16; the
    weights, optimizer state and losses stay fp32, the callers cast the outputs back), a no-op otherwise."""
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def precision_name(bf16: bool) -> str:
    """What a run's record and a model file say trained it."""
    return "bf16 autocast" if bf16 else "fp32"


def as_fp32(tensors):
    """Nested lists / tuples of tensors (a discriminator's logits and feature maps) cast to fp32."""
    if isinstance(tensors, torch.Tensor):
        return tensors.float()
    return type(tensors)(as_fp32(t) for t in tensors)


def hardware(device: torch.device) -> str:
    """What trained a model, in words, for the model card: the GPU's name, or the CPU's core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{os.cpu_count()}-core CPU, {torch.get_num_threads()} threads"


def wrap_ddp(model: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
    if rt.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


# ---------------------------------------------------------------- audio pools
class AudioPool:
    """Audio files held in memory (int16) and cut into random crops with a seeded torch generator.

    With `groups` (one label per file, e.g. its instrument) every group gets the same share of crops, uniform
    over time within the group: an instrument rendered in two fonts would otherwise be trained twice as often
    as one rendered in one. `group_weights` scales a group's share (default 1 each): the instruments a model
    keeps worst can be given more of the training. `synthetic_share` of the crops are synthetic harmonic tones
    (train.synth) instead, drawn from the same generator; `dark_share` of the crops (of either kind) are darkened
    (core.degrade.darken) before the microphone chain."""

    def __init__(self, files: list[Path], sample_rate: int, min_len: int, groups: list[str] | None = None,
                 group_weights: dict[str, float] | None = None, synthetic_share: float = 0.0,
                 dark_share: float = 0.0):
        if not 0.0 <= synthetic_share < 1.0:
            raise ValueError(f"synthetic share must be in [0, 1), got {synthetic_share}")
        if not 0.0 <= dark_share <= 1.0:
            raise ValueError(f"dark share must be in [0, 1], got {dark_share}")
        self.synthetic_share, self.dark_share = synthetic_share, dark_share
        if groups is not None and len(groups) != len(files):
            raise ValueError(f"{len(groups)} group labels for {len(files)} files")
        unknown = sorted(set(group_weights or {}) - set(groups or []))
        if unknown or not all(math.isfinite(w) and w > 0 for w in (group_weights or {}).values()):
            raise ValueError(f"group weights must be > 0 and name groups of this pool ({', '.join(sorted(set(groups or [])))}); "
                             f"got {group_weights}")
        self.clips, labels = [], []
        for f, g in zip(files, groups or [""] * len(files)):
            x = load_audio(f, sample_rate)
            if len(x) >= min_len:
                self.clips.append(torch.from_numpy(np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)))
                labels.append(g)
        if not self.clips:
            raise ValueError(f"no audio clip of at least {min_len} samples among {len(files)} files")
        lens = torch.tensor([len(c) for c in self.clips], dtype=torch.float64)
        samples = dict.fromkeys(labels, 0.0)
        for n, g in zip(lens.tolist(), labels):
            samples[g] += n
        self.group_seconds = {g: n / sample_rate for g, n in samples.items()}
        per_group = torch.tensor([samples[g] for g in labels], dtype=torch.float64)
        scale = {g: (group_weights or {}).get(g, 1.0) for g in samples}
        self.group_shares = {g: w / sum(scale.values()) for g, w in scale.items()}
        share = torch.tensor([self.group_shares[g] for g in labels], dtype=torch.float64)
        self.weights = lens / per_group * share  # each group its share, then uniform over time

    @property
    def seconds(self) -> float:
        return float(sum(len(c) for c in self.clips))

    def crops(self, batch: int, length: int, gen: torch.Generator, augment: float = 0.0,
              sample_rate: int = 24_000) -> torch.Tensor:
        """[batch, 1, length] random crops; with augment = p > 0, each crop goes through the microphone chain
        (core.degrade.mic_chain, each effect with probability p), seeded from `gen`."""
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=gen)
        out = torch.empty(batch, 1, length)
        for b, i in enumerate(idx.tolist()):
            clip = self.clips[i]
            start = int(torch.randint(0, len(clip) - length + 1, (1,), generator=gen))
            out[b, 0] = clip[start:start + length].float() / 32767
        if self.synthetic_share > 0:  # no draws without it: a run without synthetic tones resumes as before
            from train.synth import harmonic_tone

            synthetic = torch.rand(batch, generator=gen) < self.synthetic_share
            rng = np.random.default_rng(crop_seed(gen))
            for b in synthetic.nonzero().flatten().tolist():
                out[b, 0] = torch.from_numpy(harmonic_tone(length, sample_rate, rng))
        if self.dark_share > 0:  # no draws without it, as above
            from core.degrade import darken

            dark = torch.rand(batch, generator=gen) < self.dark_share
            rng = np.random.default_rng(crop_seed(gen))
            for b in dark.nonzero().flatten().tolist():
                out[b, 0] = torch.from_numpy(darken(out[b, 0].numpy(), rng, sample_rate))
        if augment > 0:
            from core.degrade import mic_chain

            rng = np.random.default_rng(crop_seed(gen))
            for b in range(batch):
                out[b, 0] = torch.from_numpy(mic_chain(out[b, 0].numpy(), rng, sample_rate, augment))
        return out


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema ← ema + (1 − decay)·(model − ema): one fused update for all parameters; buffers (fixed statistics) as
    they are. Both trainers keep their exported weights this way (train.denoiser always, train.codec with --ema)."""
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)


def crop_seed(gen: torch.Generator) -> int:
    return int(torch.randint(0, 2 ** 62, (1,), generator=gen))


_FEEDER_POOL: AudioPool | None = None  # a worker process's pool (inherited through fork, never pickled)


def _feeder_init(pool: AudioPool) -> None:
    global _FEEDER_POOL
    _FEEDER_POOL = pool
    torch.set_num_threads(1)  # a worker is one core: the trainer keeps the rest
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's to handle (it saves, then stops us)


def seeded_batch(pool: AudioPool, batch: int, length: int, seed: int, augment: float, sample_rate: int) -> torch.Tensor:
    """One batch of crops drawn from its own seed: the same in a worker as in the trainer."""
    return pool.crops(batch, length, torch.Generator().manual_seed(seed), augment, sample_rate)


def _feeder_batch(*args) -> torch.Tensor:
    return seeded_batch(_FEEDER_POOL, *args)


class CropFeeder:
    """Batches of (augmented) crops of an AudioPool, made ahead by worker processes while the model trains.

    The microphone chain costs a few ms of CPU per crop: done in the training loop it caps a GPU at a few steps
    per second. Each batch comes from its own seed, drawn in order from `gen`; `generator_state()` is `gen`'s
    state before the first batch not yet handed out, so a checkpoint resumes on exactly the next batch, with
    any number of workers (0: each batch made here, when asked for)."""

    def __init__(self, pool: AudioPool, batch: int, length: int, gen: torch.Generator, augment: float = 0.0,
                 sample_rate: int = 24_000, workers: int = 0):
        self.pool, self.gen, self.args = pool, gen, (batch, length, augment, sample_rate)
        self.ahead = 2 * workers
        self.queue: list[tuple[torch.Tensor, object]] = []  # (gen's state before the batch's seed, its future)
        self.executor = None
        if workers:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # fork, as DataLoader's workers: they share the pool's memory and never touch CUDA
            self.executor = ProcessPoolExecutor(workers, multiprocessing.get_context("fork"), initializer=_feeder_init,
                                                initargs=(pool,))
            self._fill()

    def _fill(self) -> None:
        batch, length, augment, sr = self.args
        while len(self.queue) < self.ahead:
            state = self.gen.get_state()
            future = self.executor.submit(_feeder_batch, batch, length, crop_seed(self.gen), augment, sr)
            self.queue.append((state, future))

    def next(self) -> torch.Tensor:
        batch, length, augment, sr = self.args
        if self.executor is None:
            return seeded_batch(self.pool, batch, length, crop_seed(self.gen), augment, sr)
        _, future = self.queue.pop(0)
        self._fill()
        return future.result()

    def generator_state(self) -> torch.Tensor:
        return self.queue[0][0] if self.queue else self.gen.get_state()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None

    def __enter__(self) -> "CropFeeder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------- resumable training state
@dataclass
class TrainState:
    step: int = 0
    wall_seconds: float = 0.0
    history: list = field(default_factory=list)  # dicts: step, losses, validation
    runs: list = field(default_factory=list)  # one dict per run (session) that trained this state: the model card's

    def as_dict(self) -> dict:
        return dict(step=self.step, wall_seconds=self.wall_seconds, history=self.history, runs=self.runs)


def save_training(path: Path, fmt: str, state: TrainState, gen: torch.Generator | torch.Tensor, **parts) -> None:
    """Everything needed to continue exactly: modules, optimizers, generator (or its state to resume from: a
    CropFeeder's `generator_state()`), step, history."""
    blob = dict(format=fmt, state=state.as_dict(), generator=gen.get_state() if hasattr(gen, "get_state") else gen,
                torch_rng=torch.get_rng_state())
    for k, v in parts.items():
        blob[k] = v.state_dict() if hasattr(v, "state_dict") else v
    save_atomic(blob, path)


def load_training(path: Path, fmt: str, gen: torch.Generator, checkpoint: dict | None = None, **parts) -> TrainState:
    """Loads `parts` (name → module/optimizer) and the generator from `path`, or from `checkpoint`, that file as
    already read (a trainer that read its config first need not read 20 MB twice)."""
    ck = checkpoint if checkpoint is not None else load_checkpoint(path, fmt)
    for k, v in parts.items():
        if hasattr(v, "load_state_dict"):
            v.load_state_dict(ck[k])
    gen.set_state(ck["generator"])
    torch.set_rng_state(ck["torch_rng"])
    s = ck["state"]
    return TrainState(s["step"], s["wall_seconds"], s["history"], list(s.get("runs", [])))


class RunRecord:
    """This run's line in the training's list of runs: when, from which step, how many steps in how much wall time,
    on what. `entry(state)` is the list with this run's line up to date (saved with every checkpoint)."""

    def __init__(self, state: TrainState, started_from: str, **facts):
        self.prior = list(state.runs)
        self.step0, self.wall0 = state.step, state.wall_seconds
        self.line = dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), started_from=started_from,
                         from_step=state.step, **facts)

    def entry(self, state: TrainState) -> list:
        return self.prior + [dict(self.line, steps=state.step - self.step0,
                                  wall_seconds=round(state.wall_seconds - self.wall0, 1))]


def keep_going(step: int, steps: int, deadline: float | None, rt: Runtime) -> bool:
    """The loop condition. Under torchrun every rank must take the same decision (else one waits forever in an
    all-reduce): the ranks agree on the earliest stop."""
    go = step < steps and (deadline is None or time.time() < deadline)
    if rt.world > 1:
        import torch.distributed as dist

        flag = torch.tensor([0 if go else 1], device=rt.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        go = flag.item() == 0
    return go


def reseed_rank(gen: torch.Generator, seed: int, rank: int, step: int) -> None:
    """After a resume under torchrun: checkpoints keep rank 0's generator only, so each rank draws anew."""
    gen.manual_seed(int(seed) * 1_000_003 + 7919 * rank + step)


def interrupt_on_sigterm() -> None:
    """`kill PID` stops a trainer like Ctrl-C does (KeyboardInterrupt), so it saves its checkpoint before leaving:
    a background run (nohup … &) ignores SIGINT, and without this a killed run lost the steps since its last save."""
    def _raise(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


@contextmanager
def saved_on_interrupt(save, bar=None):
    """Ctrl-C (or `kill`, see interrupt_on_sigterm) inside the block: close the progress bar, save, re-raise,
    so an interrupted run keeps the steps since its last checkpoint."""
    try:
        yield
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        save()
        raise


class Clock:
    """Wall time across resumes, and a 'save every N minutes' trigger."""

    def __init__(self, state: TrainState, save_every_s: float):
        self.state, self.every = state, save_every_s
        self.t0, self.base, self.last_save = time.time(), state.wall_seconds, time.time()

    def tick(self) -> None:
        self.state.wall_seconds = self.base + time.time() - self.t0

    def due(self) -> bool:
        if time.time() - self.last_save >= self.every:
            self.last_save = time.time()
            return True
        return False


class progress_bar:
    """tqdm over steps with an ETA; under a wall-time budget the ETA is the time left before the deadline."""

    def __init__(self, desc: str, steps: int, initial: int, deadline: float | None, disable: bool = False):
        from tqdm import tqdm

        self.deadline = deadline
        self.bar = tqdm(total=None if deadline else steps, initial=initial, desc=desc, unit="step", disable=disable,
                        dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        if self.deadline and self.bar.n % 10 == 0:
            left = max(0, int(self.deadline - time.time()))
            self.bar.set_description_str(f"{self.bar.desc.split(' [')[0]} [{left // 60:02d}:{left % 60:02d} left]",
                                         refresh=False)

    def set_postfix(self, **kw) -> None:
        self.bar.set_postfix(**kw)

    def write(self, s: str) -> None:
        self.bar.write(s)

    def close(self) -> None:
        self.bar.close()
