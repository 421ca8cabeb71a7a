"""The control panel: devices, preset, instruments, σmax dial, steps, mix, bypass, meters, readouts, rendering.

The panel never touches the audio path itself: a `live.audio.LiveSession` owns the stream and the engine, the
panel only calls `engine.set(...)` (applied by the engine at its next window) and reads `engine.stats` /
`session.status()` from a QTimer. Without an audio device everything but Start works: `build_engine()` gives
an engine for the current settings that the controls drive just the same (tests, offline use).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDial, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QSizePolicy, QSlider, QSpinBox, QVBoxLayout, QWidget)

from gui.meters import LevelMeter
from live.preset import PRESET_DIR, Preset, PresetError, load_preset

SIGMA_LO, SIGMA_HI, DIAL_STEPS = 0.1, 200.0, 1000
RATES = (44100, 48000, 88200, 96000)
BLOCKS = (64, 128, 256, 512, 1024, 2048)
GAIN_DB_RANGE = (-24, 24)
ORGANIZATION, APPLICATION = "timbre-bridge", "panel"
DEFAULT_PRESET = "violin-to-flute"  # selected on first start when it is in the preset folder


def sigma_to_dial(sigma: float) -> int:
    s = min(SIGMA_HI, max(SIGMA_LO, float(sigma)))
    return int(round(DIAL_STEPS * math.log(s / SIGMA_LO) / math.log(SIGMA_HI / SIGMA_LO)))


def dial_to_sigma(pos: int) -> float:
    s = SIGMA_LO * (SIGMA_HI / SIGMA_LO) ** (pos / DIAL_STEPS)
    return float(f"{s:.3g}")  # three significant digits: readable, and what the readout shows


def _bundle_instruments(folder: Path) -> tuple[list[str], dict]:
    """Instrument names and codec facts from bundle.json, without opening any model."""
    meta = json.loads((Path(folder) / "bundle.json").read_text())
    return sorted(meta["instruments"]), meta.get("codec", {})


class SigmaSpinBox(QDoubleSpinBox):
    """σmax readout: up to four significant digits ("5", "12.5", "0.013"), not a fixed number of decimals."""

    def textFromValue(self, value: float) -> str:
        return f"{value:.4g}"


class RenderThread(QThread):
    """Runs live.render.render_file off the GUI thread; progress arrives as a signal (queued to the GUI)."""

    progress = Signal(float)
    done = Signal(str)
    failed = Signal(str)

    def __init__(self, fn, in_path: str, out_path: str, preset: Preset, mode: str, overrides: dict, parent=None):
        super().__init__(parent)
        self.fn, self.in_path, self.out_path = fn, str(in_path), str(out_path)
        self.preset, self.mode, self.overrides = preset, mode, overrides

    warnings: list = []

    def run(self) -> None:
        try:
            result = self.fn(self.in_path, self.out_path, self.preset, mode=self.mode,
                             progress=lambda f: self.progress.emit(float(f)), **self.overrides)
        except Exception as e:  # noqa: BLE001 - reported in the panel
            self.failed.emit(f"{type(e).__name__}: {e}")
        else:
            self.warnings = [str(w) for w in result] if isinstance(result, (list, tuple)) else []
            self.done.emit(self.out_path)


class ControlPanel(QWidget):
    """The whole panel. Widgets are attributes so tests (and keyboard users) can drive every control."""

    error_occurred = Signal(str)
    engine_changed = Signal(object)
    render_finished = Signal(str)
    render_failed = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, preset_dir: str | Path = PRESET_DIR, settings: QSettings | None = None, parent=None,
                 threads: int = 2, provider: str = "auto", poll_ms: int = 100, scan_devices: bool = True):
        super().__init__(parent)
        self.preset_dir = Path(preset_dir)
        self.settings = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)
        self.threads, self.provider = threads, provider
        self.session = None  # live.audio.LiveSession while running
        self._offline_engine = None  # build_engine(): an engine without audio
        self._bundles: dict = {}
        self._preset: Preset | None = None  # the loaded preset (controls may differ from it)
        self._sigma = 5.0  # exact σmax (the dial has 1000 positions)
        self._dry_wet = 1.0
        self._codec: dict = {}
        self._render: RenderThread | None = None
        self._devices: list = []
        self._loading = False
        self._errors = 0  # error messages shown so far
        self._model_errors_shown = 0  # the engine's error count when the panel last reported it
        self.setWindowTitle("Timbre bridge")
        self._build()
        self._sync_timer = QTimer(self, singleShot=True, interval=500, timeout=self.settings.sync)
        if scan_devices:
            self.refresh_devices(scan=False)
        self.refresh_presets()
        self._restore()
        self._timer = QTimer(self, interval=poll_ms, timeout=self._poll)
        self._timer.start()

    # ================================================================== layout
    def _build(self) -> None:
        # --- audio devices
        self.input_box, self.output_box = QComboBox(), QComboBox()
        for b in (self.input_box, self.output_box):
            b.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            b.setMinimumContentsLength(18)
        self.rate_box = QComboBox()
        self.rate_box.addItem("device default", None)
        for r in RATES:
            self.rate_box.addItem(f"{r} Hz", r)
        self.block_box = QComboBox()
        for b in BLOCKS:
            self.block_box.addItem(str(b), b)
        self.block_box.setCurrentIndex(BLOCKS.index(256))
        self.margin_spin = QSpinBox(suffix=" ms", minimum=0, maximum=500, singleStep=5, value=40)
        self.margin_spin.setToolTip("extra output delay that absorbs compute jitter")
        self.refresh_button = QPushButton("Re&scan")
        self.refresh_button.setToolTip("look for audio devices again (while stopped)")
        audio = QGroupBox("Audio")
        f = QFormLayout(audio)
        f.addRow(self._label("&Input", self.input_box), self.input_box)
        f.addRow(self._label("O&utput", self.output_box), self.output_box)
        row = QHBoxLayout()
        row.addWidget(self.rate_box, 2)
        row.addWidget(self._label("Bloc&k", self.block_box))
        row.addWidget(self.block_box, 1)
        f.addRow(self._label("R&ate", self.rate_box), row)
        row = QHBoxLayout()
        row.addWidget(self.margin_spin, 1)
        row.addStretch(0)
        row.addWidget(self.refresh_button)
        f.addRow(self._label("Mar&gin", self.margin_spin), row)

        # --- preset
        self.preset_box = QComboBox()
        self.preset_box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.preset_box.setMinimumContentsLength(16)
        self.load_button, self.save_button = QPushButton("&Load…"), QPushButton("Sa&ve…")
        self.description_label = QLabel(wordWrap=True)
        self.description_label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        self.details_label = QLabel(wordWrap=True)
        self.details_label.setStyleSheet("color: palette(dark);")
        pre = QGroupBox("Preset")
        v = QVBoxLayout(pre)
        row = QHBoxLayout()
        row.addWidget(self._label("&Preset", self.preset_box))
        row.addWidget(self.preset_box, 1)
        v.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.load_button)
        row.addWidget(self.save_button)
        v.addLayout(row)
        v.addWidget(self.description_label)
        v.addWidget(self.details_label)
        v.addStretch(1)

        # --- transfer: instruments, σmax, steps
        self.source_box, self.target_box = QComboBox(), QComboBox()
        self.sigma_dial = QDial(minimum=0, maximum=DIAL_STEPS, singleStep=10, pageStep=100, notchesVisible=True)
        self.sigma_dial.setNotchTarget(8.0)
        self.sigma_dial.setWrapping(False)
        self.sigma_dial.setFixedSize(QSize(104, 104))
        self.sigma_dial.setFocusPolicy(Qt.StrongFocus)
        self.sigma_dial.setAccessibleName("sigma max")
        self.sigma_dial.setToolTip("σmax: how far into noise the bridge goes (log scale, 0.1…200). "
                                   "Low keeps the source's detail, high sounds more like the target.")
        self.sigma_spin = SigmaSpinBox(minimum=0.01, maximum=500.0, decimals=3, value=5.0)
        self.sigma_spin.setStepType(QAbstractSpinBox.AdaptiveDecimalStepType)
        self.sigma_spin.setKeyboardTracking(False)
        self.sigma_spin.setAlignment(Qt.AlignCenter)
        self.sigma_spin.setToolTip("σmax value (type an exact one here)")
        self.steps_spin = QSpinBox(minimum=1, maximum=64, value=3)
        self.steps_spin.setToolTip("ODE steps per direction (Heun): more is smoother and slower")
        tr = QGroupBox("Transfer")
        g = QGridLayout(tr)
        g.addWidget(self._label("S&ource", self.source_box), 0, 0)
        g.addWidget(self.source_box, 0, 1)
        g.addWidget(self._label("&Target", self.target_box), 1, 0)
        g.addWidget(self.target_box, 1, 1)
        g.addWidget(self._label("St&eps", self.steps_spin), 2, 0)
        g.addWidget(self.steps_spin, 2, 1)
        dial = QVBoxLayout()
        dial.setSpacing(2)
        dial.addWidget(self._label("σ&max", self.sigma_dial, center=True))
        dial.addWidget(self.sigma_dial, 0, Qt.AlignHCenter)
        dial.addWidget(self.sigma_spin)
        g.addLayout(dial, 0, 2, 4, 1)
        g.setColumnStretch(1, 1)
        g.setRowStretch(3, 1)

        # --- mix
        self.dry_wet_slider = QSlider(Qt.Horizontal, minimum=0, maximum=100, value=100, pageStep=10)
        self.dry_wet_label = QLabel("100 % wet", minimumWidth=70)
        self.gain_slider = QSlider(Qt.Horizontal, minimum=GAIN_DB_RANGE[0], maximum=GAIN_DB_RANGE[1], value=0,
                                   pageStep=6)
        self.gain_slider.setTickPosition(QSlider.TicksBelow)
        self.gain_slider.setTickInterval(6)
        self.gain_label = QLabel("+0 dB", minimumWidth=70)
        self.bypass_check = QCheckBox("&Bypass")
        self.bypass_check.setToolTip("dry signal through the same delay (no model in the path)")
        mix = QGroupBox("Mix")
        g2 = QGridLayout(mix)
        g2.addWidget(self._label("&Dry/wet", self.dry_wet_slider), 0, 0)
        g2.addWidget(self.dry_wet_slider, 0, 1)
        g2.addWidget(self.dry_wet_label, 0, 2)
        g2.addWidget(self._label("Input ga&in", self.gain_slider), 1, 0)
        g2.addWidget(self.gain_slider, 1, 1)
        g2.addWidget(self.gain_label, 1, 2)
        g2.addWidget(self.bypass_check, 2, 1)
        g2.setColumnStretch(1, 1)

        # --- run: start/stop, meters, readouts
        self.start_button = QPushButton("&Start")
        self.start_button.setCheckable(True)
        self.start_button.setMinimumHeight(38)
        self.start_button.setToolTip("start / stop live audio (Space, or Ctrl+Return anywhere)")
        f2 = self.start_button.font()
        f2.setPointSizeF(f2.pointSizeF() * 1.15)
        f2.setBold(True)
        self.start_button.setFont(f2)
        self.in_meter, self.out_meter = LevelMeter(), LevelMeter()
        self.in_meter.setAccessibleName("input level")
        self.out_meter.setAccessibleName("output level")
        self.in_db_label, self.out_db_label = QLabel("−∞ dB", minimumWidth=62), QLabel("−∞ dB", minimumWidth=62)
        self.latency_label, self.rtf_label = QLabel("—"), QLabel("—")
        self.cpu_label, self.dropouts_label = QLabel("—"), QLabel("—")
        self.provider_label = QLabel("—")
        for lab in (self.latency_label, self.rtf_label, self.cpu_label, self.dropouts_label, self.provider_label):
            lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
        run = QGroupBox("Live")
        g3 = QGridLayout(run)
        g3.addWidget(self.start_button, 0, 0, 2, 1)
        g3.addWidget(QLabel("In"), 0, 1)
        g3.addWidget(self.in_meter, 0, 2)
        g3.addWidget(self.in_db_label, 0, 3)
        g3.addWidget(QLabel("Out"), 1, 1)
        g3.addWidget(self.out_meter, 1, 2)
        g3.addWidget(self.out_db_label, 1, 3)
        g3.setColumnStretch(2, 1)
        g3.setColumnMinimumWidth(0, 120)
        read = QGridLayout()
        read.setHorizontalSpacing(10)
        for i, (name, lab) in enumerate((("Latency", self.latency_label), ("Real-time factor", self.rtf_label),
                                         ("Audio CPU", self.cpu_label), ("Dropouts", self.dropouts_label),
                                         ("Models on", self.provider_label))):
            cap = QLabel(name + ":")
            cap.setStyleSheet("color: palette(dark);")
            read.addWidget(cap, i // 3, 2 * (i % 3))
            read.addWidget(lab, i // 3, 2 * (i % 3) + 1)
        read.setColumnStretch(1, 1)
        read.setColumnStretch(3, 1)
        read.setColumnStretch(5, 1)
        g3.addLayout(read, 2, 0, 1, 4)

        # --- offline rendering
        self.render_mode_box = QComboBox()
        self.render_mode_box.addItem("as live (streaming)", "as-live")
        self.render_mode_box.addItem("offline (whole file)", "offline")
        self.render_button = QPushButton("&Render file…")
        self.render_progress = QProgressBar(minimum=0, maximum=100, value=0)
        self.render_progress.setFormat("%p%")
        ren = QGroupBox("Render a file")
        h = QHBoxLayout(ren)
        h.addWidget(self._label("Mo&de", self.render_mode_box))
        h.addWidget(self.render_mode_box)
        h.addWidget(self.render_button)
        h.addWidget(self.render_progress, 1)

        self.status_label = QLabel("Ready.", wordWrap=True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.status_label.setMinimumHeight(self.status_label.fontMetrics().height() * 2 + 4)
        self.status_label.setAlignment(Qt.AlignLeft | Qt.AlignTop)

        top = QGridLayout(self)
        top.addWidget(audio, 0, 0)
        top.addWidget(pre, 0, 1)
        top.addWidget(tr, 1, 0)
        top.addWidget(mix, 1, 1)
        top.addWidget(run, 2, 0, 1, 2)
        top.addWidget(ren, 3, 0, 1, 2)
        top.addWidget(self.status_label, 4, 0, 1, 2)
        top.setColumnStretch(0, 1)
        top.setColumnStretch(1, 1)

        order = [self.start_button, self.input_box, self.output_box, self.rate_box, self.block_box, self.margin_spin,
                 self.refresh_button, self.preset_box, self.load_button, self.save_button, self.source_box,
                 self.target_box, self.steps_spin, self.sigma_dial, self.sigma_spin, self.dry_wet_slider,
                 self.gain_slider, self.bypass_check, self.render_mode_box, self.render_button]
        for a, b in zip(order, order[1:]):
            QWidget.setTabOrder(a, b)

        # --- signals
        for box, key in ((self.input_box, "audio/input"), (self.output_box, "audio/output")):
            box.currentIndexChanged.connect(lambda _i, box=box, key=key: self._store(key, box.currentText()))
        self.rate_box.currentIndexChanged.connect(lambda _i: self._store("audio/rate", self.rate_box.currentData() or 0))
        self.block_box.currentIndexChanged.connect(lambda _i: self._store("audio/block", self.block_box.currentData()))
        self.margin_spin.valueChanged.connect(lambda v: self._store("audio/margin_ms", v))
        self.refresh_button.clicked.connect(lambda: self.refresh_devices(scan=True))
        self.preset_box.currentIndexChanged.connect(self._preset_chosen)
        self.load_button.clicked.connect(self._load_dialog)
        self.save_button.clicked.connect(self._save_dialog)
        self.source_box.currentIndexChanged.connect(lambda _i: self._instrument_changed("source"))
        self.target_box.currentIndexChanged.connect(lambda _i: self._instrument_changed("target"))
        self.sigma_dial.valueChanged.connect(self._dial_moved)
        self.sigma_spin.valueChanged.connect(self._sigma_typed)
        self.steps_spin.valueChanged.connect(lambda v: self._set_param(steps=int(v)))
        self.dry_wet_slider.valueChanged.connect(self._dry_wet_moved)
        self.gain_slider.valueChanged.connect(self._gain_moved)
        self.bypass_check.toggled.connect(lambda on: self._set_param(bypass=bool(on)))
        self.start_button.clicked.connect(self._start_clicked)
        self.render_button.clicked.connect(self._render_dialog)
        self.render_mode_box.currentIndexChanged.connect(
            lambda _i: self._store("render/mode", self.render_mode_box.currentData()))
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.toggle_running)
        QShortcut(QKeySequence("Ctrl+O"), self, activated=self._load_dialog)
        QShortcut(QKeySequence("Ctrl+S"), self, activated=self._save_dialog)

    @staticmethod
    def _label(text: str, buddy: QWidget, center: bool = False) -> QLabel:
        lab = QLabel(text)
        lab.setBuddy(buddy)
        if center:
            lab.setAlignment(Qt.AlignHCenter)
        return lab

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

    # ================================================================== status / settings helpers
    def _status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #c62828;" if error else "")
        if error:
            self._errors += 1
            self.error_occurred.emit(text)

    def _store(self, key: str, value) -> None:
        if self._loading:
            return
        self.settings.setValue(key, value)
        self._sync_timer.start()

    def _restore(self) -> None:
        s = self.settings
        self._loading = True
        try:
            for box, key in ((self.input_box, "audio/input"), (self.output_box, "audio/output")):
                i = box.findText(str(s.value(key, "")))
                if i >= 0:
                    box.setCurrentIndex(i)
            i = self.rate_box.findData(int(s.value("audio/rate", 0, type=int)) or None)
            self.rate_box.setCurrentIndex(max(0, i))
            i = self.block_box.findData(int(s.value("audio/block", 256, type=int)))
            if i >= 0:
                self.block_box.setCurrentIndex(i)
            self.margin_spin.setValue(int(s.value("audio/margin_ms", 40, type=int)))
            i = self.render_mode_box.findData(str(s.value("render/mode", "as-live")))
            self.render_mode_box.setCurrentIndex(max(0, i))
        finally:
            self._loading = False
        saved = str(s.value("preset/path", ""))
        if saved and Path(saved).is_file():
            i = self.preset_box.findData(saved)
            if i < 0:
                self.load_preset_file(saved, restore_controls=True)
            else:
                self._select_preset_index(i, restore_controls=True)
        elif self.preset_box.count():
            self._select_preset_index(max(0, self.preset_box.findText(DEFAULT_PRESET)))
        self._loading = True
        try:
            self.gain_slider.setValue(int(s.value("controls/input_gain_db", 0, type=int)))
            self.bypass_check.setChecked(s.value("controls/bypass", False, type=bool))
        finally:
            self._loading = False
        self._update_gain_label()
        geo = s.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.sync()

    # ================================================================== devices
    def refresh_devices(self, scan: bool = True) -> None:
        """Fill the device pickers (scan=True asks PortAudio to enumerate again; only while stopped)."""
        from live import audio

        if self.running:
            self._status("Stop audio before rescanning devices.")
            return
        try:
            if scan:
                audio.rescan()
            self._devices = audio.list_devices()
        except audio.AudioDeviceError as e:
            self._devices = []
            self._status(str(e), error=True)
        keep = (self.input_box.currentText(), self.output_box.currentText())
        self._loading = True
        try:
            for box, kind in ((self.input_box, "input"), (self.output_box, "output")):
                box.clear()
                devs = [d for d in self._devices if getattr(d, f"max_{kind}_channels") > 0]
                box.addItem("system default" if devs else f"(no {kind} device found)", None)
                for d in devs:
                    box.addItem(d.label, d.index)
                    box.setItemData(box.count() - 1, f"#{d.index}: {getattr(d, f'max_{kind}_channels')} ch, "
                                                      f"{d.default_samplerate:.0f} Hz", Qt.ToolTipRole)
        finally:
            self._loading = False
        for box, text in zip((self.input_box, self.output_box), keep):
            i = box.findText(text)
            if i >= 0:
                box.setCurrentIndex(i)
        if scan:
            n = len(self._devices)
            self._status(f"Found {n} audio device{'s' if n != 1 else ''}." if n else
                         "No audio devices found (is a sound server or JACK running?).", error=not n)

    # ================================================================== presets
    def refresh_presets(self) -> None:
        """List the presets in preset_dir (invalid ones are skipped and named in the status line)."""
        bad = []
        current = self.preset_box.currentData()
        self.preset_box.blockSignals(True)
        try:
            self.preset_box.clear()
            for p in sorted(self.preset_dir.glob("*.json")):
                try:
                    pr = load_preset(p, self.preset_dir)
                except PresetError as e:
                    bad.append(str(e))
                    continue
                self.preset_box.addItem(pr.name, str(p.resolve()))
                self.preset_box.setItemData(self.preset_box.count() - 1, pr.description or str(p), Qt.ToolTipRole)
            if current:
                i = self.preset_box.findData(current)
                if i >= 0:
                    self.preset_box.setCurrentIndex(i)
        finally:
            self.preset_box.blockSignals(False)
        if bad:
            self._status("Skipped invalid preset(s): " + "; ".join(bad), error=True)
        elif not self.preset_box.count():
            self._status(f"No presets in {self.preset_dir}; load one with Load… (Ctrl+O).", error=True)

    def _select_preset_index(self, i: int, restore_controls: bool = False) -> None:
        self.preset_box.blockSignals(True)
        self.preset_box.setCurrentIndex(i)
        self.preset_box.blockSignals(False)
        self._preset_chosen(i, restore_controls=restore_controls)

    def _preset_chosen(self, i: int, restore_controls: bool = False) -> None:
        path = self.preset_box.itemData(i)
        if not path:
            return
        try:
            preset = load_preset(path, self.preset_dir)
        except PresetError as e:
            self._status(str(e), error=True)
            return
        self.apply_preset(preset, restore_controls=restore_controls)

    def load_preset_file(self, path: str | Path, restore_controls: bool = False) -> Preset | None:
        """Load a preset file (adds it to the picker and selects it); None and a status message on error."""
        try:
            preset = load_preset(Path(path), self.preset_dir)
        except PresetError as e:
            self._status(str(e), error=True)
            return None
        key = str(Path(path).resolve())
        i = self.preset_box.findData(key)
        self.preset_box.blockSignals(True)
        if i < 0:
            self.preset_box.addItem(preset.name, key)
            i = self.preset_box.count() - 1
        self.preset_box.setItemText(i, preset.name)
        self.preset_box.setCurrentIndex(i)
        self.preset_box.blockSignals(False)
        self.apply_preset(preset, restore_controls=restore_controls)
        return preset

    def save_preset_file(self, path: str | Path, name: str | None = None) -> Path | None:
        """Save the controls as a preset (name: the file's stem unless given); relative bundle paths are
        rewritten so the saved file still finds the bundle."""
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".json")
        preset = self.current_preset()
        if preset is None:
            self._status("Nothing to save: no preset loaded.", error=True)
            return None
        bundle = preset.bundle_path()
        try:
            rel = Path(__import__("os").path.relpath(bundle, path.resolve().parent))
        except ValueError:  # another drive (Windows)
            rel = bundle
        preset = dataclasses.replace(preset, name=name or path.stem, bundle=str(rel).replace("\\", "/"))
        try:
            out = preset.save(path)
        except (PresetError, OSError) as e:
            self._status(f"Could not save {path}: {e}", error=True)
            return None
        if out.resolve().parent == self.preset_dir.resolve():
            self.refresh_presets()
        self.load_preset_file(out)
        self._status(f"Saved preset {preset.name!r} to {out}.")
        return out

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load preset", str(self.preset_dir), "Presets (*.json)")
        if path:
            self.load_preset_file(path)

    def _save_dialog(self) -> None:
        start = str(self.preset_dir / f"{self._preset.name if self._preset else 'preset'}.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save preset", start, "Presets (*.json)")
        if path:
            self.save_preset_file(path)

    @property
    def preset(self) -> Preset | None:
        """The loaded preset as it is on disk."""
        return self._preset

    def current_preset(self) -> Preset | None:
        """The loaded preset with the controls' values (what Start, Save and Render use)."""
        if self._preset is None:
            return None
        return dataclasses.replace(self._preset, source=self.source_box.currentText() or self._preset.source,
                                   target=self.target_box.currentText() or self._preset.target,
                                   sigma_max=self._sigma, steps=int(self.steps_spin.value()),
                                   dry_wet=self._dry_wet)

    def apply_preset(self, preset: Preset, restore_controls: bool = False) -> None:
        """Show a preset in every control and send it to the engine (rebuilt if its structure changed)."""
        old = self._preset
        self._preset = preset
        errors = self._errors
        try:
            instruments, self._codec = _bundle_instruments(preset.bundle_path())
        except (OSError, ValueError, KeyError) as e:
            instruments, self._codec = sorted({preset.source, preset.target}), {}
            self._status(f"Cannot read the bundle of {preset.name!r} ({preset.bundle_path()}): {e}", error=True)
        values = dict(source=preset.source, target=preset.target, sigma_max=preset.sigma_max, steps=preset.steps,
                      dry_wet=preset.dry_wet)
        s = self.settings
        if restore_controls and str(s.value("preset/path", "")) == str(preset.path and Path(preset.path).resolve()):
            for k, typ in (("source", str), ("target", str), ("sigma_max", float), ("steps", int), ("dry_wet", float)):
                v = s.value(f"controls/{k}")
                if v is not None:
                    try:
                        values[k] = typ(v)
                    except (TypeError, ValueError):
                        pass
            if values["source"] not in instruments:
                values["source"] = preset.source
            if values["target"] not in instruments:
                values["target"] = preset.target
        self._loading = True
        widgets = (self.source_box, self.target_box, self.sigma_dial, self.sigma_spin, self.steps_spin,
                   self.dry_wet_slider)
        for w in widgets:
            w.blockSignals(True)
        try:
            for box, name in ((self.source_box, values["source"]), (self.target_box, values["target"])):
                box.clear()
                box.addItems(instruments)
                box.setCurrentIndex(max(0, box.findText(name)))
            self._sigma = float(values["sigma_max"])
            self.sigma_spin.setValue(self._sigma)
            self.sigma_dial.setValue(sigma_to_dial(self._sigma))
            self.steps_spin.setValue(int(values["steps"]))
            self._dry_wet = float(values["dry_wet"])
            self.dry_wet_slider.setValue(int(round(100 * self._dry_wet)))
        finally:
            for w in widgets:
                w.blockSignals(False)
            self._loading = False
        self._update_dry_wet_label()
        self.description_label.setText(preset.description or f"{preset.source} → {preset.target}")
        self.description_label.setToolTip(str(preset.path or ""))
        details = f"window {preset.window} · hop {preset.hop} · crossfade {preset.crossfade} frames"
        if self._codec.get("hop_length") and self._codec.get("sample_rate"):
            ms = 1000.0 * self._codec["hop_length"] / self._codec["sample_rate"]
            details += f" ({ms:.1f} ms each)"
        self.details_label.setText(details + f"\nbundle: {preset.bundle_path().name}/ · "
                                   f"{len(instruments)} instrument{'s' if len(instruments) != 1 else ''}")
        self.details_label.setToolTip(str(preset.bundle_path()))
        if not restore_controls:
            self._store("preset/path", str(Path(preset.path).resolve()) if preset.path else "")
            self._store_controls()
        self._show_static_latency()
        # reach the engine: live parameters through set(); a different bundle or window layout needs a new one
        eng = self.engine
        if eng is not None:
            if old is not None and self._compatible(old, preset):
                self._set_param(**self._live_values(), sigma_min=preset.sigma_min, rho=preset.rho)
            elif self.running:
                self.stop()
                self.start()  # says how that went
                return
            else:
                self.build_engine()
        if self._errors == errors:
            self._status(f"Preset {preset.name!r} loaded.")

    @staticmethod
    def _compatible(a: Preset, b: Preset) -> bool:
        return (a.bundle_path() == b.bundle_path() and (a.window, a.hop, a.crossfade) == (b.window, b.hop, b.crossfade))

    def _live_values(self) -> dict:
        return dict(source=self.source_box.currentText(), target=self.target_box.currentText(),
                    sigma_max=self._sigma, steps=int(self.steps_spin.value()), dry_wet=self._dry_wet,
                    input_gain=self.input_gain, bypass=self.bypass_check.isChecked())

    def _store_controls(self) -> None:
        for k, v in self._live_values().items():
            if k not in ("input_gain", "bypass"):
                self._store(f"controls/{k}", v)

    # ================================================================== controls → engine
    @property
    def sigma_max(self) -> float:
        return self._sigma

    def set_sigma_max(self, value: float) -> None:
        self.sigma_spin.setValue(float(value))  # → _sigma_typed

    @property
    def dry_wet(self) -> float:
        return self._dry_wet

    @property
    def input_gain(self) -> float:
        return 10.0 ** (self.gain_slider.value() / 20.0)

    def _set_param(self, **changes) -> None:
        for k, v in changes.items():
            if k in ("source", "target", "sigma_max", "steps", "dry_wet"):
                self._store(f"controls/{k}", v)
            elif k == "input_gain":
                self._store("controls/input_gain_db", self.gain_slider.value())
            elif k == "bypass":
                self._store("controls/bypass", bool(v))
        if self._loading:
            return
        eng = self.engine
        if eng is None:
            return
        try:
            eng.set(**changes)  # applied by the engine at its next window; never blocks the audio thread
        except Exception as e:  # noqa: BLE001 - BundleError (unknown instrument), KeyError
            self._status(f"Cannot apply {', '.join(changes)}: {e}", error=True)

    def _instrument_changed(self, which: str) -> None:
        box = self.source_box if which == "source" else self.target_box
        if box.currentText():
            self._set_param(**{which: box.currentText()})

    def _dial_moved(self, pos: int) -> None:
        self._sigma = dial_to_sigma(pos)
        self.sigma_spin.blockSignals(True)
        self.sigma_spin.setValue(self._sigma)
        self.sigma_spin.blockSignals(False)
        self._set_param(sigma_max=self._sigma)

    def _sigma_typed(self, value: float) -> None:
        self._sigma = float(value)
        self.sigma_dial.blockSignals(True)
        self.sigma_dial.setValue(sigma_to_dial(self._sigma))
        self.sigma_dial.blockSignals(False)
        self._set_param(sigma_max=self._sigma)

    def _dry_wet_moved(self, v: int) -> None:
        self._dry_wet = v / 100.0
        self._update_dry_wet_label()
        self._set_param(dry_wet=self._dry_wet)

    def _update_dry_wet_label(self) -> None:
        self.dry_wet_label.setText(f"{100 * self._dry_wet:.0f} % wet")

    def _gain_moved(self, _v: int) -> None:
        self._update_gain_label()
        self._set_param(input_gain=self.input_gain)

    def _update_gain_label(self) -> None:
        self.gain_label.setText(f"{self.gain_slider.value():+d} dB")

    # ================================================================== engines
    def _bundle_for(self, preset: Preset):
        from live.bundle import Bundle

        key = (str(preset.bundle_path()), self.provider, self.threads)
        if key not in self._bundles:
            self._bundles[key] = Bundle(preset.bundle_path(), provider=self.provider, threads=self.threads)
        return self._bundles[key]

    def build_engine(self, device_rate: int | None = None, **kwargs):
        """An engine for the current controls, without audio; the controls drive it until audio starts.

        Feed it with engine.process(block) (parameters apply at its next window)."""
        from live.engine import StreamingEngine

        preset = self.current_preset()
        if preset is None:
            raise PresetError("no preset loaded")
        kwargs.setdefault("input_gain", self.input_gain)
        kwargs.setdefault("bypass", self.bypass_check.isChecked())
        eng = StreamingEngine(self._bundle_for(preset), preset, device_rate=device_rate, **kwargs)
        self._offline_engine = eng
        self.provider_label.setText(eng.bundle.providers[0].replace("ExecutionProvider", ""))
        self.engine_changed.emit(eng)
        return eng

    @property
    def engine(self):
        """The engine the controls drive: the live session's while running, else the one build_engine made."""
        if self.session is not None and self.session.engine is not None:
            return self.session.engine
        return self._offline_engine

    # ================================================================== start / stop
    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    def toggle_running(self) -> None:
        self.stop() if self.running else self.start()

    def _start_clicked(self) -> None:
        self.toggle_running()

    def start(self) -> bool:
        """Open the chosen devices and run the engine; False (and a message in the status line) when it cannot."""
        from live.audio import AudioDeviceError, LiveSession

        if self.running:
            return True
        preset = self.current_preset()
        ok = False
        if preset is None:
            self._status("No preset loaded: choose one or load a file first.", error=True)
        else:
            session = LiveSession(preset, input=self.input_box.currentData(), output=self.output_box.currentData(),
                                  rate=self.rate_box.currentData(), block=int(self.block_box.currentData()),
                                  margin_ms=float(self.margin_spin.value()), threads=self.threads,
                                  provider=self.provider, input_gain=self.input_gain,
                                  bypass=self.bypass_check.isChecked(), preload_instruments=True)
            self._status("Starting audio…")
            self.status_label.repaint()
            try:
                session.bundle = self._bundle_for(preset)
                session.start()
                ok = True
            except AudioDeviceError as e:
                self._status(f"Cannot start audio: {e}", error=True)
            except Exception as e:  # noqa: BLE001 - BundleError, PresetError, onnxruntime
                self._status(f"Cannot start: {e}", error=True)
            if ok:
                self.session = session
                eng = session.engine
                self.provider_label.setText(session.bundle.providers[0].replace("ExecutionProvider", ""))
                self._status(f"Running: {session.input_device.label} → {session.output_device.label}, "
                             f"{session.rate} Hz, block {session.block}.")
                self.engine_changed.emit(eng)
        self._set_running_ui(ok)
        return ok

    def stop(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.stop()
            st = session.status()
            msg = (f"Stopped after {st.seconds:.0f} s: {st.hops} hops, {st.underruns} underrun / {st.overruns} "
                   f"overrun samples, {st.dry_hops} dry hops.")
            if st.error:
                self._status(f"Audio stopped: {st.error}", error=True)
            else:
                self._status(msg)
            if self._offline_engine is not None:  # it missed what the controls did while audio ran
                try:
                    self._offline_engine.set(**self._live_values())
                except Exception:  # noqa: BLE001 - a stale engine is not worth an error
                    self._offline_engine = None
            self.engine_changed.emit(self.engine)
        self._set_running_ui(False)

    def _set_running_ui(self, on: bool) -> None:
        self.start_button.blockSignals(True)
        self.start_button.setChecked(on)
        self.start_button.blockSignals(False)
        self.start_button.setText("&Stop" if on else "&Start")
        for w in (self.input_box, self.output_box, self.rate_box, self.block_box, self.margin_spin,
                  self.refresh_button):
            w.setEnabled(not on)
        if not on:
            self.in_meter.reset()
            self.out_meter.reset()
        self.running_changed.emit(on)

    # ================================================================== monitoring
    def _show_static_latency(self) -> None:
        p, c = self._preset, self._codec
        if p is not None and c.get("hop_length") and c.get("sample_rate") and not self.running:
            alg = 1000.0 * (p.hop + p.crossfade) * c["hop_length"] / c["sample_rate"]
            self.latency_label.setText(f"{alg:.0f} ms algorithmic + margin")

    def _poll(self) -> None:
        if self.session is not None:
            st = self.session.status()
            if st.error:
                self.stop()  # says why in the status line
                return
            if st.model_error and st.model_errors != self._model_errors_shown:  # audio goes on dry; say so now
                self._model_errors_shown = st.model_errors
                self._status(f"A model failed ({st.model_errors} hops went out dry): {st.model_error}", error=True)
            self.in_meter.setLevels(10 ** (st.in_peak_db / 20), 10 ** (st.in_rms_db / 20))
            self.out_meter.setLevels(10 ** (st.out_peak_db / 20), 10 ** (st.out_rms_db / 20))
            self.in_db_label.setText(_db_text(st.in_peak_db))
            self.out_db_label.setText(_db_text(st.out_peak_db))
            self.latency_label.setText(f"{st.latency_ms:.0f} ms (engine {st.engine_latency_ms:.0f} + device "
                                       f"{st.device_latency_ms:.0f})")
            self.rtf_label.setText(f"{st.rtf:.2f}")
            self.cpu_label.setText(f"{100 * st.cpu_load:.0f} %")
            self.dropouts_label.setText(f"{st.underruns} under · {st.overruns} over · {st.dry_hops} dry"
                                        + (f" · {st.xruns} xrun" if st.xruns else ""))
            warn = st.dropouts > 0
            self.dropouts_label.setStyleSheet("color: #c62828;" if warn else "")
            return
        eng = self._offline_engine
        if eng is not None:
            es = eng.stats
            self.in_meter.setLevels(es.in_peak, es.in_rms)
            self.out_meter.setLevels(es.out_peak, es.out_rms)
            self.in_db_label.setText(_db_text(20 * math.log10(max(es.in_peak, 1e-6))))
            self.out_db_label.setText(_db_text(20 * math.log10(max(es.out_peak, 1e-6))))
            self.rtf_label.setText(f"{es.rtf:.2f}" if es.hops else "—")
            self.dropouts_label.setText(f"{es.underruns} under · {es.overruns} over · {es.dry_hops} dry")
            self.latency_label.setText(f"{eng.latency_ms:.0f} ms (engine, no audio)")

    # ================================================================== offline rendering
    def _render_dialog(self) -> None:
        last = str(self.settings.value("render/dir", str(Path.home())))
        src, _ = QFileDialog.getOpenFileName(self, "Render: input audio", last,
                                             "Audio (*.wav *.flac *.ogg *.aiff *.aif);;All files (*)")
        if not src:
            return
        self._store("render/dir", str(Path(src).parent))
        default = str(Path(src).with_name(Path(src).stem + f"-{self.target_box.currentText() or 'out'}.wav"))
        dst, _ = QFileDialog.getSaveFileName(self, "Render: output file", default, "WAV (*.wav);;FLAC (*.flac)")
        if dst:
            self.render_file(src, dst)

    @property
    def rendering(self) -> bool:
        return self._render is not None and self._render.isRunning()

    def render_file(self, in_path: str | Path, out_path: str | Path, mode: str | None = None) -> bool:
        """Render a file with the current controls on a worker thread; watch render_progress and the
        render_finished / render_failed signals. False when it cannot start."""
        if self.rendering:
            self._status("A render is already running.", error=True)
            return False
        from live.render import render_file as fn

        preset = self.current_preset()
        if preset is None:
            self._status("No preset loaded.", error=True)
            return False
        mode = mode or self.render_mode_box.currentData()
        overrides = dict(input_gain=self.input_gain, threads=self.threads, provider=self.provider)
        t = RenderThread(fn, str(in_path), str(out_path), preset, mode, overrides, self)
        t.progress.connect(lambda f: self.render_progress.setValue(int(round(100 * min(1.0, max(0.0, f))))))
        t.done.connect(self._render_done)
        t.failed.connect(self._render_error)
        t.finished.connect(lambda: self.render_button.setEnabled(True))
        self._render = t
        self.render_progress.setValue(0)
        self.render_button.setEnabled(False)
        self._status(f"Rendering {Path(in_path).name} ({mode})…")
        t.start()
        return True

    def _render_done(self, out_path: str) -> None:
        self.render_progress.setValue(100)
        notes = self._render.warnings if self._render is not None else []
        self._status(f"Rendered {out_path}." + (" " + " ".join(notes) if notes else ""))
        self.render_finished.emit(out_path)

    def _render_error(self, msg: str) -> None:
        self._status(f"Render failed: {msg}", error=True)
        self.render_failed.emit(msg)

    # ================================================================== teardown
    def shutdown(self) -> None:
        """Stop audio, wait for a running render, write the settings. Called on close; safe to call twice."""
        self._timer.stop()
        self.stop()
        if self._render is not None:
            self._render.wait()
            self._render = None
        self._sync_timer.stop()
        self.save_settings()
        self._offline_engine = None  # release the models (and soxr resamplers) now, not at interpreter exit
        self._bundles.clear()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)


def _db_text(db: float) -> str:
    return "−∞ dB" if db <= -119 else f"{db:.0f} dB"


__all__ = ["ControlPanel", "RenderThread", "dial_to_sigma", "sigma_to_dial"]
