"""Small real models for tests: a random-weight compact codec and denoisers exported to a real ONNX bundle."""
from __future__ import annotations

from pathlib import Path


def own_decoder_codec(codec, seed: int = 1, scale: float = 0.3):
    """A copy of `codec` whose decoder's weights are moved by `scale` of themselves at random: an instrument's own
    decoder, as a run with the encoder frozen makes one (encoder and statistics the same)."""
    import torch

    from core.codec import Codec

    own = Codec.compact(**codec.config)  # (a deep copy fails on weight norm's computed weights)
    own.load_state_dict(codec.state_dict())
    own.train_info = dict(codec.train_info)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in own.decoder.parameters():
            p.mul_(1 + scale * torch.randn(p.shape, generator=gen))
    return own


def make_tiny_bundle(folder: Path, instruments=("alpha", "beta"), latent_dim: int = 8, seed: int = 0,
                     spaces: dict | None = None, own_decoders=()) -> Path:
    """spaces: instrument → latent_space record (default shared) stored in its denoiser file, as
    `python -m train.denoiser --stats instrument` does; own_decoders: instruments given a decoder of their own
    (own_decoder_codec, in FOLDER/<instrument>.decoder.pt)."""
    import torch

    from core.codec import Codec
    from core.denoiser import MODEL_FORMAT, EDMDenoiser, denoiser_config
    from core.io import save_atomic
    from export.onnx import export_bundle

    torch.manual_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    codec = Codec.compact(n_filters=2, dimension=latent_dim)
    codec.train_info["latent_stats"] = {"instruments": list(instruments), "frames": 0}
    codec.save(folder / "codec.pt")
    files = [folder / "codec.pt"]
    for k, name in enumerate(instruments):
        m = EDMDenoiser(denoiser_config(latent_dim=latent_dim, channels=(8, 8), blocks=1, emb_dim=16))
        with torch.no_grad():
            for p in m.parameters():  # non-zero output layers: instruments really differ
                p.add_(0.1 * torch.randn_like(p))
        # the instruments' data moments in the shared space, as the trainer records them (prior matched / transport)
        q = torch.randn(latent_dim, latent_dim, dtype=torch.float64)
        cov = q @ q.T / latent_dim + 0.1 * torch.eye(latent_dim, dtype=torch.float64)  # correlated channels
        mom = dict(mean=(0.3 * torch.randn(latent_dim)).tolist(), std=cov.diagonal().sqrt().tolist(),
                   cov=cov.tolist())
        info = {"steps": 0, "latent_space": spaces[name] if spaces and name in spaces else dict(kind="shared",
                                                                                                moments=mom)}
        save_atomic(dict(format=MODEL_FORMAT, instrument=name, config=m.config, sigma_data=1.0,
                         state_dict=m.state_dict(), train_info=info), folder / f"{name}.pt")
        files.append(folder / f"{name}.pt")
    for k, name in enumerate(own_decoders):
        from core.codec import save_own_decoder

        save_own_decoder(own_decoder_codec(codec, seed=100 + k), name, folder / f"{name}.decoder.pt")
        files.append(folder / f"{name}.decoder.pt")
    export_bundle(files, folder / "bundle")
    return folder / "bundle"
