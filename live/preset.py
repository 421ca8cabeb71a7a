"""Presets: one JSON file per instrument pair, validated field by field.

    {"name": "violin-to-flute", "source": "violin", "target": "flute", "sigma_max": 5.0, "steps": 4,
     "solver": "euler", "prior": "matched", "transpose": 0, "window": 32, "hop": 4, "crossfade": 2, "dry_wet": 1.0,
     "bundle": "../models/bundle"}

Field types, ranges and defaults are the parameter table's (live.params).

`bundle` is relative to the preset file; the denoisers used are <bundle>/denoiser-<source|target>.onnx.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from core.io import atomic_output
from live.params import PARAMS, ParamError, param

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
DEFAULT_PRESET = "violin-to-flute"  # what the player and the panel pick when none is named and it exists


class PresetError(ParamError):
    pass


def _default(name: str):
    return param(name).default


@dataclass
class Preset:
    """One instrument pair's settings; the numeric fields' types, ranges and defaults come from live.params."""
    name: str
    source: str
    target: str
    sigma_max: float = _default("sigma_max")
    steps: int = _default("steps")
    solver: str = _default("solver")
    prior: str = _default("prior")
    transpose: int = _default("transpose")
    fold_centre: int = _default("fold_centre")
    window: int = _default("window")
    hop: int = _default("hop")
    crossfade: int = _default("crossfade")
    dry_wet: float = _default("dry_wet")
    sigma_min: float = _default("sigma_min")
    rho: float = _default("rho")
    bundle: str = "../models/bundle"
    description: str = ""
    path: Path | None = None  # where it was loaded from (not saved)

    def validate(self, instruments: list[str] | None = None, time_factor: int = 4) -> "Preset":
        where = f"preset {self.name!r}" + (f" ({self.path})" if self.path else "")
        for k in ("name", "bundle"):
            if not isinstance(getattr(self, k), str) or not getattr(self, k):
                raise PresetError(f"{where}: field '{k}' must be a non-empty string")
        try:
            for p in PARAMS:
                if p.in_preset:
                    setattr(self, p.name, p.check(getattr(self, p.name), where))
        except ParamError as e:
            raise PresetError(str(e)) from None
        if self.sigma_min >= self.sigma_max:
            raise PresetError(f"{where}: sigma_min ({self.sigma_min}) must be below sigma_max ({self.sigma_max})")
        if self.window % time_factor:
            raise PresetError(f"{where}: window ({self.window}) must be a multiple of {time_factor}")
        if self.crossfade > self.hop:
            raise PresetError(f"{where}: crossfade ({self.crossfade}) must not exceed hop ({self.hop})")
        if self.hop + self.crossfade > self.window:
            raise PresetError(f"{where}: hop + crossfade ({self.hop} + {self.crossfade}) must fit in window ({self.window})")
        if instruments is not None:
            for k in ("source", "target"):
                if getattr(self, k) not in instruments:
                    raise PresetError(f"{where}: {k} instrument {getattr(self, k)!r} is not in the bundle "
                                      f"(it has {', '.join(instruments)})")
        return self

    @property
    def shifts_pitch(self) -> bool:
        """Whether the wet input goes through the pitch shifter (a transpose or a fold), and so its delay."""
        return bool(self.transpose or self.fold_centre)

    def bundle_path(self) -> Path:
        base = self.path.parent if self.path else PRESET_DIR
        return (base / self.bundle).resolve()

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "path"}

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        self.validate()
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=2))
        self.path = path
        return path


def load_preset(name_or_path: str | os.PathLike, preset_dir: Path = PRESET_DIR) -> Preset:
    """A preset by file path or by name (presets/<name>.json), validated; PresetError says what is wrong."""
    p = Path(name_or_path)
    if not p.suffix:
        p = preset_dir / f"{name_or_path}.json"
    if not p.is_file():
        known = ", ".join(x.stem for x in sorted(preset_dir.glob("*.json")))
        raise PresetError(f"no preset {str(name_or_path)!r} (known: {known or 'none'})")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise PresetError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise PresetError(f"{p}: a preset is a JSON object")
    allowed = {f.name for f in fields(Preset)} - {"path"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise PresetError(f"{p}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    missing = [k for k in ("name", "source", "target", "sigma_max") if k not in data]
    if missing:
        raise PresetError(f"{p}: missing field(s) {', '.join(missing)}")
    if "steps" in data and "solver" not in data:
        data["solver"] = "heun"  # written before presets named their solver: their steps were Heun steps
    # written before presets named their prior: their σmax was chosen for the paper's bridge
    data.setdefault("prior", "gaussian")
    preset = Preset(**data)
    preset.path = p
    return preset.validate()


def update_preset_file(path: str | os.PathLike, **changes) -> Path:
    """Change some fields of a preset file in place (atomically), keeping its other fields and their order; the
    result is validated first, so a bad change never reaches the file."""
    path = Path(path)
    preset = load_preset(path)
    import dataclasses

    dataclasses.replace(preset, **changes).validate()
    data = json.loads(path.read_text())
    data.update(changes)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
    return path


def list_presets(preset_dir: Path = PRESET_DIR) -> list[Preset]:
    """Every preset in the folder; the first bad one raises (see scan_presets to keep going)."""
    good, bad = scan_presets(preset_dir)
    if bad:
        raise bad[0]
    return good


def scan_presets(preset_dir: Path = PRESET_DIR) -> tuple[list[Preset], list[PresetError]]:
    """(the valid presets, one PresetError per bad file); PresetError when the folder does not exist."""
    preset_dir = Path(preset_dir)
    if not preset_dir.is_dir():
        raise PresetError(f"{preset_dir}: no such preset folder")
    good, bad = [], []
    for f in sorted(preset_dir.glob("*.json")):
        try:
            good.append(load_preset(f, preset_dir))
        except PresetError as e:
            bad.append(e)
    return good, bad


def main(argv=None) -> int:
    """python -m live.preset: list the presets and the instruments of their bundles; exit 1 if any is bad."""
    from core.cli import run_main

    return run_main(_main, argv, errors=(PresetError,))


def _main(argv=None) -> int:
    import argparse
    import sys

    from live.bundle import Bundle, BundleError

    ap = argparse.ArgumentParser(prog="python -m live.preset", description="List presets and instruments.")
    ap.add_argument("--preset-dir", type=Path, default=PRESET_DIR)
    a = ap.parse_args(argv)
    presets, bad = scan_presets(a.preset_dir)
    if not presets and not bad:
        raise PresetError(f"{a.preset_dir}: no presets (*.json) in this folder")
    bundles = {}
    for p in presets:
        print(f"{p.name:24s} {p.source:>10s} → {p.target:<10s} σmax {p.sigma_max:<6g} {p.prior:9s} "
              f"{f'{p.transpose:+d} st' if p.transpose else '':6s} "
              f"{f'fold {p.fold_centre}' if p.fold_centre else '':8s} {p.solver} {p.steps} steps  "
              f"window {p.window} hop {p.hop} crossfade {p.crossfade}")
        bundles.setdefault(p.bundle_path(), p)
    broken = 0
    for path in bundles:
        try:
            print(f"\ninstruments in {path}: {', '.join(Bundle(path, provider='cpu', threads=1).instruments)}")
        except BundleError as e:
            broken += 1
            print(f"error: {e}", file=sys.stderr)
    for e in bad:
        print(f"error: {e}", file=sys.stderr)
    if bad or broken:
        print(f"{len(bad)} bad preset(s), {broken} unusable bundle(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
