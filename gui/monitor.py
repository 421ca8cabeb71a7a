"""The panel's Live group: start/stop, level meters and the readouts of the running session or engine."""
from __future__ import annotations

import math

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton

from gui.meters import LevelMeter


def db_text(db: float) -> str:
    return "−∞ dB" if db <= -119 else f"{db:.0f} dB"


class LiveGroup(QGroupBox):
    WIDGETS = ("start_button", "in_meter", "out_meter", "in_db_label", "out_db_label", "latency_label", "rtf_label",
               "cpu_label", "dropouts_label", "provider_label")

    def __init__(self):
        super().__init__("Live")
        self.start_button = QPushButton("&Start")
        self.start_button.setCheckable(True)
        self.start_button.setMinimumHeight(38)
        self.start_button.setToolTip("start / stop live audio (Space, or Ctrl+Return anywhere)")
        font = self.start_button.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.start_button.setFont(font)
        self.in_meter, self.out_meter = LevelMeter(), LevelMeter()
        self.in_meter.setAccessibleName("input level")
        self.out_meter.setAccessibleName("output level")
        self.in_db_label, self.out_db_label = QLabel("−∞ dB", minimumWidth=62), QLabel("−∞ dB", minimumWidth=62)
        self.latency_label, self.rtf_label = QLabel("—"), QLabel("—")
        self.cpu_label, self.dropouts_label = QLabel("—"), QLabel("—")
        self.provider_label = QLabel("—")
        for lab in (self.latency_label, self.rtf_label, self.cpu_label, self.dropouts_label, self.provider_label):
            lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
        g = QGridLayout(self)
        g.addWidget(self.start_button, 0, 0, 2, 1)
        g.addWidget(QLabel("In"), 0, 1)
        g.addWidget(self.in_meter, 0, 2)
        g.addWidget(self.in_db_label, 0, 3)
        g.addWidget(QLabel("Out"), 1, 1)
        g.addWidget(self.out_meter, 1, 2)
        g.addWidget(self.out_db_label, 1, 3)
        g.setColumnStretch(2, 1)
        g.setColumnMinimumWidth(0, 120)
        read = QGridLayout()
        read.setHorizontalSpacing(10)
        for i, (name, lab) in enumerate((("Latency", self.latency_label), ("Real-time factor", self.rtf_label),
                                         ("Audio CPU", self.cpu_label), ("Dropouts", self.dropouts_label),
                                         ("Models on", self.provider_label))):
            cap = QLabel(name + ":")
            cap.setStyleSheet("color: palette(dark);")
            read.addWidget(cap, i // 3, 2 * (i % 3))
            read.addWidget(lab, i // 3, 2 * (i % 3) + 1)
        for col in (1, 3, 5):
            read.setColumnStretch(col, 1)
        g.addLayout(read, 2, 0, 1, 4)

    def show_running(self, on: bool) -> None:
        with QSignalBlocker(self.start_button):
            self.start_button.setChecked(on)
        self.start_button.setText("&Stop" if on else "&Start")
        if not on:
            self.in_meter.reset()
            self.out_meter.reset()

    def show_engine(self, eng) -> None:
        """What an engine is: where its models run and what its latency is made of."""
        self.provider_label.setText(eng.bundle.providers[0].replace("ExecutionProvider", ""))
        split = eng.latency_split_ms()
        self.latency_label.setToolTip(f"engine: {split['algorithmic']:.1f} ms algorithmic + "
                                      f"{split['resamplers']:.1f} ms resamplers + {split['margin']:.1f} ms margin")

    def show_static_latency(self, algorithmic_ms: float, margin_ms: float | None) -> None:
        """The latency known before any engine runs."""
        margin = "margin" if margin_ms is None else f"{margin_ms:.0f} ms margin"
        self.latency_label.setText(f"{algorithmic_ms:.0f} ms algorithmic + {margin}")
        self.latency_label.setToolTip("one hop plus the crossfade look-ahead (and the pitch shifter's frame when the "
                                      "preset transposes), and the compute margin"
                                      + (" (measured when audio starts)" if margin_ms is None else ""))

    def show_session(self, st) -> None:
        """A running session's live.audio.SessionStatus."""
        self.in_meter.setLevels(10 ** (st.in_peak_db / 20), 10 ** (st.in_rms_db / 20))
        self.out_meter.setLevels(10 ** (st.out_peak_db / 20), 10 ** (st.out_rms_db / 20))
        self.in_db_label.setText(db_text(st.in_peak_db))
        self.out_db_label.setText(db_text(st.out_peak_db))
        self.latency_label.setText(f"{st.latency_ms:.0f} ms (engine {st.engine_latency_ms:.0f} + device "
                                   f"{st.device_latency_ms:.0f})")
        self.rtf_label.setText(f"{st.rtf:.2f}")
        self.cpu_label.setText(f"{100 * st.cpu_load:.0f} %")
        self.dropouts_label.setText(f"{st.underruns} under · {st.overruns} over · {st.dry_hops} dry"
                                    + (f" · {st.xruns} xrun" if st.xruns else ""))
        self.dropouts_label.setStyleSheet("color: #c62828;" if st.dropouts > 0 else "")

    def show_stats(self, eng) -> None:
        """An engine's stats while no audio runs (it is fed by hand: tests, screenshots)."""
        es = eng.stats
        self.in_meter.setLevels(es.in_peak, es.in_rms)
        self.out_meter.setLevels(es.out_peak, es.out_rms)
        self.in_db_label.setText(db_text(20 * math.log10(max(es.in_peak, 1e-6))))
        self.out_db_label.setText(db_text(20 * math.log10(max(es.out_peak, 1e-6))))
        self.rtf_label.setText(f"{es.rtf:.2f}" if es.hops else "—")
        self.dropouts_label.setText(f"{es.underruns} under · {es.overruns} over · {es.dry_hops} dry")
        self.latency_label.setText(f"{eng.latency_ms:.0f} ms (engine, no audio)")
