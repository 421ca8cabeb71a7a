"""Pitch tracking with PESTO (ships its weights) for the codec report and the corpus tests."""
from __future__ import annotations

import numpy as np


def track(x: np.ndarray, sr: int, step_ms: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """(pitch in MIDI semitones, confidence) per frame."""
    import pesto
    import torch

    _, pitch, conf, _ = pesto.predict(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), sr,
                                      step_size=step_ms, convert_to_freq=False)
    return pitch.numpy().reshape(-1), conf.numpy().reshape(-1)


def pitch_agreement(reference: np.ndarray, estimate: np.ndarray, sr: int, cents: float = 50.0,
                    min_conf: float = 0.5) -> float:
    """Fraction of frames voiced in the reference where the estimate's pitch is within `cents`."""
    p_ref, c_ref = track(reference, sr)
    p_est, _ = track(estimate, sr)
    n = min(len(p_ref), len(p_est))
    voiced = c_ref[:n] > min_conf
    if not voiced.any():
        return float("nan")
    return float(np.mean(np.abs(p_ref[:n][voiced] - p_est[:n][voiced]) * 100 <= cents))
