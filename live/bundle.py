"""An exported ONNX bundle (python -m export.onnx) opened with onnxruntime: codec and denoisers as callables."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from core.sampling import bridge, match_covariances, match_instance, match_local, match_moments, transport_map
from live.params import param

BUNDLE_FORMAT = "timbre-bundle/1"


class BundleError(RuntimeError):
    pass


_CUDA_FAILED = False  # set once a CUDA session fell back to the CPU: later sessions skip the attempt


def make_session(path: Path, provider: str = "auto", threads: int = 2):
    """A session on CUDA when asked for ('auto': when it actually runs), else on the CPU.

    onnxruntime-gpu lists CUDA as available even without a GPU, and trying it logs a red library-load error;
    the attempt runs with the logger muted and the provider in use is read back from the session.
    """
    global _CUDA_FAILED
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # the engine runs three sessions in turn (encoder, denoisers, decoder), each with its own thread pool: pools
    # that spin-wait after their run steal the cores from the next session (measured: the hop took 2.4× longer)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    want_cuda = provider == "cuda" or (provider == "auto" and not _CUDA_FAILED
                                       and "CUDAExecutionProvider" in ort.get_available_providers())
    if not want_cuda:
        return _open(ort, path, so, ["CPUExecutionProvider"])
    ort.set_default_logger_severity(4)
    try:
        sess = _open(ort, path, so, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    finally:
        ort.set_default_logger_severity(2)
    if sess.get_providers()[0] != "CUDAExecutionProvider":
        _CUDA_FAILED = True
        if provider == "cuda":
            raise BundleError("the CUDA provider was asked for but does not run on this machine")
    return sess


def _open(ort, path: Path, so, providers: list[str]):
    """An InferenceSession, or BundleError naming the file (a truncated or foreign file is not a traceback)."""
    try:
        return ort.InferenceSession(str(path), so, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BundleError(f"{path}: not a loadable ONNX model ({type(e).__name__}: {reason[:200]})") from None


def check_io(session, path: Path, names: dict[str, int | None]) -> None:
    """Each named input/output has rank 3 and, where the model fixes it, `names[n]` channels (the latent size)."""
    shapes = {a.name: a.shape for a in list(session.get_inputs()) + list(session.get_outputs())}
    for name, channels in names.items():
        if name not in shapes:
            raise BundleError(f"{path}: has no input or output named {name!r} (it has {', '.join(shapes)})")
        shape = shapes[name]
        if len(shape) != 3:
            raise BundleError(f"{path}: {name!r} has shape {shape}, expected [batch, channels, time]")
        if channels is not None and isinstance(shape[1], int) and shape[1] != channels:
            raise BundleError(f"{path}: {name!r} has {shape[1]} channels but bundle.json says latent_dim {channels}")


class OnnxDenoiser:
    """D(x, σ) on numpy: x [C, T] or [B, C, T] float32, σ a float; in its own latent space (see to_own)."""

    def __init__(self, session, name: str, info: dict, shared_mean=None, shared_std=None):
        self.session, self.name, self.info = session, name, info
        self.time_factor = int(info.get("time_factor", 1))
        space = info.get("latent_space") or {"kind": "shared"}
        self.space = space["kind"]
        self.scale = self.shift = None  # own = scale·shared + shift (None: the shared space itself)
        if self.space == "instrument":
            m, s = np.asarray(space["mean"], np.float64), np.asarray(space["std"], np.float64)
            if shared_mean is None or m.shape != np.shape(shared_mean):
                raise BundleError(f"denoiser {name}: its latent statistics do not match the codec's latent size")
            # z_shared = (z_raw − μ)/σ and z_own = (z_raw − μ_i)/σ_i  ⇒  z_own = (σ/σ_i)·z_shared + (μ − μ_i)/σ_i
            self.scale = (np.asarray(shared_std) / s).astype(np.float32)[:, None]
            self.shift = ((np.asarray(shared_mean) - m) / s).astype(np.float32)[:, None]

        # the instrument's data in its own space (what the bridge matches at σmax): recorded, or by definition
        # 0 and 1 in an instrument's own space; None for a shared-space denoiser exported without them
        moments = space.get("moments")
        if moments:
            m, s = (np.asarray(moments[k], np.float32) for k in ("mean", "std"))
            if m.shape != s.shape or m.ndim != 1 or (shared_mean is not None and m.shape != np.shape(shared_mean)):
                raise BundleError(f"denoiser {name}: its latent moments do not match the codec's latent size")
            self.moments = (m[:, None], s[:, None])
        else:
            self.moments = (np.float32(0), np.float32(1)) if self.space == "instrument" else None
        # their channels' covariance in that space (what prior transport matches); None where not recorded
        self.covariance = None
        if moments and moments.get("cov") is not None:
            c = np.asarray(moments["cov"], np.float64)
            if c.shape != (len(self.moments[0]),) * 2 or not np.allclose(c, c.T, atol=1e-6):
                raise BundleError(f"denoiser {name}: its latent covariance is not a symmetric "
                                  f"{len(self.moments[0])}×{len(self.moments[0])} matrix")
            self.covariance = c

    def to_own(self, z: np.ndarray) -> np.ndarray:
        """Latents normalized with the codec's shared statistics → this instrument's normalized space."""
        return z if self.scale is None else self.scale * z + self.shift

    def from_own(self, z: np.ndarray) -> np.ndarray:
        return z if self.scale is None else (z - self.shift) / self.scale

    def __call__(self, x: np.ndarray, sigma: float) -> np.ndarray:
        single = x.ndim == 2
        xb = np.ascontiguousarray(x[None] if single else x, dtype=np.float32)
        s = np.full((xb.shape[0],), sigma, dtype=np.float32)
        y = self.session.run(None, {"x": xb, "sigma": s})[0]
        return y[0] if single else y


def model_files(meta: dict) -> list[str]:
    """The model files a bundle.json names: encoder, decoder, each instrument's denoiser, then the instruments' own
    decoders."""
    c = meta["codec"]
    return ([c["encoder"]["file"], c["decoder"]["file"]] + [i["file"] for i in meta["instruments"].values()]
            + [d["file"] for d in c.get("decoders", {}).values()])


def read_bundle_json(folder: str | os.PathLike) -> dict:
    """bundle.json checked (format, the fields the engine reads, every model file present) without opening any
    model: what a panel needs to list instruments. BundleError names the file and the field."""
    folder = Path(folder)
    f = folder / "bundle.json"
    if not f.is_file():
        raise BundleError(f"{folder}: no bundle.json; build the shipped one with `make bundle`, or export one with "
                          f"python -m export.onnx CODEC DENOISERS... --out {folder}")
    try:
        meta = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"{f}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise BundleError(f"{f}: format {got!r}, expected {BUNDLE_FORMAT!r}")
    try:  # a hand-edited or truncated bundle.json names the field it lacks, not a KeyError
        c = meta["codec"]
        int(c["sample_rate"]), int(c["hop_length"]), int(c["encoder"]["context_samples"])
        latent_dim, dec_ctx = int(c["latent_dim"]), int(c["decoder"]["context_frames"])
        silence = np.asarray(c["silence_latent"], dtype=np.float32)
        files = model_files(meta)
        for name, d in c.get("decoders", {}).items():  # one history of committed frames serves every decoder
            if name not in meta["instruments"]:
                raise BundleError(f"{f}: a decoder of its own for {name!r}, which the bundle has no denoiser for")
            if int(d["context_frames"]) != dec_ctx:
                raise BundleError(f"{f}: {name}'s own decoder reads {d['context_frames']} frames of context, the "
                                  f"codec's decoder {dec_ctx}")
    except KeyError as e:
        raise BundleError(f"{f}: missing field {e.args[0]!r}; re-export the bundle (python -m export.onnx)") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise BundleError(f"{f}: malformed field ({e})") from None
    if silence.shape != (latent_dim,):
        raise BundleError(f"{f}: silence_latent has shape {silence.shape}, latent_dim is {latent_dim}")
    for needed in files:
        if not (folder / needed).is_file():
            raise BundleError(f"{folder}: {needed} is missing")
    return meta


# what two exports of the same checkpoints may write differently: the run's time, its torch build (the ONNX bytes
# say what torch made), the export's tolerances, and the parity figures it measured (top level, codec, instruments)
EXPORT_RUN_FIELDS = ("created", "export_seconds", "torch", "tolerance")


def models_sha256(folder: str | os.PathLike) -> str:
    """One SHA-256 over what a bundle renders with: every model file's name and bytes, and bundle.json less the
    fields of the export run itself (EXPORT_RUN_FIELDS, each parity figure). Two folders exported from the same
    checkpoints give the same value (the exports are byte-identical with the pinned torch), so results measured
    with either merge; their paths and raw bundle.json do not."""
    folder = Path(folder)
    meta = read_bundle_json(folder)
    for k in EXPORT_RUN_FIELDS:
        meta.pop(k, None)
    for part in [meta["codec"], *meta["instruments"].values(), *meta["codec"].get("decoders", {}).values()]:
        part.pop("parity", None)
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(model_files(meta)):  # the order instruments were exported in does not matter
        h.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return h.hexdigest()


class Bundle:
    """bundle.json + sessions. An instrument's sessions (its denoiser, its own decoder where it has one) open on
    first use (a GUI lists instruments without loading)."""

    def __init__(self, folder: str | os.PathLike, provider: str = "auto", threads: int = 2):
        self.folder = Path(folder)
        self.meta = read_bundle_json(self.folder)
        c = self.meta["codec"]
        self.sample_rate, self.samples_per_frame, self.latent_dim = int(c["sample_rate"]), int(c["hop_length"]), int(c["latent_dim"])
        self.encoder_context = int(c["encoder"]["context_samples"])
        self.decoder_context = int(c["decoder"]["context_frames"])
        self.silence_latent = np.asarray(c["silence_latent"], dtype=np.float32)
        self.provider, self.threads = provider, threads
        enc_path, dec_path = self.folder / c["encoder"]["file"], self.folder / c["decoder"]["file"]
        self._enc = make_session(enc_path, provider, threads)
        check_io(self._enc, enc_path, {"audio": 1, "latents": self.latent_dim})
        self._dec = make_session(dec_path, provider, threads)
        check_io(self._dec, dec_path, {"latents": self.latent_dim, "audio": 1})
        self._denoisers: dict[str, OnnxDenoiser] = {}
        self._own_decoders: dict[str, object] = {}  # instrument → its own decoder's session, opened on first use
        self._transport: dict[tuple[str, str, float], np.ndarray] = {}
        self._transport_lock = threading.Lock()

    @property
    def instruments(self) -> list[str]:
        return sorted(self.meta["instruments"])

    @property
    def own_decoders(self) -> list[str]:
        """The instruments whose outputs are decoded with a decoder of their own (the others: the codec's)."""
        return sorted(self.meta["codec"].get("decoders", {}))

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.samples_per_frame

    @property
    def providers(self) -> list[str]:
        return self._enc.get_providers()

    def denoiser(self, name: str) -> OnnxDenoiser:
        if name not in self.meta["instruments"]:
            raise BundleError(f"no instrument {name!r} in {self.folder}; it has: {', '.join(self.instruments)}")
        if name not in self._denoisers:
            info = self.meta["instruments"][name]
            path = self.folder / info["file"]
            session = make_session(path, self.provider, self.threads)
            check_io(session, path, {"x": self.latent_dim, "denoised": self.latent_dim})
            norm = self.meta["codec"].get("normalization") or {}
            denoiser = OnnxDenoiser(session, name, info, norm.get("mean"), norm.get("std"))
            # its own decoder too, where it has one: opened with it, not in a hop, and before the denoiser is kept
            # (a decoder that fails to open fails the instrument every time, never a hop)
            self.decoder_session(name)
            self._denoisers[name] = denoiser
        return self._denoisers[name]

    def transfer(self, z: np.ndarray, source: str, target: str, sigma_max: float, steps: int,
                 sigma_min: float = param("sigma_min").default, rho: float = param("rho").default,
                 method: str = param("solver").default, prior: str = param("prior").default) -> np.ndarray:
        """The bridge between two instruments on shared-normalized latents [C, T]: into the source's space, up its
        ODE to σmax, (prior matched / transport: the source's moments there onto the target's; instance: the
        window's own onto the target's; local: each frame's, over the frames around it,) down the target's,
        out of the target's space (identity moves for shared statistics)."""
        src, tgt = self.denoiser(source), self.denoiser(target)
        self.check_prior(source, target, prior)
        return tgt.from_own(bridge(src.to_own(z), src, tgt, float(sigma_max), int(steps), float(sigma_min), float(rho),
                                   method, self._meet(src, tgt, float(sigma_max), prior)))

    def _meet(self, src: OnnxDenoiser, tgt: OnnxDenoiser, sigma_max: float, prior: str):
        """How the legs meet at σmax (None: the paper's N(0, σmax²) for both)."""
        if prior == "matched":
            (ma, sa), (mb, sb) = src.moments, tgt.moments
            return lambda x, s: match_moments(x, s, ma, sa, mb, sb)
        if prior == "instance":
            mb, sb = tgt.moments
            return lambda x, s: match_instance(x, s, mb, sb)
        if prior == "local":
            mb, sb = tgt.moments
            return lambda x, s: match_local(x, s, mb, sb)
        if prior == "transport":  # the map is fixed per pair and σmax: computed once (three 64×64 eigh, ~ms)
            key = (src.name, tgt.name, sigma_max)
            with self._transport_lock:  # the control thread prepares while the worker's hop may read
                t = self._transport.get(key)
                if t is None:
                    if len(self._transport) >= 32:  # a σmax knob being turned: keep the recent ones only
                        self._transport.pop(next(iter(self._transport)), None)
                    t = self._transport[key] = transport_map(src.covariance, tgt.covariance,
                                                             sigma_max).astype(np.float32)
            ma, mb = src.moments[0], tgt.moments[0]
            return lambda x, s: match_covariances(x, ma, mb, t)
        return None

    def meet(self, source: str, target: str, sigma_max: float, prior: str):
        """check_prior, then how the pair's legs meet at σmax: a function of the source leg's end (in the source's
        own space) and σ, or None (the paper's shared prior)."""
        self.check_prior(source, target, prior)
        return self._meet(self.denoiser(source), self.denoiser(target), float(sigma_max), prior)

    def prepare_prior(self, source: str, target: str, sigma_max: float, prior: str) -> None:
        """meet now (on the caller's thread): the pair's transport map for this σmax is made here, so the hop that
        first uses it does not pay for it."""
        self.meet(source, target, sigma_max, prior)

    def check_prior(self, source: str, target: str, prior: str) -> None:
        """BundleError unless this pair can be bridged with `prior` (matched needs both instruments' moments,
        transport their covariances too, instance and local the target's moments)."""
        if prior not in param("prior").choices:
            raise BundleError(f"prior must be {' or '.join(param('prior').choices)}, not {prior!r}")
        if prior in ("matched", "transport", "instance", "local"):
            for name in ((target,) if prior in ("instance", "local") else (source, target)):
                d = self.denoiser(name)
                if d.moments is None or (prior == "transport" and d.covariance is None):
                    what, other = (("latent moments", "gaussian") if d.moments is None else
                                   ("latent covariance", "matched"))
                    raise BundleError(
                        f"{self.folder}: denoiser {name!r} has no {what} (its file predates them): write it "
                        f"again from its run (python -m train.denoiser --instrument {name} --export FILE) and "
                        f"rebuild the bundle (make bundle), or set \"prior\": \"{other}\" in the preset")

    def encode(self, wav: np.ndarray) -> np.ndarray:
        """Samples [N] (N a multiple of samples_per_frame) → normalized latents [C, N/samples_per_frame]."""
        x = np.ascontiguousarray(wav, dtype=np.float32).reshape(1, 1, -1)
        return self._enc.run(None, {"audio": x})[0][0]

    def decoder_session(self, instrument: str | None = None):
        """The session that decodes what is bound for `instrument`: its own decoder where the bundle has one,
        else (and for None) the codec's."""
        info = self.meta["codec"].get("decoders", {}).get(instrument)
        if info is None:
            return self._dec
        if instrument not in self._own_decoders:
            path = self.folder / info["file"]
            session = make_session(path, self.provider, self.threads)
            check_io(session, path, {"latents": self.latent_dim, "audio": 1})
            self._own_decoders[instrument] = session
        return self._own_decoders[instrument]

    def decode(self, latents: np.ndarray, instrument: str | None = None) -> np.ndarray:
        """Normalized latents [C, T] → samples [T·samples_per_frame], with `instrument`'s own decoder where the
        bundle has one (pass the instrument the latents are bound for: a bridge's target, a round trip's own)."""
        z = np.ascontiguousarray(latents, dtype=np.float32)[None]
        return self.decoder_session(instrument).run(None, {"latents": z})[0][0, 0]
