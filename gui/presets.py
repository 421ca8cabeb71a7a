"""Preset files for the panel, through live.preset: the folder's presets listed in the picker, one chosen or
loaded from a file, the controls saved as a new one. A loaded preset is announced with `chosen`; the panel
shows it and sends it to the engine. What a preset's bundle offers is read through live.bundle."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from gui.sections import PresetGroup
from gui.state import PanelState
from live.bundle import read_bundle_json
from live.preset import DEFAULT_PRESET, Preset, PresetError, load_preset, scan_presets



def bundle_facts(preset: Preset) -> tuple[list[str], dict]:
    """The instruments and codec facts (hop_length, sample_rate, ...) of a preset's bundle, without opening any
    model; BundleError (or OSError) says what is wrong with it."""
    meta = read_bundle_json(preset.bundle_path())
    return sorted(meta["instruments"]), meta["codec"]


def moved_to(preset: Preset, path: Path, name: str) -> Preset:
    """The preset renamed, with its bundle path relative to a file at `path` (so the saved file finds it)."""
    bundle = preset.bundle_path()
    try:
        rel = Path(os.path.relpath(bundle, path.resolve().parent))
    except ValueError:  # another drive (Windows)
        rel = bundle
    return dataclasses.replace(preset, name=name, bundle=str(rel).replace("\\", "/"))


class PresetFiles(QObject):
    chosen = Signal(object, bool)  # a loaded Preset, and whether the saved control values win over its own
    message = Signal(str, bool)  # a status-line text and whether it reports an error

    def __init__(self, preset_dir: str | Path, group: PresetGroup, state: PanelState, parent=None):
        super().__init__(parent)
        self.preset_dir, self.group, self.state = Path(preset_dir), group, state
        self.box = group.preset_box

    def refresh(self) -> None:
        """List the presets in preset_dir (invalid ones are skipped and named in the status line)."""
        try:
            presets, bad = scan_presets(self.preset_dir)
        except PresetError:  # no such folder: nothing to list, said below
            presets, bad = [], []
        self.group.show_presets(presets)
        if bad:
            self.message.emit("Skipped invalid preset(s): " + "; ".join(str(e) for e in bad), True)
        elif not presets:
            self.message.emit(f"No presets in {self.preset_dir}; load one with Load… (Ctrl+O).", True)

    def open_saved(self, saved: str) -> None:
        """At start: the preset file the settings name (with its saved control values), else the default one."""
        if saved and Path(saved).is_file():
            i = self.box.findData(saved)
            if i < 0:
                self.load(saved, restore_controls=True)
            else:
                self.group.select(i)
                self.choose(i, restore_controls=True)
        elif self.box.count():
            i = max(0, self.box.findText(DEFAULT_PRESET))
            self.group.select(i)
            self.choose(i)

    def choose(self, i: int, restore_controls: bool = False) -> None:
        """The picker's entry i was selected: load its file."""
        path = self.box.itemData(i)
        if not path:
            return
        try:
            preset = load_preset(path, self.preset_dir)
        except PresetError as e:
            self.message.emit(str(e), True)
            return
        self.chosen.emit(preset, restore_controls)

    def load(self, path: str | Path, restore_controls: bool = False) -> Preset | None:
        """Load a preset file (adds it to the picker and selects it); None and a status message on error."""
        try:
            preset = load_preset(Path(path), self.preset_dir)
        except PresetError as e:
            self.message.emit(str(e), True)
            return None
        self.group.select(self.group.entry(str(Path(path).resolve()), preset.name), preset.name)
        self.chosen.emit(preset, restore_controls)
        return preset

    def save(self, path: str | Path, name: str | None = None) -> Path | None:
        """Save the controls as a preset (name: the file's stem unless given) and load it."""
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".json")
        preset = self.state.current_preset()
        if preset is None:
            self.message.emit("Nothing to save: no preset loaded.", True)
            return None
        preset = moved_to(preset, path, name or path.stem)
        try:
            out = preset.save(path)
        except (PresetError, OSError) as e:
            self.message.emit(f"Could not save {path}: {e}", True)
            return None
        if out.resolve().parent == self.preset_dir.resolve():
            self.refresh()
        self.load(out)
        self.message.emit(f"Saved preset {preset.name!r} to {out}.", False)
        return out

    def load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.parent(), "Load preset", str(self.preset_dir), "Presets (*.json)")
        if path:
            self.load(path)

    def save_dialog(self) -> None:
        preset = self.state.preset
        start = str(self.preset_dir / f"{preset.name if preset else 'preset'}.json")
        path, _ = QFileDialog.getSaveFileName(self.parent(), "Save preset", start, "Presets (*.json)")
        if path:
            self.save(path)
