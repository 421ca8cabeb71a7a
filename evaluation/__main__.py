"""python -m evaluation: does the transfer keep the melody and change the timbre, and at what σmax?

    python -m evaluation --bundle models/bundle [--corpus data/corpus] [--pairs violin:flute,flute:violin]
                       [--sigmas 0.5,1,2,5,10,20,50,100] [--steps 3,8] [--classifier models/classifier.pt]
                       [--presets presets] [--update-presets presets] [--out out/eval] [--quick]
    python -m evaluation --bundle models/bundle --folders violin=my/violin flute=my/flute --pairs violin:flute

Scores the held-out split of the corpus (unseen chorales in the held-out soundfont) (or your folders of audio) for each instrument pair over a sweep
of σmax and step counts: melody (PESTO f0 of input vs output), timbre (instrument classifier accuracy and
Fréchet distance of its embeddings to real target audio), bounds (input unchanged, real target through the
codec), cycle consistency A → B → A and streaming ("as live") against offline quality. Writes results.json,
results.md, tradeoff.png and audio examples into --out, and recommends a σmax per pair (evaluation.report.RULE),
which --update-presets writes into the matching preset files. Without --pairs every ordered pair of the
bundle's instruments is evaluated (90 for 10 instruments): on a CPU, name a few. --quick: 2 clips of 4 s,
σmax 1, 5, 20, 3 steps, 2 pairs (violin ↔ flute when the bundle has them): a few minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import comma_list, ranged
from live.params import param

QUICK = dict(clips=2, seconds=4.0, sigmas=[1.0, 5.0, 20.0], steps=[3], cycle_steps=[1, 3], max_pairs=2)


def _pair(item: str) -> tuple[str, str]:
    parts = item.split(":")
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise argparse.ArgumentTypeError(f"a pair is SOURCE:TARGET with two different instruments, got {item!r}")
    return parts[0], parts[1]


def _folder(s: str) -> tuple[str, Path]:
    name, sep, d = s.partition("=")
    if not sep or not name or not d:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {s!r}")
    return name, Path(d)


def main(argv=None) -> int:
    from core.timbre import DEFAULT_PATH
    from evaluation.run import MODES, EvalConfig

    ap = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=Path("models/bundle"), help="ONNX bundle (python -m export.onnx)")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--split", default="heldout",
                    help="corpus split (default heldout: unseen chorales in a soundfont no model trained on); several, "
                         "comma-separated (heldout,confirm), are judged as one set of clips, split by split")
    ap.add_argument("--folders", type=_folder, nargs="+", default=None, metavar="NAME=DIR",
                    help="your audio per instrument instead of the corpus")
    ap.add_argument("--pairs", type=comma_list(_pair), default=None, help="SOURCE:TARGET,... (default: every ordered pair)")
    ap.add_argument("--sigmas", type=comma_list(float), default=None, help="σmax sweep (default 0.5,1,2,5,10,20,50,100)")
    ap.add_argument("--steps", type=comma_list(int), default=None, help="solver steps per leg to sweep (default 3,8)")
    ap.add_argument("--cycle-steps", type=comma_list(int), default=None, help="steps for A → B → A (default 1,2,4,8)")
    ap.add_argument("--cycle-sigma", type=float, default=None, help="σmax of the cycle (default: the recommended)")
    ap.add_argument("--mode", choices=MODES, default="offline",
                    help="how the sweep renders: the engine with offline windows (default), as live, or whole clips")
    ap.add_argument("--clips", type=int, default=None, help="clips per instrument (default 8)")
    ap.add_argument("--seconds", type=float, default=None, help="seconds per clip (default 8)")
    ap.add_argument("--classifier", type=Path, default=None,
                    help=f"instrument classifier (default {DEFAULT_PATH} when it exists)")
    ap.add_argument("--no-classifier", action="store_true", help="skip the timbre metrics")
    ap.add_argument("--presets", type=Path, default=Path("presets"), help="presets streamed for each pair")
    ap.add_argument("--prior", choices=param("prior").choices, default=None,
                    help="the bridge's prior for every pair (default: each preset's; A/B them with two runs)")
    ap.add_argument("--transpose", type=param("transpose").parse, default=None, metavar="SEMITONES",
                    help="transpose every pair's input by this many semitones (default: each preset's; sweep "
                         "registers with one run per value, merge them with evaluation.report --across-priors)")
    ap.add_argument("--fold-centre", type=param("fold_centre").parse, default=None, metavar="MIDI",
                    help="fold every pair's input into the register round this note (0: no fold; default: each "
                         "preset's); merge with other sweeps by evaluation.report --across-priors")
    ap.add_argument("--at-presets", action="store_true",
                    help="no sweep: each pair at its preset's σmax and steps (check presets on more clips)")
    ap.add_argument("--update-presets", type=Path, default=None, metavar="DIR",
                    help="write the recommended σmax into the matching presets of DIR")
    ap.add_argument("--keep", type=float, default=0.9, help="pitch fraction of the recommendation rule")
    ap.add_argument("--confidence", type=float, default=0.5, help="PESTO voicing threshold")
    ap.add_argument("--no-streaming", action="store_true", help="skip the as-live vs offline comparison")
    ap.add_argument("--live-rows", action="store_true",
                    help="stream every swept σmax as live too; the recommended σmax is then the lowest near the best "
                         "recognition that is heard as live within 5 points of offline (the preset is played live)")
    ap.add_argument("--no-examples", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("out/eval"))
    ap.add_argument("--threads", type=ranged(int, 1, 256), default=2)
    ap.add_argument("--provider", choices=("cpu", "cuda", "auto"), default="cpu")
    ap.add_argument("--quick", action="store_true", help="few clips of 4 s, few σmax: minutes on a CPU")
    a = ap.parse_args(argv)

    import torch

    from core.audio import AudioError
    from core.io import CheckpointError
    from evaluation.report import apply_presets, print_recommendations
    from evaluation.run import evaluate
    from live.bundle import BundleError
    from core.manifest import CorpusError

    torch.set_num_threads(a.threads)
    q = QUICK if a.quick else {}
    clf = None if a.no_classifier else a.classifier
    if clf is None and not a.no_classifier:
        if DEFAULT_PATH.is_file():
            clf = DEFAULT_PATH
        else:
            print(f"warning: no classifier at {DEFAULT_PATH} (train one: python -m train.judge); "
                  "timbre accuracy and FD are skipped", file=sys.stderr)
    elif clf is not None and not clf.is_file():
        print(f"error: {clf}: no such classifier file", file=sys.stderr)
        return 2
    if a.at_presets and (a.sigmas or a.steps or a.update_presets):
        print("error: --at-presets measures each preset's own σmax and steps: it takes no --sigmas, --steps or "
              "--update-presets", file=sys.stderr)
        return 2
    pairs = a.pairs
    try:
        if pairs is None and q:
            from live.bundle import Bundle

            inst = Bundle(a.bundle, provider="cpu", threads=1).instruments
            a0, b0 = ("violin", "flute") if {"violin", "flute"} <= set(inst) else (inst[0], inst[-1])
            pairs = [(a0, b0), (b0, a0)][: q["max_pairs"]] if len(inst) >= 2 else None
        folders = dict(a.folders) if a.folders else None
        for name, d in (folders or {}).items():
            if not d.is_dir():
                raise AudioError(f"{d}: not a folder (for {name})")
        cfg = EvalConfig(
            bundle=a.bundle, out=a.out, corpus=a.corpus, folders=folders, split=a.split, pairs=pairs,
            sigmas=a.sigmas or q.get("sigmas") or EvalConfig.__dataclass_fields__["sigmas"].default_factory(),
            steps=a.steps or q.get("steps") or [3, 8],
            cycle_steps=a.cycle_steps or q.get("cycle_steps") or [1, 2, 4, 8], cycle_sigma=a.cycle_sigma,
            mode=a.mode, clips=a.clips or q.get("clips", 6), seconds=a.seconds or q.get("seconds", 6.0),
            classifier=clf, presets=a.presets, prior=a.prior, transpose=a.transpose, fold_centre=a.fold_centre,
            at_presets=a.at_presets, live_rows=a.live_rows,
            keep=a.keep, confidence=a.confidence,
            examples=not a.no_examples, streaming=not a.no_streaming, threads=a.threads, provider=a.provider)
        if any(s <= 0 for s in cfg.sigmas) or any(s < 1 for s in cfg.steps + cfg.cycle_steps):
            raise ValueError("σmax values must be positive and step counts at least 1")
        results = evaluate(cfg)
    except (AudioError, BundleError, CheckpointError, CorpusError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_recommendations(results["recommended"])
    print(f"results: {a.out / 'results.md'}, {a.out / 'results.json'}, {a.out / 'tradeoff.png'}")
    if a.update_presets:
        return apply_presets(a.update_presets, results["recommended"])
    return 0


if __name__ == "__main__":
    from core.cli import run_main

    sys.exit(run_main(main))
