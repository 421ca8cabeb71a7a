"""Audio file I/O and input validation shared by training, rendering and evaluation (numpy only)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.io import atomic_output

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")


class AudioError(ValueError):
    """Audio that cannot be used: unreadable, empty, non-finite."""


def to_mono(x: np.ndarray) -> np.ndarray:
    """[n] or [n, channels] → [n] float32, channels averaged."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise AudioError(f"expected [samples] or [samples, channels] audio, got shape {x.shape}")
    return x


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    if sr_from == sr_to:
        return np.asarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float32), sr_from, sr_to, quality="HQ").astype(np.float32)


def check_audio(x: np.ndarray, what: str = "audio") -> np.ndarray:
    if x.size == 0:
        raise AudioError(f"{what} is empty (0 samples)")
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{what} contains NaN or infinite samples")
    return x


def prepare(x: np.ndarray, sr: int, target_sr: int, what: str = "audio") -> np.ndarray:
    """Any channel count and rate → validated mono float32 at target_sr."""
    if sr <= 0:
        raise AudioError(f"{what}: invalid sample rate {sr}")
    return check_audio(resample(check_audio(to_mono(x), what), sr, target_sr), what)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a WAV/FLAC/OGG/AIFF file → (validated mono float32, its sample rate), or AudioError with the reason."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's messages are terse; keep them but say which file
        raise AudioError(f"{path}: cannot read audio ({e})") from None
    return check_audio(to_mono(x), str(path)), int(sr)


def load_audio(path: str | os.PathLike, target_sr: int) -> np.ndarray:
    """Read a WAV/FLAC/OGG/AIFF file → mono float32 at target_sr, or AudioError with the reason."""
    x, sr = read_audio(path)
    return prepare(x, sr, target_sr, what=str(path))


def audio_format(path: str | os.PathLike) -> str:
    """libsndfile's container name for a file name (WAV, FLAC, OGG, AIFF), or AudioError for any other suffix."""
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".aiff": "AIFF", ".aif": "AIFF"}.get(Path(path).suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unsupported output format (use one of {', '.join(AUDIO_SUFFIXES)})")
    return fmt


def write_audio_atomic(path: str | os.PathLike, x: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    """Write through a temporary file in the same folder, so a failure never leaves a partial file."""
    import soundfile as sf

    path = Path(path)
    fmt = audio_format(path)
    with atomic_output(path) as tmp:
        sf.write(tmp, np.asarray(x, dtype=np.float32), sr, format=fmt, subtype=subtype)
    return path


def list_audio_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(f"{folder}: not a folder")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
