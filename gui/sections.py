"""The panel's group boxes for its controls (audio devices, preset, transfer, mix, rendering): their widgets,
their layout, and how they display values. They hold no state of their own and drive nothing; the panel wires
them to the state, the settings and the engine. The Live group is gui.monitor."""
from __future__ import annotations

import math

from PySide6.QtCore import QSignalBlocker, QSize, Qt
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDial, QDoubleSpinBox, QFormLayout,
                               QGridLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy,
                               QSlider, QSpinBox, QVBoxLayout, QWidget)

from gui.state import gain_to_db
from live.devices import DEFAULT_BLOCK
from live.params import param
from live.preset import Preset

SIGMA_LO, SIGMA_HI, DIAL_STEPS = 0.1, 200.0, 1000  # the dial's musical range; the spin box takes the table's
RATES = (44100, 48000, 88200, 96000)
BLOCKS = (64, 128, 256, 512, 1024, 2048)
GAIN_DB_RANGE = (-24, 24)
MARGIN_MS_MAX = 500


def sigma_to_dial(sigma: float) -> int:
    s = min(SIGMA_HI, max(SIGMA_LO, float(sigma)))
    return int(round(DIAL_STEPS * math.log(s / SIGMA_LO) / math.log(SIGMA_HI / SIGMA_LO)))


def dial_to_sigma(pos: int) -> float:
    s = SIGMA_LO * (SIGMA_HI / SIGMA_LO) ** (pos / DIAL_STEPS)
    return float(f"{s:.3g}")  # three significant digits: readable, and what the readout shows


def buddy_label(text: str, buddy: QWidget, center: bool = False) -> QLabel:
    """A label whose mnemonic (&) focuses `buddy`."""
    lab = QLabel(text)
    lab.setBuddy(buddy)
    if center:
        lab.setAlignment(Qt.AlignHCenter)
    return lab


class SigmaSpinBox(QDoubleSpinBox):
    """σmax readout: up to four significant digits ("5", "12.5", "0.013"), not a fixed number of decimals."""

    def textFromValue(self, value: float) -> str:
        return f"{value:.4g}"


class AudioGroup(QGroupBox):
    WIDGETS = ("input_box", "output_box", "rate_box", "block_box", "margin_spin", "refresh_button")

    def __init__(self):
        super().__init__("Audio")
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
        self.block_box.setCurrentIndex(BLOCKS.index(DEFAULT_BLOCK))
        # 0 shows "auto": live.audio measures this machine's hop times at start and sizes the margin from them
        self.margin_spin = QSpinBox(suffix=" ms", minimum=0, maximum=MARGIN_MS_MAX, singleStep=5, value=0)
        self.margin_spin.setSpecialValueText("auto")
        self.margin_spin.setToolTip("extra output delay that absorbs compute jitter (auto: measured at start)")
        self.refresh_button = QPushButton("Re&scan")
        self.refresh_button.setToolTip("look for audio devices again (while stopped)")
        f = QFormLayout(self)
        f.addRow(buddy_label("&Input", self.input_box), self.input_box)
        f.addRow(buddy_label("O&utput", self.output_box), self.output_box)
        row = QHBoxLayout()
        row.addWidget(self.rate_box, 2)
        row.addWidget(buddy_label("Bloc&k", self.block_box))
        row.addWidget(self.block_box, 1)
        f.addRow(buddy_label("R&ate", self.rate_box), row)
        row = QHBoxLayout()
        row.addWidget(self.margin_spin, 1)
        row.addStretch(0)
        row.addWidget(self.refresh_button)
        f.addRow(buddy_label("Mar&gin", self.margin_spin), row)

    def select(self, input: str, output: str, rate: int | None, block: int, margin_ms: int) -> None:
        """Show saved choices: devices by name, where they are still there (0 ms margin: auto)."""
        for box, text in ((self.input_box, input), (self.output_box, output)):
            if (i := box.findText(text)) >= 0:
                box.setCurrentIndex(i)
        self.rate_box.setCurrentIndex(max(0, self.rate_box.findData(rate)))
        if (i := self.block_box.findData(block)) >= 0:
            self.block_box.setCurrentIndex(i)
        self.margin_spin.setValue(margin_ms)

    def margin_ms(self) -> float | None:
        """The margin to ask for; None: measure it at start."""
        return float(self.margin_spin.value()) or None

    def choice(self) -> dict:
        """The devices and stream settings, as EngineController.start takes them."""
        return dict(input=self.input_box.currentData(), output=self.output_box.currentData(),
                    rate=self.rate_box.currentData(), block=int(self.block_box.currentData()),
                    margin_ms=self.margin_ms())

    def show_devices(self, devices: list) -> None:
        """Offer these devices (live.audio.Device), keeping the chosen ones where they are still there."""
        keep = (self.input_box.currentText(), self.output_box.currentText())
        for box, kind in ((self.input_box, "input"), (self.output_box, "output")):
            with QSignalBlocker(box):
                box.clear()
                devs = [d for d in devices if getattr(d, f"max_{kind}_channels") > 0]
                box.addItem("system default" if devs else f"(no {kind} device found)", None)
                for d in devs:
                    box.addItem(d.label, d.index)
                    box.setItemData(box.count() - 1, f"#{d.index}: {getattr(d, f'max_{kind}_channels')} ch, "
                                                      f"{d.default_samplerate:.0f} Hz", Qt.ToolTipRole)
        for box, text in zip((self.input_box, self.output_box), keep):
            i = box.findText(text)
            if i >= 0:
                box.setCurrentIndex(i)

    def show_running(self, on: bool) -> None:
        for w in (self.input_box, self.output_box, self.rate_box, self.block_box, self.margin_spin,
                  self.refresh_button):
            w.setEnabled(not on)  # devices are fixed while audio runs


class PresetGroup(QGroupBox):
    WIDGETS = ("preset_box", "load_button", "save_button", "description_label", "details_label")

    def __init__(self):
        super().__init__("Preset")
        self.preset_box = QComboBox()
        self.preset_box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.preset_box.setMinimumContentsLength(16)
        self.load_button, self.save_button = QPushButton("&Load…"), QPushButton("Sa&ve…")
        self.description_label = QLabel(wordWrap=True)
        self.description_label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        self.details_label = QLabel(wordWrap=True)
        self.details_label.setStyleSheet("color: palette(dark);")
        v = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(buddy_label("&Preset", self.preset_box))
        row.addWidget(self.preset_box, 1)
        v.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.load_button)
        row.addWidget(self.save_button)
        v.addLayout(row)
        v.addWidget(self.description_label)
        v.addWidget(self.details_label)
        v.addStretch(1)

    def show_presets(self, presets: list[Preset]) -> None:
        """List these presets (keyed by their resolved path), keeping the chosen one selected."""
        box, current = self.preset_box, self.preset_box.currentData()
        with QSignalBlocker(box):
            box.clear()
            for pr in presets:
                box.addItem(pr.name, str(pr.path.resolve()))
                box.setItemData(box.count() - 1, pr.description or str(pr.path), Qt.ToolTipRole)
            if current and (i := box.findData(current)) >= 0:
                box.setCurrentIndex(i)

    def select(self, i: int, name: str | None = None) -> None:
        """Select entry i (renamed to `name` when given) without announcing it."""
        with QSignalBlocker(self.preset_box):
            if name is not None:
                self.preset_box.setItemText(i, name)
            self.preset_box.setCurrentIndex(i)

    def entry(self, key: str, name: str) -> int:
        """The index of the preset file `key` (a resolved path), added when it is not listed."""
        i = self.preset_box.findData(key)
        if i < 0:
            with QSignalBlocker(self.preset_box):
                self.preset_box.addItem(name, key)
            i = self.preset_box.count() - 1
        return i

    def show_details(self, preset: Preset, instruments: list[str], frame_ms: float | None) -> None:
        self.description_label.setText(preset.description or f"{preset.source} → {preset.target}")
        self.description_label.setToolTip(str(preset.path or ""))
        details = f"window {preset.window} · hop {preset.hop} · crossfade {preset.crossfade} frames"
        if frame_ms is not None:
            details += f" ({frame_ms:.1f} ms each)"
        n = len(instruments)
        details += f"\n{preset.solver} solver · σmin {preset.sigma_min:g} · ρ {preset.rho:g}"
        self.details_label.setText(details + f"\nbundle: {preset.bundle_path().name}/ · "
                                   f"{n} instrument{'s' if n != 1 else ''}")
        self.details_label.setToolTip(str(preset.bundle_path()))


class TransferGroup(QGroupBox):
    WIDGETS = ("source_box", "target_box", "sigma_dial", "sigma_spin", "steps_spin", "transpose_spin", "fold_spin")

    def __init__(self):
        super().__init__("Transfer")
        sigma, steps = param("sigma_max"), param("steps")
        self.source_box, self.target_box = QComboBox(), QComboBox()
        self.source_box.setToolTip(param("source").help)
        self.target_box.setToolTip(param("target").help)
        self.sigma_dial = QDial(minimum=0, maximum=DIAL_STEPS, singleStep=10, pageStep=100, notchesVisible=True)
        self.sigma_dial.setNotchTarget(8.0)
        self.sigma_dial.setWrapping(False)
        self.sigma_dial.setFixedSize(QSize(104, 104))
        self.sigma_dial.setFocusPolicy(Qt.StrongFocus)
        self.sigma_dial.setAccessibleName("sigma max")
        self.sigma_dial.setToolTip(f"σmax: how far into noise the bridge goes (log scale, {SIGMA_LO:g}…"
                                   f"{SIGMA_HI:g}). Low keeps the source's detail, high sounds more like the target.")
        self.sigma_spin = SigmaSpinBox(minimum=sigma.low, maximum=sigma.high, decimals=3, value=sigma.default)
        self.sigma_spin.setStepType(QAbstractSpinBox.AdaptiveDecimalStepType)
        self.sigma_spin.setKeyboardTracking(False)
        self.sigma_spin.setAlignment(Qt.AlignCenter)
        self.sigma_spin.setToolTip(f"σmax: {sigma.help} (type an exact value here)")
        self.sigma_dial.setValue(sigma_to_dial(sigma.default))
        self.steps_spin = QSpinBox(minimum=int(steps.low), maximum=int(steps.high), value=steps.default)
        self.steps_spin.setToolTip(steps.help)
        transpose = param("transpose")
        self.transpose_spin = QSpinBox(minimum=int(transpose.low), maximum=int(transpose.high), value=0,
                                       singleStep=12, suffix=" st")  # arrows move by octaves, typing by semitones
        self.transpose_spin.setToolTip(transpose.help + " (changing it restarts the audio)")
        fold = param("fold_centre")
        self.fold_spin = QSpinBox(minimum=int(fold.low), maximum=int(fold.high), value=0, specialValueText="off",
                                  prefix="MIDI ")  # 0 shows "off"
        self.fold_spin.setToolTip(fold.help + " (changing it restarts the audio)")
        g = QGridLayout(self)
        g.addWidget(buddy_label("S&ource", self.source_box), 0, 0)
        g.addWidget(self.source_box, 0, 1)
        g.addWidget(buddy_label("&Target", self.target_box), 1, 0)
        g.addWidget(self.target_box, 1, 1)
        g.addWidget(buddy_label("St&eps", self.steps_spin), 2, 0)
        g.addWidget(self.steps_spin, 2, 1)
        g.addWidget(buddy_label("Tra&nspose", self.transpose_spin), 3, 0)
        g.addWidget(self.transpose_spin, 3, 1)
        g.addWidget(buddy_label("&Fold round", self.fold_spin), 4, 0)
        g.addWidget(self.fold_spin, 4, 1)
        dial = QVBoxLayout()
        dial.setSpacing(2)
        dial.addWidget(buddy_label("σ&max", self.sigma_dial, center=True))
        dial.addWidget(self.sigma_dial, 0, Qt.AlignHCenter)
        dial.addWidget(self.sigma_spin)
        g.addLayout(dial, 0, 2, 6, 1)
        g.setColumnStretch(1, 1)
        g.setRowStretch(5, 1)

    def show_instruments(self, names: list[str]) -> None:
        for box in (self.source_box, self.target_box):
            with QSignalBlocker(box):
                box.clear()
                box.addItems(names)

    def show(self, values: dict) -> None:
        """Display those of these control values that this group shows, without announcing them."""
        for name, box in (("source", self.source_box), ("target", self.target_box)):
            if name in values:
                with QSignalBlocker(box):
                    box.setCurrentIndex(max(0, box.findText(values[name])))
        if "sigma_max" in values:
            sigma = values["sigma_max"]
            with QSignalBlocker(self.sigma_spin):
                self.sigma_spin.setValue(sigma)
            if dial_to_sigma(self.sigma_dial.value()) != sigma:  # a dial moved by hand stays where it was put
                with QSignalBlocker(self.sigma_dial):
                    self.sigma_dial.setValue(sigma_to_dial(sigma))
        for name, spin in (("steps", self.steps_spin), ("transpose", self.transpose_spin),
                           ("fold_centre", self.fold_spin)):
            if name in values:
                with QSignalBlocker(spin):
                    spin.setValue(values[name])


class MixGroup(QGroupBox):
    WIDGETS = ("dry_wet_slider", "dry_wet_label", "gain_slider", "gain_label", "bypass_check")

    def __init__(self):
        super().__init__("Mix")
        mix = param("dry_wet")
        self.dry_wet_slider = QSlider(Qt.Horizontal, minimum=int(100 * mix.low), maximum=int(100 * mix.high),
                                      value=int(round(100 * mix.default)), pageStep=10)
        self.dry_wet_slider.setToolTip(mix.help)
        self.dry_wet_label = QLabel(minimumWidth=70)
        self.gain_slider = QSlider(Qt.Horizontal, minimum=GAIN_DB_RANGE[0], maximum=GAIN_DB_RANGE[1], value=0,
                                   pageStep=6)
        self.gain_slider.setTickPosition(QSlider.TicksBelow)
        self.gain_slider.setTickInterval(6)
        self.gain_slider.setToolTip("input gain, in dB")
        self.gain_label = QLabel(minimumWidth=70)
        self.bypass_check = QCheckBox("&Bypass")
        self.bypass_check.setToolTip(param("bypass").help)
        g = QGridLayout(self)
        g.addWidget(buddy_label("&Dry/wet", self.dry_wet_slider), 0, 0)
        g.addWidget(self.dry_wet_slider, 0, 1)
        g.addWidget(self.dry_wet_label, 0, 2)
        g.addWidget(buddy_label("Input ga&in", self.gain_slider), 1, 0)
        g.addWidget(self.gain_slider, 1, 1)
        g.addWidget(self.gain_label, 1, 2)
        g.addWidget(self.bypass_check, 2, 1)
        g.setColumnStretch(1, 1)
        self.show(dict(dry_wet=mix.default, input_gain=param("input_gain").default))

    def show(self, values: dict) -> None:
        """Display those of these control values that this group shows, without announcing them."""
        if "dry_wet" in values:
            with QSignalBlocker(self.dry_wet_slider):
                self.dry_wet_slider.setValue(int(round(100 * values["dry_wet"])))
            self.dry_wet_label.setText(f"{100 * values['dry_wet']:.0f} % wet")
        if "input_gain" in values:
            db = gain_to_db(values["input_gain"])
            with QSignalBlocker(self.gain_slider):
                self.gain_slider.setValue(db)
            self.gain_label.setText(f"{db:+d} dB")
        if "bypass" in values:
            with QSignalBlocker(self.bypass_check):
                self.bypass_check.setChecked(values["bypass"])


class RenderGroup(QGroupBox):
    WIDGETS = ("render_mode_box", "render_button", "render_progress")

    def __init__(self):
        super().__init__("Render a file")
        self.render_mode_box = QComboBox()
        self.render_mode_box.addItem("as live (streaming)", "as-live")
        self.render_mode_box.addItem("offline (whole file)", "offline")
        self.render_button = QPushButton("&Render file…")
        self.render_progress = QProgressBar(minimum=0, maximum=100, value=0)
        self.render_progress.setFormat("%p%")
        h = QHBoxLayout(self)
        h.addWidget(buddy_label("Mo&de", self.render_mode_box))
        h.addWidget(self.render_mode_box)
        h.addWidget(self.render_button)
        h.addWidget(self.render_progress, 1)

    def show_progress(self, fraction: float) -> None:
        self.render_progress.setValue(int(round(100 * min(1.0, max(0.0, fraction)))))
