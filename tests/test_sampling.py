"""The bridge against the exact Gaussian case, convergence orders, cycles, schedule and preconditioning."""
import math

import numpy as np
import pytest

from core.gaussian import gaussian_bridge, gaussian_denoiser, gaussian_flow
from core.precond import c_in, c_noise, c_out, c_skip, loss_weight, precondition
from core.sampling import (bridge, evaluations_per_bridge, heun_step, match_covariances, match_instance, match_local,
                           match_moments, moving_moments, solve_ode, transport_map)
from core.schedule import bridge_sigmas, karras_sigmas

MU1, S1, MU2, S2 = -1.5, 0.5, 2.0, 1.0


def _x(n=2000, seed=0):
    return np.random.default_rng(seed).normal(MU1, S1, size=(n,))


def _bridge_error(steps, method="heun", sigma_max=5.0, sigma_min=1e-3):
    x = _x()
    y = bridge(x, gaussian_denoiser(MU1, S1), gaussian_denoiser(MU2, S2), sigma_max, steps, sigma_min,
               method=method)
    exact = gaussian_bridge(x, MU1, S1, MU2, S2, sigma_min, sigma_max)
    return np.abs(y - exact).max()


def test_schedule_endpoints_and_order():
    s = karras_sigmas(0.002, 80.0, 18, rho=7)
    assert s[0] == pytest.approx(80.0) and s[-1] == pytest.approx(0.002)
    assert np.all(np.diff(s) < 0)
    # ρ = 1 is a linear ramp; larger ρ packs the levels toward σmin
    np.testing.assert_allclose(karras_sigmas(1.0, 5.0, 5, rho=1.0), [5, 4, 3, 2, 1])
    assert np.median(karras_sigmas(1e-3, 80, 101, rho=9)) < np.median(karras_sigmas(1e-3, 80, 101, rho=3))
    assert len(bridge_sigmas(1e-3, 5, 4)) == 5


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError):
        karras_sigmas(1.0, 0.5, 10)
    with pytest.raises(ValueError):
        karras_sigmas(0.1, 1.0, 1)


def test_gaussian_flow_is_the_ode_solution():
    # fine Heun integration of the PF-ODE equals the closed-form flow
    x = _x(200)
    sig = karras_sigmas(1e-3, 20.0, 1500)[::-1]
    z = solve_ode(gaussian_denoiser(MU1, S1), x, sig)
    np.testing.assert_allclose(z, gaussian_flow(x, MU1, S1, 1e-3, 20.0), rtol=0, atol=2e-4)


def test_bridge_matches_exact_gaussian_map():
    assert _bridge_error(64) < 2e-3
    # the finite-σ factor from DESIGN.md: σmax = 5, s2/s1 = 2 gives ≈1.89, not 2
    slope = gaussian_bridge(1.0, 0.0, 1.0, 0.0, 2.0, 1e-3, 5.0)
    assert slope == pytest.approx(2 * math.sqrt(26 / 29), abs=1e-4)  # 1.89
    y = bridge(np.array([1.0]), gaussian_denoiser(0, 1), gaussian_denoiser(0, 2), 5.0, 64)
    assert y[0] == pytest.approx(slope, abs=2e-3)


def test_bridge_tends_to_optimal_transport_for_large_sigma_max():
    x = _x()
    y = bridge(x, gaussian_denoiser(MU1, S1), gaussian_denoiser(MU2, S2), 500.0, 64, 1e-4)
    ot = MU2 + (S2 / S1) * (x - MU1)
    assert np.abs(y - ot).max() < 0.02 * np.abs(ot - MU2).max() + 1e-2


def test_matching_the_moments_at_sigma_max_makes_the_bridge_exact_at_every_sigma_max():
    """Without the match the Gaussian bridge reaches μb + sb/sa·(x − μa) only as σmax → ∞ (1.89 instead of 2 at
    σmax 5, and the source's mean at σmax 0.5); with it, at every σmax, up to the solver's error."""
    x = _x()
    ot = MU2 + (S2 / S1) * (x - MU1)
    A, B = gaussian_denoiser(MU1, S1), gaussian_denoiser(MU2, S2)
    for sigma_max in (0.2, 1.0, 5.0, 20.0):
        plain = bridge(x, A, B, sigma_max, 64, 1e-3)
        matched = bridge(x, A, B, sigma_max, 64, 1e-3, meet=lambda z, s: match_moments(z, s, MU1, S1, MU2, S2))
        assert np.abs(matched - ot).max() < 5e-3, sigma_max
        assert np.abs(plain - gaussian_bridge(x, MU1, S1, MU2, S2, 1e-3, sigma_max)).max() < 5e-3
        if sigma_max <= 5:
            assert np.abs(plain - ot).max() > 0.1, sigma_max  # the plain bridge is measurably off there
    # per channel: arrays of moments broadcast over [C, T]
    xc = np.stack([_x(50, 1), _x(50, 2)])
    (ma, sa), (mb, sb) = ((np.array([[MU1], [0.0]]), np.array([[S1], [1.0]])),
                          (np.array([[MU2], [1.0]]), np.array([[S2], [3.0]])))
    y = bridge(xc, lambda v, s: np.where(np.arange(2)[:, None] == 0, A(v, s), gaussian_denoiser(0, 1)(v, s)),
               lambda v, s: np.where(np.arange(2)[:, None] == 0, B(v, s), gaussian_denoiser(1, 3)(v, s)),
               1.0, 64, 1e-3, meet=lambda z, s: match_moments(z, s, ma, sa, mb, sb))
    np.testing.assert_allclose(y[0], MU2 + S2 / S1 * (xc[0] - MU1), atol=5e-3)
    np.testing.assert_allclose(y[1], 1.0 + 3.0 * xc[1], atol=5e-3)


def test_instance_matching_standardizes_each_window_and_gives_it_the_targets_moments():
    """prior instance on Gaussian instruments: the exact legs scale a window's deviations by the same factor up
    and down, so the bridge gives μb + sb·(x − mean_t x)/std_t x at every σmax: the window's own mean and spread
    are gone (a window sitting off the source's average, as a register does, comes out on the target's), its
    course in time kept. Where the window's moments are the source's, it is match_moments."""
    A, B = gaussian_denoiser(MU1, S1), gaussian_denoiser(MU2, S2)
    x = np.random.default_rng(4).normal(MU1 + 0.7, 2 * S1, size=(1, 3000))  # off the source's mean and spread
    want = MU2 + S2 * (x - x.mean()) / x.std()
    for sigma_max in (0.5, 2.0, 10.0):
        y = bridge(x, A, B, sigma_max, 64, 1e-3, meet=lambda z, s: match_instance(z, s, MU2, S2))
        assert np.abs(y - want).max() < 1e-2, sigma_max  # Heun's error, 64 steps
        matched = bridge(x, A, B, sigma_max, 64, 1e-3, meet=lambda z, s: match_moments(z, s, MU1, S1, MU2, S2))
        assert abs(matched.mean() - MU2) > 0.5 and abs(y.mean() - MU2) < 1e-6  # matched keeps the offset
    # per channel over the last axis, batched [B, C, T]; a window whose moments are the source's σ-marginal's
    z = np.random.default_rng(5).normal(size=(2, 3, 400))
    z = (z - z.mean(-1, keepdims=True)) / z.std(-1, keepdims=True)
    mb, sb = np.array([[1.0], [2.0], [-1.0]]), np.array([[0.5], [1.0], [2.0]])
    got = match_instance(MU1 + np.sqrt(S1**2 + 4.0) * z, 2.0, mb, sb)
    np.testing.assert_allclose(got, match_moments(MU1 + np.sqrt(S1**2 + 4.0) * z, 2.0, MU1, S1, mb, sb), atol=1e-9)
    np.testing.assert_allclose(got.std(-1), np.broadcast_to(np.sqrt(sb[:, 0] ** 2 + 4.0), (2, 3)), rtol=1e-9)
    # a constant window (silence held) is not blown up: its deviations are 0, it comes out at the target's mean
    np.testing.assert_allclose(match_instance(np.full((3, 8), 0.3), 1.0, mb, sb), np.broadcast_to(mb, (3, 8)))


def _full_gaussian_denoiser(mu, cov):
    """Optimal denoiser for N(μ, C) with correlated channels: D(x, σ) = μ + C(C + σ²I)⁻¹(x − μ), x [C, T]."""
    def denoise(x, sigma):
        return mu + cov @ np.linalg.solve(cov + sigma**2 * np.eye(len(cov)), x - mu)
    return denoise


def _random_cov(rng, c):
    q = rng.normal(size=(c, c))
    return q @ q.T / c + 0.05 * np.eye(c)


def test_transport_carries_one_correlated_gaussian_onto_another_at_every_sigma_max():
    """Gaussian instruments with correlated channels: with the legs met by the transport map the bridge's output
    has exactly the target's mean and covariance (per-channel matching leaves the correlations wrong); with
    uncorrelated channels it is match_moments; as σmax → 0 it is the Monge map between the two Gaussians."""
    rng = np.random.default_rng(3)
    c = 4
    ca, cb = _random_cov(rng, c), _random_cov(rng, c)
    mua, mub = rng.normal(size=(c, 1)), rng.normal(size=(c, 1))
    x = mua + np.linalg.cholesky(ca) @ rng.normal(size=(c, 20000))
    A, B = _full_gaussian_denoiser(mua, ca), _full_gaussian_denoiser(mub, cb)
    # a linear bridge: its output covariance is M·Ca·Mᵀ with M read off the map of the basis vectors
    for sigma_max in (0.3, 1.0, 5.0):
        t = transport_map(ca, cb, sigma_max)
        run = lambda v, meet: bridge(v, A, B, sigma_max, 48, 1e-3, meet=meet)  # noqa: E731
        ot = lambda z, s: match_covariances(z, mua, mub, t)  # noqa: E731
        y = run(x[:, :4000], ot)
        np.testing.assert_allclose(y.mean(axis=1, keepdims=True), mub, atol=0.08)
        m = run(mua + np.eye(c), ot) - run(mua, ot)  # columns: the map of each basis vector
        np.testing.assert_allclose(m @ ca @ m.T, cb, atol=5e-3 * np.abs(cb).max())
        sa, sb = np.sqrt(np.diag(ca))[:, None], np.sqrt(np.diag(cb))[:, None]
        per_channel = lambda z, s: match_moments(z, s, mua, sa, mub, sb)  # noqa: E731
        mp = run(mua + np.eye(c), per_channel) - run(mua, per_channel)
        assert np.abs(mp @ ca @ mp.T - cb).max() > 0.05 * np.abs(cb).max()  # measurably off
    # uncorrelated channels: the transport map is match_moments' per-channel ratio
    da, db = np.diag([0.25, 1.0, 4.0]), np.diag([1.0, 9.0, 0.5])
    np.testing.assert_allclose(np.diag(transport_map(da, db, 2.0)), np.sqrt((np.diag(db) + 4) / (np.diag(da) + 4)))
    assert np.abs(transport_map(da, db, 2.0) - np.diag(np.diag(transport_map(da, db, 2.0)))).max() < 1e-12
    # σ → 0: the Monge map between N(0, Ca) and N(0, Cb), symmetric, carrying Ca onto Cb
    t0 = transport_map(ca, cb, 0.0)
    np.testing.assert_allclose(t0, t0.T, atol=1e-10)
    np.testing.assert_allclose(t0 @ ca @ t0, cb, atol=1e-9)


def test_heun_is_second_order_and_euler_first_order():
    heun = [_bridge_error(n) for n in (8, 16, 32)]
    euler = [_bridge_error(n, "euler") for n in (16, 32, 64)]
    for a, b in zip(heun, heun[1:]):
        assert 3.0 < a / b < 5.5, heun
    for a, b in zip(euler, euler[1:]):
        assert 1.6 < a / b < 2.6, euler
    assert heun[-1] < euler[-1]


def test_cycle_returns_the_input_and_improves_with_steps():
    x = _x()
    A, B = gaussian_denoiser(MU1, S1), gaussian_denoiser(MU2, S2)
    errs = [np.abs(bridge(bridge(x, A, B, 20.0, n), B, A, 20.0, n) - x).max() for n in (4, 8, 32)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-2


def test_low_sigma_max_keeps_the_source_high_sigma_max_takes_the_target():
    # the musician's knob in the exact case: the output's spread moves from the source's toward the target's
    x = _x()
    A, B = gaussian_denoiser(MU1, S1), gaussian_denoiser(MU2, S2)
    spreads = [bridge(x, A, B, s, 32).std() for s in (0.05, 1.0, 50.0)]
    assert spreads[0] < spreads[1] < spreads[2]
    assert spreads[0] == pytest.approx(S1, rel=0.1) and spreads[2] == pytest.approx(S2, rel=0.1)


def test_heun_step_runs_both_directions_and_ends_with_euler_at_zero():
    D = gaussian_denoiser(0.0, 1.0)
    x = np.ones(3)
    up = heun_step(D, x, 0.5, 1.0)
    np.testing.assert_allclose(heun_step(D, up, 1.0, 0.5), x, atol=1e-2)
    # σ_next = 0: Euler step lands exactly on D(x, σ)
    np.testing.assert_allclose(heun_step(D, x, 0.5, 0.0), D(x, 0.5))
    assert evaluations_per_bridge(4) == 16
    with pytest.raises(ValueError, match="unknown solver"):
        evaluations_per_bridge(4, "rk4")


@pytest.mark.parametrize("method", ["heun", "euler"])
def test_a_bridge_runs_the_denoisers_as_often_as_it_says(method):
    calls = []
    A, B = gaussian_denoiser(MU1, S1), gaussian_denoiser(MU2, S2)
    bridge(_x(10), lambda x, s: calls.append("a") or A(x, s), lambda x, s: calls.append("b") or B(x, s), 5.0, 3,
           method=method)
    assert len(calls) == evaluations_per_bridge(3, method) == {"heun": 12, "euler": 6}[method]
    assert calls == ["a"] * (len(calls) // 2) + ["b"] * (len(calls) // 2)


def test_solver_works_on_torch_and_numpy_alike():
    torch = pytest.importorskip("torch")
    x = _x(100)
    A, B = gaussian_denoiser(MU1, S1), gaussian_denoiser(MU2, S2)
    y_np = bridge(x, A, B, 5.0, 6)
    y_t = bridge(torch.from_numpy(x), A, B, 5.0, 6)
    np.testing.assert_allclose(y_t.numpy(), y_np, rtol=1e-12)


def test_preconditioning_identities():
    sd = 0.7
    for s in (1e-4, 0.1, 1.0, 10.0):
        # c_skip² + (c_out/σ_d)²·… : for unit-variance data the skip/out mix has unit effective weight
        assert loss_weight(s, sd) * c_out(s, sd) ** 2 == pytest.approx(1.0)
        # c_in normalizes the noisy input to the data scale
        assert c_in(s, sd) ** 2 * (sd**2 + s**2) == pytest.approx(1.0)
        assert c_skip(s, sd) + c_out(s, sd) ** 2 / sd**2 == pytest.approx(1.0)
    assert c_noise(math.e**4) == pytest.approx(1.0)
    # σ → 0: D(x, σ) = x whatever the network says
    x = np.linspace(-2, 2, 5)
    d = precondition(lambda xi, cn: np.full_like(xi, 123.0), x, 1e-7)
    np.testing.assert_allclose(d, x, atol=1e-4)
    # σ → ∞: D ignores x and returns σ_d·F
    d = precondition(lambda xi, cn: np.full_like(xi, 0.5), x, 1e7)
    np.testing.assert_allclose(d, 0.5, atol=1e-5)


def test_local_matching_standardizes_each_frame_by_the_frames_around_it():
    """prior local on Gaussian instruments: the legs are affine per channel, so the bridge gives
    μb + sb·(x − m_t)/s_t with (m_t, s_t) each frame's moments over the span around it (moving_moments, against
    the definition); a register that changes inside the window loses its offset on both sides (instance keeps the
    difference); a span covering the window is instance."""
    A, B = gaussian_denoiser(MU1, S1), gaussian_denoiser(MU2, S2)
    rng = np.random.default_rng(9)
    x = rng.normal(MU1, S1, size=(2, 200))
    x[:, 100:] += 3.0  # up a register half-way
    m, s = moving_moments(x, 33)
    for t in (0, 5, 16, 100, 183, 199):
        seg = x[:, max(t - 16, 0): t + 17]
        np.testing.assert_allclose(m[:, t], seg.mean(-1), rtol=1e-12)
        np.testing.assert_allclose(s[:, t], seg.std(-1), rtol=1e-9)
    want = MU2 + S2 * (x - m) / s
    for sigma_max in (0.5, 5.0):
        y = bridge(x, A, B, sigma_max, 64, 1e-3, meet=lambda z, sg: match_local(z, sg, MU2, S2, span=33))
        assert np.abs(y - want).max() < 1e-2, sigma_max  # Heun's error, 64 steps
    inst = bridge(x, A, B, 5.0, 64, 1e-3, meet=lambda z, sg: match_instance(z, sg, MU2, S2))
    assert abs(y[:, 120:180].mean() - y[:, 20:80].mean()) < 0.2 < abs(inst[:, 120:180].mean() - inst[:, 20:80].mean())
    np.testing.assert_allclose(match_local(x, 2.0, MU2, S2, span=401), match_instance(x, 2.0, MU2, S2), atol=1e-9)
    # batched [B, C, T], float32 stays float32; a constant window comes out at the target's mean
    z = rng.normal(size=(2, 3, 50)).astype(np.float32)
    assert match_local(z, 1.0, 0.0, 1.0).dtype == np.float32
    np.testing.assert_allclose(match_local(z, 1.0, 0.0, 1.0)[1], match_local(z[1], 1.0, 0.0, 1.0), atol=1e-6)
    np.testing.assert_allclose(match_local(np.full((3, 8), 0.3), 1.0, 0.5, 2.0), np.full((3, 8), 0.5))
    with pytest.raises(ValueError, match="odd"):
        moving_moments(z, 32)
