"""One command from a folder of recordings to a playable instrument.

    python -m train.instrument my_sax recordings/sax/ --minutes 60

Imports the folder into the corpus (24 kHz mono, split by file), encodes it with the shipped codec (its latent
statistics stay fixed, so the new denoiser shares the prior with every other instrument), trains the denoiser,
exports it, re-exports the bundle with every denoiser in models/denoisers/, and writes presets pairing the new
instrument with every other one. Interrupt and run it again to resume training.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import comma_list, run_main
from core.audio import AudioError
from train.corpus import CorpusError, import_folder

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    return run_main(_main, argv, errors=(CorpusError, AudioError, ValueError))


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.instrument", description=__doc__.split("\n")[0])
    ap.add_argument("name", help="instrument name (letters, digits, underscores)")
    ap.add_argument("folder", type=Path, help="folder of WAV/FLAC/OGG recordings of that instrument alone")
    ap.add_argument("--minutes", type=float, default=60.0, help="denoiser training time")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--latents", type=Path, default=Path("data/latents"))
    ap.add_argument("--codec", type=Path, default=ROOT / "models" / "codec.pt")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--presets", type=Path, default=ROOT / "presets")
    ap.add_argument("--shifts", type=comma_list(float), default=[-2.0, 0.0, 2.0])
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    if not a.codec.is_file():
        raise CorpusError(f"{a.codec}: no codec file; the shipped one is models/codec.pt")
    from core.codec import Codec

    if not Codec.load(a.codec).stats_fitted:
        # fitting them now, on this instrument alone, would move every other denoiser's latent space
        raise CorpusError(f"{a.codec} has no latent statistics; build them over the corpus first "
                          f"(python -m train.latents --codec {a.codec})")
    if not (a.latents / a.name / "train.npz").is_file():
        recs = import_folder(a.corpus, a.name, a.folder)
        print(f"imported {len(recs)} files")
        from train.latents import build_cache

        build_cache(a.codec, a.corpus, a.latents, [a.name], list(a.shifts))
    from train import denoiser

    den_file = a.models / "denoisers" / f"{a.name}.pt"
    denoiser.main(["--instrument", a.name, "--latents", str(a.latents), "--codec", str(a.codec),
                   "--minutes", str(a.minutes), "--device", a.device])
    denoiser.main(["--instrument", a.name, "--export", str(den_file)])
    from export.onnx import export_bundle

    # the instruments' own decoders too (models/decoders): a bundle rebuilt without them would decode those
    # instruments with the codec's decoder
    files = [a.codec] + sorted((a.models / "denoisers").glob("*.pt")) + sorted((a.models / "decoders").glob("*.pt"))
    meta = export_bundle(files, a.models / "bundle")
    from live.preset import Preset

    for other in sorted(meta["instruments"]):
        if other == a.name:
            continue
        for src, tgt in ((a.name, other), (other, a.name)):
            path = a.presets / f"{src}-to-{tgt}.json"
            if not path.exists():
                Preset(name=f"{src}-to-{tgt}", source=src, target=tgt,
                       bundle="../models/bundle").save(path)
    print(f"instrument {a.name} ready: presets {a.presets}/{a.name}-to-*.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
