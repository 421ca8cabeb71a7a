"""Probability-flow ODE solvers and the dual diffusion bridge (DDIB, Su et al. 2023).

Every function takes a denoiser callable D(x, σ) -> x̂ with σ a Python float, and arrays that support
arithmetic (numpy or torch), so one solver serves torch modules, ONNX sessions and closed forms.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .schedule import bridge_sigmas

Denoiser = Callable[[object, float], object]

SIGMA_MIN = 1e-3
RHO = 7.0


def ode_derivative(denoise: Denoiser, x, sigma: float):
    return (x - denoise(x, sigma)) / sigma  # dx/dσ = (x − D(x, σ))/σ


def euler_step(denoise: Denoiser, x, sigma: float, sigma_next: float):
    return x + (sigma_next - sigma) * ode_derivative(denoise, x, sigma)  # x ← x + (σ_{i+1}−σ_i)·d


def heun_step(denoise: Denoiser, x, sigma: float, sigma_next: float):
    """One Heun (trapezoidal) step from σ to σ_next, either direction; Euler when σ_next = 0."""
    d = ode_derivative(denoise, x, sigma)
    x_euler = x + (sigma_next - sigma) * d  # x̃ = x + (σ_{i+1}−σ_i)·d
    if sigma_next == 0:
        return x_euler
    d_next = ode_derivative(denoise, x_euler, sigma_next)  # d̃ = (x̃ − D(x̃, σ_{i+1}))/σ_{i+1}
    return x + (sigma_next - sigma) * 0.5 * (d + d_next)  # x ← x + (σ_{i+1}−σ_i)·(d+d̃)/2


def solve_ode(denoise: Denoiser, x, sigmas: Sequence[float], method: str = "heun"):
    """Integrate the PF-ODE through the given σ levels (ascending: data → noise; descending: noise → data)."""
    step = {"heun": heun_step, "euler": euler_step}[method]
    for s0, s1 in zip(sigmas[:-1], sigmas[1:]):
        x = step(denoise, x, float(s0), float(s1))
    return x


def encode_to_prior(source: Denoiser, x, sigma_max: float, steps: int, sigma_min: float = SIGMA_MIN,
                    rho: float = RHO, method: str = "heun"):
    """Source ODE from σmin up to σmax: data → the shared Gaussian prior."""
    return solve_ode(source, x, bridge_sigmas(sigma_min, sigma_max, steps, rho)[::-1], method)


def decode_from_prior(target: Denoiser, z, sigma_max: float, steps: int, sigma_min: float = SIGMA_MIN,
                      rho: float = RHO, method: str = "heun"):
    """Target ODE from σmax down to σmin: prior → target data."""
    return solve_ode(target, z, bridge_sigmas(sigma_min, sigma_max, steps, rho), method)


def match_moments(x, sigma: float, mean_from, std_from, mean_to, std_to):
    """Per channel, from the σ-marginal of data with moments (μa, sa) onto that of data with (μb, sb): the two
    legs' marginals at σmax differ by the instruments' moments, which only vanish relative to σmax as it grows."""
    # x' = μb + √((sb²+σ²)/(sa²+σ²))·(x − μa)
    return mean_to + ((std_to**2 + sigma**2) / (std_from**2 + sigma**2)) ** 0.5 * (x - mean_from)


def match_instance(x, sigma: float, mean_to, std_to, eps: float = 1e-3, moments=None):
    """Per channel, the window's own mean and std over time onto the target's σ-marginal moments (adaptive
    instance normalization at σmax, as in style transfer): what the window's statistics say of the source's
    timbre (and of how far its register lies from the source's average) is replaced; their course in time stays.
    numpy arrays (the live engine's), statistics over the last axis of [C, T] or [B, C, T]; `moments` (m, s): use
    these instead (match_local's, per frame)."""
    # x' = μb + √(sb²+σ²)·(x − mean_t x)/std_t x
    m, s = moments if moments is not None else (x.mean(axis=-1, keepdims=True), x.std(axis=-1, keepdims=True))
    return mean_to + (std_to**2 + sigma**2) ** 0.5 * (x - m) / np.maximum(s, eps)


# prior local: the frames each frame's statistics are taken over (0.44 s), about the live window's 32. A live
# window's committed frames (its last H + C but C) see their 16 past frames and the 2-5 after them in the window
LOCAL_SPAN = 33


def moving_moments(x, span: int = LOCAL_SPAN):
    """Per channel and frame, the mean and std over the `span` frames centred on it (fewer at the window's edges),
    along the last axis of [C, T] or [B, C, T]; cumulative sums, float64. `span` odd: centred."""
    # m_t = mean_{|i−t| ≤ span//2} x_i,  s_t² = mean x_i² − m_t²
    if span < 1 or span % 2 == 0:
        raise ValueError(f"span must be an odd number of frames ≥ 1, not {span}")
    x = np.asarray(x, np.float64)
    t = x.shape[-1]
    i = np.arange(t)
    lo, hi = np.maximum(i - span // 2, 0), np.minimum(i + span // 2 + 1, t)
    pad = np.zeros(x.shape[:-1] + (1,))
    c1, c2 = (np.concatenate([pad, np.cumsum(v, axis=-1)], axis=-1) for v in (x, x * x))
    m = (c1[..., hi] - c1[..., lo]) / (hi - lo)
    return m, np.sqrt(np.maximum((c2[..., hi] - c2[..., lo]) / (hi - lo) - m * m, 0.0))


def match_local(x, sigma: float, mean_to, std_to, span: int = LOCAL_SPAN, eps: float = 1e-3):
    """match_instance with each frame's own statistics over the `span` frames around it (moving_moments): a long
    window's notes and registers each lose their own mean and spread, as a live window's whole does."""
    # x' = μb + √(sb²+σ²)·(x − m_t)/s_t
    y = match_instance(x, sigma, mean_to, std_to, eps, moments=moving_moments(x, span))
    return y.astype(np.result_type(x, np.float32))  # the moments are float64; a float32 window stays float32


def psd_sqrt(m: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Symmetric square root (or inverse square root) of a symmetric positive semi-definite matrix."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    w = np.clip(w, 1e-12 if inverse else 0.0, None)
    return (v * (w ** (-0.5 if inverse else 0.5))) @ v.T


def transport_map(cov_from: np.ndarray, cov_to: np.ndarray, sigma: float) -> np.ndarray:
    """The optimal-transport (Monge) map between the σ-marginals' covariances A = Ca + σ²I and B = Cb + σ²I:
    the linear map with the least mean displacement that carries covariance A onto B (per channel it is
    match_moments' ratio; with correlated channels it also turns the source's correlations into the target's)."""
    eye = np.eye(len(cov_from))
    a, b = np.asarray(cov_from, np.float64) + sigma**2 * eye, np.asarray(cov_to, np.float64) + sigma**2 * eye
    a_half, a_inv_half = psd_sqrt(a), psd_sqrt(a, inverse=True)
    return a_inv_half @ psd_sqrt(a_half @ b @ a_half) @ a_inv_half  # T = A^-½ (A^½ B A^½)^½ A^-½


def match_covariances(x, mean_from, mean_to, transport):
    """x' = μb + T·(x − μa) over the channel axis of [C, T] or [B, C, T] latents (T from transport_map)."""
    return mean_to + transport @ (x - mean_from)


def bridge(x, source: Denoiser, target: Denoiser, sigma_max: float, steps: int, sigma_min: float = SIGMA_MIN,
           rho: float = RHO, method: str = "heun", meet: Callable[[object, float], object] | None = None):
    """Dual diffusion bridge: z = ODE_source(x: σmin → σmax);  y = ODE_target(z: σmax → σmin).

    `steps` solver steps per leg: Heun costs 4·steps denoiser evaluations, Euler 2·steps. `meet(z, σmax)`, when
    given, moves the source leg's end onto the target leg's start: match_moments (per channel),
    match_covariances, match_instance (per window) or match_local (per frame). For Gaussian instruments the bridge
    is then the exact map between them at every σmax, not only as σmax → ∞ (per channel: μb + sb/sa·(x − μa)).
    """
    z = encode_to_prior(source, x, sigma_max, steps, sigma_min, rho, method)
    if meet is not None:
        z = meet(z, sigma_max)
    return decode_from_prior(target, z, sigma_max, steps, sigma_min, rho, method)


def evaluations_per_bridge(steps: int, method: str = "heun") -> int:
    per_step = {"heun": 4, "euler": 2}.get(method)  # two legs; Heun evaluates twice per step
    if per_step is None:
        raise ValueError(f"unknown solver {method!r}: heun or euler")
    return per_step * steps
