"""Rendering a file from the panel: live.render.render_file on a worker thread, one render at a time."""
from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Signal

from live.preset import Preset


class RenderThread(QThread):
    """Runs live.render.render_file off the GUI thread; progress arrives as a signal (queued to the GUI)."""

    progress = Signal(float)
    done = Signal(str)
    failed = Signal(str)

    def __init__(self, fn, in_path: str, out_path: str, preset: Preset, mode: str, overrides: dict, parent=None):
        super().__init__(parent)
        self.fn, self.in_path, self.out_path = fn, str(in_path), str(out_path)
        self.preset, self.mode, self.overrides = preset, mode, overrides
        self.warnings: list[str] = []

    def run(self) -> None:
        try:
            result = self.fn(self.in_path, self.out_path, self.preset, mode=self.mode,
                             progress=lambda f: self.progress.emit(float(f)), **self.overrides)
        except Exception as e:  # noqa: BLE001 - reported in the panel
            self.failed.emit(f"{type(e).__name__}: {e}")
        else:
            self.warnings = [str(w) for w in result] if isinstance(result, (list, tuple)) else []
            self.done.emit(self.out_path)


class FileRenderer(QObject):
    """Starts renders and reports on them; `finished` fires once the worker thread has ended, either way."""

    progress = Signal(float)  # 0 … 1
    done = Signal(str, list)  # the output path and render_file's warnings
    failed = Signal(str)
    finished = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._thread: RenderThread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def start(self, in_path, out_path, preset: Preset, mode: str, **overrides) -> None:
        from live.render import render_file

        t = RenderThread(render_file, str(in_path), str(out_path), preset, mode, overrides, self)
        t.progress.connect(self.progress)
        t.done.connect(self._done)  # a method, not a lambda: it runs on the GUI thread
        t.failed.connect(self.failed)
        t.finished.connect(self.finished)
        self._thread = t
        t.start()

    def _done(self, out_path: str) -> None:
        self.done.emit(out_path, self._thread.warnings if self._thread is not None else [])

    def wait(self) -> None:
        """Until a running render has ended."""
        if self._thread is not None:
            self._thread.wait()
            self._thread = None
