"""The engine behind the panel: a `live.audio.LiveSession` while audio runs, else an engine without audio
(`build_engine`), both driven from the panel state. Opened bundles are kept for reuse. Starting, stopping and
parameter changes report failures as status-line messages (`message`), never as exceptions out of a Qt slot."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from gui.state import PanelState
from live.devices import DEFAULT_BLOCK
from live.engine import LIVE_THREADS
from live.preset import Preset, PresetError


def compatible(a: Preset, b: Preset) -> bool:
    """Whether an engine built for preset a can play b through live parameter changes (same bundle, windows and
    transpose: the shifter's delay is part of the stream's)."""
    return a.bundle_path() == b.bundle_path() and (a.window, a.hop, a.crossfade, a.transpose, a.fold_centre) == (
        b.window, b.hop, b.crossfade, b.transpose, b.fold_centre)


class EngineController(QObject):
    engine_changed = Signal(object)  # the engine the controls now drive (None: none)
    message = Signal(str, bool)  # a status-line text and whether it reports an error

    def __init__(self, state: PanelState, threads: int = LIVE_THREADS, provider: str = "auto", parent=None):
        super().__init__(parent)
        self.state, self.threads, self.provider = state, threads, provider
        self.session = None  # live.audio.LiveSession while running
        self.offline_engine = None  # build_engine(): an engine without audio
        self._bundles: dict = {}

    @property
    def engine(self):
        """The engine the controls drive: the live session's while running, else the one build_engine made."""
        if self.session is not None and self.session.engine is not None:
            return self.session.engine
        return self.offline_engine

    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    def bundle_for(self, preset: Preset):
        from live.bundle import Bundle

        key = (str(preset.bundle_path()), self.provider, self.threads)
        if key not in self._bundles:
            self._bundles[key] = Bundle(preset.bundle_path(), provider=self.provider, threads=self.threads)
        return self._bundles[key]

    # ------------------------------------------------------------------ parameters
    def set_params(self, **changes) -> None:
        """Send parameter changes to the engine (it applies them at its next window; never blocks the audio)."""
        eng = self.engine
        if eng is None:
            return
        try:
            eng.set(**changes)
        except Exception as e:  # noqa: BLE001 - BundleError (unknown instrument), PresetError, KeyError
            self.message.emit(f"Cannot apply {', '.join(changes)}: {e}", True)

    def follow_preset(self, old: Preset | None) -> bool:
        """Bring the engine to the state's newly loaded preset: live parameters through set() when it can play
        it, else a new engine. True when that needs the running audio restarted (the panel does, it owns the
        device choice)."""
        if self.engine is None:
            return False
        # against the engine's own preset: its transpose may be the control's, not the old file's
        if old is not None and compatible(self.engine.preset, self.state.current_preset()):
            self.set_params(**self.state.engine_values())
            return False
        if self.running:
            return True
        self.build_engine()
        return False

    # ------------------------------------------------------------------ engines
    def build_engine(self, device_rate: int | None = None, **kwargs):
        """An engine for the current controls, without audio; the controls drive it until audio starts.

        Feed it with engine.process(block) (parameters apply at its next window)."""
        from live.engine import StreamingEngine

        preset = self.state.current_preset()
        if preset is None:
            raise PresetError("no preset loaded")
        kwargs.setdefault("input_gain", self.state["input_gain"])
        kwargs.setdefault("bypass", self.state["bypass"])
        eng = StreamingEngine(self.bundle_for(preset), preset, device_rate=device_rate, **kwargs)
        self.offline_engine = eng
        self.engine_changed.emit(eng)
        return eng

    def start(self, input=None, output=None, rate=None, block: int = DEFAULT_BLOCK, margin_ms: float | None = None) -> bool:
        """Open the devices and run the engine for the current controls (margin_ms None: measured now);
        False, and a message saying why, when it cannot."""
        from live.audio import AudioDeviceError, LiveSession

        preset = self.state.current_preset()
        if preset is None:
            self.message.emit("No preset loaded: choose one or load a file first.", True)
            return False
        session = LiveSession(preset, input=input, output=output, rate=rate, block=block, margin_ms=margin_ms,
                              threads=self.threads, provider=self.provider, input_gain=self.state["input_gain"],
                              bypass=self.state["bypass"], preload_instruments=True)
        try:
            session.bundle = self.bundle_for(preset)
            session.start()
        except AudioDeviceError as e:
            self.message.emit(f"Cannot start audio: {e}", True)
            return False
        except Exception as e:  # noqa: BLE001 - BundleError, PresetError, onnxruntime
            self.message.emit(f"Cannot start: {e}", True)
            return False
        self.session = session
        self.message.emit(f"Running: {session.input_device.label} → {session.output_device.label}, "
                          f"{session.rate} Hz, block {session.block}.", False)
        self.engine_changed.emit(session.engine)
        return True

    def stop(self) -> None:
        """Stop the audio (if it runs) and say how it went; the engine without audio takes over the controls."""
        session, self.session = self.session, None
        if session is None:
            return
        session.stop()
        st = session.status()
        if st.error:
            self.message.emit(f"Audio stopped: {st.error}", True)
        else:
            self.message.emit(f"Stopped after {st.seconds:.0f} s: {st.hops} hops, {st.underruns} underrun / "
                              f"{st.overruns} overrun samples, {st.dry_hops} dry hops.", False)
        if self.offline_engine is not None:  # it missed what the controls did while audio ran
            try:
                self.offline_engine.set(**self.state.engine_values())
            except Exception:  # noqa: BLE001 - a stale engine is not worth an error
                self.offline_engine = None
        self.engine_changed.emit(self.engine)

    def release(self) -> None:
        """Drop the engine without audio and the opened models (and soxr resamplers) now, not at interpreter exit."""
        self.offline_engine = None
        self._bundles.clear()
