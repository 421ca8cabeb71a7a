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

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from core.sampling import bridge
from live.bundle import Bundle
from live.preset import Preset
from live.rings import History, RingBuffer

LIVE_PARAMS = ("source", "target", "sigma_max", "steps", "dry_wet", "input_gain", "bypass", "sigma_min", "rho")


@dataclass
class EngineStats:
    hops: int = 0
    dry_hops: int = 0  # hops output dry because the bridge missed its deadline
    underruns: int = 0  # callback found the output ring short (samples)
    overruns: int = 0  # input ring full (samples dropped)
    last_hop_ms: float = 0.0
    rtf: float = 0.0  # compute time / audio time, smoothed
    in_peak: float = 0.0
    out_peak: float = 0.0
    in_rms: float = 0.0
    out_rms: float = 0.0
    timings_ms: dict = field(default_factory=dict)


class StreamResampler:
    """soxr's streaming resampler (identity at equal rates). Chunking never changes the samples it produces."""

    def __init__(self, sr_in: int, sr_out: int, quality: str = "LQ"):
        self.identity = sr_in == sr_out
        if not self.identity:
            import soxr

            self.rs = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality=quality)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x if self.identity else self.rs.resample_chunk(np.ascontiguousarray(x, dtype=np.float32))


def _holdback(sr_in: int, sr_out: int, quality: str) -> int:
    """Samples (at sr_out) a fresh streaming resampler holds back: its share of the latency."""
    if sr_in == sr_out:
        return 0
    n = 8 * sr_in // 10
    produced = len(StreamResampler(sr_in, sr_out, quality)(np.zeros(n, np.float32)))
    return int(np.ceil(n * sr_out / sr_in)) - produced


class StreamingEngine:
    def __init__(self, bundle: Bundle, preset: Preset, device_rate: int | None = None, margin_ms: float = 0.0,
                 resample_quality: str = "LQ", input_gain: float = 1.0, bypass: bool = False):
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
        self.holdback = _holdback(self.device_rate, self.sr, resample_quality) * self.device_rate // self.sr \
            + _holdback(self.sr, self.device_rate, resample_quality) + 4 * (self.device_rate != self.sr)
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
        self._skip_out = 0
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
        src, tgt = self.bundle.denoiser(p["source"]), self.bundle.denoiser(p["target"])
        return bridge(window, src, tgt, float(p["sigma_max"]), int(p["steps"]), float(p["sigma_min"]), float(p["rho"]))

    def _hop(self, chunk24: np.ndarray, dry_only: bool = False) -> np.ndarray:
        """H·hop new 24 kHz samples in → H·hop output samples (for frames [t−H−C, t−C)) out."""
        t0 = time.perf_counter()
        self._apply_pending()
        H, C, W, hop = self.H, self.C, self.W, self.hop
        gain = float(self.params["input_gain"])
        self.audio24.append(chunk24 * gain)
        f0 = self.frames_in
        enc_in = self.audio24.get(f0 * hop - self.enc_ctx, (f0 + H) * hop)
        self.latents.append(self.bundle.encode(enc_in)[:, -H:])
        self.frames_in = t = f0 + H
        t1 = time.perf_counter()
        bypass = bool(self.params["bypass"])
        if dry_only or bypass:
            y = None
        else:
            y = self._bridge(self.latents.get(t - W, t))
        t2 = time.perf_counter()
        k0 = t - H - C  # first committed frame
        if y is None:  # keep the latent timeline going with the source itself (so wet returns smoothly)
            y = self.latents.get(t - W, t)
        new = y[:, W - H - C: W - C].copy()
        if C and self.tail is not None:
            new[:, :C] = self.tail * (1 - self.fade_in) + new[:, :C] * self.fade_in
        self.tail = y[:, W - C:].copy() if C else None
        self.committed.append(new)
        dec_in = self.committed.get(k0 - self.dec_ctx, k0 + H)
        wet = self.bundle.decode(dec_in)[-H * hop:]
        dry = self.audio24.get(k0 * hop, (k0 + H) * hop)
        mix = 0.0 if (bypass or dry_only) else float(self.params["dry_wet"])
        out = (1 - mix) * dry + mix * wet
        t3 = time.perf_counter()
        st = self.stats
        st.hops += 1
        st.dry_hops += int(dry_only)
        st.last_hop_ms = 1000 * (t3 - t0)
        st.timings_ms = dict(encode=1000 * (t1 - t0), bridge=1000 * (t2 - t1), decode=1000 * (t3 - t2))
        st.rtf = 0.9 * st.rtf + 0.1 * (t3 - t0) / (H * hop / self.sr) if st.hops > 1 else (t3 - t0) / (H * hop / self.sr)
        return out.astype(np.float32)

    # ------------------------------------------------------------------ stream plumbing
    def push(self, block: np.ndarray) -> None:
        """Audio callback side: queue device-rate input (mono float32)."""
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
            self._skip_out += missing  # drop as much later so the latency stays what it was
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
            if self._skip_out:
                k = min(self._skip_out, len(y))
                y, self._skip_out = y[k:], self._skip_out - k
            self.stats.overruns += self.out_ring.write(y)
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
        self._worker = None
        self.live = False

    error: Exception | None = None


def open_engine(preset: Preset, device_rate: int | None = None, threads: int = 2, provider: str = "auto",
                **kwargs) -> StreamingEngine:
    """Load the preset's bundle and build an engine for it."""
    return StreamingEngine(Bundle(preset.bundle_path(), provider=provider, threads=threads), preset, device_rate,
                           **kwargs)
