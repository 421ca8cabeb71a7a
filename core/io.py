"""Files: atomic writes (text, JSON, checkpoints) and checkpoint loading with a clear message for wrong or corrupt files."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


class CheckpointError(RuntimeError):
    pass


@contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path beside `path` to write; on success it replaces `path` (with the permissions a new
    file gets), on any failure it is removed: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def json_safe(o):
    """NaN/inf → null, numpy scalars → Python numbers, tuples → lists, keys → strings."""
    import math

    if isinstance(o, dict):
        return {str(k): json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_safe(v) for v in o]
    if hasattr(o, "item") and getattr(o, "ndim", 1) == 0:  # numpy scalar
        o = o.item()
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    return o


def write_json_atomic(path: str | Path, obj) -> Path:
    import json

    return write_text_atomic(path, json.dumps(json_safe(obj), indent=2) + "\n")


def save_atomic(obj, path: str | Path) -> Path:
    import torch

    with atomic_output(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, expected_format: str, map_location="cpu") -> dict:
    ck = load_any(path, map_location)
    if ck.get("format") != expected_format:
        raise CheckpointError(f"{path}: expected a {expected_format!r} checkpoint, found {ck.get('format')!r}")
    return ck


def load_any(path: str | Path, map_location="cpu") -> dict:
    """A checkpoint dict with a 'format' key, or CheckpointError saying what is wrong with the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ck, dict) or "format" not in ck:
        raise CheckpointError(f"{path}: not a checkpoint of this project (a {type(ck).__name__} without 'format')")
    return ck
