"""StreamingEngine: chunked, causal timbre transfer on a frame clock (numpy + onnxruntime).

Per hop of H latent frames, in the 24 kHz domain:

    encoder over [left context + H·hop new samples] → H new latent frames (exactly the whole-file frames)
    window = the last W latent frames → bridge (source ODE σmin → σmax, target ODE σmax → σmin, Heun)
    frames [t−H−C, t−C) are committed: the first C crossfade (raised cosine) from the previous window's
    estimate to this one's, so parameter changes and window seams never click
    decoder over [context + committed frames] → H·hop samples → dry/wet mix → output

Everything is driven by sample counts, never by wall time, so the same input gives the same output sample
for sample whatever the block sizes: `process()` (offline "as live" rendering, tests) and the live worker
thread (`push` / `work` / `pull`) run the same code. Algorithmic latency is (H + C) frames plus the
resamplers'; the live path adds a safety margin for compute.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from live.bundle import Bundle
from live.preset import Preset, PresetError
from live.rings import History, RingBuffer

LIVE_PARAMS = ("source", "target", "sigma_max", "steps", "dry_wet", "input_gain", "bypass", "sigma_min", "rho")
GATE_THRESHOLD_DB = -55.0  # input RMS (dBFS, over 160-sample blocks) below which the wet path is turned down
GATE_RATIO = 4.0  # below the threshold, each dB less input gives GATE_RATIO dB less wet (a downward expander)
GATE_RELEASE_MS = 60.0  # the gate closes this slowly (it opens at once), so note tails are not chopped
DC_CUTOFF_HZ = 20.0  # the decoder's output is high-passed here: the codec leaves a small DC offset


class EngineError(RuntimeError):
    """A model failed inside the engine while it was asked to fail loudly (offline rendering)."""


class DCBlocker:
    """y[n] = x[n] − x[n−1] + R·y[n−1] (one-pole high-pass), state kept across calls: chunking never changes y."""

    def __init__(self, sample_rate: int, cutoff_hz: float = DC_CUTOFF_HZ, piece: int = 1024):
        self.R = float(np.exp(-2 * np.pi * cutoff_hz / sample_rate))
        self.x1 = self.y1 = 0.0
        self.piece = piece  # closed form per piece; R^-piece stays far from overflow
        k = np.arange(piece)
        self._up, self._down = self.R ** (-k.astype(np.float64)), self.R ** k.astype(np.float64)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        out = np.empty_like(x)
        for i in range(0, len(x), self.piece):
            seg = x[i:i + self.piece]
            n = len(seg)
            d = np.diff(seg, prepend=self.x1)  # x[n] − x[n−1]
            # y[n] = R^(n+1)·y[−1] + Σ_{k≤n} R^(n−k)·d[k]
            y = self._down[:n] * (self.R * self.y1 + np.cumsum(d * self._up[:n]))
            out[i:i + n] = y
            self.x1, self.y1 = float(seg[-1]), float(y[-1])
        return out.astype(np.float32)


class InputGate:
    """The wet path's level follows the input's: a downward expander keyed by the dry input's RMS per block.

    Gain per block of `block` samples: 1 at or above the threshold, (rms/threshold)^(ratio−1) below (so digital
    silence gives exactly 0); it opens at once and closes with `release_ms`; linear between block centres.
    """

    def __init__(self, sample_rate: int, threshold_db: float = GATE_THRESHOLD_DB, ratio: float = GATE_RATIO,
                 release_ms: float = GATE_RELEASE_MS, block: int = 160):
        self.block, self.threshold = block, 10 ** (threshold_db / 20)
        self.ratio = ratio
        self.fall = float(np.exp(-block / (release_ms * 1e-3 * sample_rate)))  # per-block release factor
        self.g = 1.0  # the last block's gain

    def __call__(self, dry: np.ndarray) -> np.ndarray:
        n = len(dry) // self.block * self.block
        rms = np.sqrt(np.mean(np.asarray(dry[:n], np.float64).reshape(-1, self.block) ** 2, axis=1))
        target = np.minimum(1.0, (rms / self.threshold) ** (self.ratio - 1))
        gains = np.empty(len(target))
        g = self.g
        for i, t in enumerate(target):  # a handful of blocks per hop
            g = t if t >= g else max(t, g * self.fall)
            gains[i] = g
        prev, self.g = self.g, g
        knots = np.concatenate([[prev], gains])
        pos = np.concatenate([[-0.5], np.arange(len(gains)) + 0.5]) * self.block
        curve = np.interp(np.arange(len(dry)), pos, knots)
        return curve.astype(np.float32)


@dataclass
class EngineStats:
    hops: int = 0
    dry_hops: int = 0  # hops output dry because the bridge missed its deadline
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
    total_ms: dict = field(default_factory=dict)  # the same, summed over all hops


class StreamResampler:
    """soxr's streaming resampler (identity at equal rates). Chunking never changes the samples it produces."""

    def __init__(self, sr_in: int, sr_out: int, quality: str = "LQ"):
        self.identity = sr_in == sr_out
        if not self.identity:
            import soxr

            self.rs = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality=quality)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x if self.identity else self.rs.resample_chunk(np.ascontiguousarray(x, dtype=np.float32))


def _holdback(sr_in: int, sr_out: int, quality: str, chunk: int) -> int:
    """Most samples (at sr_out) a streaming resampler fed `chunk`-sample pieces is ever behind the ideal
    output count: its share of the latency. Measured, since soxr's hold-back depends on the chunking."""
    if sr_in == sr_out:
        return 0
    rs = StreamResampler(sr_in, sr_out, quality)
    piece = np.zeros(chunk, np.float32)
    fed = produced = worst = 0
    for _ in range(max(8, sr_in // chunk)):  # a second of audio
        produced += len(rs(piece))
        fed += chunk
        worst = max(worst, int(np.ceil(fed * sr_out / sr_in)) - produced)
    return worst


class StreamingEngine:
    def __init__(self, bundle: Bundle, preset: Preset, device_rate: int | None = None, margin_ms: float = 0.0,
                 resample_quality: str = "LQ", input_gain: float = 1.0, bypass: bool = False,
                 fail_fast: bool = False, gate_threshold_db: float | None = GATE_THRESHOLD_DB,
                 dc_cutoff_hz: float | None = DC_CUTOFF_HZ):
        """fail_fast: a model error raises EngineError (offline rendering) instead of sending the hop out dry
        (live, where the audio must go on). gate_threshold_db / dc_cutoff_hz: None turns the input gate / the
        DC blocker on the wet path off."""
        preset.validate(bundle.instruments, max(bundle.denoiser(n).time_factor for n in (preset.source, preset.target)))
        self.bundle, self.preset = bundle, preset
        self.sr, self.hop = bundle.sample_rate, bundle.hop
        self.device_rate = int(device_rate or self.sr)
        self.W, self.H, self.C = preset.window, preset.hop, preset.crossfade
        self.params = dict(source=preset.source, target=preset.target, sigma_max=preset.sigma_max,
                           steps=preset.steps, dry_wet=preset.dry_wet, input_gain=input_gain, bypass=bypass,
                           sigma_min=preset.sigma_min, rho=preset.rho)
        self._pending: dict = {}
        self._lock = threading.Lock()
        self.fail_fast = fail_fast
        self.gate = InputGate(bundle.sample_rate, gate_threshold_db) if gate_threshold_db is not None else None
        self.dc_blocker = DCBlocker(bundle.sample_rate, dc_cutoff_hz) if dc_cutoff_hz else (lambda w: w)
        hop, H, C, W = self.hop, self.H, self.C, self.W
        self.enc_ctx = -(-bundle.encoder_context // hop) * hop  # whole frames of left context
        self.dec_ctx = bundle.decoder_context
        silence = bundle.silence_latent
        keep = 2 * (W + H + C + self.dec_ctx) + 8
        self.audio24 = History(self.enc_ctx + (H + C + 2) * hop * 2 + (W + 8) * hop)
        self.latents = History(keep, rows=bundle.latent_dim, fill=silence)
        self.committed = History(keep, rows=bundle.latent_dim, fill=silence)
        self.tail: np.ndarray | None = None  # previous window's estimate of the frames [t−C, t)
        fade = (np.arange(1, C + 1) / (C + 1)) if C else np.zeros(0)
        self.fade_in = (np.sin(0.5 * np.pi * fade) ** 2).astype(np.float32)  # raised cosine, sums to 1
        self.frames_in = 0  # latent frames encoded
        self.r_in = StreamResampler(self.device_rate, self.sr, resample_quality)
        self.r_out = StreamResampler(self.sr, self.device_rate, resample_quality)
        self.pending24 = np.zeros(0, np.float32)  # 24 kHz samples not yet a whole hop
        self.latency_24k = (H + C) * hop  # algorithmic, in 24 kHz samples
        # input side: device blocks can be tiny; output side: whole hops. +2 samples of rounding per side
        self.holdback = (int(np.ceil(_holdback(self.device_rate, self.sr, resample_quality, 16) * self.device_rate
                                     / self.sr)) + _holdback(self.sr, self.device_rate, resample_quality, H * hop)
                         + 4 * (self.device_rate != self.sr))
        self.margin = int(round(margin_ms * self.device_rate / 1000))
        # The first hop commits frames [−C, H−C): the stream starts C frames early, so H frames of silence
        # ahead of it make the input-to-output delay (H + C) frames (+ resamplers + margin), never short.
        r = self.device_rate / self.sr
        self.prefill = int(np.ceil(H * hop * r)) + self.holdback + self.margin
        self.delay = self.prefill + int(round(C * hop * r))  # device samples from input to output
        cap = self.prefill + 8 * self.device_rate  # 8 s of slack either way
        self.in_ring, self.out_ring = RingBuffer(cap), RingBuffer(cap)
        self.out_ring.write(np.zeros(self.prefill, np.float32))
        self.stats = EngineStats()
        self._missing = 0  # output samples the callback could not find (written by the callback only)
        self._skipped = 0  # of those, how many the worker has dropped since (written by the worker only)
        self._mix = 0.0 if bypass else float(preset.dry_wet)  # wet share at the end of the last hop
        self._gain = float(input_gain)
        self._worker: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.live = False  # worker mode: late hops go dry to keep up
        for name in (preset.source, preset.target):
            bundle.denoiser(name)  # open sessions now, not in the first hop

    # ------------------------------------------------------------------ parameters
    def set(self, **changes) -> None:
        """Change live parameters; they take effect at the next window and ride its crossfade."""
        bad = set(changes) - set(LIVE_PARAMS)
        if bad:
            raise KeyError(f"not live parameters: {', '.join(sorted(bad))}")
        for k in ("source", "target"):
            if k in changes:
                self.bundle.denoiser(changes[k])  # unknown instrument → BundleError now, not in the worker
        with self._lock:
            merged = {**self.params, **self._pending, **changes}
            # check the values here, on the caller's thread: a bad one must never reach the worker
            dataclasses.replace(self.preset, **{k: merged[k] for k in ("source", "target", "sigma_max", "steps",
                                                                      "dry_wet", "sigma_min", "rho")}).validate()
            if not 0.0 <= float(merged["input_gain"]) <= 16.0:
                raise PresetError(f"input_gain {merged['input_gain']} is outside [0, 16]")
            self._pending.update(changes)

    def _apply_pending(self) -> None:
        with self._lock:
            if self._pending:
                self.params.update(self._pending)
                self._pending.clear()

    @property
    def latency_ms(self) -> float:
        """Input-to-output delay of the stream (algorithmic + resamplers + live margin)."""
        return 1000.0 * self.delay / self.device_rate

    @property
    def algorithmic_latency_ms(self) -> float:
        return 1000.0 * self.latency_24k / self.sr

    # ------------------------------------------------------------------ one hop
    def _bridge(self, window: np.ndarray) -> np.ndarray:
        p = self.params
        return self.bundle.transfer(window, p["source"], p["target"], p["sigma_max"], p["steps"], p["sigma_min"],
                                    p["rho"])

    def _ramp(self, start: float, stop: float, n: int) -> np.ndarray:
        """Linear ramp over n samples: gain and dry/wet changes glide across a hop instead of stepping."""
        return np.linspace(start, stop, n, endpoint=False, dtype=np.float32) if start != stop else np.float32(stop)

    def _hop(self, chunk24: np.ndarray, dry_only: bool = False) -> np.ndarray:
        """H·hop new 24 kHz samples in → H·hop output samples (frames [t−H−C, t−C)) out.

        Committed latent column c holds frame c − C (the first hop commits frames [−C, H−C)); output sample
        `prefill + c·hop` belongs to column c, so output lags input by `delay` = prefill + C·hop samples.
        A model that fails leaves the clocks in step: its hop goes out dry and the error is kept in `error`.
        """
        t0 = time.perf_counter()
        self._apply_pending()
        H, C, W, hop = self.H, self.C, self.W, self.hop
        n = H * hop
        gain = float(self.params["input_gain"])
        self.audio24.append(chunk24 * self._ramp(self._gain, gain, n))
        self._gain = gain
        f0 = self.frames_in
        t = self.frames_in = f0 + H
        try:
            z = self.bundle.encode(self.audio24.get(f0 * hop - self.enc_ctx, t * hop))[:, -H:]
        except Exception as e:  # noqa: BLE001 - the stream must go on
            z, dry_only = np.repeat(self.bundle.silence_latent[:, None], H, axis=1), self._fail(e)
        self.latents.append(z)
        t1 = time.perf_counter()
        bypass = bool(self.params["bypass"])
        source = self.latents.get(t - W, t)
        y = source  # dry hops keep the latent timeline going with the source itself, so wet returns smoothly
        if not (dry_only or bypass):
            try:
                y = self._bridge(source)
            except Exception as e:  # noqa: BLE001
                dry_only = self._fail(e)
        t2 = time.perf_counter()
        new = y[:, W - H - C: W - C].copy()
        if C and self.tail is not None:
            new[:, :C] = self.tail * (1 - self.fade_in) + new[:, :C] * self.fade_in
        self.tail = y[:, W - C:].copy() if C else None
        self.committed.append(new)
        k0 = t - H - C  # first frame committed now (column t − H)
        dry = self.audio24.get(k0 * hop, (k0 + H) * hop)
        mix = 0.0 if (bypass or dry_only) else float(self.params["dry_wet"])
        wet = None
        if mix > 0 or self._mix > 0:
            try:
                wet = self.dc_blocker(self.bundle.decode(self.committed.get(t - H - self.dec_ctx, t))[-n:])
            except Exception as e:  # noqa: BLE001
                mix, _ = 0.0, self._fail(e)
        if wet is not None and self.gate is not None:
            g = self.gate(dry)
            self.stats.gated_hops += int(g.min() < 0.5)
            wet = wet * g
        if wet is None:
            out, self._mix = dry, 0.0
        else:
            m = self._ramp(self._mix, mix, n)
            out, self._mix = (1 - m) * dry + m * wet, mix
        t3 = time.perf_counter()
        st = self.stats
        st.hops += 1
        st.dry_hops += int(dry_only)
        st.last_hop_ms = 1000 * (t3 - t0)
        st.timings_ms = dict(encode=1000 * (t1 - t0), bridge=1000 * (t2 - t1), decode=1000 * (t3 - t2))
        for k, v in st.timings_ms.items():
            st.total_ms[k] = st.total_ms.get(k, 0.0) + v
        rtf = (t3 - t0) / (n / self.sr)
        st.rtf = 0.9 * st.rtf + 0.1 * rtf if st.hops > 1 else rtf
        return np.asarray(out, dtype=np.float32)

    def _fail(self, e: Exception) -> bool:
        self.error = e
        self.stats.errors += 1
        if self.fail_fast:
            raise EngineError(f"a model failed at hop {self.stats.hops}: {type(e).__name__}: {e}") from e
        return True

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
        if n:
            self.pending24 = np.concatenate([self.pending24, self.r_in(self.in_ring.read(n))])
        hop_len = self.H * self.hop
        hops = 0
        while len(self.pending24) >= hop_len:
            chunk, self.pending24 = self.pending24[:hop_len], self.pending24[hop_len:]
            # live: if more than two hops are already waiting, this one is late: output it dry to catch up
            late = self.live and len(self.pending24) >= 2 * hop_len
            y = self.r_out(self._hop(chunk, dry_only=late))
            owed = self._missing - self._skipped
            if owed > 0:
                k = min(owed, len(y))
                y, self._skipped = y[k:], self._skipped + k
            self.stats.output_overruns += self.out_ring.write(y)
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


def open_engine(preset: Preset, device_rate: int | None = None, threads: int = 2, provider: str = "auto",
                **kwargs) -> StreamingEngine:
    """Load the preset's bundle and build an engine for it."""
    return StreamingEngine(Bundle(preset.bundle_path(), provider=provider, threads=threads), preset, device_rate,
                           **kwargs)
