"""The panel's saved settings: a QSettings, written at most every half second, typed on the way back in.

Keys: audio/{input,output,rate,block,margin_ms}, render/{mode,dir}, preset/path, controls/<name> for the
preset's controls, controls/solver (the solver the saved steps were counted in), controls/input_gain_db,
controls/bypass, window/geometry.
"""
from __future__ import annotations

from contextlib import contextmanager

from PySide6.QtCore import QObject, QSettings, QTimer

from gui.state import PRESET_CONTROLS, gain_to_db
from live.params import ParamError, param

ORGANIZATION, APPLICATION = "timbre-bridge", "panel"
SYNC_MS = 500  # a dial turned for a second is one write, not a hundred


class SettingsStore(QObject):
    """Writes go to the QSettings at once and to disk after SYNC_MS; none while `loading()` refills widgets."""

    def __init__(self, settings: QSettings | None = None, parent=None):
        super().__init__(parent)
        self.qsettings = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)
        self._sync_timer = QTimer(self, singleShot=True, interval=SYNC_MS, timeout=self.qsettings.sync)
        self._loading = 0

    @contextmanager
    def loading(self):
        """Widgets refilled inside do not write what they show back."""
        self._loading += 1
        try:
            yield
        finally:
            self._loading -= 1

    def store(self, key: str, value) -> None:
        if self._loading:
            return
        self.qsettings.setValue(key, value)
        self._sync_timer.start()

    def value(self, key: str, default=None, type=None):
        if type is None:
            return self.qsettings.value(key, default)
        return self.qsettings.value(key, default, type=type)

    def audio(self) -> dict:
        """The saved audio choices, as AudioGroup.select takes them."""
        v = self.qsettings.value
        return dict(input=str(v("audio/input", "")), output=str(v("audio/output", "")),
                    rate=int(v("audio/rate", 0, type=int)) or None, block=int(v("audio/block", 256, type=int)),
                    margin_ms=int(v("audio/margin_ms", 0, type=int)))

    # ------------------------------------------------------------------ controls
    def store_control(self, name: str, value) -> None:
        """One control's value; the input gain in dB, as the slider shows it."""
        if name == "input_gain":
            self.store("controls/input_gain_db", gain_to_db(value))
        elif name == "bypass":
            self.store("controls/bypass", bool(value))
        elif name in PRESET_CONTROLS:
            self.store(f"controls/{name}", value)

    def control(self, name: str):
        """A preset control's saved value, as its parameter's type and in its range; None when there is none
        or it is not one (the preset's own value is used then)."""
        raw = self.qsettings.value(f"controls/{name}")
        if raw is None:
            return None
        p = param(name)
        try:
            return p.check(p.type(raw))
        except (TypeError, ValueError, ParamError):
            return None

    def controls(self) -> dict:
        """The saved preset controls that are usable."""
        return {k: v for k in PRESET_CONTROLS if (v := self.control(k)) is not None}

    def input_gain_db(self) -> int:
        return int(self.qsettings.value("controls/input_gain_db", 0, type=int))

    def bypass(self) -> bool:
        return bool(self.qsettings.value("controls/bypass", False, type=bool))

    def preset_path(self) -> str:
        return str(self.qsettings.value("preset/path", ""))

    # ------------------------------------------------------------------ teardown
    def save(self, geometry) -> None:
        """Write the window geometry and everything pending to disk now."""
        self._sync_timer.stop()
        self.qsettings.setValue("window/geometry", geometry)
        self.qsettings.sync()
