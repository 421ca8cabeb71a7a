"""Per-instrument latent statistics: recorded by the trainer and the bundle, and the engine's transfer moves a
latent from the source's normalized space to the target's (closed form: the exact Gaussian case)."""
import json

import numpy as np
import pytest

from live.bundle import Bundle, BundleError, OnnxDenoiser

torch = pytest.importorskip("torch")

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
    np.testing.assert_allclose(b.transfer(z, "alpha", "beta", 5.0, 24, method="heun", prior="gaussian"), z, atol=2e-3)


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
    np.testing.assert_allclose(sp["moments"]["mean"], 0, atol=1e-6)  # its own space: 0 and 1 by definition
    np.testing.assert_allclose(sp["moments"]["std"], 1, rtol=1e-6)
    with torch.no_grad():
        codec.latent_mean.copy_(torch.full((D,), 5.0))
        codec.latent_std.copy_(torch.full((D,), 2.0))
    shared = latent_space("shared", tmp_path / "train.npz", codec)
    assert shared["kind"] == "shared"
    # the instrument's data in the shared space: what prior matched moves between at σmax
    np.testing.assert_allclose(shared["moments"]["mean"], (cat.mean(axis=1) - 5) / 2, rtol=1e-5)
    np.testing.assert_allclose(shared["moments"]["std"], cat.std(axis=1) / 2, rtol=1e-5)
    np.testing.assert_allclose(shared["moments"]["cov"], np.cov(cat, bias=True) / 4, rtol=1e-5, atol=1e-6)  # transport


class ShiftedGaussianSession:
    """The optimal denoiser of N(m, s²) per channel: D(x, σ) = m + s²/(s²+σ²)·(x − m)."""

    def __init__(self, m, s):
        self.m, self.s = np.asarray(m, np.float32)[:, None], np.asarray(s, np.float32)[:, None]

    def run(self, _, feeds):
        x, sg = feeds["x"], feeds["sigma"][:, None, None]
        return [self.m + self.s ** 2 / (self.s ** 2 + sg ** 2) * (x - self.m)]


def test_prior_matched_makes_the_shared_space_transfer_the_exact_moment_swap_at_a_low_sigma_max(tmp_path):
    """Two Gaussian instruments in the shared space, with their moments recorded in the bundle: prior matched
    gives μb + sb/sa·(z − μa) at σmax 1 (up to Heun's error); the paper's gaussian prior is measurably off there."""
    from tests.helpers import make_tiny_bundle

    b = Bundle(make_tiny_bundle(tmp_path, latent_dim=D), provider="cpu", threads=1)
    mom = {n: b.meta["instruments"][n]["latent_space"]["moments"] for n in ("alpha", "beta")}
    assert all(len(m["mean"]) == len(m["std"]) == D for m in mom.values())  # export carried them
    for n, m in mom.items():
        b._denoisers[n] = OnnxDenoiser(ShiftedGaussianSession(m["mean"], m["std"]), n, b.meta["instruments"][n])
    (ma, sa), (mb, sb) = [[np.asarray(mom[n][k])[:, None] for k in ("mean", "std")] for n in ("alpha", "beta")]
    z = (ma + sa * np.random.default_rng(2).normal(size=(D, 40))).astype(np.float32)
    want = mb + sb / sa * (z - ma)
    np.testing.assert_allclose(b.transfer(z, "alpha", "beta", 1.0, 32, 1e-3, method="heun", prior="matched"), want,
                               atol=3e-3)
    assert np.abs(b.transfer(z, "alpha", "beta", 1.0, 32, 1e-3, method="heun", prior="gaussian") - want).max() > 0.1
    # a shared-space denoiser exported without moments cannot meet matched: one clear error, not a silent gaussian
    b._denoisers["beta"] = OnnxDenoiser(ShiftedGaussianSession(mom["beta"]["mean"], mom["beta"]["std"]), "beta",
                                        {"latent_space": {"kind": "shared"}})
    with pytest.raises(BundleError, match="no latent moments.*prior.*gaussian"):
        b.transfer(z, "alpha", "beta", 1.0, 4)
    b.transfer(z, "alpha", "beta", 1.0, 4, prior="gaussian")


def test_prior_instance_gives_each_window_the_targets_moments_through_the_bundle(tmp_path):
    """Bundle.transfer with prior instance, Gaussian instruments: each channel of the window standardized over
    time and given the target's recorded moments (closed form, any σmax); it needs the target's moments only."""
    from tests.helpers import make_tiny_bundle

    b = Bundle(make_tiny_bundle(tmp_path, latent_dim=D), provider="cpu", threads=1)
    mom = {n: b.meta["instruments"][n]["latent_space"]["moments"] for n in ("alpha", "beta")}
    for n, m in mom.items():
        b._denoisers[n] = OnnxDenoiser(ShiftedGaussianSession(m["mean"], m["std"]), n, b.meta["instruments"][n])
    mb, sb = [np.asarray(mom["beta"][k])[:, None] for k in ("mean", "std")]
    z = (0.3 + 2.0 * np.random.default_rng(3).normal(size=(D, 60))).astype(np.float32)
    want = mb + sb * (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)
    for sigma_max in (0.5, 5.0):
        got = b.transfer(z, "alpha", "beta", sigma_max, 32, 1e-3, method="heun", prior="instance")
        np.testing.assert_allclose(got, want, atol=1e-2 * np.abs(want).max())
    # local: each frame by the 33 around it (the window is longer, so it is not instance)
    from core.sampling import moving_moments

    m, s = moving_moments(z, 33)
    want_local = mb + sb * (z - m) / s
    got = b.transfer(z, "alpha", "beta", 2.0, 32, 1e-3, method="heun", prior="local")
    np.testing.assert_allclose(got, want_local, atol=1e-2 * np.abs(want_local).max())
    assert np.abs(want_local - want).max() > 0.1
    # the source's moments are not read: a source exported without them still bridges; a target without refuses
    b._denoisers["alpha"] = OnnxDenoiser(ShiftedGaussianSession(mom["alpha"]["mean"], mom["alpha"]["std"]), "alpha",
                                         {"latent_space": {"kind": "shared"}})
    for prior in ("instance", "local"):
        b.transfer(z, "alpha", "beta", 1.0, 4, prior=prior)
        with pytest.raises(BundleError, match="'alpha' has no latent moments"):
            b.transfer(z, "beta", "alpha", 1.0, 4, prior=prior)


def test_without_moments_prior_matched_is_refused_when_the_engine_starts_or_switches(tmp_path, caplog):
    """A bundle from denoiser files that predate moments: the engine says so before any audio, instead of playing
    every hop dry; gaussian still plays. A preset file that names no prior is read as gaussian (its σmax was chosen
    for that bridge)."""
    from live.engine import StreamingEngine
    from live.preset import Preset, load_preset
    from tests.helpers import make_tiny_bundle

    with caplog.at_level("WARNING"):
        folder = make_tiny_bundle(tmp_path, latent_dim=D, spaces={n: dict(kind="shared") for n in ("alpha", "beta")})
    assert "records no latent moments" in caplog.text
    b = Bundle(folder, provider="cpu", threads=1)
    p = Preset(name="a-to-b", source="alpha", target="beta", sigma_max=1.0, window=16, hop=4, crossfade=2)
    assert p.prior == "matched"
    with pytest.raises(BundleError, match="no latent moments.*prior.*gaussian"):
        StreamingEngine(b, p)
    import dataclasses

    eng = StreamingEngine(b, dataclasses.replace(p, prior="gaussian"))
    with pytest.raises(BundleError, match="no latent moments"):
        eng.set(prior="matched")
    assert eng.params["prior"] == "gaussian" and not eng._pending
    f = tmp_path / "old.json"
    f.write_text(json.dumps(dict(name="old", source="alpha", target="beta", sigma_max=2.0, solver="euler")))
    assert load_preset(f).prior == "gaussian"
    f.write_text(json.dumps(dict(name="new", source="alpha", target="beta", sigma_max=2.0, prior="matched")))
    assert load_preset(f).prior == "matched"


class CorrelatedGaussianSession:
    """The optimal denoiser of N(m, C) with correlated channels: D(x, σ) = m + C(C + σ²I)⁻¹(x − m)."""

    def __init__(self, m, cov):
        self.m, self.cov = np.asarray(m, np.float64)[:, None], np.asarray(cov, np.float64)

    def run(self, _, feeds):
        x, sg = feeds["x"].astype(np.float64), float(feeds["sigma"][0])
        gain = self.cov @ np.linalg.inv(self.cov + sg**2 * np.eye(len(self.cov)))
        return [(self.m + gain @ (x - self.m)).astype(np.float32)]


def test_prior_transport_carries_one_instruments_covariance_onto_the_others(tmp_path):
    """Two Gaussian instruments with correlated channels, their covariances recorded in the bundle: prior transport
    gives output with the target's covariance at σmax 1 (per-channel matching leaves the correlations off); a
    denoiser without a covariance is refused with one message naming the prior that still works."""
    from tests.helpers import make_tiny_bundle

    b = Bundle(make_tiny_bundle(tmp_path, latent_dim=D), provider="cpu", threads=1)
    mom = {n: b.meta["instruments"][n]["latent_space"]["moments"] for n in ("alpha", "beta")}
    assert all(np.shape(m["cov"]) == (D, D) for m in mom.values())  # export carried them
    for n, m in mom.items():
        b._denoisers[n] = OnnxDenoiser(CorrelatedGaussianSession(m["mean"], m["cov"]), n, b.meta["instruments"][n])
    ca, cb = (np.asarray(mom[n]["cov"]) for n in ("alpha", "beta"))
    base = np.asarray(mom["alpha"]["mean"], np.float32)[:, None]
    basis = np.concatenate([base, base + np.eye(D, dtype=np.float32)], axis=1)  # the mean, then one step per channel

    def linear_map(prior):
        y = b.transfer(basis, "alpha", "beta", 1.0, 32, 1e-3, method="heun", prior=prior).astype(np.float64)
        return y[:, 1:] - y[:, :1], y[:, 0]

    m, at_mean = linear_map("transport")
    np.testing.assert_allclose(m @ ca @ m.T, cb, atol=0.02 * np.abs(cb).max())
    np.testing.assert_allclose(at_mean, mom["beta"]["mean"], atol=1e-3)
    mm, _ = linear_map("matched")
    assert np.abs(mm @ ca @ mm.T - cb).max() > 0.1 * np.abs(cb).max()
    info = json.loads(json.dumps(b.meta["instruments"]["beta"]))
    del info["latent_space"]["moments"]["cov"]
    b._denoisers["beta"] = OnnxDenoiser(CorrelatedGaussianSession(mom["beta"]["mean"], cb), "beta", info)
    with pytest.raises(BundleError, match="no latent covariance.*prior.*matched"):
        b.transfer(basis, "alpha", "beta", 1.0, 4, prior="transport")
    b.transfer(basis, "alpha", "beta", 1.0, 4, prior="matched")
