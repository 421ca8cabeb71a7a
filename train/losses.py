"""Adversarial losses and SI-SDR for the codec (its spectral losses: core.spectral)."""
from __future__ import annotations

import torch


def hinge_d_loss(real_logits, fake_logits) -> torch.Tensor:
    return sum(torch.relu(1 - r).mean() + torch.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits)) / len(real_logits)


def hinge_g_loss(fake_logits) -> torch.Tensor:
    return sum(torch.relu(1 - f).mean() for f in fake_logits) / len(fake_logits)


def feature_matching_loss(real_fmaps, fake_fmaps) -> torch.Tensor:
    total, n = 0.0, 0
    for rs, fs in zip(real_fmaps, fake_fmaps):
        for r, f in zip(rs, fs):
            total = total + (r.detach() - f).abs().mean() / (r.detach().abs().mean() + 1e-5)
            n += 1
    return total / max(n, 1)


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SDR in dB over the last axis."""
    reference = reference - reference.mean(-1, keepdim=True)
    estimate = estimate - estimate.mean(-1, keepdim=True)
    alpha = (estimate * reference).sum(-1, keepdim=True) / ((reference ** 2).sum(-1, keepdim=True) + eps)
    target = alpha * reference
    noise = estimate - target
    return 10 * torch.log10(((target ** 2).sum(-1) + eps) / ((noise ** 2).sum(-1) + eps))
