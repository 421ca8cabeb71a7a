"""Instrument corpus: Bach chorale voices rendered per instrument with FluidSynth, or a user's recordings.

Every voice of a chorale is a melody; it is moved by octaves into the instrument's comfortable range (as
CocoChorales did) and played with varied tempo, velocity, CC11 swells and CC1 vibrato where idiomatic.
Splits are by chorale, so no chorale is in two splits. Layout:

    OUT/<instrument>/<split>/<item>.flac   and   OUT/manifest.jsonl (one JSON line per file)

    python -m train.corpus render --out data/corpus --instruments violin,flute --per-split 40,5,5
    python -m train.corpus import --out data/corpus --instrument my_sax recordings/sax/
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.audio import AudioError, list_audio_files, load_audio, write_audio_atomic
from core.instruments import INSTRUMENTS, Instrument, get_instrument
from core.io import atomic_output

SAMPLE_RATE = 24_000
SOUNDFONT_CANDIDATES = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2")
SPLITS = ("train", "valid", "test")
INSTALL_HINT = "install them with: sudo apt-get install fluidsynth fluid-soundfont-gm"


class CorpusError(RuntimeError):
    pass


@dataclass
class Note:
    pitch: int
    onset: float  # quarter notes
    duration: float


# ---------------------------------------------------------------- chorales and splits
def chorale_paths() -> list[Path]:
    """The Bach chorales bundled with music21, one file per chorale (a few come as both .krn and .mxl)."""
    from music21 import corpus

    by_id = {chorale_id(p): p for p in sorted(Path(p) for p in corpus.getComposer("bach"))}  # .mxl sorts last
    return sorted(by_id.values())


def chorale_id(path: Path) -> str:
    return path.stem.replace(".", "_")


def split_chorales(ids: list[str], seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> dict[str, str]:
    """chorale id → split; a seeded shuffle of the sorted ids, cut by `fractions`."""
    order = sorted(ids)
    np.random.default_rng(seed).shuffle(order)
    n_train = int(round(fractions[0] * len(order)))
    n_valid = int(round(fractions[1] * len(order)))
    return {c: ("train" if i < n_train else "valid" if i < n_train + n_valid else "test") for i, c in enumerate(order)}


def chorale_voices(path: Path) -> list[list[Note]]:
    """The melodies of a chorale, one per part, ties merged (chords keep their top note)."""
    from music21 import converter

    score = converter.parse(str(path))
    voices = []
    for part in score.parts:
        notes = []
        for n in part.stripTies().flatten().notes:
            p = max(n.pitches, key=lambda q: q.midi).midi
            notes.append(Note(int(p), float(n.offset), float(n.quarterLength)))
        if len(notes) >= 8:
            voices.append(notes)
    return voices


def fit_to_range(notes: list[Note], inst: Instrument) -> list[Note]:
    """Octave shift that puts most notes in range (ties: median nearest the centre), then fold stragglers."""
    pitches = np.array([n.pitch for n in notes])

    def score(k):
        p = pitches + 12 * k
        return (np.sum((p < inst.low) | (p > inst.high)), abs(np.median(p) - inst.centre))

    k = min(range(-4, 5), key=score)
    out = []
    for n in notes:
        p = n.pitch + 12 * k
        while p < inst.low:
            p += 12
        while p > inst.high:
            p -= 12
        out.append(Note(p, n.onset, n.duration))
    return out


# ---------------------------------------------------------------- performance → MIDI
def performance_midi(notes: list[Note], inst: Instrument, rng: np.random.Generator, qpm: float):
    """A mido MidiFile that plays `notes` with phrasing: velocity arcs, CC11 swells, CC1 vibrato."""
    import mido

    tpq = 480
    mid = mido.MidiFile(ticks_per_beat=tpq)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm), time=0))
    tr.append(mido.Message("program_change", program=inst.program, channel=0, time=0))
    tr.append(mido.Message("control_change", control=7, value=100, channel=0, time=0))
    events = []  # (tick, order, message)
    base_vel = rng.uniform(60, 100)
    phrase = rng.uniform(6, 14)  # quarters per dynamic arc
    for n in notes:
        on = int(round(n.onset * tpq))
        length = max(int(round(n.duration * tpq * rng.uniform(0.88, 0.98))), tpq // 8)
        arc = np.sin(np.pi * ((n.onset % phrase) / phrase))
        vel = int(np.clip(base_vel + 18 * arc + rng.normal(0, 6), 35, 124))
        events.append((on, 1, mido.Message("note_on", note=n.pitch, velocity=vel, channel=0)))
        events.append((on + length, 0, mido.Message("note_off", note=n.pitch, velocity=0, channel=0)))
        if inst.sustained_swell:  # CC11 expression: rise then relax across the note
            depth = rng.uniform(10, 35) if n.duration >= 1 else rng.uniform(0, 10)
            for j in range(6):
                t = on + int(length * j / 6)
                val = int(np.clip(127 - depth + depth * np.sin(np.pi * j / 5), 0, 127))
                events.append((t, 2, mido.Message("control_change", control=11, value=val, channel=0)))
        if inst.vibrato:  # delayed vibrato on held notes
            amount = int(rng.uniform(20, 70)) if n.duration >= 1 else 0
            events.append((on, 2, mido.Message("control_change", control=1, value=0, channel=0)))
            if amount:
                events.append((on + length // 3, 2, mido.Message("control_change", control=1, value=amount, channel=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    now = 0
    for tick, _, msg in events:
        tr.append(msg.copy(time=tick - now))
        now = tick
    return mid


# ---------------------------------------------------------------- rendering
def find_soundfont(explicit: str | None = None) -> Path:
    if shutil.which("fluidsynth") is None:
        raise CorpusError(f"FluidSynth is not installed; {INSTALL_HINT}")
    for c in ([explicit] if explicit else []) + list(SOUNDFONT_CANDIDATES):
        if c and Path(c).is_file():
            return Path(c)
    raise CorpusError(f"the FluidR3 GM soundfont was not found ({', '.join(SOUNDFONT_CANDIDATES)}); {INSTALL_HINT}")


def render_midi(mid, soundfont: Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """FluidSynth (reverb and chorus off: a dry, close-miked instrument) → mono float32 at sr."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        mpath, wpath = Path(tmp) / "x.mid", Path(tmp) / "x.wav"
        mid.save(str(mpath))
        cmd = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", str(sr), "-T", "wav",
               "-F", str(wpath), str(soundfont), str(mpath)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not wpath.is_file():
            raise CorpusError(f"fluidsynth failed: {res.stderr.strip()[-400:]}")
        x, file_sr = sf.read(str(wpath), dtype="float32", always_2d=True)
    assert file_sr == sr, (file_sr, sr)
    x = x.mean(axis=1)
    nz = np.flatnonzero(np.abs(x) > 1e-4)
    return x[: nz[-1] + sr // 4] if nz.size else x


def render_item(job: dict) -> dict:
    """Render one (chorale, voice, instrument) job; returns its manifest record."""
    inst = get_instrument(job["instrument"])
    rng = np.random.default_rng(job["seed"])
    voices = chorale_voices(Path(job["path"]))
    notes = fit_to_range(voices[job["voice"] % len(voices)], inst)
    qpm = float(rng.uniform(66, 112))
    audio = render_midi(performance_midi(notes, inst, rng, qpm), Path(job["soundfont"]))
    peak = np.max(np.abs(audio)) + 1e-9
    audio = audio * (10 ** (rng.uniform(-12, -3) / 20) / peak)  # varied recording level, never clipping
    out = Path(job["out"])
    write_audio_atomic(out, audio, SAMPLE_RATE, subtype="PCM_16")
    pitches = [n.pitch for n in notes]
    return dict(path=str(out.relative_to(job["root"])), instrument=inst.name, split=job["split"],
                chorale=job["chorale"], voice=job["voice"], qpm=round(qpm, 2), seconds=round(len(audio) / SAMPLE_RATE, 3),
                pitch_min=int(min(pitches)), pitch_max=int(max(pitches)), source="fluidsynth")


def plan_render(out: Path, instruments: list[str], per_split: tuple[int, int, int], voices_per_chorale: int,
                seed: int, soundfont: Path) -> list[dict]:
    paths = chorale_paths()
    ids = {chorale_id(p): p for p in paths}
    splits = split_chorales(list(ids), seed)
    jobs = []
    for k, name in enumerate(instruments):
        rng = np.random.default_rng([seed, k])
        for split, n in zip(SPLITS, per_split):
            pool = sorted(c for c, s in splits.items() if s == split)
            chosen = rng.permutation(pool)[: n] if n >= 0 else pool
            for c in chosen:
                for v in rng.permutation(4)[:voices_per_chorale]:
                    jobs.append(dict(path=str(ids[c]), chorale=c, voice=int(v), instrument=name, split=split,
                                     seed=[seed, k, int(v), int(hashlib.md5(c.encode()).hexdigest()[:8], 16)],
                                     soundfont=str(soundfont), root=str(out),
                                     out=str(out / name / split / f"{c}_v{int(v)}.flac")))
    return jobs


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


def render_corpus(out: Path, instruments: list[str], per_split=(40, 5, 5), voices_per_chorale: int = 1,
                  seed: int = 0, workers: int = 2, soundfont: str | None = None) -> list[dict]:
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    for name in instruments:
        get_instrument(name)
    sf2 = find_soundfont(soundfont)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [j for j in plan_render(out, instruments, per_split, voices_per_chorale, seed, sf2)]
    records = []
    with ProcessPoolExecutor(max_workers=workers) as ex:
        for rec in tqdm(ex.map(render_item, jobs, chunksize=4), total=len(jobs), desc="rendering", unit="melody"):
            records.append(rec)
    write_manifest(out, records)
    return records


# ---------------------------------------------------------------- user recordings
def import_folder(out: Path, instrument: str, folder: Path, seed: int = 0) -> list[dict]:
    """Import a user's WAV/FLAC folder as a new instrument: 24 kHz mono FLAC, split by file (80/10/10)."""
    from tqdm import tqdm

    if not instrument.replace("_", "").isalnum():
        raise CorpusError(f"instrument name {instrument!r}: use letters, digits and underscores")
    files = list_audio_files(folder)
    if not files:
        raise CorpusError(f"{folder}: no audio files (.wav, .flac, .ogg, .aiff) found")
    splits = split_chorales([str(f.relative_to(folder)) for f in files], seed)
    if len(files) >= 3:  # every split gets at least one file
        keys = sorted(splits)
        for s in ("valid", "test"):
            if s not in splits.values():
                splits[next(k for k in keys if list(splits.values()).count(splits[k]) > 1 and splits[k] == "train")] = s
    records, bad = [], []
    for f in tqdm(files, desc=f"importing {instrument}", unit="file"):
        rel = str(f.relative_to(folder))
        try:
            x = load_audio(f, SAMPLE_RATE)
        except AudioError as e:
            bad.append(str(e))
            continue
        name = rel.replace("/", "_").rsplit(".", 1)[0] + ".flac"
        dest = out / instrument / splits[rel] / name
        write_audio_atomic(dest, x, SAMPLE_RATE, subtype="PCM_16")
        records.append(dict(path=str(dest.relative_to(out)), instrument=instrument, split=splits[rel], chorale=rel,
                            voice=0, seconds=round(len(x) / SAMPLE_RATE, 3), source=str(f)))
    if not records:
        raise CorpusError(f"{folder}: none of the {len(files)} audio files could be read:\n  " + "\n  ".join(bad))
    for msg in bad:
        print(f"skipped: {msg}", file=sys.stderr)
    write_manifest(out, records)
    return records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.corpus", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="render Bach chorale voices per instrument with FluidSynth")
    r.add_argument("--out", type=Path, default=Path("data/corpus"))
    r.add_argument("--instruments", default=",".join(INSTRUMENTS), help="comma-separated names")
    r.add_argument("--per-split", default="40,5,5", help="chorales per instrument for train,valid,test (-1: all)")
    r.add_argument("--voices", type=int, default=1, help="voices rendered per chosen chorale (1-4)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--soundfont", default=None)
    i = sub.add_parser("import", help="import a folder of recordings as an instrument")
    i.add_argument("--out", type=Path, default=Path("data/corpus"))
    i.add_argument("--instrument", required=True)
    i.add_argument("folder", type=Path)
    sub.add_parser("instruments", help="list the instruments the renderer knows")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "render":
            per = tuple(int(v) for v in a.per_split.split(","))
            if len(per) != 3:
                raise CorpusError("--per-split takes three numbers: train,valid,test")
            recs = render_corpus(a.out, [s.strip() for s in a.instruments.split(",") if s.strip()], per,
                                 a.voices, a.seed, a.workers, a.soundfont)
            print(f"rendered {len(recs)} melodies, {sum(r['seconds'] for r in recs) / 60:.1f} min → {a.out}")
        elif a.cmd == "import":
            recs = import_folder(a.out, a.instrument, a.folder)
            print(f"imported {len(recs)} files, {sum(r['seconds'] for r in recs) / 60:.1f} min → {a.out}/{a.instrument}")
        else:
            for inst in INSTRUMENTS.values():
                print(f"{inst.name:12s} GM {inst.program:3d}  MIDI {inst.low}-{inst.high}")
    except (CorpusError, AudioError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
