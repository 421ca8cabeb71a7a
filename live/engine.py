"""StreamingEngine: the stream side of the effect, around the model side (live.hop.HopProcessor).

The engine owns what a stream needs and the models do not: the rings the audio callback writes and reads, the
two resamplers (device rate ↔ 24 kHz), the worker thread, live parameter changes (applied between hops), the
dry fallback when a model fails or a hop is late, and the counters (errors, dropouts, levels, timings).

Everything is driven by sample counts, never by wall time, so the same input gives the same output sample
for sample whatever the block sizes: `process()` (offline "as live" rendering, tests) and the live worker
thread (`push` / `work` / `pull`) run the same code.

Delay, input to output, in device samples (`delay`): the output ring starts with `prefill` samples of silence
= one hop (a hop's output exists only once its H·F input samples have arrived) + the resamplers' hold-back
+ the live compute margin; the hop processor adds its crossfade look-ahead of C·F samples (see live.hop), a
transposing preset the pitch shifter's frame (`shift_delay`, core.pitchshift) and a FIR resampler its group
delay (`filter_delay`).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from core.pitchshift import PitchShifter, RegisterFold
from live.bundle import Bundle
from live.hop import DC_CUTOFF_HZ, GATE_THRESHOLD_DB, HopError, HopProcessor
from live.params import LIVE, ParamError, check_values
from live.preset import Preset, PresetError
from live.resample import StreamResampler, holdback
from live.rings import RingBuffer

LIVE_THREADS = 1  # onnxruntime intra-op threads per model when playing: on 2 cores 1 beat 2 (RTF 0.21 vs 0.23)


class EngineError(RuntimeError):
    """A model failed inside the engine while it was asked to fail loudly (offline rendering)."""


@dataclass
class EngineStats:
    hops: int = 0
    dry_hops: int = 0  # hops that went out dry: late (live catch-up) or a model failed (see errors)
    underruns: int = 0  # callback found the output ring short (samples)
    overruns: int = 0  # input ring full (samples dropped; counted by the callback)
    output_overruns: int = 0  # output ring full (counted by the worker)
    errors: int = 0  # hops that failed inside a model (output dry; see StreamingEngine.error)
    gated_hops: int = 0  # hops whose wet path the input gate turned down (quiet input)
    last_hop_ms: float = 0.0
    rtf: float = 0.0  # compute time / audio time, smoothed
    in_peak: float = 0.0
    out_peak: float = 0.0
    in_rms: float = 0.0
    out_rms: float = 0.0
    timings_ms: dict = field(default_factory=dict)  # the last hop's encode / bridge / decode
    total_ms: dict = field(default_factory=dict)  # the same summed over all hops, and the resamplers' time


class StreamingEngine:
    def __init__(self, bundle: Bundle, preset: Preset, device_rate: int | None = None, margin_ms: float = 0.0,
                 resample_quality: str = "auto", input_gain: float = 1.0, bypass: bool = False,
                 fail_fast: bool = False, gate_threshold_db: float | None = GATE_THRESHOLD_DB,
                 dc_cutoff_hz: float | None = DC_CUTOFF_HZ):
        """fail_fast: a model error raises EngineError (offline rendering) instead of sending the hop out dry
        (live, where the audio must go on). gate_threshold_db / dc_cutoff_hz: None turns the input gate / the
        DC blocker on the wet path off."""
        preset.validate(bundle.instruments, max(bundle.denoiser(n).time_factor for n in (preset.source, preset.target)))
        # at start, not as dry hops once playing; and the pair's transport map made here, not in a hop
        bundle.prepare_prior(preset.source, preset.target, preset.sigma_max, preset.prior)
        self.bundle, self.preset = bundle, preset
        self.device_rate = int(device_rate or bundle.sample_rate)
        self.params = dict(source=preset.source, target=preset.target, sigma_max=preset.sigma_max,
                           steps=preset.steps, solver=preset.solver, prior=preset.prior, dry_wet=preset.dry_wet,
                           input_gain=input_gain, bypass=bypass, sigma_min=preset.sigma_min, rho=preset.rho)
        self._pending: dict = {}
        self._lock = threading.Lock()
        self.fail_fast = fail_fast
        self.hops = HopProcessor(bundle, preset.window, preset.hop, preset.crossfade, self.params,
                                 gate_threshold_db, dc_cutoff_hz)
        sr, r = self.sr, self.device_rate / self.sr
        self.r_in = StreamResampler(self.device_rate, sr, resample_quality)
        self.r_out = StreamResampler(sr, self.device_rate, resample_quality)
        self.pending24 = np.zeros(0, np.float32)  # 24 kHz samples not yet a whole hop
        # transpose / fold: the wet path's input shifted (with its own fixed delay), the dry path the input as
        # played, delayed as much, so the two stay aligned
        fold = RegisterFold(preset.fold_centre, preset.transpose) if preset.fold_centre else None
        self.shifter = (PitchShifter(preset.transpose, fold=fold, sample_rate=sr)
                        if preset.shifts_pitch else None)
        self.shift_delay = self.shifter.delay if self.shifter else 0  # 24 kHz samples
        # the dry samples of the hops to come: the shifter's delay in zeros ahead of the input, so it always holds
        # exactly shift_delay samples more than pending24
        self.pending_dry = np.zeros(self.shift_delay, np.float32)
        hop_len = self.hops.hop_samples
        q = self.r_in.quality
        # input side: device blocks can be tiny; output side: whole hops. soxr rounds each side's output count
        # up or down by a sample per call, so each side gets 2 samples of slack when it resamples
        self.holdback = (int(np.ceil(holdback(self.device_rate, sr, q, 16) * r)) + holdback(sr, self.device_rate, q, hop_len)
                         + 4 * (q not in ("fir", "none")))
        # the FIR's group delay is in the signal, not in the sample counts: part of the delay, not of the prefill
        self.filter_delay = int(round(self.r_in.delay * r)) + self.r_out.delay
        self.margin = int(round(margin_ms * self.device_rate / 1000))
        self.prefill = int(np.ceil(hop_len * r)) + self.holdback + self.margin
        # device samples, in → out
        self.delay = self.prefill + int(round((self.C * self.F + self.shift_delay) * r)) + self.filter_delay
        cap = self.prefill + 8 * self.device_rate  # 8 s of slack either way
        self.in_ring, self.out_ring = RingBuffer(cap), RingBuffer(cap)
        self.out_ring.write(np.zeros(self.prefill, np.float32))
        self.stats = EngineStats()
        self._missing = 0  # output samples the callback could not find (written by the callback only)
        self._skipped = 0  # of those, how many the worker has dropped since (written by the worker only)
        self._worker: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.hop_written = threading.Event()  # set by the worker each time a hop's output reaches the ring
        self.live = False  # worker mode: late hops go dry to keep up
        for name in (preset.source, preset.target):
            bundle.denoiser(name)  # open sessions now, not in the first hop

    # the hop processor's frame geometry, read by renders, benchmarks and tests
    sr = property(lambda self: self.bundle.sample_rate)
    F = property(lambda self: self.hops.F, doc="samples per latent frame")
    W = property(lambda self: self.hops.W)
    H = property(lambda self: self.hops.H)
    C = property(lambda self: self.hops.C)
    enc_ctx = property(lambda self: self.hops.enc_ctx)
    dec_ctx = property(lambda self: self.hops.dec_ctx)

    # ------------------------------------------------------------------ parameters
    def set(self, **changes) -> None:
        """Change live parameters; they take effect at the next window and ride its crossfade."""
        bad = set(changes) - set(LIVE)
        if bad:
            raise KeyError(f"not live parameters: {', '.join(sorted(bad))}")
        # check the values here, on the caller's thread: a bad one must never reach the worker
        try:
            checked = check_values(changes, "engine.set")
        except ParamError as e:
            raise PresetError(str(e)) from None
        for k in ("source", "target"):
            if k in checked:
                self.bundle.denoiser(checked[k])  # unknown instrument → BundleError now, not in the worker
        with self._lock:
            merged = {**self.params, **self._pending, **checked}
            if merged["sigma_min"] >= merged["sigma_max"]:
                raise PresetError(f"sigma_min ({merged['sigma_min']}) must be below sigma_max ({merged['sigma_max']})")
            # checked, and the new pair's or σmax's transport map made, on the caller's thread before the worker
            # can see the change (a few ms; not in its hop)
            self.bundle.prepare_prior(merged["source"], merged["target"], merged["sigma_max"], merged["prior"])
            self._pending.update(checked)

    def _apply_pending(self) -> None:
        with self._lock:
            if self._pending:
                self.params.update(self._pending)  # the hop processor reads this same dict
                self._pending.clear()

    @property
    def latency_ms(self) -> float:
        """Input-to-output delay of the stream (algorithmic + resamplers + live margin)."""
        return 1000.0 * self.delay / self.device_rate

    @property
    def algorithmic_latency_ms(self) -> float:
        """The part no computer can remove: one hop of input plus the crossfade look-ahead, (H + C)·F samples, and
        the transpose shifter's frame."""
        return 1000.0 * ((self.H + self.C) * self.F + self.shift_delay) / self.sr

    def latency_split_ms(self) -> dict:
        """latency_ms in its parts: algorithmic (H + C frames, and the transpose shifter's frame), resamplers,
        compute margin."""
        to_ms = 1000.0 / self.device_rate
        return dict(algorithmic=self.algorithmic_latency_ms, resamplers=(self.holdback + self.filter_delay) * to_ms,
                    margin=self.margin * to_ms)

    # ------------------------------------------------------------------ one hop, with the dry fallback
    def _hop(self, chunk24: np.ndarray, dry_only: bool = False, dry24: np.ndarray | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        self._apply_pending()
        try:
            out = self.hops(chunk24, dry_only, dry24)
        except HopError as e:
            out = e.output
            self._fail(e.cause)  # raises EngineError under fail_fast
            dry_only = True
        st = self.stats
        st.hops += 1
        st.dry_hops += int(dry_only)
        st.gated_hops = self.hops.gated_hops
        st.last_hop_ms = 1000 * (time.perf_counter() - t0)
        st.timings_ms = dict(self.hops.timings_ms)
        for k, v in st.timings_ms.items():
            st.total_ms[k] = st.total_ms.get(k, 0.0) + v
        rtf = st.last_hop_ms / 1000 / (len(chunk24) / self.sr)
        st.rtf = 0.9 * st.rtf + 0.1 * rtf if st.hops > 1 else rtf
        return out

    def _fail(self, e: Exception) -> None:
        self.error = e
        self.stats.errors += 1
        if self.fail_fast:
            raise EngineError(f"a model failed at hop {self.stats.hops}: {type(e).__name__}: {e}") from e

    # ------------------------------------------------------------------ stream plumbing
    def push(self, block: np.ndarray) -> None:
        """Audio callback side: queue device-rate input (mono float32). Takes no lock of the engine's; waking
        the worker (Event.set) holds the Event's own lock for a few instructions."""
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if x.size:  # reductions only: nothing allocated per block
            self.stats.in_peak = float(max(x.max(), -x.min()))
            self.stats.in_rms = float(np.sqrt(np.dot(x, x) / x.size))
        self.stats.overruns += self.in_ring.write(x)
        self._wake.set()

    def pull(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """Audio callback side: n device-rate output samples; a short ring is filled with silence and counted."""
        out = np.empty(n, np.float32) if out is None else out
        missing = self.out_ring.read_into(out)
        if missing:
            self.stats.underruns += missing
            self._missing += missing  # the worker drops as much later, so the latency stays what it was
        if n:
            self.stats.out_peak = float(max(out.max(), -out.min()))
            self.stats.out_rms = float(np.sqrt(np.dot(out, out) / n))
        return out

    def work(self) -> int:
        """Worker side: turn queued input into output; returns the number of hops run."""
        n = len(self.in_ring)
        total = self.stats.total_ms
        if n:
            t0 = time.perf_counter()
            x24 = self.r_in(self.in_ring.read(n))
            total["resample"] = total.get("resample", 0.0) + 1000 * (time.perf_counter() - t0)
            if self.shifter is not None:
                t0 = time.perf_counter()
                self.pending_dry = np.concatenate([self.pending_dry, x24])
                x24 = self.shifter(x24)
                total["transpose"] = total.get("transpose", 0.0) + 1000 * (time.perf_counter() - t0)
            self.pending24 = np.concatenate([self.pending24, x24])
        hop_len = self.hops.hop_samples
        hops = 0
        while len(self.pending24) >= hop_len:
            chunk, self.pending24 = self.pending24[:hop_len], self.pending24[hop_len:]
            dry = None
            if self.shifter is not None:
                dry, self.pending_dry = self.pending_dry[:hop_len], self.pending_dry[hop_len:]
            # live: if more than two hops are already waiting, this one is late: output it dry to catch up
            late = self.live and len(self.pending24) >= 2 * hop_len
            y = self._hop(chunk, dry_only=late, dry24=dry)
            t0 = time.perf_counter()
            y = self.r_out(y)
            total["resample"] = total.get("resample", 0.0) + 1000 * (time.perf_counter() - t0)
            owed = self._missing - self._skipped
            if owed > 0:
                k = min(owed, len(y))
                y, self._skipped = y[k:], self._skipped + k
            self.stats.output_overruns += self.out_ring.write(y)
            self.hop_written.set()
            hops += 1
        return hops

    def process(self, block: np.ndarray) -> np.ndarray:
        """Synchronous streaming: block in, as many samples out, delayed by `latency_ms` (offline "as live")."""
        self.push(block)
        self.work()
        return self.pull(len(block))

    # ------------------------------------------------------------------ live worker thread
    def start(self) -> None:
        if self._worker is not None:
            return
        self.live = True
        self._stop.clear()
        self._worker = threading.Thread(target=self._run, name="timbre-engine", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            try:
                self.work()
            except Exception as e:  # keep the audio going (dry) and say why once
                self.error = e
                self.set(bypass=True)
                self.hop_written.set()  # whoever waits for a hop learns now, not at its timeout

    def stop(self) -> None:
        if self._worker is None:
            return
        self._stop.set()
        self._wake.set()
        self._worker.join(timeout=5)
        if self._worker.is_alive():  # a hop longer than 5 s: keep the handle, start() must not run a second one
            raise RuntimeError("the engine's worker did not stop within 5 s")
        self._worker = None
        self.live = False

    error: Exception | None = None


def measure_hop_ms(bundle: Bundle, preset: Preset, hops: int = 64, warmup: int = 3) -> np.ndarray:
    """How long (ms) after a hop's last input sample is pushed its output is in the output ring, through the live
    worker thread (its wake-up, the GIL and the models): `hops` hops of a test signal (a vibrato tone over noise)
    after `warmup` untimed ones. The distribution the live compute margin is derived from.

    Measured at the models' rate, where each push of one hop's samples completes exactly one hop (a resampler's
    hold-back would make a push complete none or two); resampling costs under 1 ms a hop (live.bench prints it),
    inside the margin's safety factor."""
    e = StreamingEngine(bundle, preset, bundle.sample_rate, fail_fast=True)
    step = e.hops.hop_samples
    n = (hops + warmup + 1) * step
    t = np.arange(n) / e.device_rate
    x = (0.3 * np.sin(2 * np.pi * 330 * t + 2 * np.sin(2 * np.pi * 5 * t))
         + 0.01 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    times = []
    e.start()
    try:
        for k in range(hops + warmup):
            e.hop_written.clear()
            t0 = time.perf_counter()
            e.push(x[k * step:(k + 1) * step])
            if not e.hop_written.wait(10.0) or e.error is not None:
                raise EngineError(f"a model failed while measuring hop times: {e.error or 'no output in 10 s'}")
            if k >= warmup:
                times.append(1000 * (time.perf_counter() - t0))
    finally:
        e.stop()
    return np.asarray(times)


SCHEDULING_MS = 10.0  # room for the worker's wake-up on a busy machine (the OS time slice, the GIL hand-over)


def margin_from_hop_times(hop_ms: np.ndarray, block_ms: float = 0.0, safety: float = 1.25,
                          tail_over_median: float = 1.5, scheduling_ms: float = SCHEDULING_MS) -> float:
    """Live compute margin. A hop's output must be in the output ring `margin` after its last input sample
    arrived; the callback that delivers that sample pulls in the same call, so the output is due one device
    block later at the earliest. Margin = the slow end of the measured push-to-output times + one block + room
    for scheduling.

    The slow end is max(safety × 99th percentile, tail_over_median × median): a start-up calibration of a few
    dozen hops sees the median reliably but not the rare slow hops (over 400 hops on 2 cores the 99.9th
    percentile was 2.2 × the median, 64-hop calibrations put the 99th at 1.2–1.5 ×). The scheduling room is
    not proportional to the models' cost: with tiny models and a loaded machine a margin without it underran."""
    slow = max(safety * float(np.percentile(hop_ms, 99)), tail_over_median * float(np.median(hop_ms)))
    return slow + block_ms + scheduling_ms


def open_engine(preset: Preset, device_rate: int | None = None, threads: int = LIVE_THREADS, provider: str = "auto",
                **kwargs) -> StreamingEngine:
    """Load the preset's bundle and build an engine for it."""
    return StreamingEngine(Bundle(preset.bundle_path(), provider=provider, threads=threads), preset, device_rate,
                           **kwargs)
