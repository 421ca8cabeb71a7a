"""Where in its range is a transfer heard as the target? The judge's verdict per window, by the window's pitch.

    python -m evaluation.register --pairs clarinet:tenor_sax,violin:tenor_sax [--clips 8] [--seconds 8]

Each pair's preset renders the held-out clips of its source (offline, as `python -m evaluation` does, with the
preset's σmax, steps, prior, transpose and fold). Every output is cut into windows of the judge's crop (half
overlapping); a window with enough voiced frames gets its median pitch (PESTO) and the judge's label. Printed per
band of semitones: how many windows the judge heard as the target, and as what else, beside the same for the
target's own held-out clips through the codec, the real instrument in that band (its windows' pitch is the
instrument's, so a band it never plays stays empty). A pair that fails only in bands the real instrument
rarely plays fails by register; one that fails where the real instrument is recognized fails by timbre. Beside
it, per band of the input's pitch, the frames whose pitch class the transfer kept (against the input moved as the
preset moves it): where a target's model loses the melody (the tenor sax's below MIDI 48 and above 67 or so).
Writes register.json and register.png (share heard as the target per band, transfer against real, each marker
as large as the windows behind it) to --out.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from core.cli import ranged
from evaluation.options import add_pair_options, clips_for, judged_evaluator, run_judged

log = logging.getLogger(__name__)

MIN_VOICED = 0.5  # a window counts when at least this share of its frames is voiced


def window_verdicts(audio: np.ndarray, sr: int, track, classifier, hop_fraction: float = 0.5
                    ) -> list[tuple[float, str]]:
    """(median MIDI pitch, the judge's label) for each judge-sized window of `audio` with at least MIN_VOICED of
    its frames voiced in `track` (core.pitch.PitchTrack of `audio`)."""
    n = int(round(classifier.cfg.crop * classifier.cfg.stft_hop * sr / classifier.cfg.sample_rate))
    hop = max(1, int(n * hop_fraction))
    voiced, step = track.voiced(), track.step_ms / 1000
    out = []
    for s in range(0, len(audio) - n + 1, hop):
        a, b = int(round(s / sr / step)), int(round((s + n) / sr / step))
        v = voiced[a:b]
        if len(v) == 0 or v.mean() < MIN_VOICED:
            continue
        logits, _ = classifier.analyse(audio[s:s + n], sr)
        if len(logits):
            out.append((float(np.median(track.semitones[a:b][v])),
                        classifier.instruments[int(np.argmax(logits.mean(axis=0)))]))
    return out


def by_band(verdicts: list[tuple[float, str]], band: int = 4) -> dict[int, Counter]:
    """Lowest MIDI note of each `band`-semitone band → Counter of labels of the windows whose pitch falls in it."""
    out: dict[int, Counter] = {}
    for pitch, label in verdicts:
        out.setdefault(int(np.floor(pitch / band) * band), Counter())[label] += 1
    return dict(sorted(out.items()))


NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(midi: int) -> str:
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def merge_kept(total: dict[int, list[int]], more: dict[int, list[int]]) -> dict[int, list[int]]:
    """Per band, the kept / voiced frame counts of several clips added up (core.pitch.pitch_class_by_band)."""
    for lo, (k, n) in more.items():
        t = total.setdefault(lo, [0, 0])
        t[0], t[1] = t[0] + k, t[1] + n
    return dict(sorted(total.items()))


def format_kept(kept: dict[int, list[int]], band: int) -> str:
    """A markdown table: per band of the input's pitch, the frames whose pitch class the output kept."""
    lines = ["| input's band | pitch class kept |", "|---|---|"]
    lines += [f"| {note_name(lo)}–{note_name(lo + band - 1)} | {k}/{n} ({100 * k / n:.0f} %) |"
              for lo, (k, n) in sorted(kept.items()) if n]
    return "\n".join(lines)


def format_bands(target: str, transfer: dict[int, Counter], real: dict[int, Counter], band: int) -> str:
    """A markdown table: per band, the transfer's windows heard as `target` (and the top other labels) beside
    the real target's."""
    def cell(c: Counter | None) -> str:
        if not c:
            return "—"
        n = sum(c.values())
        others = ", ".join(f"{k} {v}" for k, v in c.most_common() if k != target)
        return f"{c.get(target, 0)}/{n}" + (f" ({others})" if others else "")

    lines = [f"| band | transfer: windows heard as {target} | real {target} through the codec |", "|---|---|---|"]
    for lo in sorted(set(transfer) | set(real)):
        lines.append(f"| {note_name(lo)}–{note_name(lo + band - 1)} | {cell(transfer.get(lo))} | {cell(real.get(lo))} |")
    return "\n".join(lines)


def plot(results: dict, band: int, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import atomic_output

    fig, axes = plt.subplots(len(results), 1, figsize=(7, 2.2 * len(results)), squeeze=False, sharex=True)
    for ax, (pair, r) in zip(axes[:, 0], results.items()):
        for key, style in (("transfer", "o-"), ("real", "s--")):
            bands = r[key]
            xs = [int(k) + band / 2 for k in bands]
            ns = [sum(c.values()) for c in bands.values()]
            ys = [c.get(r["target"], 0) / max(1, n) for c, n in zip(bands.values(), ns)]
            line, = ax.plot(xs, ys, style[1:], label=f"{pair}" if key == "transfer" else f"real {r['target']}")
            # marker area by the windows behind each point: a band of 1 window is not one of 36
            ax.scatter(xs, ys, s=[12 + 4 * n for n in ns], marker=style[0], color=line.get_color(), zorder=3)
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel(f"heard as\n{r['target']}")
        ax.legend(loc="lower left", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("window's median pitch (MIDI note)")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    return run_judged(_main, argv)


def _main(argv=None) -> int:
    from core.io import write_json_atomic
    from core.pitch import pitch_class_by_band

    ap = argparse.ArgumentParser(prog="python -m evaluation.register", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pair_options(ap)
    ap.add_argument("--band", type=ranged(int, 1, 24), default=4, help="semitones per band")
    ap.add_argument("--out", type=Path, default=Path("out/register"))
    a = ap.parse_args(argv)
    ev = judged_evaluator(a)
    clips = clips_for(ev, a, {n for p in a.pairs for n in p})
    results, real_cache = {}, {}
    for src, tgt in a.pairs:
        if (src, tgt) not in ev.presets:
            log.warning("no preset for %s → %s in %s: the default settings render it", src, tgt, a.presets)
        p = ev.base_preset(src, tgt)
        verdicts, kept = [], {}
        for c in clips[src]:
            y = ev.render(c.audio, src, tgt, p.sigma_max, p.steps, "offline", base=p)
            est = ev.tracker(y, ev.sr)
            verdicts += window_verdicts(y, ev.sr, est, ev.classifier)
            ref = ev.track(f"in:{src}:{c.name}", c.audio)
            kept = merge_kept(kept, pitch_class_by_band(ref, est, a.band, ev.cfg.confidence, ev.cfg.gate_db,
                                                        transpose=ev.frame_moves(ref, ev.moved(c.audio, p)[1])))
        if tgt not in real_cache:
            real_cache[tgt] = []
            for c in clips[tgt]:
                y = ev.decode(ev.encode(c.audio), tgt)
                real_cache[tgt] += window_verdicts(y, ev.sr, ev.tracker(y, ev.sr), ev.classifier)
        results[f"{src}-to-{tgt}"] = dict(target=tgt, sigma_max=p.sigma_max, steps=p.steps, prior=p.prior,
                                          transpose=p.transpose, fold_centre=p.fold_centre,
                                          transfer=by_band(verdicts, a.band), pitch_class=kept,
                                          real=by_band(real_cache[tgt], a.band))
        r = results[f"{src}-to-{tgt}"]
        print(f"\n{src} → {tgt} (σmax {p.sigma_max:g}, {p.steps} steps, {p.prior}, transpose {p.transpose:+d}"
              f"{f', fold {p.fold_centre}' if p.fold_centre else ''}); "
              f"{len(clips[src])} {a.split} clips of {src}, {len(clips[tgt])} of {tgt}, ≤ {a.seconds:g} s each")
        print(format_bands(tgt, r["transfer"], r["real"], a.band))
        print(format_kept(kept, a.band))
    write_json_atomic(a.out / "register.json", dict(
        band=a.band, clips={n: len(c) for n, c in clips.items()}, seconds=a.seconds, split=a.split,
        classifier=str(a.classifier),
        pairs={k: {**v, "pitch_class": {str(b): kn for b, kn in v["pitch_class"].items()},
                   "transfer": {str(b): dict(c) for b, c in v["transfer"].items()},
                   "real": {str(b): dict(c) for b, c in v["real"].items()}} for k, v in results.items()}))
    print(f"\n{plot(results, a.band, a.out / 'register.png')}, {a.out / 'register.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
