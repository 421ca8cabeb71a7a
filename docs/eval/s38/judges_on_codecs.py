"""Session 38: the same round trips judged by two judges, so that a change of judge is read on identical audio.
Each codec's round trip of the 64 held-out-font clips per instrument (heldout, confirm … confirm7) is computed once
and scored by every judge given (no pitch: that does not depend on the judge; `evaluation.ceiling` has it).
Run from the repository root:

    OMP_NUM_THREADS=2 python docs/eval/s38/judges_on_codecs.py JUDGE[,JUDGE…] CODEC [CODEC…] > OUT.txt
"""
import sys
from pathlib import Path

from core.timbre import TimbreClassifier
from evaluation.ceiling import _identity, clip_files, codec_round_trip, load_clips, recognized_by_split, score

SPLITS = "heldout,confirm,confirm2,confirm3,confirm4,confirm5,confirm6,confirm7"
judges = {j: TimbreClassifier.load(j) for j in sys.argv[1].split(",")}
first = next(iter(judges.values()))
sr, names = first.cfg.sample_rate, first.instruments
clips = load_clips(Path("data/corpus"), SPLITS, names, sr, 64, 8.0)
labels = {i: [f.parent.name for f in fs] for i, fs in clip_files(Path("data/corpus"), SPLITS, names, 64).items()}
audio = {"input": clips}
for c in sys.argv[2:]:
    through, _ = codec_round_trip(Path(c))
    audio[c] = {i: [through(x) for x in xs] for i, xs in clips.items()}
print(f"{SPLITS}: {len(clips[names[0]])} clips × 8 s per instrument, the same audio for every judge")
print("cells: clips heard as itself / share of the other instruments' clips heard as this one / least, median margin")
print("| audio | judge | " + " | ".join(names) + " | clips per split (" + ", ".join(names) + ") |")
print("|---|---|" + "---|" * (len(names) + 1))
for label, per in audio.items():
    for j, judge in judges.items():
        rows = score(judge, None, per, _identity, sr)  # the audio is already what is judged
        split_counts = recognized_by_split(rows, labels)
        cells = [f"{v['heard'].count(i)}/{len(v['heard'])} / "
                 f"{100 * v['attracts']:.0f}% / {v['margin']['least']:+.2f}, {v['margin']['median']:+.2f}"
                 for i, v in ((i, rows[i]) for i in names)]
        per_split = "; ".join(",".join(str(split_counts[i][s][0]) for s in dict.fromkeys(labels[i])) for i in names)
        print(f"| {label} | {j} | " + " | ".join(cells) + f" | {per_split} |", flush=True)
