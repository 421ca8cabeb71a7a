"""Pack codec training for a lent GPU machine: what it lacks, in folders the device tool can carry.

The lent machine has torch, torchaudio, numpy, tqdm and einops but no FluidSynth, no soundfile/soxr and no
encodec package, and each call sends at most 64 MiB: the working tree (tracked and untracked-not-ignored files)
plus the carried folders. This writes PACK (default .gpu), and PACK-1, PACK-2 … when the corpus does not fit
in one, each sized to the room the tree leaves:

    PACK/site/          soundfile, soxr, cffi, pycparser (Python 3.12 manylinux wheels, unpacked) and encodec
    PACK/init/          the codec file (+ its discriminator) the run starts from, and with --denoisers DIR
                        denoisers/NAME.pt: the denoisers that `device_denoisers.sh` trains on from
    PACK*/corpus/       FLAC files of the train split, taken in turn from every instrument and font, with a
                        manifest.jsonl each (`merge` joins them on the GPU)

    python -m train.pack make [--corpus data/corpus] [--init models/wip/codec.pt] [--parts 2] [--mib M]
    python -m train.pack merge OUT PACK/corpus PACK-1/corpus …     (on the GPU: one corpus of every part there)

Then, with the device tool, one call per part after the first (each keeps what the earlier ones left there):
    carry [".gpu-1"], command "true"            (the machine keeps .gpu-1 while it stays warm)
    carry [".gpu"],   command "bash train/device_codec.sh 8"   (INSTRUMENT_WEIGHTS=violin=2,clarinet=2 bash … to
                      give the instruments kept worst more crops, as the CPU run does)
and bring the run back with `cat FILES_AT/run/last.pt.part-* > runs/codec/last.pt`. Once the codec's ceiling
holds, a pack made with `--init` that codec trains every denoiser in its latent space the same way:
    carry [".gpu"],   command "DEADLINE_S=510 bash train/device_denoisers.sh 6"   (timeout_s 540)
which returns the codec with its fitted latent statistics and denoisers/NAME.pt (commit them together); with
`--denoisers DIR` (and that codec as --init) the trainers go on from DIR/NAME.pt. Both in one call (one start,
one pack made with --denoisers: the codec trains its encoder too, then each denoiser starts from the pack's in
the new latent space):
    carry [".gpu"],   command "DEADLINE_S=570 INSTRUMENT_WEIGHTS=clarinet=3 bash train/device_all.sh 4 3"
                      (timeout_s 600; the codec stage takes its minutes and about 40 s more, and the deadline
                      cuts the denoisers' minutes to what the latents and 90 s of exports leave: about 2 if the
                      latents take a minute)
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from core.cli import instrument_weights
from core.manifest import CorpusError, read_manifest

WHEELS = ("soundfile", "soxr", "cffi", "pycparser")
DEVICE_PYTHON = "3.12"
MARK = "pack.json"  # in every folder this command wrote: the only folders it will delete
CALL_LIMIT = 64 * 2 ** 20  # the device tool's working tree + carried folders, per call
MARGIN = 2 * 2 ** 20  # files that change between packing and the call (logs, notes)
MARK_BYTES = 64 * 1024  # a part's manifest and mark
DEVICE_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def part_dir(pack: Path, k: int) -> Path:
    return pack if k == 0 else pack.with_name(f"{pack.name}-{k}")


def install_site(site: Path) -> None:
    """The device's missing packages, unpacked for its Python (no pip run needed there)."""
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target", str(site), "--only-binary=:all:",
           "--python-version", DEVICE_PYTHON, "--implementation", "cp", "--no-deps",
           *[a for p in DEVICE_PLATFORMS for a in ("--platform", p)], *WHEELS]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise CorpusError(f"pip could not fetch the device's wheels: {res.stderr.strip()[-400:]}")
    import encodec

    shutil.copytree(Path(encodec.__file__).parent, site / "encodec", ignore=shutil.ignore_patterns("__pycache__"))
    for junk in [*site.glob("*.dist-info"), site / "bin"]:  # metadata and scripts the device does not need
        shutil.rmtree(junk, ignore_errors=True)


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def choose_files(corpus: Path, budgets: list[int], weights: dict[str, float] | None = None) -> list[list[dict]]:
    """Train-split records for each part, within its byte budget: each next file from the instrument with the
    fewest minutes so far (and within it the font with the fewest), so every part is balanced as far as it goes;
    `weights` (instrument → W, default 1) balance minutes / W instead, for a run that weighs its crops so."""
    weights = weights or {}
    queues: dict[tuple, list[dict]] = {}
    for r in read_manifest(corpus):
        if r["split"] == "train":
            queues.setdefault((r["instrument"], r.get("font", "")), []).append(r)
    if not queues:
        raise CorpusError(f"{corpus}: the manifest has no train split")
    unknown = sorted(set(weights) - {inst for inst, _ in queues})
    if unknown:
        raise CorpusError(f"--instrument-weights names {', '.join(unknown)}, not in {corpus}'s train split")
    parts: list[list[dict]] = []
    for budget in budgets:
        chosen, used, full = [], 0, set()
        minutes = {key: 0.0 for key in queues}
        while len(full) < len(queues):
            def load(key):
                return sum(m for k, m in minutes.items() if k[0] == key[0]) / weights.get(key[0], 1.0), minutes[key]

            key = min((k for k in queues if k not in full), key=load)
            q = queues[key]
            if not q or used + (size := (corpus / q[0]["path"]).stat().st_size) > budget:
                full.add(key)
                continue
            chosen.append(q.pop(0))
            used += size
            minutes[key] += chosen[-1]["seconds"] / 60
        parts.append(chosen)
    return parts


def write_part(corpus: Path, folder: Path, records: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        dest = folder / r["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus / r["path"], dest)
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def travelling_bytes(repo: Path) -> int:
    """What every device call sends besides its carried folders: tracked files and untracked files git does not
    ignore (the tool's 64 MiB covers them and the carry together)."""
    res = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise CorpusError(f"{repo}: not a git checkout ({res.stderr.strip()[-200:]})")
    return sum((repo / f).stat().st_size for f in res.stdout.split("\0") if f and (repo / f).is_file())


def resumable_denoisers(folder: Path, init: Path) -> list[Path]:
    """The denoiser files of `folder` (NAME.pt), each checked to live in the latent space of the codec `init`
    (its statistics' hash): a denoiser of another space would go on training there without any error."""
    from core.codec import Codec
    from core.denoiser import MODEL_FORMAT, trained_space
    from core.io import CheckpointError, load_checkpoint

    files = sorted(folder.glob("*.pt"))
    if not files:
        raise CorpusError(f"{folder}: no denoiser files (NAME.pt) there")
    try:
        codec = Codec.load(init)
        space = codec.stats_id() if codec.stats_fitted else None
        if space is None:
            raise CorpusError(f"{init} has no latent statistics, so no denoiser can go on in its space: run "
                              f"python -m train.latents with it first")
        for f in files:
            trained_in = trained_space(load_checkpoint(f, MODEL_FORMAT))
            if trained_in != space:
                raise CorpusError(f"{f}: trained in latent space {trained_in}, {init}'s is {space}")
    except CheckpointError as e:
        raise CorpusError(str(e)) from None
    return files


def pack(corpus: Path, init: Path, out: Path, parts: int = 1, mib: float | None = None,
         repo: Path = Path("."), denoisers: Path | None = None, weights: dict[str, float] | None = None) -> list[dict]:
    """Write the pack; returns one line per part (folder, MiB, files, minutes of audio per instrument). Each part
    is sized to what a call can carry: `mib`, or 64 MiB less the travelling tree and a margin. `denoisers`: a
    folder of denoiser files (NAME.pt) the GPU's trainers resume from, in the first part. `weights`: minutes of
    audio per instrument in proportion (choose_files)."""
    from train.codec import disc_path

    if not init.is_file():
        raise CorpusError(f"{init}: no codec file to start from (export one: python -m train.codec --run-dir "
                          f"runs/codec --export {init} --with-disc)")
    resumed = resumable_denoisers(denoisers, init) if denoisers is not None else []
    tree = travelling_bytes(repo)
    limit = int(mib * 2 ** 20) if mib is not None else CALL_LIMIT - tree - MARGIN
    parts_found = [out, *(p for p in out.parent.glob(f"{out.name}-*") if p.name[len(out.name) + 1:].isdigit())]
    for old in parts_found:  # a pack is made whole, never on top of an older one
        if old.exists():
            if not (old / MARK).is_file():
                raise CorpusError(f"{old} exists and is not a pack (no {MARK}): choose another --out")
            shutil.rmtree(old)
    info = dict(of=parts, init=str(init), corpus=str(corpus), tree_mib=round(tree / 2 ** 20, 1))
    for k in range(parts):  # marked first: an interrupted pack is still one the next run may replace
        part_dir(out, k).mkdir(parents=True)
        (part_dir(out, k) / MARK).write_text(json.dumps(dict(info, part=k)) + "\n")
    install_site(out / "site")
    (out / "init").mkdir(parents=True, exist_ok=True)
    for f in (init, disc_path(init)):
        if f.is_file():
            shutil.copy2(f, out / "init" / Path(f).name.replace(init.stem, "codec", 1))
    if resumed:
        (out / "init" / "denoisers").mkdir()
        for f in resumed:
            shutil.copy2(f, out / "init" / "denoisers" / f.name)
    budgets = [limit - folder_bytes(out)] + [limit - MARK_BYTES] * (parts - 1)
    if min(budgets) <= 0:
        raise CorpusError(f"no room for audio: a call carries {CALL_LIMIT / 2 ** 20:.0f} MiB with the working tree, "
                          f"which is {tree / 2 ** 20:.1f} MiB, and the pack's packages and codec take "
                          f"{folder_bytes(out) / 2 ** 20:.1f} MiB")
    lines = []
    for k, records in enumerate(choose_files(corpus, budgets, weights)):
        folder = part_dir(out, k)
        write_part(corpus, folder / "corpus", records)
        minutes: dict[str, float] = {}
        for r in records:
            minutes[r["instrument"]] = minutes.get(r["instrument"], 0.0) + r["seconds"] / 60
        lines.append(dict(folder=str(folder), mib=round(folder_bytes(folder) / 2 ** 20, 1), files=len(records),
                          minutes={i: round(m, 1) for i, m in sorted(minutes.items())}))
    return lines


def merge(out: Path, parts: list[Path]) -> int:
    """One corpus at `out` whose manifest lists every part's files by absolute path; returns the file count."""
    records = []
    for p in parts:
        records += [dict(r, path=str((p / r["path"]).resolve())) for r in read_manifest(p)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return len(records)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.pack", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="write the pack")
    m.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    m.add_argument("--init", type=Path, default=Path("models/wip/codec.pt"), help="codec file the GPU run starts from")
    m.add_argument("--out", type=Path, default=Path(".gpu"))
    m.add_argument("--denoisers", type=Path, default=None, metavar="DIR",
                   help="denoiser files (NAME.pt, trained in --init's latent space) for device_denoisers.sh to resume")
    m.add_argument("--parts", type=int, default=1, help="folders to carry, one device call each (64 MiB a call)")
    m.add_argument("--mib", type=float, default=None,
                   help="size of each folder (default: 64 MiB less the working tree that travels with every call)")
    m.add_argument("--instrument-weights", type=instrument_weights, default={}, metavar="NAME=W,...",
                   help="minutes of audio per instrument in proportion to W (default 1 each), e.g. clarinet=3 for a "
                        "run that gives the clarinet that share of its crops (train.codec --instrument-weights)")
    g = sub.add_parser("merge", help="join the corpus parts present on the GPU machine")
    g.add_argument("out", type=Path)
    g.add_argument("parts", type=Path, nargs="+")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "merge":
            print(f"{merge(a.out, [p for p in a.parts if (p / 'manifest.jsonl').is_file()])} files → {a.out}")
            return 0
        lines = pack(a.corpus, a.init, a.out, a.parts, a.mib, denoisers=a.denoisers, weights=a.instrument_weights)
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in lines:
        total = sum(line["minutes"].values())
        print(f"{line['folder']}: {line['mib']} MiB, {line['files']} files, {total:.0f} min of audio "
              f"({', '.join(f'{i} {m:.0f}' for i, m in line['minutes'].items())})")
    return 0


if __name__ == "__main__":
    from core.cli import run_main

    sys.exit(run_main(main))
