"""Session 38 probe: is a low-pass by itself a clarinet cue for the judge? The held-out inputs (no codec) judged
whole and low-passed: an FFT brick wall (what `evaluation.ceiling --low-pass` applies), a steep causal Butterworth,
and the one-pole low-pass the judge trained with (core.degrade.one_pole_lowpass). Run from the repository root:

    OMP_NUM_THREADS=2 python docs/eval/s38/judge_low_pass.py [JUDGE [OUT.json]] > OUT.txt

JUDGE defaults to the shipped judge; the shipped one's reading is judge-low-pass.txt/.json.
"""
import json
import sys

import numpy as np
from scipy.signal import butter, sosfilt

from core.degrade import one_pole_lowpass
from core.timbre import DEFAULT_PATH, TimbreClassifier
from evaluation.ceiling import _identity, load_clips, low_passed, score

SPLITS = "heldout,confirm,confirm2,confirm3,confirm4,confirm5,confirm6,confirm7"
JUDGE = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PATH
OUT = sys.argv[2] if len(sys.argv) > 2 else "docs/eval/s38/judge-low-pass.json"
judge = TimbreClassifier.load(JUDGE)
sr = judge.cfg.sample_rate
clips = load_clips("data/corpus", SPLITS, judge.instruments, sr, 64, 8.0)


def butterworth(hz, order=8):
    sos = butter(order, hz, fs=sr, output="sos")
    return lambda x: sosfilt(sos, x).astype(np.float32)


rows = {"input": _identity}
for hz in (4000, 6000, 8000):
    rows[f"brick wall {hz} Hz"] = low_passed(_identity, hz, sr)
for hz in (4000, 6000):
    rows[f"Butterworth order 8, {hz} Hz"] = butterworth(hz)
for hz in (2000, 4000):
    rows[f"one-pole {hz} Hz (trained on)"] = lambda x, hz=hz: one_pole_lowpass(x, sr, hz)

out = {}
print(f"{SPLITS}: {len(clips[judge.instruments[0]])} clips × 8 s per instrument, inputs only (no codec); "
      f"judge {JUDGE}")
print("cells: recognized as itself / share of the other instruments' clips heard as this one")
print("| row | " + " | ".join(judge.instruments) + " |")
print("|---|" + "---|" * len(judge.instruments))
for label, through in rows.items():
    r = score(judge, None, clips, through, sr)
    out[label] = {k: {"recognized": v["recognized"], "attracts": v["attracts"], "heard_as": v["heard_as"]}
                  for k, v in r.items()}
    print(f"| {label} | " + " | ".join(f"{100 * r[i]['recognized']:.0f}% / {100 * r[i]['attracts']:.0f}%"
                                       for i in judge.instruments) + " |", flush=True)
json.dump(out, open(OUT, "w"), indent=1)
