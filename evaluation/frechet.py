"""Fréchet distance between two sets of embeddings, each summarized as a Gaussian (FAD/FID style).

    FD = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)

Tr((Σ₁^½ Σ₂ Σ₁^½)^½) equals Tr((Σ₁Σ₂)^½) and is computed from the eigenvalues of the symmetric PSD matrix
Σ₁^½ Σ₂ Σ₁^½ (numpy eigh in float64), which is stable where scipy's sqrtm of the non-symmetric product is
not: identical sets score ~1e-12, and two sets that differ by a constant shift d score ‖d‖².

Small sets give biased (too large) distances, more so as the embedding dimension nears the set size; compare
distances computed with similar set sizes only.
"""
from __future__ import annotations

import numpy as np

from core.sampling import psd_sqrt


def gaussian_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of a set of embeddings [n, d]."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need at least 2 embeddings as [n, d], got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
    r = psd_sqrt(s1)
    m = r @ s2 @ r
    tr_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None))))
    d = mu1 - mu2
    return max(0.0, float(d @ d + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt))


def frechet_between(a: np.ndarray, b: np.ndarray) -> float:
    """FD between two embedding sets [n, d] and [m, d]; NaN when either has fewer than 2 rows."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or len(a) < 2 or len(b) < 2:
        return float("nan")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding sizes differ: {a.shape[1]} and {b.shape[1]}")
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
