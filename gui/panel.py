"""The control panel: its group boxes (gui.sections, gui.monitor) laid out and wired to the panel state
(gui.state), the saved settings (gui.settings), the engine (gui.controller), preset files (gui.presets) and
renders (gui.render). Every control edits the state; its changes are displayed, saved and sent to the engine.

The panel never touches the audio path: a `live.audio.LiveSession` owns the stream and the engine, a QTimer
reads its status. Without an audio device everything but Start works (`build_engine()`: tests, offline use).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QGridLayout, QLabel, QWidget

from gui.controller import EngineController
from gui.monitor import LiveGroup
from gui.presets import PresetFiles, bundle_facts
from gui.render import FileRenderer, RenderThread
from gui.sections import (GAIN_DB_RANGE, AudioGroup, MixGroup, PresetGroup, RenderGroup, TransferGroup, dial_to_sigma,
                          sigma_to_dial)
from gui.settings import SettingsStore
from gui.state import PRESET_CONTROLS, PanelState, db_to_gain
from live import audio
from live.bundle import BundleError
from live.engine import LIVE_THREADS
from live.params import param
from live.preset import PRESET_DIR, Preset


class ControlPanel(QWidget):
    """The whole panel. Widgets are attributes so tests (and keyboard users) can drive every control."""

    error_occurred = Signal(str)
    engine_changed = Signal(object)
    render_finished = Signal(str)
    render_failed = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, preset_dir: str | Path = PRESET_DIR, settings: QSettings | None = None, parent=None,
                 threads: int = LIVE_THREADS, provider: str = "auto", poll_ms: int = 100, scan_devices: bool = True):
        super().__init__(parent)
        self.store = SettingsStore(settings, self)
        self.settings = self.store.qsettings
        self.state = PanelState(self)
        self.controller = EngineController(self.state, threads, provider, self)
        self.renderer = FileRenderer(self)
        self._errors = 0  # error messages shown so far
        self._model_errors_shown = 0  # the engine's error count when the panel last reported it
        self.setWindowTitle("Timbre bridge")
        self._build()
        self.presets = PresetFiles(preset_dir, self.preset_group, self.state, self)
        self.preset_dir = self.presets.preset_dir
        self._connect()
        if scan_devices:
            self.refresh_devices(scan=False)
        self.refresh_presets()
        self._restore()
        self._timer = QTimer(self, interval=poll_ms, timeout=self._poll)
        self._timer.start()

    # ================================================================== layout
    def _build(self) -> None:
        self.audio_group, self.preset_group = AudioGroup(), PresetGroup()
        self.transfer_group, self.mix_group = TransferGroup(), MixGroup()
        self.live_group, self.render_group = LiveGroup(), RenderGroup()
        for group in (self.audio_group, self.preset_group, self.transfer_group, self.mix_group, self.live_group,
                      self.render_group):
            for name in group.WIDGETS:  # panel.sigma_dial etc.: every control is reachable from the panel
                setattr(self, name, getattr(group, name))
        self.status_label = QLabel("Ready.", wordWrap=True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.status_label.setMinimumHeight(self.status_label.fontMetrics().height() * 2 + 4)
        self.status_label.setAlignment(Qt.AlignLeft | Qt.AlignTop)

        top = QGridLayout(self)
        top.addWidget(self.audio_group, 0, 0)
        top.addWidget(self.preset_group, 0, 1)
        top.addWidget(self.transfer_group, 1, 0)
        top.addWidget(self.mix_group, 1, 1)
        top.addWidget(self.live_group, 2, 0, 1, 2)
        top.addWidget(self.render_group, 3, 0, 1, 2)
        top.addWidget(self.status_label, 4, 0, 1, 2)
        top.setColumnStretch(0, 1)
        top.setColumnStretch(1, 1)

        order = [self.start_button, self.input_box, self.output_box, self.rate_box, self.block_box, self.margin_spin,
                 self.refresh_button, self.preset_box, self.load_button, self.save_button, self.source_box,
                 self.target_box, self.steps_spin, self.transpose_spin, self.fold_spin, self.sigma_dial,
                 self.sigma_spin,
                 self.dry_wet_slider, self.gain_slider, self.bypass_check, self.render_mode_box, self.render_button]
        for a, b in zip(order, order[1:]):
            QWidget.setTabOrder(a, b)

    def _connect(self) -> None:
        store = self.store.store
        # controls → state (→ display, settings and engine in _control_changed)
        self.source_box.currentTextChanged.connect(lambda text: self._edit("source", text))
        self.target_box.currentTextChanged.connect(lambda text: self._edit("target", text))
        self.sigma_dial.valueChanged.connect(lambda pos: self._edit("sigma_max", dial_to_sigma(pos)))
        self.sigma_spin.valueChanged.connect(lambda v: self._edit("sigma_max", float(v)))
        self.steps_spin.valueChanged.connect(lambda v: self._edit("steps", int(v)))
        self.transpose_spin.valueChanged.connect(lambda v: self._edit("transpose", int(v)))
        self.fold_spin.valueChanged.connect(lambda v: self._edit("fold_centre", int(v)))
        self.dry_wet_slider.valueChanged.connect(lambda v: self._edit("dry_wet", v / 100.0))
        self.gain_slider.valueChanged.connect(lambda db: self._edit("input_gain", db_to_gain(db)))
        self.bypass_check.toggled.connect(lambda on: self._edit("bypass", bool(on)))
        self.state.changed.connect(self._control_changed)
        # the engine
        self.controller.message.connect(self._status)
        self.controller.engine_changed.connect(self._engine_changed)
        self.start_button.clicked.connect(self.toggle_running)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.toggle_running)
        # audio settings: saved as they change, used at the next start
        for box, key in ((self.input_box, "audio/input"), (self.output_box, "audio/output")):
            box.currentIndexChanged.connect(lambda _i, box=box, key=key: store(key, box.currentText()))
        self.rate_box.currentIndexChanged.connect(lambda _i: store("audio/rate", self.rate_box.currentData() or 0))
        self.block_box.currentIndexChanged.connect(lambda _i: store("audio/block", self.block_box.currentData()))
        self.margin_spin.valueChanged.connect(lambda ms: store("audio/margin_ms", ms))  # 0: auto
        self.margin_spin.valueChanged.connect(self._show_static_latency)
        self.refresh_button.clicked.connect(lambda: self.refresh_devices(scan=True))
        # presets and rendering
        self.presets.message.connect(self._status)
        self.presets.chosen.connect(self.apply_preset)
        self.preset_box.currentIndexChanged.connect(self.presets.choose)
        self.load_button.clicked.connect(self.presets.load_dialog)
        self.save_button.clicked.connect(self.presets.save_dialog)
        QShortcut(QKeySequence("Ctrl+O"), self, activated=self.presets.load_dialog)
        QShortcut(QKeySequence("Ctrl+S"), self, activated=self.presets.save_dialog)
        self.render_button.clicked.connect(self._render_dialog)
        self.renderer.progress.connect(self.render_group.show_progress)
        self.renderer.done.connect(self._render_done)
        self.renderer.failed.connect(self._render_error)
        self.renderer.finished.connect(lambda: self.render_button.setEnabled(True))
        self.render_mode_box.currentIndexChanged.connect(
            lambda _i: store("render/mode", self.render_mode_box.currentData()))

    def sizeHint(self) -> QSize:
        return QSize(780, 600)

    def keyPressEvent(self, event) -> None:
        # Space reaches the panel only when the focused control has no use for it (sliders, the dial, labels):
        # then it starts / stops, like a transport bar. Buttons and check boxes keep their own Space.
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self.toggle_running()
            event.accept()
            return
        super().keyPressEvent(event)

    # ================================================================== status, settings
    def _status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #c62828;" if error else "")
        if error:
            self._errors += 1
            self.error_occurred.emit(text)

    def _restore(self) -> None:
        s = self.store
        with s.loading():
            self.audio_group.select(**s.audio())
            i = self.render_mode_box.findData(str(s.value("render/mode", "as-live")))
            self.render_mode_box.setCurrentIndex(max(0, i))
        self.presets.open_saved(s.preset_path())
        with s.loading():
            db = min(max(s.input_gain_db(), GAIN_DB_RANGE[0]), GAIN_DB_RANGE[1])
            self.state.set("input_gain", db_to_gain(db))
            self.state.set("bypass", s.bypass())
        geo = s.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)

    def save_settings(self) -> None:
        self.store.save(self.saveGeometry())

    # ================================================================== devices
    def refresh_devices(self, scan: bool = True) -> None:
        """Fill the device pickers (scan=True asks PortAudio to enumerate again; only while stopped)."""
        if self.running:
            self._status("Stop audio before rescanning devices.")
            return
        try:
            if scan:
                audio.rescan()
            devices = audio.list_devices()
        except audio.AudioDeviceError as e:
            devices = []
            self._status(str(e), error=True)
        self.audio_group.show_devices(devices)
        if scan:
            n = len(devices)
            self._status(f"Found {n} audio device{'s' if n != 1 else ''}." if n else
                         "No audio devices found (is a sound server or JACK running?).", error=not n)

    # ================================================================== presets
    def refresh_presets(self) -> None:
        """List the presets in preset_dir (invalid ones are skipped and named in the status line)."""
        self.presets.refresh()

    def load_preset_file(self, path: str | Path, restore_controls: bool = False) -> Preset | None:
        """Load a preset file (adds it to the picker and selects it); None and a status message on error."""
        return self.presets.load(path, restore_controls)

    def save_preset_file(self, path: str | Path, name: str | None = None) -> Path | None:
        """Save the controls as a preset (name: the file's stem unless given) and load it; relative bundle paths
        are rewritten so the saved file still finds the bundle."""
        return self.presets.save(path, name)

    @property
    def preset(self) -> Preset | None:
        """The loaded preset as it is on disk."""
        return self.state.preset

    def current_preset(self) -> Preset | None:
        """The loaded preset with the controls' values (what Start, Save and Render use)."""
        return self.state.current_preset()

    def apply_preset(self, preset: Preset, restore_controls: bool = False) -> None:
        """Show a preset in every control and send it to the engine (rebuilt if its structure changed).
        restore_controls: the saved control values win where the settings are of this same preset file."""
        errors = self._errors
        try:
            instruments, codec = bundle_facts(preset)
        except (BundleError, OSError) as e:
            instruments, codec = sorted({preset.source, preset.target}), {}
            self._status(f"Cannot read the bundle of {preset.name!r} ({preset.bundle_path()}): {e}", error=True)
        values = {k: getattr(preset, k) for k in PRESET_CONTROLS}
        path = str(Path(preset.path).resolve()) if preset.path else ""
        if restore_controls and self.store.preset_path() == path:
            saved = self.store.controls()
            if self.store.value("controls/solver") != preset.solver:  # steps saved for another solver: another cost
                saved.pop("steps", None)
            values.update(saved)
        old = self.state.load(preset, instruments, codec, values)
        self.transfer_group.show_instruments(instruments)
        self._show(values.keys())
        self.preset_group.show_details(preset, instruments, self.state.frame_ms())
        if not restore_controls:
            self.store.store("preset/path", path)
            self.store.store("controls/solver", preset.solver)
            for k in values:
                self.store.store_control(k, self.state[k])
        self._show_static_latency()
        if self.controller.follow_preset(old):  # another bundle or window layout while audio runs
            self.stop()
            self.start()  # says how that went
            return
        if self._errors == errors:
            self._status(f"Preset {preset.name!r} loaded.")

    # ================================================================== controls → state → the rest
    @property
    def sigma_max(self) -> float:
        return self.state["sigma_max"]

    def set_sigma_max(self, value: float) -> None:
        self.sigma_spin.setValue(float(value))  # the spin box's range and rounding, then the state

    @property
    def dry_wet(self) -> float:
        return self.state["dry_wet"]

    @property
    def input_gain(self) -> float:
        return self.state["input_gain"]

    def _edit(self, name: str, value) -> None:
        """A control was moved: the state takes its value (and announces it when it changed)."""
        if value == "":  # an instrument picker being emptied
            return
        self.state.set(name, value)

    def _control_changed(self, name: str, value) -> None:
        self._show([name])
        self.store.store_control(name, value)
        if param(name).live:
            self.controller.set_params(**{name: value})
            return
        # transpose and fold set up the shifter (and with it the stream's delay), which a running engine does not
        # change: a new engine plays them (the running audio restarts)
        self._show_static_latency()
        if self.running:
            self.stop()
            self.start()  # says how that went
        elif self.controller.offline_engine is not None:
            self.controller.build_engine()

    def _show(self, names) -> None:
        values = {k: self.state[k] for k in names}
        self.transfer_group.show(values)
        self.mix_group.show(values)

    # ================================================================== engines, start / stop, monitoring
    def build_engine(self, device_rate: int | None = None, **kwargs):
        """An engine for the current controls without audio, fed with engine.process(block) (see the controller)."""
        return self.controller.build_engine(device_rate, **kwargs)

    @property
    def engine(self):
        """The engine the controls drive: the live session's while running, else the one build_engine made."""
        return self.controller.engine

    @property
    def session(self):
        """The live.audio.LiveSession while audio runs, else None."""
        return self.controller.session

    @session.setter
    def session(self, session) -> None:
        self.controller.session = session

    @property
    def running(self) -> bool:
        return self.controller.running

    def toggle_running(self) -> None:
        self.stop() if self.running else self.start()

    def start(self) -> bool:
        """Open the chosen devices and run the engine; False (and a message in the status line) when it cannot."""
        if self.running:
            return True
        if self.preset is not None:
            self._status("Starting audio…")
            self.status_label.repaint()  # the start blocks (models, margin measurement): say so first
        ok = self.controller.start(**self.audio_group.choice())
        self._show_running(ok)
        return ok

    def stop(self) -> None:
        self.controller.stop()
        self._show_running(False)

    def _show_running(self, on: bool) -> None:
        self.live_group.show_running(on)
        self.audio_group.show_running(on)
        self.running_changed.emit(on)

    def _engine_changed(self, eng) -> None:
        if eng is not None:
            self.live_group.show_engine(eng)
        self.engine_changed.emit(eng)

    def _show_static_latency(self) -> None:
        alg = self.state.algorithmic_latency_ms()
        if alg is not None and not self.running:
            self.live_group.show_static_latency(alg, self.audio_group.margin_ms())

    def _poll(self) -> None:
        session = self.session
        if session is not None:
            st = session.status()
            if st.error:
                self.stop()  # says why in the status line
                return
            if st.model_error and st.model_errors != self._model_errors_shown:  # audio goes on dry; say so now
                self._model_errors_shown = st.model_errors
                self._status(f"A model failed ({st.model_errors} hops went out dry): {st.model_error}", error=True)
            self.live_group.show_session(st)
        elif self.controller.offline_engine is not None:
            self.live_group.show_stats(self.controller.offline_engine)

    # ================================================================== offline rendering, teardown
    def _render_dialog(self) -> None:
        last = str(self.store.value("render/dir", str(Path.home())))
        src, _ = QFileDialog.getOpenFileName(self, "Render: input audio", last,
                                             "Audio (*.wav *.flac *.ogg *.aiff *.aif);;All files (*)")
        if not src:
            return
        self.store.store("render/dir", str(Path(src).parent))
        default = str(Path(src).with_name(Path(src).stem + f"-{self.state['target'] or 'out'}.wav"))
        dst, _ = QFileDialog.getSaveFileName(self, "Render: output file", default, "WAV (*.wav);;FLAC (*.flac)")
        if dst:
            self.render_file(src, dst)

    @property
    def rendering(self) -> bool:
        return self.renderer.running

    def render_file(self, in_path: str | Path, out_path: str | Path, mode: str | None = None) -> bool:
        """Render a file with the current controls on a worker thread; watch render_progress and the
        render_finished / render_failed signals. False when it cannot start."""
        if self.rendering:
            self._status("A render is already running.", error=True)
            return False
        preset = self.current_preset()
        if preset is None:
            self._status("No preset loaded.", error=True)
            return False
        mode = mode or self.render_mode_box.currentData()
        self.render_progress.setValue(0)
        self.render_button.setEnabled(False)
        self._status(f"Rendering {Path(in_path).name} ({mode})…")
        self.renderer.start(in_path, out_path, preset, mode, input_gain=self.input_gain,
                            threads=self.controller.threads, provider=self.controller.provider)
        return True

    def _render_done(self, out_path: str, notes: list) -> None:
        self.render_progress.setValue(100)
        self._status(f"Rendered {out_path}." + (" " + " ".join(notes) if notes else ""))
        self.render_finished.emit(out_path)

    def _render_error(self, msg: str) -> None:
        self._status(f"Render failed: {msg}", error=True)
        self.render_failed.emit(msg)

    def shutdown(self) -> None:
        """Stop audio, wait for a running render, write the settings. Called on close; safe to call twice."""
        self._timer.stop()
        self.stop()
        self.renderer.wait()
        self.save_settings()
        self.controller.release()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)


__all__ = ["ControlPanel", "RenderThread", "dial_to_sigma", "sigma_to_dial"]
