"""A codec's decoder made wider without changing what it computes (Net2WiderNet, Chen et al. 2016), so that a
decoder-only run can add capacity from a trained decoder instead of from scratch, with the encoder, its latent
space and every denoiser trained on it kept.

Each wide channel copies a narrow one (channel i copies i mod C); a layer reading copied channels splits each narrow
weight among the copies with random shares that sum to 1. The copies carry equal activations (ELU is elementwise,
the residual sums copy alike), so the output is the narrow decoder's; the unequal shares give the copies unequal
gradients, so training tells them apart (equal shares would keep them copies forever)."""

from __future__ import annotations

import torch


def _norm_except_dim0(w: torch.Tensor) -> torch.Tensor:
    # torch.nn.utils.weight_norm's g for dim=0: the 2-norm of each slice along dim 0
    return w.flatten(1).norm(dim=1).view(-1, *([1] * (w.dim() - 1)))


def _effective(sd: dict, prefix: str) -> torch.Tensor:
    v, g = sd[prefix + "weight_v"].double(), sd[prefix + "weight_g"].double()
    return g * v / _norm_except_dim0(v)  # w = g v / ‖v‖ (Salimans & Kingma's weight norm)


def _shares(n_wide: int, n_narrow: int, rows: int, gen: torch.Generator, spread: float) -> torch.Tensor:
    """[rows, n_wide] random weights, per row summing to 1 over the copies of each narrow channel."""
    owner = torch.arange(n_wide) % n_narrow
    raw = 1 + spread * (2 * torch.rand(rows, n_wide, generator=gen, dtype=torch.float64) - 1)
    total = torch.zeros(rows, n_narrow, dtype=torch.float64).index_add_(1, owner, raw)
    return raw / total[:, owner]


def _widened(w: torch.Tensor, shape: torch.Size, in_dim: int, gen: torch.Generator, spread: float) -> torch.Tensor:
    """w tiled to `shape` (every dim by index mod its narrow size), the input dim's copies sharing its weights."""
    out_dim = 1 - in_dim
    idx = [torch.arange(n) % w.shape[d] for d, n in enumerate(shape)]
    wide = w[idx[0][:, None, None], idx[1][None, :, None], idx[2][None, None, :]]
    if shape[in_dim] != w.shape[in_dim]:
        s = _shares(shape[in_dim], w.shape[in_dim], shape[out_dim], gen, spread)  # [out, in]
        wide = wide * (s[:, :, None] if in_dim == 1 else s.t()[:, :, None])
    return wide


def widen_decoder_state(narrow: dict, wide: dict, gen: torch.Generator, spread: float = 0.5) -> dict:
    """The wide decoder's state dict (keys and shapes of `wide`, a freshly built wider SEANet decoder) computing what
    `narrow` computes. Weight-normed convolutions only: Conv1d weights are [out, in, k], ConvTranspose1d [in, out, k],
    both normed over dim 0."""
    out = {}
    for key, target in wide.items():
        if key.endswith("weight_g"):
            continue
        if key.endswith("bias"):
            out[key] = narrow[key][torch.arange(target.shape[0]) % narrow[key].shape[0]].clone()
        elif key.endswith("weight_v"):
            prefix = key[: -len("weight_v")]
            in_dim = 0 if ".convtr." in key else 1
            w = _widened(_effective(narrow, prefix), target.shape, in_dim, gen, spread)
            out[key] = w.to(target.dtype)
            out[prefix + "weight_g"] = _norm_except_dim0(w).to(target.dtype)
        else:
            raise ValueError(f"cannot widen {key}: only weight-normed convolutions are known")
    return out
