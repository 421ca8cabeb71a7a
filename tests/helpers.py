"""Small real models for tests: a random-weight compact codec and denoisers exported to a real ONNX bundle."""
from __future__ import annotations

from pathlib import Path


def make_tiny_bundle(folder: Path, instruments=("alpha", "beta"), latent_dim: int = 8, seed: int = 0,
                     spaces: dict | None = None) -> Path:
    """spaces: instrument → latent_space record (default shared) stored in its denoiser file, as
    `python -m train.denoiser --stats instrument` does."""
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
    export_bundle(files, folder / "bundle")
    return folder / "bundle"
