"""EDM preconditioning and training loss (Karras et al. 2022, table 1).

Pure functions of σ: they work on Python floats, numpy arrays and torch tensors alike.
"""
from __future__ import annotations

import math

import numpy as np


def c_skip(sigma, sigma_data: float = 1.0):
    return sigma_data**2 / (sigma**2 + sigma_data**2)  # c_skip = σ_d²/(σ²+σ_d²)


def c_out(sigma, sigma_data: float = 1.0):
    return sigma * sigma_data / (sigma**2 + sigma_data**2) ** 0.5  # c_out = σ·σ_d/√(σ²+σ_d²)


def c_in(sigma, sigma_data: float = 1.0):
    return 1.0 / (sigma**2 + sigma_data**2) ** 0.5  # c_in = 1/√(σ²+σ_d²)


def c_noise(sigma):
    return 0.25 * _log(sigma)  # c_noise = ¼·ln σ


def _log(v):
    if isinstance(v, (int, float)):
        return math.log(v)
    return v.log() if hasattr(v, "log") else np.log(v)


def loss_weight(sigma, sigma_data: float = 1.0):
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2  # λ(σ) = (σ²+σ_d²)/(σ·σ_d)²


def precondition(raw, x, sigma, sigma_data: float = 1.0):
    """D(x, σ) = c_skip·x + c_out·F(c_in·x, c_noise); `raw` is the network F(x_in, c_noise)."""
    return c_skip(sigma, sigma_data) * x + c_out(sigma, sigma_data) * raw(c_in(sigma, sigma_data) * x, c_noise(sigma))


def sample_training_sigma(shape, generator=None, p_mean: float = -1.2, p_std: float = 1.2):
    """ln σ ~ N(P_mean, P_std²) (torch)."""
    import torch

    return (torch.randn(shape, generator=generator) * p_std + p_mean).exp()


def edm_loss(denoiser, x, generator=None, p_mean: float = -1.2, p_std: float = 1.2, sigma_data: float = 1.0,
             sigma=None, frame_weight=None):
    """E[λ(σ)·‖D(x+σn, σ) − x‖²] for a batch x [B, C, T]; returns the per-example loss [B] and σ [B].

    `denoiser(x_noisy, sigma)` takes σ as a [B] tensor. `frame_weight` [T] (mean 1): each frame's share of the
    loss (edge_weights: the frames a live window commits, at its newest edge, weighed more).
    """
    import torch

    if sigma is None:
        sigma = sample_training_sigma((x.shape[0],), generator, p_mean, p_std).to(x)
    else:
        sigma = sigma.to(x)  # a σ built on the CPU still meets CUDA data
    n = torch.randn(x.shape, generator=generator).to(x) if generator is not None else torch.randn_like(x)
    s = sigma.view(-1, *([1] * (x.dim() - 1)))
    d = denoiser(x + s * n, sigma)
    err = loss_weight(s, sigma_data) * (d - x) ** 2
    if frame_weight is not None:
        err = err * frame_weight.to(err)
    per_example = err.mean(dim=tuple(range(1, x.dim())))
    return per_example, sigma


def edge_weights(frames: int, edge: int, weight: float):
    """[frames] loss weights, mean 1: the newest `edge` frames of a crop `weight` times the others. Live, the engine
    commits frames 2–5 from its window's newest edge, where the denoiser sees no future; a crop's edge is that."""
    import torch

    w = torch.ones(frames)
    w[frames - min(edge, frames):] = weight
    return w / w.mean()
