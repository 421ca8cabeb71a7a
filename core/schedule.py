"""Karras et al. (2022) noise-level schedule."""
from __future__ import annotations

import numpy as np


def karras_sigmas(sigma_min: float, sigma_max: float, n: int, rho: float = 7.0) -> np.ndarray:
    """n noise levels from sigma_max down to sigma_min (descending, float64).

    σ_i = (σmax^(1/ρ) + i/(n−1)·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ,  i = 0…n−1
    """
    if n < 2:
        raise ValueError(f"a schedule needs at least 2 levels, got n={n}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    ramp = np.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def bridge_sigmas(sigma_min: float, sigma_max: float, steps: int, rho: float = 7.0) -> np.ndarray:
    """The `steps`-interval schedule one leg of the bridge walks (steps+1 levels, descending)."""
    return karras_sigmas(sigma_min, sigma_max, steps + 1, rho)
