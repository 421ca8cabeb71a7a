"""Preallocated buffers: a single-producer/single-consumer ring for the audio callback, and a history window
with absolute indexing for the engine's frame clock."""
from __future__ import annotations

import numpy as np


class RingBuffer:
    """SPSC float32 ring. The audio callback only calls write() or read(); no allocation after construction.

    Indices only grow and each is written by one side, so the GIL's atomic int stores are enough.
    """

    def __init__(self, capacity: int):
        self.buf = np.zeros(int(capacity), dtype=np.float32)
        self.capacity = int(capacity)
        self.w = 0  # total written
        self.r = 0  # total read

    def __len__(self) -> int:
        return self.w - self.r

    @property
    def space(self) -> int:
        return self.capacity - len(self)

    def write(self, x: np.ndarray) -> int:
        """Write as much of x as fits; returns how many samples were dropped (overrun)."""
        n = min(len(x), self.space)
        i = self.w % self.capacity
        first = min(n, self.capacity - i)
        self.buf[i:i + first] = x[:first]
        self.buf[: n - first] = x[first:n]
        self.w += n
        return len(x) - n

    def read_into(self, out: np.ndarray) -> int:
        """Fill `out` with what is there (zeros past it); returns how many samples were missing (underrun)."""
        n = min(len(out), len(self))
        i = self.r % self.capacity
        first = min(n, self.capacity - i)
        out[:first] = self.buf[i:i + first]
        out[first:n] = self.buf[: n - first]
        out[n:] = 0.0
        self.r += n
        return len(out) - n

    def read(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.float32)
        self.read_into(out)
        return out

    def discard(self, n: int) -> int:
        n = min(n, len(self))
        self.r += n
        return n


class History:
    """The last `capacity` columns of a growing signal [..., total], read by absolute index.

    Columns before the start of the stream read as `fill` (silence), so windows at the start need no special case.
    """

    def __init__(self, capacity: int, rows: int | None = None, fill: np.ndarray | float = 0.0):
        shape = (rows, capacity) if rows else (capacity,)
        self.buf = np.zeros(shape, dtype=np.float32)
        self.capacity = capacity
        self.fill = np.asarray(fill, dtype=np.float32)
        self.end = 0  # absolute index one past the last column

    def append(self, x: np.ndarray) -> None:
        n = x.shape[-1]
        if n >= self.capacity:
            self.buf[...] = x[..., -self.capacity:]
        else:
            self.buf[..., :-n] = self.buf[..., n:]
            self.buf[..., -n:] = x
        self.end += n

    def get(self, start: int, stop: int) -> np.ndarray:
        """Columns [start, stop): must lie within the last `capacity` columns (or before the stream's start)."""
        if stop > self.end or (stop > 0 and max(start, 0) < self.end - self.capacity):
            raise IndexError(f"columns [{start}, {stop}) outside the kept range [{self.end - self.capacity}, {self.end})")
        out_shape = self.buf.shape[:-1] + (stop - start,)
        out = np.empty(out_shape, dtype=np.float32)
        before = max(0, min(stop, 0) - start)  # columns before the stream began
        if before:
            out[..., :before] = self.fill[..., None] if self.fill.ndim else self.fill
        lo = max(start, 0)
        if stop > lo:
            out[..., before:] = self.buf[..., self.capacity - (self.end - lo): self.capacity - (self.end - stop)]
        return out
