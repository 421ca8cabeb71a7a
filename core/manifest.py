"""The corpus manifest: one JSON line per audio file (path, instrument, split, font, …), read by every trainer,
the evaluation and the judge. Numpy-free and torch-free, so any layer may read a corpus."""
from __future__ import annotations

import json
from pathlib import Path

from core.io import atomic_output


class CorpusError(RuntimeError):
    pass


CONFIRM = "confirm"  # more test-pool chorales in the held-out font, for a choice's confirmation on clips it never saw


def confirm_split(i: int) -> str:
    """The i-th confirm split's name (0: 'confirm', then 'confirm2', …): one per choice to confirm."""
    return CONFIRM if i == 0 else f"{CONFIRM}{i + 1}"


def is_confirm_split(split: str) -> bool:
    return split == CONFIRM or (split.startswith(CONFIRM) and split[len(CONFIRM):].isdigit())


def read_manifest(root: Path) -> list[dict]:
    f = Path(root) / "manifest.jsonl"
    if not f.is_file():
        raise CorpusError(f"{root}: no manifest.jsonl; build the corpus first (python -m train.corpus render ...)")
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def write_manifest(root: Path, records: list[dict]) -> None:
    """Merge records into the manifest (keyed by path), atomically."""
    f = Path(root) / "manifest.jsonl"
    old = {r["path"]: r for r in read_manifest(root)} if f.is_file() else {}
    old.update({r["path"]: r for r in records})
    with atomic_output(f) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in sorted(old.values(), key=lambda r: r["path"])))


def split_names(split: str) -> list[str]:
    """'heldout,confirm' → ['heldout', 'confirm']: clips of several splits judged as one set."""
    names = [s.strip() for s in split.split(",") if s.strip()]
    if not names:
        raise CorpusError(f"no split named in {split!r}")
    if len(set(names)) < len(names):
        raise CorpusError(f"{split!r} names a split twice: its clips would count twice")
    return names


def corpus_files(root: Path, split: str, instruments: list[str] | None = None, sort: bool = False
                 ) -> dict[str, list[Path]]:
    """instrument → its files of one split, or of several ('heldout,confirm'), the splits in the order named; each
    in manifest order (a pack's manifest keeps its balanced order, and a trainer's crops follow it), or in path
    order with `sort` (an evaluation's clips)."""
    records = read_manifest(root)
    out: dict[str, list[Path]] = {}
    for name in split_names(split):
        part: dict[str, list[Path]] = {}
        for r in records:
            if r["split"] == name and (instruments is None or r["instrument"] in instruments):
                part.setdefault(r["instrument"], []).append(Path(root) / r["path"])
        for inst, files in part.items():
            out.setdefault(inst, []).extend(sorted(files) if sort else files)
    return out


def split_summary(root: Path, split: str, instruments: list[str] | None = None) -> str:
    """One line saying what a split holds: minutes and fonts per instrument (for run records and model cards)."""
    minutes: dict[str, float] = {}
    fonts: dict[str, set] = {}
    for r in read_manifest(root):
        if r["split"] == split and (instruments is None or r["instrument"] in instruments):
            minutes[r["instrument"]] = minutes.get(r["instrument"], 0.0) + float(r.get("seconds", 0.0)) / 60
            fonts.setdefault(r["instrument"], set()).add(r.get("font") or r.get("source", "?"))
    return "; ".join(f"{name} {minutes[name]:.0f} min ({'+'.join(sorted(fonts[name]))})" for name in sorted(minutes))
