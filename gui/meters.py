"""A horizontal level meter in dBFS: RMS bar, peak-hold marker and clip light, painted with QPainter."""
from __future__ import annotations

import math
import time

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


def to_db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 1e-7 else -140.0


class LevelMeter(QWidget):
    """setLevels(peak, rms) with linear amplitudes (1.0 = 0 dBFS); the widget smooths, holds and paints.

    The bar shows the RMS level (falls at `fall_db_s`), a thin line the peak held for `hold_s`, and the box at
    the right end lights red for `clip_hold_s` after a peak reached 0 dBFS.
    """

    def __init__(self, parent=None, floor_db: float = -60.0, hold_s: float = 1.5, fall_db_s: float = 24.0,
                 clip_hold_s: float = 2.0):
        super().__init__(parent)
        self.floor_db = floor_db
        self.hold_s, self.fall_db_s, self.clip_hold_s = hold_s, fall_db_s, clip_hold_s
        self.rms_db = self.peak_db = self.hold_db = floor_db
        self._hold_t = self._clip_t = -1e9
        self._t = time.monotonic()
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMinimumWidth(120)
        self.setFocusPolicy(Qt.NoFocus)
        self.setAccessibleDescription("level meter in dBFS")

    def sizeHint(self) -> QSize:
        return QSize(260, 30)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, 26)

    # ------------------------------------------------------------------ data
    def setLevels(self, peak: float, rms: float | None = None) -> None:
        now = time.monotonic()
        dt, self._t = max(0.0, now - self._t), now
        peak_db = max(self.floor_db, to_db(abs(peak)))
        rms_db = max(self.floor_db, to_db(abs(rms if rms is not None else peak)))
        self.rms_db = max(rms_db, self.rms_db - self.fall_db_s * dt)  # fast attack, slow release
        self.peak_db = max(peak_db, self.peak_db - self.fall_db_s * dt)
        if peak_db >= self.hold_db or now - self._hold_t > self.hold_s:
            self.hold_db, self._hold_t = peak_db, now
        if abs(peak) >= 0.999:
            self._clip_t = now
        self.setToolTip(f"RMS {self.rms_db:.1f} dBFS, peak {self.hold_db:.1f} dBFS")
        self.update()

    def reset(self) -> None:
        self.rms_db = self.peak_db = self.hold_db = self.floor_db
        self._clip_t = -1e9
        self.update()

    @property
    def clipping(self) -> bool:
        return time.monotonic() - self._clip_t < self.clip_hold_s

    # ------------------------------------------------------------------ painting
    def _x(self, db: float, left: float, width: float) -> float:
        return left + width * (min(0.0, max(self.floor_db, db)) - self.floor_db) / -self.floor_db

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, False)
        pal = self.palette()
        w, h = self.width(), self.height()
        clip_w = 12
        bar_h = max(8, h - 13)
        bar = QRectF(0.5, 0.5, w - clip_w - 4, bar_h)
        # trough
        p.setPen(QPen(pal.mid().color()))
        p.setBrush(QColor(24, 26, 30))
        p.drawRect(bar)
        inner = bar.adjusted(1, 1, -1, -1)
        # green → yellow (−18 dB) → red (−6 dB) across the scale; the bar reveals it up to the RMS level
        grad = QLinearGradient(inner.left(), 0, inner.right(), 0)
        f = lambda db: (db - self.floor_db) / -self.floor_db  # noqa: E731
        grad.setColorAt(0.0, QColor(30, 160, 70))
        grad.setColorAt(f(-18.0), QColor(70, 200, 80))
        grad.setColorAt(min(1.0, f(-18.0) + 0.02), QColor(225, 200, 40))
        grad.setColorAt(f(-6.0), QColor(235, 170, 30))
        grad.setColorAt(min(1.0, f(-6.0) + 0.02), QColor(220, 50, 40))
        grad.setColorAt(1.0, QColor(220, 50, 40))
        x_rms = self._x(self.rms_db, inner.left(), inner.width())
        if x_rms > inner.left():
            p.fillRect(QRectF(inner.left(), inner.top(), x_rms - inner.left(), inner.height()), grad)
        # peak (thinner bar inside) and held peak line
        x_pk = self._x(self.peak_db, inner.left(), inner.width())
        if x_pk > x_rms:
            band = inner.adjusted(0, inner.height() * 0.3, 0, -inner.height() * 0.3)
            p.setOpacity(0.55)
            p.fillRect(QRectF(x_rms, band.top(), x_pk - x_rms, band.height()), grad)
            p.setOpacity(1.0)
        if self.hold_db > self.floor_db:
            x_h = self._x(self.hold_db, inner.left(), inner.width())
            p.setPen(QPen(QColor(245, 245, 245), 2))
            p.drawLine(int(x_h), int(inner.top()), int(x_h), int(inner.bottom()))
        # clip light
        clip = QRectF(w - clip_w - 0.5, 0.5, clip_w, bar_h)
        p.setPen(QPen(pal.mid().color()))
        p.setBrush(QColor(230, 40, 40) if self.clipping else QColor(60, 30, 30))
        p.drawRect(clip)
        # scale
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.75))
        p.setFont(font)
        p.setPen(QPen(pal.windowText().color()))
        step = 6 if inner.width() > 300 else 12
        db = 0
        while db >= self.floor_db:
            x = self._x(db, inner.left(), inner.width())
            p.drawLine(int(x), int(bar.bottom()) + 1, int(x), int(bar.bottom()) + 3)
            text = str(db)
            tw = p.fontMetrics().horizontalAdvance(text)
            tx = min(max(0, x - tw / 2), w - clip_w - 4 - tw)
            p.drawText(int(tx), h - 1, text)
            db -= step
        p.end()
