"""Score a saved timbre judge (core.timbre) on a corpus split.

    python -m evaluation.classifier [MODEL] [--corpus data/corpus] [--split heldout]

MODEL defaults to the shipped judge (models/classifier.pt). One prediction per file (logits averaged over its
crops): accuracy per file, per crop and per instrument. The judge is trained by python -m train.judge.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from core.cli import run_main
from core.io import CheckpointError
from core.manifest import CorpusError
from core.timbre import DEFAULT_PATH, TimbreClassifier, format_score, load_split

MOVED = "training moved to python -m train.judge (the same options, without --train)"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m evaluation.classifier", description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", type=Path, default=None, metavar="MODEL",
                    help=f"a judge file (default {DEFAULT_PATH})")
    ap.add_argument("--test", type=Path, default=None, help=argparse.SUPPRESS)  # the old spelling of MODEL
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--split", default="heldout", help="split to score (heldout: unseen font)")
    ap.add_argument("--threads", type=int, default=2)
    return ap


def main(argv=None) -> int:
    return run_main(_main, argv, errors=(CorpusError, CheckpointError, ValueError))


def _main(argv=None) -> int:
    if "--train" in (sys.argv[1:] if argv is None else argv):
        raise ValueError(MOVED)
    a = build_parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    clf = TimbreClassifier.load(a.model or a.test or DEFAULT_PATH)
    res = clf.score(load_split(a.corpus, a.split, clf.instruments, clf.cfg.sample_rate), clf.cfg.sample_rate)
    print(format_score(res, a.split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
