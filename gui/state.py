"""What the panel's controls show: the loaded preset, its bundle's instruments and the control values, as the
parameter table (live.params) types and checks them. No widgets here; widgets display this state."""
from __future__ import annotations

import dataclasses
import math

from PySide6.QtCore import QObject, Signal

from live.params import PLAYER_CONTROLS, param
from live.preset import Preset

PRESET_CONTROLS = tuple(n for n in PLAYER_CONTROLS if param(n).in_preset)  # the ones a preset sets (and Save stores)


def gain_to_db(gain: float) -> int:
    """A linear input gain in whole dB, as the slider shows it and the settings keep it."""
    return int(round(20.0 * math.log10(max(gain, 1e-6))))


def db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


class PanelState(QObject):
    """The control values, each checked by its parameter; `changed` says which one changed."""

    changed = Signal(str, object)  # a control's name and its new value

    def __init__(self, parent=None):
        super().__init__(parent)
        self.preset: Preset | None = None  # the loaded preset as it is on disk
        self.instruments: list[str] = []  # what the preset's bundle offers
        self.codec: dict = {}  # the bundle's codec facts (hop_length, sample_rate); empty when unreadable
        self.values = {n: param(n).default for n in PLAYER_CONTROLS}

    def __getitem__(self, name: str):
        return self.values[name]

    def set(self, name: str, value) -> bool:
        """Change one control (ParamError when the table refuses the value); False when it had that value."""
        value = param(name).check(value, "panel")
        if self.values[name] == value:
            return False
        self.values[name] = value
        self.changed.emit(name, value)
        return True

    def load(self, preset: Preset, instruments: list[str], codec: dict, values: dict) -> Preset | None:
        """Replace everything at once (no `changed`): a preset, its bundle's facts and the control values it
        starts with. An instrument the bundle lacks falls back to the preset's, then to the bundle's first.
        Returns the preset loaded before."""
        old, self.preset = self.preset, preset
        self.instruments, self.codec = list(instruments), dict(codec)
        values = dict(values)
        for k in ("source", "target"):
            if values[k] not in self.instruments:
                values[k] = getattr(preset, k)
            if values[k] not in self.instruments and self.instruments:
                values[k] = self.instruments[0]  # what the instrument picker shows then
        self.values.update({k: param(k).check(v, "panel") for k, v in values.items()})
        return old

    def live_values(self) -> dict:
        """Every control an engine can change while it plays, as engine.set takes them (not transpose: it sets
        the stream's delay, so a new engine plays it)."""
        return {k: v for k, v in self.values.items() if param(k).live}

    def engine_values(self) -> dict:
        """The controls plus the loaded preset's solver, prior and schedule (not controls, but live in the engine)."""
        p = self.preset
        return self.live_values() | (
            dict(solver=p.solver, prior=p.prior, sigma_min=p.sigma_min, rho=p.rho) if p else {})

    def current_preset(self) -> Preset | None:
        """The loaded preset with the controls' values (what Start, Save and Render use)."""
        if self.preset is None:
            return None
        return dataclasses.replace(self.preset, **{k: self.values[k] for k in PRESET_CONTROLS})

    def frame_ms(self) -> float | None:
        """One latent frame of the bundle's codec in ms; None when the bundle could not be read."""
        c = self.codec
        if not (c.get("hop_length") and c.get("sample_rate")):
            return None
        return 1000.0 * c["hop_length"] / c["sample_rate"]

    def algorithmic_latency_ms(self) -> float | None:
        """One hop plus the crossfade look-ahead in ms, and a transposing or folding preset's shifter frame: the
        engine's algorithmic latency, known before it is built."""
        from core.pitchshift import FRAME

        ms = self.frame_ms()
        if self.preset is None or ms is None:
            return None
        shifter = 1000.0 * FRAME / self.codec["sample_rate"] if self.current_preset().shifts_pitch else 0.0
        return (self.preset.hop + self.preset.crossfade) * ms + shifter
