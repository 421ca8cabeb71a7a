"""Denoiser network, EDM training on a toy latent set, and both codec backends."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.codec import Codec, CodecError  # noqa: E402
from core.denoiser import EDMDenoiser, denoiser_config  # noqa: E402
from core.precond import edm_loss  # noqa: E402
from core.sampling import bridge  # noqa: E402


def test_denoiser_any_length_multiple_of_its_factor_and_skip_at_small_sigma():
    d = EDMDenoiser(denoiser_config(latent_dim=16, channels=(16, 24, 32))).eval()
    assert d.time_factor == 4
    with torch.no_grad():
        for p in d.parameters():  # break the zero init so the network path matters
            p.add_(0.05 * torch.randn_like(p))
        for t in (4, 8, 32, 100):
            x = torch.randn(2, 16, t)
            assert d(x, torch.tensor([0.5, 2.0])).shape == x.shape
        x = torch.randn(1, 16, 32)
        assert torch.allclose(d(x, 1e-6), x, atol=1e-4)  # c_skip → 1, c_out → 0
        assert not torch.allclose(d(x, 5.0), x, atol=1e-2)
    rf = d.receptive_field()
    assert 20 < rf < 256


def test_frame_norm_is_a_per_frame_layer_norm_over_channels():
    """(x − mean_c)/√(var_c + ε)·w + b at every frame, from the definition; one frame never sees another."""
    from core.denoiser import FrameNorm

    torch.manual_seed(0)
    n = FrameNorm(16)
    with torch.no_grad():
        n.weight.normal_()
        n.bias.normal_()
    x = torch.randn(2, 16, 9) * 3 + 1
    mu = x.mean(dim=1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=1, keepdim=True)
    ref = (x - mu) / torch.sqrt(var + n.eps) * n.weight + n.bias
    torch.testing.assert_close(n(x), ref, atol=1e-5, rtol=1e-5)
    y = x.clone()
    y[:, 0, 4] += 100.0  # one channel: a shift of all channels alike is what the norm removes
    changed = (n(y) - n(x)).abs().amax(dim=(0, 1)) > 1e-5
    assert changed.tolist() == [False] * 4 + [True] + [False] * 4


def test_denoiser_output_is_local_within_its_receptive_field():
    d = EDMDenoiser(denoiser_config(latent_dim=8, channels=(16, 16), blocks=1)).eval()
    with torch.no_grad():
        for p in d.parameters():
            p.add_(0.05 * torch.randn_like(p))
        rf = d.receptive_field()
        x = torch.randn(1, 8, 256)
        y = x.clone()
        y[..., :64] = torch.randn(1, 8, 64)  # change only the far past
        a, b = d(x, 1.0), d(y, 1.0)
        far = 64 + rf  # frames beyond the receptive field of the change are untouched
        assert torch.allclose(a[..., far:], b[..., far:], atol=1e-5)
        assert not torch.allclose(a[..., 60:70], b[..., 60:70])


def _toy_batch(n, gen):
    """Two clusters of latent sequences: +pattern or −pattern per example, plus small noise."""
    pattern = torch.sin(torch.arange(16)[None, :] * 0.4 + torch.arange(8)[:, None])
    sign = torch.where(torch.rand(n, 1, 1, generator=gen) < 0.5, -1.0, 1.0)
    return sign * pattern + 0.05 * torch.randn(n, 8, 16, generator=gen)


def test_tiny_denoiser_learns_a_two_cluster_latent_set():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = EDMDenoiser(denoiser_config(latent_dim=8, channels=(16, 16), blocks=1, emb_dim=32))
    valid = _toy_batch(256, torch.Generator().manual_seed(1))

    def valid_loss():
        vg = torch.Generator().manual_seed(2)
        with torch.no_grad():
            return float(edm_loss(model, valid, generator=vg)[0].mean())

    before = valid_loss()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(250):
        loss = edm_loss(model, _toy_batch(32, gen), generator=gen)[0].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = valid_loss()
    assert after < 0.5 * before, (before, after)
    # and the trained denoiser, as a bridge target, maps noise onto one of the two clusters
    model.eval()
    with torch.no_grad():
        z = torch.randn(8, 8, 16) * 20
        from core.sampling import decode_from_prior

        y = decode_from_prior(lambda x, s: model(x, s), z, 20.0, 16)
    pattern = torch.sin(torch.arange(16)[None, :] * 0.4 + torch.arange(8)[:, None])
    corr = (y * pattern).mean(dim=(1, 2)) / (pattern**2).mean()  # ±1 on a cluster, 0 for noise
    assert (corr.abs() > 0.6).float().mean() >= 0.75, corr
    assert corr.abs().mean() > 0.75, corr


def test_compact_codec_round_trip_shapes_rates_and_streaming_equality():
    codec = Codec.compact(n_filters=4, dimension=16).eval()
    assert codec.sample_rate == 24_000 and codec.hop_length == 320 and codec.frame_rate == 75
    n = 24_000 + 123
    x = np.random.default_rng(0).normal(0, 0.1, n).astype(np.float32)
    z = codec.encode_numpy(x)
    assert z.shape == (16, math.ceil(n / 320))
    assert codec.decode_numpy(z).shape == (z.shape[1] * 320,)
    # causal with finite context: re-encoding a chunk with its left context gives the whole-file frames
    ctx = codec.encoder_context()
    assert ctx % 320 == 0 and ctx - 320 < codec.receptive_field() <= ctx
    with torch.no_grad():
        full = codec.encode_raw(torch.from_numpy(x[: 60 * 320]).view(1, 1, -1))[0]
        k = 30
        part = codec.encode_raw(torch.from_numpy(x[k * 320 - ctx: (k + 10) * 320]).view(1, 1, -1))[0, :, -10:]
    assert torch.allclose(part, full[:, k:k + 10], atol=1e-5)


def test_codec_save_load_keeps_weights_and_statistics(tmp_path):
    codec = Codec.compact(n_filters=4, dimension=16)
    codec.set_latent_stats(torch.linspace(-1, 1, 16), torch.linspace(0.5, 2, 16))
    codec.save(tmp_path / "c.pt")
    back = Codec.load(tmp_path / "c.pt")
    x = np.random.default_rng(1).normal(0, 0.1, 3200).astype(np.float32)
    np.testing.assert_allclose(back.encode_numpy(x), codec.eval().encode_numpy(x), atol=1e-6)
    with pytest.raises(Exception, match="no such checkpoint"):
        Codec.load(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="not a readable"):
        Codec.load(tmp_path / "bad.pt")


def test_pretrained_encodec_backend_at_random_init_and_offline_message(tmp_path):
    codec = Codec.pretrained(random_init=True).eval()
    assert codec.latent_dim == 128 and codec.frame_rate == 75 and codec.kind == "encodec_24khz"
    x = np.random.default_rng(0).normal(0, 0.1, 24_000).astype(np.float32)
    z = codec.encode_numpy(x)
    assert z.shape == (128, 75)
    assert codec.decode_numpy(z).shape == (24_000,)
    with pytest.raises(CodecError, match="encodec_24khz-d7cc33bc.th"):
        Codec.pretrained(checkpoint_dir=tmp_path)


def test_bridge_accepts_torch_modules():
    d = EDMDenoiser(denoiser_config(latent_dim=8, channels=(16, 16), blocks=1)).eval()
    x = torch.randn(1, 8, 16)
    with torch.no_grad():
        y = bridge(x, d, d, 5.0, 16)
    # an untrained (zero-output) network is the N(0, σ_d²) optimal denoiser: the self-bridge is the identity
    assert torch.allclose(y, x, atol=2e-2)


def test_edge_weighted_loss_is_the_weighted_mean_of_per_frame_errors():
    """edm_loss with frame weights = Σ_t w_t·e_t / T from the per-frame errors of the same draw; uniform weights give
    the plain loss; edge_weights puts `weight` times the rest on the newest frames and has mean 1."""
    from core.precond import edge_weights, loss_weight

    w = edge_weights(32, 8, 4.0)
    assert torch.isclose(w.mean(), torch.tensor(1.0))
    assert torch.allclose(w[-8:], 4 * w[:24].mean()) and torch.allclose(w[:24], w[0])
    assert torch.allclose(edge_weights(4, 8, 3.0), torch.ones(4))  # an edge longer than the crop: all frames alike

    class Shrink(torch.nn.Module):  # D(x, σ) = x/(1 + σ²): a known per-frame error
        def forward(self, x, sigma):
            return x / (1 + sigma.view(-1, 1, 1) ** 2)

    x = torch.randn(3, 5, 32)
    sigma = torch.tensor([0.3, 1.0, 4.0])
    plain, _ = edm_loss(Shrink(), x, generator=torch.Generator().manual_seed(1), sigma=sigma)
    weighted, _ = edm_loss(Shrink(), x, generator=torch.Generator().manual_seed(1), sigma=sigma, frame_weight=w)
    n = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    s = sigma.view(-1, 1, 1)
    e = (loss_weight(s, 1.0) * ((x + s * n) / (1 + s**2) - x) ** 2).mean(dim=1)  # [B, T]
    assert torch.allclose(plain, e.mean(dim=1), rtol=1e-5)
    assert torch.allclose(weighted, (e * w).mean(dim=1), rtol=1e-5)
    assert not torch.allclose(weighted, plain, rtol=1e-3)
    uniform, _ = edm_loss(Shrink(), x, generator=torch.Generator().manual_seed(1), sigma=sigma,
                          frame_weight=torch.ones(32))
    assert torch.allclose(uniform, plain)
