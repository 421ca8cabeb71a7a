"""Codecs between 24 kHz audio and continuous EnCodec latents (pre-quantizer, 75 frames/s), in PyTorch.

Two backends share one interface (`Codec`):
  * ``compact``: this project's EnCodec-architecture codec (SEANet encoder/decoder from ``encodec.modules``),
    causal, no LSTM and zero ('constant') padding, so a frame depends on a finite window of past samples and
    chunked encoding with enough left context equals whole-file encoding exactly;
  * ``encodec_24khz``: Meta's pretrained EnCodec 24 kHz (downloaded on first use, or from a local folder holding
    ``encodec_24khz-d7cc33bc.th``); its LSTM makes streaming approximate.
Latents are normalized per channel with mean/std stored in the codec (σ_data = 1 for the denoisers).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

ENCODEC_24KHZ_FILE = "encodec_24khz-d7cc33bc.th"
ENCODEC_24KHZ_URL = "https://dl.fbaipublicfiles.com/encodec/v0/" + ENCODEC_24KHZ_FILE


class CodecError(RuntimeError):
    pass


def compact_config(n_filters: int = 16, dimension: int = 64, ratios=(8, 5, 4, 2), lstm: int = 0,
                   sample_rate: int = 24_000, decoder_filters: int | None = None) -> dict:
    """decoder_filters: the decoder's base width where it differs from the encoder's (train.widen); recorded only
    then, so a codec of one width has the config it always had."""
    cfg = dict(n_filters=n_filters, dimension=dimension, ratios=list(ratios), lstm=lstm, sample_rate=sample_rate)
    if decoder_filters is not None and decoder_filters != n_filters:
        cfg["decoder_filters"] = int(decoder_filters)
    return cfg


def decoder_width(config: dict) -> int:
    """A compact codec's decoder base width (its n_filters unless widened)."""
    return int(config.get("decoder_filters", config["n_filters"]))


def encoder_config(config: dict) -> dict:
    """The config less the decoder's width: what fixes the latent space (a widened decoder keeps it)."""
    return {k: v for k, v in config.items() if k != "decoder_filters"}


class Codec(nn.Module):
    """Encoder + decoder + per-channel latent statistics. Use `Codec.compact`, `Codec.pretrained` or `Codec.load`."""

    def __init__(self, kind: str, config: dict, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.kind, self.config = kind, dict(config)
        self.encoder, self.decoder = encoder, decoder
        self.sample_rate = int(config["sample_rate"])
        self.hop_length = int(np.prod(config["ratios"]))
        self.latent_dim = int(config["dimension"])
        self.register_buffer("latent_mean", torch.zeros(self.latent_dim))
        self.register_buffer("latent_std", torch.ones(self.latent_dim))
        self.train_info: dict = {}
        self.stored_half = False

    # ---- construction
    @classmethod
    def compact(cls, **overrides) -> "Codec":
        from encodec.modules import SEANetDecoder, SEANetEncoder

        cfg = compact_config(**overrides)
        common = dict(channels=1, dimension=cfg["dimension"], ratios=cfg["ratios"], causal=True,
                      pad_mode="constant", lstm=cfg["lstm"])
        return cls("compact", cfg, SEANetEncoder(n_filters=cfg["n_filters"], **common),
                   SEANetDecoder(n_filters=decoder_width(cfg), **common))

    @classmethod
    def pretrained(cls, checkpoint_dir: str | Path | None = None, random_init: bool = False) -> "Codec":
        """Meta's EnCodec 24 kHz: downloaded (network), read from `checkpoint_dir`, or random weights (tests)."""
        from encodec import EncodecModel

        try:
            if random_init:
                model = EncodecModel.encodec_model_24khz(pretrained=False)
            else:
                repo = Path(checkpoint_dir) if checkpoint_dir is not None else None
                if repo is not None and not (repo / ENCODEC_24KHZ_FILE).is_file():
                    raise CodecError(f"{repo}: no {ENCODEC_24KHZ_FILE} there")
                model = EncodecModel.encodec_model_24khz(pretrained=True, repository=repo)
        except CodecError:
            raise
        except Exception as e:
            raise CodecError(
                f"could not load the pretrained EnCodec 24 kHz weights ({type(e).__name__}: {e}). Without a network, "
                f"download {ENCODEC_24KHZ_URL} elsewhere, put it in a folder and pass that folder as checkpoint_dir "
                f"(--encodec-dir)."
            ) from None
        cfg = dict(n_filters=32, dimension=model.encoder.dimension, ratios=list(model.encoder.ratios), lstm=2,
                   sample_rate=model.sample_rate)
        return cls("encodec_24khz", cfg, model.encoder, model.decoder)

    # ---- persistence
    def checkpoint(self, half: bool = False) -> dict:
        """The codec file's content; `half` stores weights as fp16 (latent statistics stay fp32)."""
        sd = {k: v.half() if half and v.is_floating_point() and not k.startswith("latent_") else v
              for k, v in self.state_dict().items()}
        return dict(format="timbre-codec/1", kind=self.kind, config=self.config, state_dict=sd,
                    train_info=self.train_info)

    def save(self, path: str | Path, half: bool | None = None) -> None:
        """Atomic write; by default in the precision the codec was loaded from."""
        from core.io import save_atomic

        save_atomic(self.checkpoint(self.stored_half if half is None else half), path)

    @classmethod
    def load(cls, path: str | Path, map_location="cpu") -> "Codec":
        from core.io import load_checkpoint

        ck = load_checkpoint(path, "timbre-codec/1", map_location)
        codec = cls.compact(**ck["config"]) if ck["kind"] == "compact" else cls.pretrained(random_init=True)
        codec.load_state_dict(ck["state_dict"])
        codec.train_info = ck.get("train_info", {})
        codec.stored_half = any(v.dtype == torch.float16 for v in ck["state_dict"].values())
        return codec.eval()

    # ---- properties
    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def stats_fitted(self) -> bool:
        """Whether train.latents fitted the latent statistics (its record in train_info); unfitted ones are mean 0,
        std 1, so normalized latents are raw ones and no denoiser's space."""
        return bool(self.train_info.get("latent_stats"))

    def stats_id(self) -> str:
        """Identity of the normalized latent space: denoisers carry it, and export refuses a mismatch."""
        import hashlib

        blob = self.latent_mean.float().numpy().tobytes() + self.latent_std.float().numpy().tobytes()
        return hashlib.sha256(blob).hexdigest()[:16]

    def set_latent_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.latent_mean.copy_(mean)
        self.latent_std.copy_(std.clamp_min(1e-5))

    # ---- torch API, batched: wav [B, 1, N] ↔ latents [B, C, T]
    def encode_raw(self, wav: torch.Tensor) -> torch.Tensor:
        n = wav.shape[-1]
        pad = (-n) % self.hop_length  # whole frames: T = ceil(N / hop)
        if pad:
            wav = nn.functional.pad(wav, (0, pad))
        return self.encoder(wav)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.latent_mean[:, None]) / self.latent_std[:, None]

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_std[:, None] + self.latent_mean[:, None]

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.encode_raw(wav))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.denormalize(latents))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Round trip wav [B, 1, N] → wav [B, 1, T·hop] (what the codec is trained on)."""
        return self.decoder(self.encode_raw(wav))

    # ---- numpy API, one signal: wav [N] at self.sample_rate ↔ latents [C, T]
    @torch.no_grad()
    def encode_numpy(self, wav: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(wav, dtype=np.float32)).view(1, 1, -1)
        return self.encode(x)[0].numpy()

    @torch.no_grad()
    def decode_numpy(self, latents: np.ndarray) -> np.ndarray:
        z = torch.as_tensor(np.asarray(latents, dtype=np.float32))[None]
        return self.decode(z)[0, 0].numpy()

    def frames_for(self, n_samples: int) -> int:
        return math.ceil(n_samples / self.hop_length)

    def encoder_context(self, receptive_field: int | None = None) -> int:
        """The receptive field (measured unless given) rounded up to whole hops, in samples: the left context
        with which a chunk of a `compact` codec's input encodes to exactly the whole file's frames."""
        rf = self.receptive_field() if receptive_field is None else receptive_field
        return -(-rf // self.hop_length) * self.hop_length

    def receptive_field(self) -> int:
        """Samples of past input one latent frame depends on (measured with a gradient: exact for `compact`)."""
        n = 64 * self.hop_length
        x = (0.1 * torch.randn(1, 1, n, device=self.latent_mean.device)).requires_grad_(True)
        with torch.enable_grad():
            z = self.encoder(x)
            z[0, :, -1].sum().backward()
        nz = torch.nonzero(x.grad[0, 0].abs() > 0)
        rf = int(n - nz.min()) if len(nz) else 0
        if rf >= n - self.hop_length:
            raise CodecError(f"receptive field reaches past the {n} samples measured (an LSTM?): not finite")
        return rf


# ---- an instrument's own decoder: the shared encoder's latents decoded for one instrument
DECODER_FORMAT = "timbre-decoder/1"


def encoder_fingerprint(codec: Codec) -> str:
    """Identity of a codec's encoder weights as stored (fp16): an instrument's own decoder names the encoder whose
    latents it learned to decode, and only a codec with that encoder may use it."""
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(codec.encoder.state_dict().items()):
        h.update(k.encode() + b"\0" + v.detach().cpu().half().numpy().tobytes())
    return h.hexdigest()[:16]


def save_own_decoder(codec: Codec, instrument: str, path: str | Path) -> None:
    """A decoder file (fp16): `codec`'s decoder as the one `instrument`'s outputs are decoded with, tied to the
    encoder and the latent statistics it was trained with (a run that kept the encoder frozen: train.codec
    --freeze-encoder --instruments INSTRUMENT)."""
    from core.io import save_atomic

    if codec.kind != "compact":
        raise CodecError(f"an own decoder is a compact codec's; this codec is {codec.kind}")
    save_atomic(dict(format=DECODER_FORMAT, instrument=instrument, config=codec.config,
                     encoder=encoder_fingerprint(codec), stats=codec.stats_id(),
                     state_dict={k: v.half() if v.is_floating_point() else v
                                 for k, v in codec.decoder.state_dict().items()},
                     train_info=codec.train_info), path)


def with_own_decoder(codec: Codec, path: str | Path) -> tuple[str, Codec]:
    """(instrument, `codec` with the decoder file's decoder in place of its own: the same encoder, latent
    statistics and latent space). CodecError where the file was trained against another encoder or other
    statistics: its decoder would read latents it never saw."""
    from core.io import load_checkpoint

    ck = load_checkpoint(path, DECODER_FORMAT)
    if codec.kind != "compact" or encoder_config(ck["config"]) != encoder_config(codec.config):
        raise CodecError(f"{path}: a decoder for config {ck['config']}, the codec's is {codec.config}")
    if ck["encoder"] != encoder_fingerprint(codec):
        raise CodecError(f"{path}: trained against another encoder ({ck['encoder']}, the codec's is "
                         f"{encoder_fingerprint(codec)}): train it from this codec with its encoder frozen")
    if ck["stats"] != codec.stats_id():
        raise CodecError(f"{path}: trained with other latent statistics ({ck['stats']}, the codec's are "
                         f"{codec.stats_id()})")
    own = Codec.compact(**ck["config"])
    state = {k: v for k, v in codec.state_dict().items() if not k.startswith("decoder.")}
    state.update({f"decoder.{k}": v for k, v in ck["state_dict"].items()})
    own.load_state_dict(state)
    own.train_info = dict(ck.get("train_info") or {})
    own.stored_half = True
    return str(ck["instrument"]), own.eval()
