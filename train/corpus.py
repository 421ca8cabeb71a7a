"""Instrument corpus: Bach chorale voices rendered per instrument with FluidSynth, or a user's recordings.

Every voice of a chorale is a melody; it is moved by octaves into the instrument's comfortable range (as
CocoChorales did) and played with varied tempo, velocity, articulation (legato to detached), CC11 swells and
CC1 vibrato where idiomatic. Splits are by chorale, so no chorale is in two splits. Each melody of the train,
valid and test splits is rendered once per training soundfont; the `heldout` split renders the test chorales
with a soundfont no model ever trains on (the "unseen recording" numbers). The `judge` split renders some train
chorales in that font for the evaluation's classifier alone: the judge is the listener, not the subject, and
like a listener it should know what each instrument sounds like in every font; the codec and denoisers only
ever read the `train` split. The `confirm` split (`--confirm N`) renders N more test-pool chorales per
instrument in the held-out font, none of them that instrument's test ones: clips to confirm a choice made while
looking at the `heldout` ones (another instrument's test melodies may be among them); `--confirm N,N` adds
`confirm2`, drawn after it, for a choice made on both. When the test pool is used up, confirm chorales come from
the valid pool's undrawn ones (no model trains on the valid split; its loss is only logged). Layout:

    OUT/<instrument>/<split>/<chorale>_v<voice>_<font>.flac   and   OUT/manifest.jsonl (one JSON line per file)

    python -m train.corpus render --out data/corpus --instruments violin,flute --per-split 40,5,5
    python -m train.corpus import --out data/corpus --instrument my_sax recordings/sax/
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.cli import comma_list, ranged, run_main
from core.audio import AudioError, list_audio_files, load_audio, write_audio_atomic
from core.instruments import INSTRUMENTS, Instrument, get_instrument
from core.manifest import CONFIRM  # noqa: F401 - re-exported
from core.manifest import CorpusError, confirm_split, is_confirm_split, read_manifest, write_manifest

SAMPLE_RATE = 24_000
SPLITS = ("train", "valid", "test")
HELDOUT = "heldout"  # the test chorales, rendered with the held-out soundfont
JUDGE = "judge"  # some train chorales in the held-out font: for the evaluation's judge only, never for a model
INSTALL_HINT = ("install them with: sudo apt-get install fluidsynth fluid-soundfont-gm csound-soundfont "
                "musescore-general-soundfont timgm6mb-soundfont")


@dataclass(frozen=True)
class SoundFont:
    name: str
    paths: tuple[str, ...]  # where Debian's package puts it
    package: str
    licence: str


# Debian's General MIDI soundfonts. TimGM6mb (GPL-2) is the default held-out font: it is only rendered for
# evaluation, never trained on or shipped. It shares samples with sf_GMbank for some instruments, which
# `training_fonts` measures so a training font that duplicates the held-out one is dropped for that instrument.
# MuseScore General (MIT) reuses FluidR3's flute, trumpet and saxophone but brings its own cello, clarinet and
# violin: the instruments that had one training font left once sf_GMbank's were dropped.
SOUNDFONTS: dict[str, SoundFont] = {f.name: f for f in [
    SoundFont("fluidr3", ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2"),
              "fluid-soundfont-gm", "MIT"),
    SoundFont("csound", ("/usr/share/sounds/sf2/sf_GMbank.sf2",), "csound-soundfont", "public domain"),
    SoundFont("musescore", ("/usr/share/sounds/sf3/MuseScore_General_Full.sf3",
                            "/usr/share/sounds/sf3/MuseScore_General.sf3"), "musescore-general-soundfont", "MIT"),
    SoundFont("timgm6mb", ("/usr/share/sounds/sf2/TimGM6mb.sf2",), "timgm6mb-soundfont", "GPL-2"),
]}
TRAIN_FONTS = ("fluidr3", "csound", "musescore")
# Fonts added to the corpus after its held-out split existed render after the held-out and judge melodies, so
# the seeds (tempo, articulation, level) of every earlier render stay as they were.
FONTS_ADDED_LATER = ("musescore",)
HELDOUT_FONT = "timgm6mb"
SHARED_SAMPLES_CORR = 0.85  # spectra of the same probe phrase this alike: the fonts share their samples


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


REGISTERS = ("centre", "spread")


def fit_to_range(notes: list[Note], inst: Instrument, rng: np.random.Generator | None = None) -> list[Note]:
    """Octave shift that puts most notes in range, then fold stragglers. Of the shifts leaving as few notes out as
    the best one does, `rng` None takes the one whose median is nearest the centre (register "centre"), else one
    at random (register "spread": a melody as often low in the range as high, so that a model, and a judge, learn
    the instrument over its whole range, not only round its middle)."""
    pitches = np.array([n.pitch for n in notes])

    outside = {k: int(np.sum((pitches + 12 * k < inst.low) | (pitches + 12 * k > inst.high))) for k in range(-4, 5)}
    fewest = min(outside.values())
    fits = [k for k, n in outside.items() if n == fewest]
    k = (min(fits, key=lambda k: abs(np.median(pitches + 12 * k) - inst.centre)) if rng is None
         else int(rng.choice(fits)))
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
def performance_midi(notes: list[Note], inst: Instrument, rng: np.random.Generator, qpm: float,
                     articulation: tuple[float, float] = (0.88, 0.98)):
    """A mido MidiFile that plays `notes` with phrasing: velocity arcs, CC11 swells, CC1 vibrato; each note
    sounds for a fraction `articulation` (low, high) of its written length."""
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
        length = max(int(round(n.duration * tpq * rng.uniform(*articulation))), tpq // 8)
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
def find_soundfont(name_or_path: str) -> Path:
    """A soundfont by registry name (fluidr3, csound, timgm6mb) or by file path."""
    if shutil.which("fluidsynth") is None:
        raise CorpusError(f"FluidSynth is not installed; {INSTALL_HINT}")
    if name_or_path in SOUNDFONTS:
        font = SOUNDFONTS[name_or_path]
        for c in font.paths:
            if Path(c).is_file():
                return Path(c)
        raise CorpusError(f"soundfont {font.name} was not found ({', '.join(font.paths)}); "
                          f"install it with: sudo apt-get install {font.package}")
    if Path(name_or_path).is_file():
        return Path(name_or_path)
    raise CorpusError(f"soundfont {name_or_path!r}: neither a file nor one of {', '.join(SOUNDFONTS)}")


def font_name(name_or_path: str) -> str:
    return name_or_path if name_or_path in SOUNDFONTS else Path(name_or_path).stem.lower()


def probe_phrase(inst: Instrument, soundfont: Path) -> np.ndarray:
    """Four held notes around the instrument's centre, the same performance in every font."""
    notes = [Note(int(inst.centre) + k, float(2 * i), 2.0) for i, k in enumerate((-5, 0, 4, 7))]
    return render_midi(performance_midi(notes, inst, np.random.default_rng(0), 90.0), soundfont)


def spectral_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of magnitude spectra of two renderings of one phrase (≈1: the same samples)."""
    n = min(len(a), len(b))
    return float(np.corrcoef(np.abs(np.fft.rfft(a[:n])), np.abs(np.fft.rfft(b[:n])))[0, 1])


def render_midi(mid, soundfont: Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """FluidSynth (reverb and chorus off: a dry, close-miked instrument) → mono float32 at sr."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        mpath, wpath = Path(tmp) / "x.mid", Path(tmp) / "x.wav"
        mid.save(str(mpath))
        # dynamic sample loading: an .sf3 font decompresses only the samples the melody plays (1.5 s, not 6.5 s)
        cmd = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", str(sr), "-T", "wav",
               "-o", "synth.dynamic-sample-loading=1", "-F", str(wpath), str(soundfont), str(mpath)]
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
    register = job.get("register", "centre")
    notes = fit_to_range(voices[job["voice"] % len(voices)], inst, rng if register == "spread" else None)
    qpm = float(rng.uniform(66, 112))
    lo = float(rng.choice([0.55, 0.75, 0.88]))  # detached … legato, per melody
    audio = render_midi(performance_midi(notes, inst, rng, qpm, (lo, min(lo + 0.12, 0.99))), Path(job["soundfont"]))
    peak = np.max(np.abs(audio)) + 1e-9
    audio = audio * (10 ** (rng.uniform(-12, -3) / 20) / peak)  # varied recording level, never clipping
    out = Path(job["out"])
    write_audio_atomic(out, audio, SAMPLE_RATE, subtype="PCM_16")
    pitches = [n.pitch for n in notes]
    return dict(path=str(out.relative_to(job["root"])), instrument=inst.name, split=job["split"],
                chorale=job["chorale"], voice=job["voice"], qpm=round(qpm, 2), seconds=round(len(audio) / SAMPLE_RATE, 3),
                pitch_min=int(min(pitches)), pitch_max=int(max(pitches)), source="fluidsynth", font=job["font"],
                articulation=lo, register=register)


def plan_render(out: Path, instruments: list[str], per_split: tuple[int, int, int], voices_per_chorale: int,
                seed: int, fonts: dict[str, list[str]], heldout: str | None, judge: int = 0,
                register: str = "centre", confirm: int | tuple[int, ...] = 0) -> list[dict]:
    """Jobs: each chosen (chorale, voice) of train/valid/test once per training font of its instrument
    (`fonts`: instrument → font names or paths); the test ones again with the held-out font (split `heldout`),
    and the first `judge` train ones too (split `judge`). `confirm`: that many more test-pool chorales, after the
    chosen test ones in the same shuffle (once those run out, valid-pool chorales the valid split did not draw),
    in the held-out font only (split `confirm`): clips to confirm a choice
    made while looking at the `heldout` ones; a tuple of counts gives splits `confirm`, `confirm2`, … drawn one
    after the other from the same shuffle (a second choice, made on the first confirm clips, needs clips of its
    own). They are drawn after every other melody, so adding them, or a later confirm split, changes no earlier
    render. `register` "spread": each melody at an octave drawn
    from those that fit (fit_to_range); its files are named with "-spread" (render_corpus keeps one register per
    corpus: the same seed picks the same melodies, so beside the centred ones they would be the same tunes again)."""
    if register not in REGISTERS:
        raise CorpusError(f"register must be one of {', '.join(REGISTERS)}, not {register!r}")
    confirm = (confirm,) if isinstance(confirm, int) else tuple(confirm)
    if any(n < 0 for n in confirm) or any(n == 0 and sum(confirm[i:]) for i, n in enumerate(confirm)):
        raise CorpusError(f"--confirm {','.join(map(str, confirm))}: counts ≥ 0, and a split before another has "
                          "chorales of its own (confirm2 draws after confirm)")
    if sum(confirm) and not heldout:
        raise CorpusError("--confirm renders in the held-out font: name one (--heldout-font)")
    tag = "" if register == "centre" else f"-{register}"
    paths = chorale_paths()
    ids = {chorale_id(p): p for p in paths}
    splits = split_chorales(list(ids), seed)
    jobs = []

    def job(name: str, k: int, c: str, v: int, split: str, font: str, j: int) -> dict:
        fname = font_name(font)
        return dict(path=str(ids[c]), chorale=c, voice=int(v), instrument=name, split=split,
                    seed=[seed, k, int(v), int(hashlib.md5(c.encode()).hexdigest()[:8], 16), j],
                    soundfont=str(find_soundfont(font)), font=fname, root=str(out), register=register,
                    out=str(out / name / split / f"{c}_v{int(v)}_{fname}{tag}.flac"))

    for k, name in enumerate(instruments):
        rng = np.random.default_rng([seed, k])
        extra: list[tuple[str, str]] = []
        unchosen: dict[str, list[str]] = {}
        for split, n in zip(SPLITS, per_split):
            pool = sorted(c for c, s in splits.items() if s == split)
            shuffled = rng.permutation(pool) if n >= 0 else pool  # (-1: all of them, no draw)
            chosen = shuffled[: n] if n >= 0 else shuffled
            unchosen[split] = list(shuffled[len(chosen):])
            if split == "test" and sum(confirm):
                # the test pool's unchosen chorales first, then the valid pool's: no model trains on either
                # (the valid split's loss is only logged), and appending keeps every earlier confirm draw
                rest = (unchosen["test"] + unchosen.get("valid", []))[:sum(confirm)]
                if len(rest) < sum(confirm):
                    raise CorpusError(f"{name}: --confirm {','.join(map(str, confirm))} asks for more chorales "
                                      f"than the {len(rest)} its test and valid splits leave")
                at = np.cumsum((0,) + confirm)
                extra = [(confirm_split(i), c) for i in range(len(confirm)) for c in rest[at[i]:at[i + 1]]]
            for ci, c in enumerate(chosen):
                for v in rng.permutation(4)[:voices_per_chorale]:
                    renders = [(split, f) for f in fonts[name] if font_name(f) not in FONTS_ADDED_LATER]
                    if heldout and split == "test":
                        renders.append((HELDOUT, heldout))
                    if heldout and split == "train" and ci < judge:
                        renders.append((JUDGE, heldout))
                    renders += [(split, f) for f in fonts[name] if font_name(f) in FONTS_ADDED_LATER]
                    jobs += [job(name, k, c, v, sp, font, j) for j, (sp, font) in enumerate(renders)]
        for sp, c in extra:  # last, so that no earlier draw moves
            jobs += [job(name, k, c, v, sp, heldout, 0) for v in rng.permutation(4)[:voices_per_chorale]]
    return jobs


def render_corpus(out: Path, instruments: list[str], per_split=(40, 5, 5), voices_per_chorale: int = 1,
                  seed: int = 0, workers: int = 2, fonts: list[str] = TRAIN_FONTS,
                  heldout: str | None = HELDOUT_FONT, judge: int = 32, register: str = "centre",
                  confirm: int | tuple[int, ...] = 0) -> list[dict]:
    """Render the corpus into `out`, adding to what is there: melodies already in its manifest are kept, not
    rendered again. A training font whose samples the held-out font shares (for that instrument) is dropped for
    that instrument, so the held-out numbers are about a font no model heard; so is one that repeats an earlier
    training font's samples (it would add nothing but time)."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    for name in instruments:
        get_instrument(name)
    have = read_manifest(out) if (out / "manifest.jsonl").is_file() else []
    other = {r.get("register", "centre") for r in have if r.get("source") == "fluidsynth"} - {register}
    if other:
        raise CorpusError(f"{out} holds melodies in the {' and '.join(sorted(other))} register: render the "
                          f"{register} register into a corpus of its own (--out), so that no split mixes the two")
    for f in list(fonts) + ([heldout] if heldout else []):
        find_soundfont(f)
    if heldout and font_name(heldout) in {font_name(f) for f in fonts}:
        raise CorpusError(f"the held-out soundfont {heldout} is also a training font")
    per_inst = {name: training_fonts(get_instrument(name), list(fonts), heldout) for name in instruments}
    jobs = plan_render(out, instruments, per_split, voices_per_chorale, seed, per_inst, heldout, judge, register,
                       confirm)
    check_confirm_apart(have, jobs)
    out.mkdir(parents=True, exist_ok=True)
    done = {r["path"] for r in have}
    todo = [j for j in jobs if not (str(Path(j["out"]).relative_to(out)) in done and Path(j["out"]).is_file())]
    if len(todo) < len(jobs):
        print(f"{len(jobs) - len(todo)} of {len(jobs)} melodies are already in {out}: kept")
    records = []
    with ProcessPoolExecutor(max_workers=workers) as ex:
        for rec in tqdm(ex.map(render_item, todo, chunksize=4), total=len(todo), desc="rendering", unit="melody"):
            records.append(rec)
    write_manifest(out, records)
    return records


def check_confirm_apart(have: list[dict], jobs: list[dict]) -> None:
    """A confirm melody must stay out of every other split of its instrument, in the corpus and in this render
    (a later render with more test chorales, or with confirm splits of other sizes, draws them from the same
    shuffle, past the confirm ones)."""
    splits: dict[tuple[str, str], set[str]] = {}
    for r in [*have, *jobs]:
        if r.get("chorale") is not None:
            splits.setdefault((r["instrument"], r["chorale"]), set()).add(r["split"])
    both = sorted(f"{i} {c}" for (i, c), s in splits.items() if any(map(is_confirm_split, s)) and len(s) > 1)
    if both:
        raise CorpusError(f"{', '.join(both[:3])}{' …' if len(both) > 3 else ''}: a confirm melody would also be in "
                          "another split of its instrument (more test chorales, or other --confirm counts, than when "
                          "the confirm splits were rendered?): render into a new corpus folder, or keep --per-split's "
                          "test count and the earlier --confirm counts, adding new ones after them")


def training_fonts(inst: Instrument, fonts: list[str], heldout: str | None) -> list[str]:
    """The fonts `inst` trains on: each of `fonts` whose probe phrase is unlike the held-out font's and unlike
    every training font kept before it (SHARED_SAMPLES_CORR)."""
    probes = {f: probe_phrase(inst, find_soundfont(f)) for f in fonts}
    ref = probe_phrase(inst, find_soundfont(heldout)) if heldout else None
    kept = []
    for f in fonts:
        if ref is not None and (c := spectral_similarity(probes[f], ref)) >= SHARED_SAMPLES_CORR:
            print(f"{inst.name}: not training on {f} ({c:.2f}): shares samples with the held-out {heldout}")
            continue
        twin = next((k for k in kept if spectral_similarity(probes[f], probes[k]) >= SHARED_SAMPLES_CORR), None)
        if twin is not None:
            print(f"{inst.name}: not training on {f}: the same samples as {twin}")
            continue
        kept.append(f)
    if not kept:
        raise CorpusError(f"{inst.name}: every training font shares samples with the held-out font {heldout}")
    return kept


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
    return run_main(_main, argv, errors=(CorpusError, AudioError, ValueError))


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.corpus", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="render Bach chorale voices per instrument with FluidSynth")
    r.add_argument("--out", type=Path, default=Path("data/corpus"))
    r.add_argument("--instruments", type=comma_list(), default=list(INSTRUMENTS), help="comma-separated names")
    r.add_argument("--per-split", type=comma_list(int), default=[40, 5, 5], help="chorales per instrument for train,valid,test (-1: all)")
    r.add_argument("--voices", type=int, default=1, help="voices rendered per chosen chorale (1-4)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--fonts", type=comma_list(), default=list(TRAIN_FONTS),
                   help=f"training soundfonts, comma-separated names ({', '.join(SOUNDFONTS)}) or .sf2 paths")
    r.add_argument("--heldout-font", default=HELDOUT_FONT,
                   help="soundfont rendered only for the 'heldout' evaluation split ('none': no such split)")
    r.add_argument("--judge", type=int, default=32,
                   help="train chorales per instrument also rendered in the held-out font, for the judge only")
    r.add_argument("--register", choices=REGISTERS, default="centre",
                   help="each melody's octave: the one nearest the middle of the instrument's range (centre) or one "
                        "drawn from all that fit (spread; files named *-spread; one register per corpus folder)")
    r.add_argument("--confirm", type=comma_list(ranged(int, 0)), default=[0], metavar="N[,N...]",
                   help="N more test-pool chorales per instrument in the held-out font only (split 'confirm'): "
                        "clips no choice has seen, to confirm one made while looking at the heldout split; more "
                        "counts give splits confirm2, … after it (keep the earlier counts, add new ones after them)")
    i = sub.add_parser("import", help="import a folder of recordings as an instrument")
    i.add_argument("--out", type=Path, default=Path("data/corpus"))
    i.add_argument("--instrument", required=True)
    i.add_argument("folder", type=Path)
    sub.add_parser("instruments", help="list the instruments the renderer knows")
    a = ap.parse_args(argv)
    if a.cmd == "render":
        per = tuple(a.per_split)
        if len(per) != 3:
            raise CorpusError("--per-split takes three numbers: train,valid,test")
        recs = render_corpus(a.out, a.instruments, per,
                             a.voices, a.seed, a.workers, a.fonts,
                             None if a.heldout_font == "none" else a.heldout_font, a.judge, a.register,
                             tuple(a.confirm))
        print(f"rendered {len(recs)} melodies, {sum(r['seconds'] for r in recs) / 60:.1f} min → {a.out}")
    elif a.cmd == "import":
        recs = import_folder(a.out, a.instrument, a.folder)
        print(f"imported {len(recs)} files, {sum(r['seconds'] for r in recs) / 60:.1f} min → {a.out}/{a.instrument}")
    else:
        for inst in INSTRUMENTS.values():
            print(f"{inst.name:12s} GM {inst.program:3d}  MIDI {inst.low}-{inst.high}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
