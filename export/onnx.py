"""Turn a codec file and denoiser files into one ONNX bundle the live engine runs (no PyTorch needed there).

    python -m export.onnx models/codec.pt models/denoisers/*.pt [models/decoders/*.pt] --out models/bundle \
        [--audio examples/phrase.flac]

The bundle folder holds encoder.onnx (audio → normalized latents), decoder.onnx (normalized latents → audio),
one denoiser-<instrument>.onnx per instrument (EDM preconditioning inside: inputs x [B, C, T] and σ [B]), a
decoder-<instrument>.onnx for each instrument given its own decoder file (models/decoders/*.pt, from
train.codec --export FILE --own-decoder INSTRUMENT: what is bound for that instrument is decoded with it) and
bundle.json: sample rate, hop, latent size, normalization, σ_data, the context each causal model needs, the
training record of every model and the parity figures measured here. Weight norm is folded; time axes are
dynamic. Each model is checked against PyTorch on random and real inputs; the export fails above tolerance.
"""
from __future__ import annotations

import logging

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.codec import DECODER_FORMAT, Codec, CodecError, with_own_decoder
from core.denoiser import MODEL_FORMAT as DENOISER_FORMAT
from core.denoiser import load_denoiser, trained_space
from core.io import CheckpointError, load_any

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "timbre-bundle/1"
OPSET = 17
TOLERANCE = {"encoder": 2e-3, "decoder": 2e-3, "denoiser": 2e-3}


class ExportError(RuntimeError):
    pass


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """Replace weight-normed weights (weight_g, weight_v) with plain ones."""
    for m in module.modules():
        if hasattr(m, "weight_g") and hasattr(m, "weight_v"):
            torch.nn.utils.remove_weight_norm(m)
    return module


class _Encoder(nn.Module):
    def __init__(self, codec: Codec):
        super().__init__()
        self.codec = codec

    def forward(self, wav):  # [B, 1, N] (N a multiple of hop) → normalized latents [B, C, N/hop]
        return self.codec.normalize(self.codec.encoder(wav))


class _Decoder(nn.Module):
    def __init__(self, codec: Codec):
        super().__init__()
        self.codec = codec

    def forward(self, latents):  # normalized [B, C, T] → [B, 1, T·hop]
        return self.codec.decode(latents)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], output: str, dyn: dict) -> None:
    """Trace to ONNX. encodec's SConv1d pads each input to whole frames with Python arithmetic on the length,
    which tracing would freeze at the traced length; the engine only feeds whole hops, where that padding is
    zero, so it is switched off while tracing and the time axis stays dynamic."""
    from encodec.modules import conv as encodec_conv

    module.eval()
    saved = encodec_conv.get_extra_padding_for_conv1d
    encodec_conv.get_extra_padding_for_conv1d = lambda *a, **k: 0
    try:
        with torch.no_grad():
            torch.onnx.export(module, args, str(path), input_names=inputs, output_names=[output],
                              dynamic_axes=dyn, opset_version=OPSET, dynamo=False)
    finally:
        encodec_conv.get_extra_padding_for_conv1d = saved


def _session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _max_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def decoder_context_frames(codec: Codec) -> int:
    """Latent frames before a chunk that its decoded samples still depend on (gradient-measured)."""
    t = 64
    z = torch.randn(1, codec.latent_dim, t, requires_grad=True)
    with torch.enable_grad():
        out = codec.decoder(z)
        out[0, 0, -codec.hop_length:].sum().backward()  # the last frame's samples
    used = torch.nonzero(z.grad[0].abs().sum(0) > 0)
    ctx = int(t - 1 - used.min()) if len(used) else 0
    if ctx >= t - 2:
        raise ExportError(f"the decoder's context reaches past the {t} frames measured: is it causal?")
    return ctx


def parity_inputs(codec: Codec, real_audio: np.ndarray | None) -> list[torch.Tensor]:
    """Audio the exported encoder and decoders are checked on: noise of three lengths, and the real audio given."""
    hop = codec.hop_length
    tests = [torch.randn(1, 1, n * hop) * 0.1 for n in (8, 21, 64)]
    if real_audio is not None:
        n = min(len(real_audio) // hop, 400) * hop
        tests.append(torch.from_numpy(real_audio[:n].astype(np.float32)).view(1, 1, -1))
    return tests


def export_decoder(codec: Codec, path: Path, latents: list[np.ndarray]) -> float:
    """`codec`'s decoder (normalized latents → audio) to ONNX at `path`; its largest error against PyTorch on
    `latents`."""
    z = torch.randn(1, codec.latent_dim, 32)
    _export(_Decoder(codec), (z,), path, ["latents"], "audio",
            {"latents": {0: "batch", 2: "frames"}, "audio": {0: "batch", 2: "samples"}})
    dec, err = _session(path), 0.0
    with torch.no_grad():
        for ref in latents:
            ref_y = _Decoder(codec)(torch.from_numpy(ref)).numpy()
            err = max(err, _max_err(ref_y, dec.run(None, {"latents": ref})[0]))
    return err


def export_codec(codec: Codec, out: Path, real_audio: np.ndarray | None) -> dict:
    codec = fold_weight_norm(codec.float().eval())
    hop = codec.hop_length
    if codec.kind == "compact":  # finite receptive fields: chunked coding is exact
        rf = codec.receptive_field()
        enc_ctx, dec_ctx = codec.encoder_context(rf), decoder_context_frames(codec)
    else:  # EnCodec's LSTM remembers forever: a second of context makes chunked coding a close approximation
        rf, enc_ctx, dec_ctx = -1, 75 * hop, 75
    x = torch.randn(1, 1, 32 * hop) * 0.1
    _export(_Encoder(codec), (x,), out / "encoder.onnx", ["audio"], "latents",
            {"audio": {0: "batch", 2: "samples"}, "latents": {0: "batch", 2: "frames"}})
    enc = _session(out / "encoder.onnx")
    errs = {"encoder": 0.0}
    latents = []
    with torch.no_grad():
        for wav in parity_inputs(codec, real_audio):
            latents.append(_Encoder(codec)(wav).numpy())
            errs["encoder"] = max(errs["encoder"], _max_err(latents[-1], enc.run(None, {"audio": wav.numpy()})[0]))
    errs["decoder"] = export_decoder(codec, out / "decoder.onnx", latents)
    return dict(
        kind=codec.kind, config=codec.config, sample_rate=codec.sample_rate, hop_length=hop,
        frame_rate=codec.frame_rate, latent_dim=codec.latent_dim,
        encoder=dict(file="encoder.onnx", receptive_field_samples=rf, context_samples=enc_ctx,
                     exact_streaming=codec.kind == "compact"),
        decoder=dict(file="decoder.onnx", context_frames=dec_ctx),
        normalization=dict(mean=codec.latent_mean.tolist(), std=codec.latent_std.tolist(), folded=True),
        train_info={k: v for k, v in codec.train_info.items() if k != "history"},
        silence_latent=enc.run(None, {"audio": np.zeros((1, 1, enc_ctx + hop), np.float32)})[0][0, :, -1].tolist(),
        parity=errs,
    )


def export_denoiser(path: Path, out: Path, latent_dim: int, real_latents: np.ndarray | None,
                    stats_id: str | None = None) -> tuple[str, dict]:
    model, ck = load_denoiser(path)
    if ck["config"]["latent_dim"] != latent_dim:
        raise ExportError(f"{path}: denoiser expects {ck['config']['latent_dim']}-channel latents, the codec makes "
                          f"{latent_dim}")
    trained_in = trained_space(ck)
    if stats_id and trained_in and trained_in != stats_id:
        raise ExportError(f"{path}: trained in latent space {trained_in}, the codec's is {stats_id}: retrain it on "
                          f"latents of this codec (python -m train.latents, python -m train.denoiser)")
    name = ck["instrument"]
    f = out / f"denoiser-{name}.onnx"
    x, s = torch.randn(1, latent_dim, 32), torch.ones(1)
    _export(model, (x, s), f, ["x", "sigma"], "denoised",
            {"x": {0: "batch", 2: "frames"}, "sigma": {0: "batch"}, "denoised": {0: "batch", 2: "frames"}})
    sess = _session(f)
    err = 0.0
    cases = [(torch.randn(2, latent_dim, t) * 2, torch.tensor([sg, 3 * sg])) for t in (16, 32, 64) for sg in (0.01, 1.0, 40.0)]
    if real_latents is not None:
        z = torch.from_numpy(real_latents[None, :, : real_latents.shape[1] // 4 * 4].astype(np.float32))
        cases += [(z + sg * torch.randn_like(z), torch.tensor([sg])) for sg in (0.01, 1.0, 10.0)]
    with torch.no_grad():
        for xi, si in cases:
            err = max(err, _max_err(model(xi, si).numpy(), sess.run(None, {"x": xi.numpy(), "sigma": si.numpy()})[0]))
    space = (ck.get("train_info") or {}).get("latent_space") or dict(kind="shared")
    moments = space.get("moments") or {}
    if space["kind"] not in ("shared", "instrument") or (space["kind"] == "instrument" and not (
            len(space.get("mean", [])) == len(space.get("std", [])) == latent_dim)) or (moments and not (
            len(moments.get("mean", [])) == len(moments.get("std", [])) == latent_dim)) or (moments.get("cov") and not (
            np.shape(moments["cov"]) == (latent_dim, latent_dim))):
        raise ExportError(f"{path}: malformed latent_space record {str(space)[:120]}")
    # shared: the bundle's normalization; instrument: its own mean/std of raw latents. Moments: the instrument's
    # data in that space, which the bridge matches at σmax (an older file has none: its pairs need prior gaussian,
    # or instance / local for pairs out of it; one without the channels' covariance cannot use prior transport)
    record = {k: v for k, v in space.items() if k in ("kind", "mean", "std", "frames")} \
        if space["kind"] == "instrument" else dict(kind="shared")
    if moments:
        record["moments"] = dict(mean=list(moments["mean"]), std=list(moments["std"]),
                                 **({"cov": moments["cov"]} if moments.get("cov") else {}))
    elif space["kind"] == "shared":
        log.warning("%s records no latent moments: its pairs need prior gaussian (pairs out of it: or instance or "
                    "local; write it again from its run with python -m train.denoiser --export to record them)", path)
    info = dict(file=f.name, config=ck["config"], sigma_data=ck.get("sigma_data", 1.0),
                latent_space=record,
                time_factor=model.time_factor, receptive_field_frames=model.receptive_field(),
                params=int(sum(p.numel() for p in model.parameters())),
                train_info={k: v for k, v in ck.get("train_info", {}).items() if k not in ("history", "latent_space")},
                parity=err)
    return name, info


def export_own_decoder(name: str, own: Codec, path: Path, out: Path, dec_ctx: int, real_audio: np.ndarray | None
                       ) -> dict:
    """An instrument's own decoder (`own`: the codec with the decoder file `path`'s decoder, core.codec.
    with_own_decoder) → decoder-<name>.onnx, checked against PyTorch on the codec's latents of the parity audio.
    Its context must be the shared decoder's: the engine keeps one history of committed frames for both."""
    own = fold_weight_norm(own.float().eval())
    ctx = decoder_context_frames(own)
    if ctx != dec_ctx:
        raise ExportError(f"{path}: its decoder reads {ctx} frames of context, the codec's {dec_ctx}")
    with torch.no_grad():
        latents = [own.encode(wav).numpy() for wav in parity_inputs(own, real_audio)]
    f = out / f"decoder-{name}.onnx"
    err = export_decoder(own, f, latents)
    return dict(file=f.name, context_frames=ctx, config=own.config,
                train_info={k: v for k, v in own.train_info.items() if k != "history"}, parity=err)


def classify(path: Path) -> str:
    try:
        fmt = load_any(path)["format"]
    except CheckpointError as e:
        raise ExportError(str(e)) from None
    if fmt == "timbre-codec/1":
        return "codec"
    if fmt == DENOISER_FORMAT:
        return "denoiser"
    if fmt == DECODER_FORMAT:
        return "decoder"
    raise ExportError(f"{path}: not a codec, denoiser or decoder file (format {fmt!r}); training checkpoints "
                      f"(runs/*/last.pt) become model files with `python -m train.codec --export` or "
                      f"`python -m train.denoiser --export`")


def export_bundle(checkpoints: list[Path], out: Path, audio: Path | None = None) -> dict:
    """Export everything into `out` atomically: a failure leaves any previous bundle untouched."""
    kinds = {p: classify(p) for p in checkpoints}
    codecs = [p for p, k in kinds.items() if k == "codec"]
    if len(codecs) != 1:
        raise ExportError(f"give exactly one codec file (got {len(codecs)}) and the denoiser files (and any "
                          f"instrument's own decoder file)")
    codec = Codec.load(codecs[0])
    own = {}  # instrument → (decoder file, the codec with that decoder); read before export folds the weights
    for p in [p for p, k in kinds.items() if k == "decoder"]:
        try:
            name, with_decoder = with_own_decoder(codec, p)
        except CodecError as e:
            raise ExportError(str(e)) from None
        if name in own:
            raise ExportError(f"two decoder files for instrument {name!r}: {own[name][0]} and {p}")
        own[name] = (p, with_decoder)
    if not codec.stats_fitted:
        log.warning("%s has no latent statistics (python -m train.latents)", codecs[0])
    real = None
    if audio is not None:
        from core.audio import load_audio

        real = load_audio(audio, codec.sample_rate)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is read by whoever plays it
    try:
        t0 = time.time()
        meta = dict(format=BUNDLE_FORMAT, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    torch=torch.__version__, opset=OPSET, tolerance=TOLERANCE)
        meta["codec"] = export_codec(codec, tmp, real)
        meta["sigma_data"] = 1.0
        real_latents = None
        if real is not None:
            with torch.no_grad():
                real_latents = codec.encode_numpy(real[: 400 * codec.hop_length])
        meta["instruments"] = {}
        stats_id = (codec.train_info.get("latent_stats") or {}).get("hash")
        for p in checkpoints:
            if kinds[p] == "denoiser":
                name, info = export_denoiser(p, tmp, codec.latent_dim, real_latents, stats_id)
                if name in meta["instruments"]:
                    raise ExportError(f"two denoiser files for instrument {name!r}")
                meta["instruments"][name] = info
        decoders = {}  # recorded only where there are some: a bundle without keeps its models_sha256
        for name, (p, with_decoder) in sorted(own.items()):
            if name not in meta["instruments"]:
                raise ExportError(f"{p}: a decoder for {name!r}, which has no denoiser among the files given")
            decoders[name] = export_own_decoder(name, with_decoder, p, tmp,
                                                meta["codec"]["decoder"]["context_frames"], real)
        if decoders:
            meta["codec"]["decoders"] = decoders
        problems = [f"{k}: {v:.2e} > {TOLERANCE[k]:.0e}" for k, v in meta["codec"]["parity"].items() if v > TOLERANCE[k]]
        problems += [f"denoiser {n}: {i['parity']:.2e} > {TOLERANCE['denoiser']:.0e}"
                     for n, i in meta["instruments"].items() if i["parity"] > TOLERANCE["denoiser"]]
        problems += [f"{n}'s decoder: {i['parity']:.2e} > {TOLERANCE['decoder']:.0e}"
                     for n, i in decoders.items() if i["parity"] > TOLERANCE["decoder"]]
        if problems:
            raise ExportError("ONNX and PyTorch disagree: " + "; ".join(problems))
        meta["export_seconds"] = round(time.time() - t0, 1)
        (tmp / "bundle.json").write_text(json.dumps(meta, indent=1))
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if out.exists():
            out.rename(old)  # never a moment without a complete bundle at `out` or beside it
        tmp.rename(out)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.onnx", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path,
                    help="one codec file, any number of denoiser files, and any instrument's own decoder file")
    ap.add_argument("--out", type=Path, required=True, help="bundle folder (replaced atomically)")
    ap.add_argument("--audio", type=Path, default=None, help="real audio for the parity check")
    a = ap.parse_args(argv)
    try:
        meta = export_bundle(a.checkpoints, a.out, a.audio)
    except (ExportError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    c = meta["codec"]
    print(f"bundle → {a.out}")
    print(f"  codec {c['kind']}: {c['sample_rate']} Hz, hop {c['hop_length']}, {c['latent_dim']} channels; "
          f"parity encoder {c['parity']['encoder']:.1e}, decoder {c['parity']['decoder']:.1e}")
    for n, i in meta["instruments"].items():
        print(f"  denoiser {n}: {i['params'] / 1e6:.2f} M params, receptive field {i['receptive_field_frames']} frames, "
              f"parity {i['parity']:.1e}")
    for n, i in c.get("decoders", {}).items():
        print(f"  decoder of its own for {n}: parity {i['parity']:.1e}")
    return 0


if __name__ == "__main__":
    from core.cli import run_main

    sys.exit(run_main(main))
