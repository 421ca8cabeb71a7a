"""The model side of the effect: one engine hop of 24 kHz audio in → the same number of output samples out.

Symbols (all counts in latent frames unless said otherwise): F samples per latent frame (the codec's hop, 320),
W window, H hop, C crossfade, t the frame clock (frames encoded so far).

Index contract, stated once. Hop k receives the 24 kHz samples [k·H·F, (k+1)·H·F) and afterwards t = (k+1)·H:

    encoder over [E samples of left context + H·F new samples] → latent frames [t−H, t) (exactly the whole-file
        frames: E covers the causal encoder's receptive field)
    bridge over the window [t−W, t) (source ODE σmin → σmax, target ODE σmax → σmin, Euler or Heun)
    commit frames [t−H−C, t−C): the first C crossfade (raised cosine) from the previous window's estimate of
        them to this one's, so parameter changes and window seams never click
    decoder over [D frames of context + the H committed frames] → their H·F samples → input gate, DC blocker,
        dry/wet mix (the dry signal is the input at the same frames)

So output sample j of hop k is input sample k·H·F − C·F + j: the processor delays by exactly C·F samples.
A model that fails leaves every clock in step: the hop completes dry and HopError carries that dry output.
"""
from __future__ import annotations

import time

import numpy as np

from live.bundle import Bundle
from live.rings import History

GATE_THRESHOLD_DB = -55.0  # input RMS (dBFS, over 160-sample blocks) below which the wet path is turned down
GATE_RATIO = 4.0  # below the threshold, each dB less input gives GATE_RATIO dB less wet (a downward expander)
GATE_RELEASE_MS = 60.0  # the gate closes this slowly (it opens at once), so note tails are not chopped
DC_CUTOFF_HZ = 20.0  # the decoder's output is high-passed here: the codec leaves a small DC offset


class HopError(RuntimeError):
    """A model failed during a hop. The hop still completed, dry: `output` is what to play, `cause` the error."""

    def __init__(self, cause: Exception, output: np.ndarray):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause, self.output = cause, output


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


def _ramp(start: float, stop: float, n: int):
    """Linear ramp over n samples: gain and dry/wet changes glide across a hop instead of stepping."""
    return np.linspace(start, stop, n, endpoint=False, dtype=np.float32) if start != stop else np.float32(stop)


class HopProcessor:
    """Runs the contract above. `params` (source, target, sigma_max, steps, solver, prior, dry_wet, input_gain,
    bypass, sigma_min, rho) is read at the start of each hop; whoever owns the processor changes it between hops."""

    def __init__(self, bundle: Bundle, window: int, hop: int, crossfade: int, params: dict,
                 gate_threshold_db: float | None = GATE_THRESHOLD_DB, dc_cutoff_hz: float | None = DC_CUTOFF_HZ):
        self.bundle, self.params = bundle, params
        self.W, self.H, self.C = window, hop, crossfade
        self.sr, self.F = bundle.sample_rate, bundle.samples_per_frame
        self.hop_samples = self.H * self.F
        self.enc_ctx = -(-bundle.encoder_context // self.F) * self.F  # E: whole frames of left context
        self.dec_ctx = bundle.decoder_context  # D
        self.gate = InputGate(self.sr, gate_threshold_db) if gate_threshold_db is not None else None
        self.dc_blocker = DCBlocker(self.sr, dc_cutoff_hz) if dc_cutoff_hz else (lambda w: w)
        W, H, C, F = self.W, self.H, self.C, self.F
        # each history keeps exactly the furthest look-back the contract reads (a test reads past it and fails):
        # audio: the encoder's input [(t−H)·F − E, t·F); dry: the dry samples [(t−H−C)·F, (t−C)·F)
        self.audio = History(self.enc_ctx + H * F)
        self.dry = History((H + C) * F)
        self.latents = History(W, rows=bundle.latent_dim, fill=bundle.silence_latent)  # the window [t−W, t)
        self.committed = History(H + self.dec_ctx, rows=bundle.latent_dim, fill=bundle.silence_latent)
        self.tail: np.ndarray | None = None  # the previous window's estimate of frames [t−C, t)
        fade = (np.arange(1, C + 1) / (C + 1)) if C else np.zeros(0)
        self.fade_in = (np.sin(0.5 * np.pi * fade) ** 2).astype(np.float32)  # raised cosine, sums to 1
        self.frames_in = 0  # t
        self._mix = 0.0 if params["bypass"] else float(params["dry_wet"])  # wet share at the end of the last hop
        self._gain = float(params["input_gain"])
        self._decoded_for: str | None = None  # the instrument the last hop's wet path was decoded for
        self.gated_hops = 0  # hops whose wet path the input gate turned down (quiet input)
        self.timings_ms: dict = {}  # the last hop's encode / bridge / decode

    def __call__(self, chunk: np.ndarray, dry_only: bool = False, dry: np.ndarray | None = None) -> np.ndarray:
        """H·F new samples in → H·F output samples; HopError (with the dry output) if a model failed. dry: the
        samples the dry path plays instead of `chunk` (the input as played, when `chunk` was transposed)."""
        t0 = time.perf_counter()
        self._take(chunk, chunk if dry is None else dry)
        failure = self._encode()
        t1 = time.perf_counter()
        wet_wanted = not (dry_only or self.params["bypass"] or failure)
        y, failure = self._bridge() if wet_wanted else (self.latents.get(self.frames_in - self.W, self.frames_in),
                                                         failure)
        t2 = time.perf_counter()
        self._commit(y)
        out, failure = self._decode_and_mix(0.0 if (not wet_wanted or failure) else float(self.params["dry_wet"]),
                                            failure)
        t3 = time.perf_counter()
        self.timings_ms = dict(encode=1000 * (t1 - t0), bridge=1000 * (t2 - t1), decode=1000 * (t3 - t2))
        if failure is not None:
            raise HopError(failure, out)
        return out

    def _take(self, chunk: np.ndarray, dry: np.ndarray) -> None:
        """The new samples, with the input gain gliding from the last hop's value to the current one."""
        gain = _ramp(self._gain, float(self.params["input_gain"]), self.hop_samples)
        self.audio.append(chunk * gain)
        self.dry.append(dry * gain)
        self._gain = float(self.params["input_gain"])

    def _encode(self) -> Exception | None:
        """Frames [t−H, t) from the encoder over E samples of context + the new samples; t advances by H. A failure
        appends silence frames, so the clocks stay in step."""
        H, F = self.H, self.F
        f0 = self.frames_in
        t = self.frames_in = f0 + H
        audio = self.audio.get(f0 * F - self.enc_ctx, t * F)  # outside the try: an index error is ours, not a model's
        try:
            z = self.bundle.encode(audio)[:, -H:]
        except Exception as e:  # noqa: BLE001 - the clocks must stay in step whatever a model raises
            self.latents.append(np.repeat(self.bundle.silence_latent[:, None], H, axis=1))
            return e
        self.latents.append(z)
        return None

    def _bridge(self) -> tuple[np.ndarray, Exception | None]:
        """The window [t−W, t) through the bridge; on failure the source itself (dry hops keep the latent timeline
        going with the source, so the wet path returns smoothly)."""
        p, t = self.params, self.frames_in
        source = self.latents.get(t - self.W, t)
        try:
            return self.bundle.transfer(source, p["source"], p["target"], p["sigma_max"], p["steps"], p["sigma_min"],
                                        p["rho"], p["solver"], p["prior"]), None
        except Exception as e:  # noqa: BLE001
            return source, e

    def _commit(self, y: np.ndarray) -> None:
        """Frames [t−H−C, t−C) of the window's estimate, the first C crossfaded from the previous window's."""
        W, H, C = self.W, self.H, self.C
        new = y[:, W - H - C: W - C].copy()
        if C and self.tail is not None:
            new[:, :C] = self.tail * (1 - self.fade_in) + new[:, :C] * self.fade_in
        self.tail = y[:, W - C:].copy() if C else None
        self.committed.append(new)

    def _decode(self, latents: np.ndarray, n: int) -> np.ndarray:
        """The last n samples of the committed frames by the target's decoder (its own where the bundle has one).
        In the hop where the target changes to one decoded by another decoder, both decode and the output glides
        from the old one's to the new one's (raised cosine): two decoders' waveforms differ, and a cut clicks."""
        target = self.params["target"]
        before, self._decoded_for = self._decoded_for or target, target
        y = self.bundle.decode(latents, target)[-n:]
        if before == target or self.bundle.decoder_session(before) is self.bundle.decoder_session(target):
            return y
        r = (np.sin(0.5 * np.pi * np.arange(1, n + 1) / (n + 1)) ** 2).astype(np.float32)  # 0 → 1
        return (1 - r) * self.bundle.decode(latents, before)[-n:] + r * y

    def _decode_and_mix(self, mix: float, failure: Exception | None) -> tuple[np.ndarray, Exception | None]:
        """The committed frames' samples (decoder over D frames of context), gated by the input's level, mixed with
        the dry input of the same frames; `mix` is the wet share this hop glides to."""
        H, C, F, n, t = self.H, self.C, self.F, self.hop_samples, self.frames_in
        k0 = t - H - C  # first frame committed now
        dry = self.dry.get(k0 * F, (k0 + H) * F)
        wet = None
        if mix > 0 or self._mix > 0:  # also while fading out to dry
            latents = self.committed.get(t - H - self.dec_ctx, t)
            try:
                wet = self.dc_blocker(self._decode(latents, n))
            except Exception as e:  # noqa: BLE001
                mix, failure = 0.0, failure or e
        if wet is not None and self.gate is not None:
            g = self.gate(dry)
            self.gated_hops += int(g.min() < 0.5)
            wet = wet * g
        if wet is None:
            out, self._mix = dry, 0.0
        else:
            m = _ramp(self._mix, mix, n)
            out, self._mix = (1 - m) * dry + m * wet, mix
        return np.asarray(out, dtype=np.float32), failure
