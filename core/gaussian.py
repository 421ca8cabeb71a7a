"""Closed forms for Gaussian 'instruments' N(μ, s²·I): the exact test case of the bridge."""
from __future__ import annotations


def gaussian_denoiser(mu: float, s: float):
    """Optimal denoiser for N(μ, s²·I) data: D(x, σ) = μ + s²/(s²+σ²)·(x − μ)."""

    def denoise(x, sigma: float):
        return mu + s**2 / (s**2 + sigma**2) * (x - mu)

    return denoise


def gaussian_flow(x, mu: float, s: float, sigma_from: float, sigma_to: float):
    """Exact PF-ODE flow: x(σ') = μ + √(s²+σ'²)/√(s²+σ²)·(x(σ) − μ)."""
    return mu + ((s**2 + sigma_to**2) / (s**2 + sigma_from**2)) ** 0.5 * (x - mu)


def gaussian_bridge(x, mu1: float, s1: float, mu2: float, s2: float, sigma_min: float, sigma_max: float):
    """Exact DDIB map A = N(μ1, s1²) → B = N(μ2, s2²) between σmin and σmax."""
    z = gaussian_flow(x, mu1, s1, sigma_min, sigma_max)
    return gaussian_flow(z, mu2, s2, sigma_max, sigma_min)
