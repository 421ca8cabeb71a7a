"""The effect's parameters, declared once (as the Neutone SDK declares a model's): name, type, range, default,
whether it changes while playing, unit and help.

Everything else reads this table: presets validate their fields with it (`check`), the command lines build
their options from it (`add_options`), the engine accepts live changes by it (`LIVE`), the panel sizes its
widgets and stores its settings by it.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from core.pitchshift import FOLD_HALF_WIDTH
from core.sampling import LOCAL_SPAN


class ParamError(ValueError):
    """A parameter value that the table refuses (wrong type or outside its range)."""


@dataclass(frozen=True)
class Param:
    name: str
    type: type  # str, int, float or bool
    default: object
    low: float | None = None
    high: float | None = None
    live: bool = True  # may change while audio plays (rides the next window's crossfade)
    in_preset: bool = True  # stored in preset files
    unit: str = ""
    help: str = ""
    choices: tuple[str, ...] = ()  # the allowed values of a str parameter (empty: any non-empty string)

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value, where: str = "") -> object:
        """The value as this parameter's type; ParamError naming the field when it is not one or out of range."""
        at = f"{where}: " if where else ""
        kind = {int: "an integer", float: "a number", bool: "true or false", str: "a non-empty string"}[self.type]
        if self.type is bool:
            if not isinstance(value, bool):
                raise ParamError(f"{at}field '{self.name}' must be {kind}, got {value!r}")
            return value
        if self.type is str:
            if self.choices and value not in self.choices:
                raise ParamError(f"{at}field '{self.name}' must be one of {', '.join(self.choices)}, got {value!r}")
            if not isinstance(value, str) or not value:
                raise ParamError(f"{at}field '{self.name}' must be {kind}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                self.type is int and not float(value).is_integer()):
            raise ParamError(f"{at}field '{self.name}' must be {kind}, got {value!r}")
        if not self.low <= value <= self.high:
            raise ParamError(f"{at}field '{self.name}' = {value} is outside [{self.low:g}, {self.high:g}]")
        return self.type(value)

    def parse(self, text: str):
        """argparse `type=`: the text as a checked value (argparse turns ParamError into a usage error)."""
        try:
            value = self.type(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if self.type is int else 'a number'}")
        try:
            return self.check(value)
        except ParamError as e:
            raise argparse.ArgumentTypeError(str(e).replace(f"field '{self.name}' = ", "")) from None


PARAMS: tuple[Param, ...] = (
    Param("source", str, None, help="instrument played into the effect"),
    Param("target", str, None, help="instrument heard out of it"),
    Param("sigma_max", float, 5.0, 0.01, 500.0,
          help="how far the bridge goes: low keeps the melody, high gives more of the target's timbre"),
    Param("steps", int, 4, 1, 64,
          help="solver steps per leg of the bridge (per step and hop: Euler runs the denoisers twice, Heun 4 times)"),
    Param("solver", str, "euler", choices=("euler", "heun"),
          help="ODE solver of both legs (which is closer to the converged bridge at equal cost depends on σmax: "
               "python -m evaluation.solver)"),
    Param("prior", str, "matched", choices=("matched", "transport", "instance", "local", "gaussian"),
          help="where the legs meet at σmax: matched moves the source's per-channel mean/std there onto the "
               "target's (exact for Gaussian instruments at any σmax); transport also the channels' "
               "correlations (the least-displacement map between the two covariances); instance gives each "
               "channel of the window being bridged the target's mean/std in place of its own over time (what "
               "the window's statistics say of the source is replaced, its course kept); local does so for each "
               f"frame with the statistics of the {LOCAL_SPAN} frames centred on it, as far as the window reaches (a "
               "live window's newest frames see mostly their past); gaussian takes both as N(0, σmax²), as the "
               "paper's bridge does, right only as σmax grows"),
    Param("transpose", int, 0, -24, 24, live=False, unit="semitones",
          help="the wet path's input is shifted by this many semitones before the encoder (±12: an octave), so the "
               "melody lands in the register the target's model learned; the dry signal stays as played. Non-zero "
               "adds the shifter's 43 ms to the latency"),
    Param("fold_centre", int, 0, 0, 127, live=False, unit="MIDI note",
          help=f"non-zero: the wet path's input also moves by octaves, as the melody needs, to stay within "
               f"{FOLD_HALF_WIDTH} semitones of this note (the register the target's model plays in; each frame's "
               "pitch read by YIN); a move holds until a note leaves that register again. 0: off. Adds the "
               "shifter's 43 ms to the latency"),
    Param("dry_wet", float, 1.0, 0.0, 1.0, help="mix, 0 dry … 1 wet"),
    Param("sigma_min", float, 1e-3, 1e-5, 0.5, help="where both legs of the bridge start and end"),
    Param("rho", float, 7.0, 1.0, 20.0, help="Karras schedule curvature (steps crowd near σmin as ρ grows)"),
    Param("input_gain", float, 1.0, 0.0, 16.0, in_preset=False, help="linear input gain"),
    Param("bypass", bool, False, in_preset=False, help="dry signal through the same delay (no model in the path)"),
    Param("window", int, 32, 4, 1024, live=False, unit="frames", help="latent frames the denoiser sees per hop"),
    Param("hop", int, 4, 1, 512, live=False, unit="frames", help="new latent frames per engine hop"),
    Param("crossfade", int, 2, 0, 512, live=False, unit="frames",
          help="frames crossfaded between consecutive windows"),
)
BY_NAME = {p.name: p for p in PARAMS}
LIVE = tuple(p.name for p in PARAMS if p.live)
# what a player turns while playing (the command line's overrides, the panel's controls); σmin and ρ stay in presets
PLAYER_CONTROLS = ("source", "target", "sigma_max", "steps", "transpose", "fold_centre", "dry_wet", "input_gain",
                   "bypass")


def param(name: str) -> Param:
    return BY_NAME[name]


def check_values(values: dict, where: str = "") -> dict:
    """Every known key checked and converted (unknown keys: ParamError)."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise ParamError(f"{where + ': ' if where else ''}unknown parameter(s) {', '.join(unknown)}")
    return {k: BY_NAME[k].check(v, where) for k, v in values.items()}


def add_options(ap: argparse.ArgumentParser, names) -> None:
    """One option per named parameter, typed and range-checked from the table. Each defaults to None, so what is
    not given keeps the preset's value (`given` collects the rest)."""
    for name in names:
        p = BY_NAME[name]
        what = f"{'override the preset: ' if p.in_preset else ''}{p.help}"
        if p.type is bool:
            ap.add_argument(p.option, action="store_true", default=None, help=what)
        elif p.type is str:
            ap.add_argument(p.option, default=None, choices=p.choices or None, help=what)
        else:
            ap.add_argument(p.option, type=p.parse, default=None,
                            help=f"{what} [{p.low:g}, {p.high:g}]" + (f" ({p.unit})" if p.unit else ""))


def given(args: argparse.Namespace, names) -> dict:
    """The named parameters the user set on the command line (override options left at None are skipped)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
