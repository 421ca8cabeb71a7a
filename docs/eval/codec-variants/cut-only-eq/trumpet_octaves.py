"""Session 32's probe of the trumpet's octave errors, clip by clip: pitch kept, pitch class kept (octaves
forgiven), the fundamental against the second harmonic (input → round trip) and the share of frames PESTO calls
voiced, for one split's clips through one codec.

    python docs/eval/codec-variants/cut-only-eq/trumpet_octaves.py confirm > trumpet-confirm.txt
    python docs/eval/codec-variants/cut-only-eq/trumpet_octaves.py valid 16 > trumpet-valid.txt
"""
import sys
from pathlib import Path

import numpy as np

from core.instruments import midi_to_hz
from core.manifest import corpus_files
from core.pitch import PitchTracker, compare_tracks
from evaluation.ceiling import codec_round_trip, harmonic_profile, load_clips

split, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8
codec, sr, corpus = Path(sys.argv[3] if len(sys.argv) > 3 else "models/codec.pt"), 24_000, Path("data/corpus")
clips = load_clips(corpus, split, ["trumpet"], sr, n, 8.0)["trumpet"]
files = sorted(corpus_files(corpus, split, ["trumpet"])["trumpet"])[:n]  # load_clips's order
through, _ = codec_round_trip(codec)
tracker = PitchTracker()
print(f"{codec}, trumpet, {split} split, {len(clips)} clips × 8 s")
print("| clip | median note (MIDI) | pitch kept | pitch class kept | h1 − h2 in → out, dB | voiced in / out |")
print("|---|---|---|---|---|---|")
for f, x in zip(files, clips):
    y = through(x)
    t_in, t_out = tracker(x, sr), tracker(y, sr)
    m = compare_tracks(t_in, t_out)
    f0 = np.where(t_in.voiced(), midi_to_hz(t_in.semitones), np.nan)
    h = [harmonic_profile(s, sr, f0, t_in.step_ms / 1000)["h1_h2_db"] for s in (x, y)]
    note = np.nanmedian(np.where(t_in.voiced(), t_in.semitones, np.nan))
    print(f"| {Path(f).name} | {note:.0f} | {m.pitch_acc:.1%} | {m.chroma_acc:.1%} | {h[0]:+.1f} → {h[1]:+.1f} | "
          f"{t_in.voiced().mean():.2f} / {t_out.voiced().mean():.2f} |")
