"""What the pair-by-pair diagnostic commands (evaluation.register, evaluation.edge) share: their options, the
errors they report, and an Evaluator with the judge built from them."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from core.cli import comma_list, ranged, run_main


def run_judged(main: Callable[..., int], argv=None) -> int:
    """run_main with the errors a pair diagnostic reports as one line (exit 2)."""
    from core.audio import AudioError
    from core.io import CheckpointError
    from core.manifest import CorpusError
    from live.bundle import BundleError

    return run_main(main, argv, errors=(AudioError, BundleError, CheckpointError, CorpusError, ValueError))


def add_pair_options(ap: argparse.ArgumentParser) -> None:
    """--pairs (required), the bundle, the held-out clips, the presets and the judge."""
    from core.timbre import DEFAULT_PATH
    from evaluation.__main__ import _pair

    ap.add_argument("--pairs", type=comma_list(_pair), required=True, help="SOURCE:TARGET,...")
    ap.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--presets", type=Path, default=Path("presets"))
    ap.add_argument("--classifier", type=Path, default=DEFAULT_PATH)
    ap.add_argument("--clips", type=ranged(int, 1, 1000), default=8)
    ap.add_argument("--seconds", type=ranged(float, 2.0, 600.0), default=8.0)
    ap.add_argument("--threads", type=ranged(int, 1, 256), default=2)


def clips_for(ev, a: argparse.Namespace, names) -> dict:
    """Held-out clips of each instrument named (load_clips); ValueError naming those without any."""
    from evaluation.run import load_clips

    names = sorted(names)
    clips = load_clips(ev.cfg, names, ev.sr, ev.bundle.samples_per_frame * ev.tf)
    missing = [n for n in names if not clips.get(n)]
    if missing:
        raise ValueError(f"no {a.split} clips for {', '.join(missing)} in {a.corpus}")
    return clips


def judged_evaluator(a: argparse.Namespace):
    """The Evaluator those options describe; ValueError without a judge file or for a target it cannot name."""
    from evaluation.run import EvalConfig, Evaluator

    if not a.classifier.is_file():
        raise ValueError(f"{a.classifier}: no such classifier file (train one: python -m train.judge)")
    import torch

    torch.set_num_threads(a.threads)
    ev = Evaluator(EvalConfig(bundle=a.bundle, corpus=a.corpus, split=a.split, clips=a.clips, seconds=a.seconds,
                              classifier=a.classifier, presets=a.presets, threads=a.threads, progress=False))
    unknown = sorted({b for _, b in a.pairs} - set(ev.classifier.instruments))
    if unknown:
        raise ValueError(f"the judge {a.classifier} does not know {', '.join(unknown)}: it can name "
                         f"{', '.join(ev.classifier.instruments)}")
    return ev
