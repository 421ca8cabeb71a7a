"""Per-instrument latent statistics: recorded by the trainer and the bundle, and the engine's transfer moves a
latent from the source's normalized space to the target's (closed form: the exact Gaussian case)."""
import json

import numpy as np
import pytest

from live.bundle import Bundle, OnnxDenoiser

pytest.importorskip("torch")

D = 8


class GaussianSession:
    """An 'ONNX session' computing the optimal denoiser of N(0, I): D(x, σ) = x / (1 + σ²)."""

    def run(self, _, feeds):
        x, s = feeds["x"], feeds["sigma"]
        return [x / (1 + s[:, None, None] ** 2)]


@pytest.fixture(scope="module")
def spaced_bundle(tmp_path_factory):
    from tests.helpers import make_tiny_bundle

    rng = np.random.default_rng(0)
    spaces = {"alpha": dict(kind="instrument", mean=rng.normal(0, 0.1, D).tolist(), std=rng.uniform(0.5, 2, D).tolist()),
              "beta": dict(kind="instrument", mean=rng.normal(0, 0.1, D).tolist(), std=rng.uniform(0.5, 2, D).tolist())}
    return make_tiny_bundle(tmp_path_factory.mktemp("spaced"), latent_dim=D, spaces=spaces), spaces


def test_the_bundle_records_each_instruments_latent_space(spaced_bundle):
    folder, spaces = spaced_bundle
    meta = json.loads((folder / "bundle.json").read_text())
    for name, sp in spaces.items():
        got = meta["instruments"][name]["latent_space"]
        assert got["kind"] == "instrument"
        np.testing.assert_allclose(got["mean"], sp["mean"])
        np.testing.assert_allclose(got["std"], sp["std"])
    b = Bundle(folder, provider="cpu", threads=1)
    assert b.denoiser("alpha").space == "instrument"


def test_transfer_is_the_mean_std_swap_when_both_spaces_are_exactly_gaussian(spaced_bundle):
    """Each instrument's own normalized latents are N(0, I) and its denoiser is the optimal one, so the bridge is
    the identity in normalized coordinates and the transfer is exactly μ_b + σ_b/σ_a·(z_raw − μ_a)."""
    folder, spaces = spaced_bundle
    b = Bundle(folder, provider="cpu", threads=1)
    norm = b.meta["codec"]["normalization"]
    mu, sd = np.asarray(norm["mean"])[:, None], np.asarray(norm["std"])[:, None]
    for name in spaces:
        b._denoisers[name] = OnnxDenoiser(GaussianSession(), name, b.meta["instruments"][name], norm["mean"], norm["std"])
    z = np.random.default_rng(1).normal(size=(D, 20)).astype(np.float32)  # shared-normalized latents
    y = b.transfer(z, "alpha", "beta", 5.0, 24, method="heun")
    ma, sa = (np.asarray(spaces["alpha"][k])[:, None] for k in ("mean", "std"))
    mb, sb = (np.asarray(spaces["beta"][k])[:, None] for k in ("mean", "std"))
    raw = sd * z + mu
    want = ((mb + sb / sa * (raw - ma)) - mu) / sd
    np.testing.assert_allclose(y, want, rtol=2e-3, atol=2e-3)  # Heun's discretization error, 24 steps
    # and with shared statistics the same bridge changes nothing
    for name in spaces:
        b._denoisers[name] = OnnxDenoiser(GaussianSession(), name, {"latent_space": {"kind": "shared"}})
    np.testing.assert_allclose(b.transfer(z, "alpha", "beta", 5.0, 24, method="heun"), z, atol=2e-3)


def test_the_trainer_fits_an_instruments_own_statistics(tmp_path):
    from core.codec import Codec
    from train.denoiser import latent_space

    codec = Codec.compact(n_filters=2, dimension=D)
    rng = np.random.default_rng(0)
    arrays = {f"{i:05d}_{s:+g}": (rng.normal(size=(D, 50)) * 3 + 7 + 100 * (s != 0)).astype(np.float16)
              for i in range(4) for s in (-2.0, 0.0)}
    np.savez(tmp_path / "train.npz", **arrays)
    sp = latent_space("instrument", tmp_path / "train.npz", codec)
    cat = np.concatenate([a.astype(np.float64) for k, a in arrays.items() if k.endswith("_+0")], axis=1)
    np.testing.assert_allclose(sp["mean"], cat.mean(axis=1), rtol=1e-6)  # unshifted latents only
    np.testing.assert_allclose(sp["std"], cat.std(axis=1), rtol=1e-6)
    assert latent_space("shared", tmp_path / "train.npz", codec)["kind"] == "shared"
