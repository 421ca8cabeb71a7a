"""An exported ONNX bundle (python -m export.onnx) opened with onnxruntime: codec and denoisers as callables."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

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
    want_cuda = provider == "cuda" or (provider == "auto" and not _CUDA_FAILED
                                       and "CUDAExecutionProvider" in ort.get_available_providers())
    if not want_cuda:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    ort.set_default_logger_severity(4)
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    finally:
        ort.set_default_logger_severity(2)
    if sess.get_providers()[0] != "CUDAExecutionProvider":
        _CUDA_FAILED = True
        if provider == "cuda":
            raise BundleError("the CUDA provider was asked for but does not run on this machine")
    return sess


class OnnxDenoiser:
    """D(x, σ) on numpy: x [C, T] or [B, C, T] float32, σ a float."""

    def __init__(self, session, name: str, info: dict):
        self.session, self.name, self.info = session, name, info
        self.time_factor = int(info.get("time_factor", 1))

    def __call__(self, x: np.ndarray, sigma: float) -> np.ndarray:
        single = x.ndim == 2
        xb = np.ascontiguousarray(x[None] if single else x, dtype=np.float32)
        s = np.full((xb.shape[0],), sigma, dtype=np.float32)
        y = self.session.run(None, {"x": xb, "sigma": s})[0]
        return y[0] if single else y


class Bundle:
    """bundle.json + sessions. Denoiser sessions open on first use (a GUI lists instruments without loading)."""

    def __init__(self, folder: str | os.PathLike, provider: str = "auto", threads: int = 2):
        self.folder = Path(folder)
        f = self.folder / "bundle.json"
        if not f.is_file():
            raise BundleError(f"{self.folder}: no bundle.json; export one with python -m export.onnx")
        try:
            self.meta = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise BundleError(f"{f}: not valid JSON ({e})") from None
        if self.meta.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{f}: format {self.meta.get('format')!r}, expected {BUNDLE_FORMAT!r}")
        c = self.meta["codec"]
        self.sample_rate, self.hop, self.latent_dim = int(c["sample_rate"]), int(c["hop_length"]), int(c["latent_dim"])
        self.encoder_context = int(c["encoder"]["context_samples"])
        self.decoder_context = int(c["decoder"]["context_frames"])
        self.silence_latent = np.asarray(c["silence_latent"], dtype=np.float32)
        self.provider, self.threads = provider, threads
        for needed in [c["encoder"]["file"], c["decoder"]["file"]] + [i["file"] for i in self.meta["instruments"].values()]:
            if not (self.folder / needed).is_file():
                raise BundleError(f"{self.folder}: {needed} is missing")
        self._enc = make_session(self.folder / c["encoder"]["file"], provider, threads)
        self._dec = make_session(self.folder / c["decoder"]["file"], provider, threads)
        self._denoisers: dict[str, OnnxDenoiser] = {}

    @property
    def instruments(self) -> list[str]:
        return sorted(self.meta["instruments"])

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    @property
    def providers(self) -> list[str]:
        return self._enc.get_providers()

    def denoiser(self, name: str) -> OnnxDenoiser:
        if name not in self.meta["instruments"]:
            raise BundleError(f"no instrument {name!r} in {self.folder}; it has: {', '.join(self.instruments)}")
        if name not in self._denoisers:
            info = self.meta["instruments"][name]
            self._denoisers[name] = OnnxDenoiser(make_session(self.folder / info["file"], self.provider, self.threads),
                                                 name, info)
        return self._denoisers[name]

    def encode(self, wav: np.ndarray) -> np.ndarray:
        """Samples [N] (N a multiple of the hop) → normalized latents [C, N/hop]."""
        x = np.ascontiguousarray(wav, dtype=np.float32).reshape(1, 1, -1)
        return self._enc.run(None, {"audio": x})[0][0]

    def decode(self, latents: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(latents, dtype=np.float32)[None]
        return self._dec.run(None, {"latents": z})[0][0, 0]
