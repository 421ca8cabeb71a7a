# Session 23 probe, kept as run (run from the repository root; see README.md beside it).
import sys, numpy as np, torch
sys.path.insert(0, '.')
from pathlib import Path
from core.timbre import TimbreClassifier, DEFAULT_PATH
from evaluation.ceiling import load_clips, codec_round_trip
import soxr
torch.set_num_threads(2)
judge = TimbreClassifier.load(DEFAULT_PATH)
ins = judge.instruments
sr = 24000
split = sys.argv[1] if len(sys.argv) > 1 else 'heldout'
nclips = int(sys.argv[2]) if len(sys.argv) > 2 else 8
codecs = sys.argv[3:] or ['models/codec.pt']
clips = load_clips(Path('data/corpus'), split, ['clarinet'], sr, nclips, 8.0)['clarinet']
def probs(y):
    l = judge.analyse(y, sr)[0].mean(0); p = np.exp(l - l.max()); p /= p.sum(); return p
def lowpass(y, hz):
    Y = np.fft.rfft(y); f = np.fft.rfftfreq(len(y), 1/sr); Y[f > hz] = 0; return np.fft.irfft(Y, len(y)).astype(np.float32)
def splice(x, y, hz):  # y below hz, x above
    X, Y = np.fft.rfft(x), np.fft.rfft(y); f = np.fft.rfftfreq(len(y), 1/sr); Y[f > hz] = X[f > hz]; return np.fft.irfft(Y, len(y)).astype(np.float32)
def show(tag, ys):
    cl = ins.index('clarinet'); fl = ins.index('flute')
    ps = [probs(y) for y in ys]
    print(f'{tag:34s}', ' '.join(f'{p[cl]:.2f}{"" if np.argmax(p)==cl else "*"+ins[np.argmax(p)][:2]}' for p in ps), f' n={sum(np.argmax(p)==cl for p in ps)}/{len(ps)}', flush=True)
show('input', clips)
for c in codecs:
    through, _ = codec_round_trip(Path(c))
    ys = [through(x) for x in clips]
    show(c, ys)
    if len(codecs) == 1:
        for hz in (8000, 6000, 4000):
            show(f'  lowpass {hz}', [lowpass(y, hz) for y in ys])
        for hz in (8000, 4000, 2000):
            show(f'  input above {hz}', [splice(x, y, hz) for x, y in zip(clips, ys)])
            show(f'  codec above {hz}', [splice(y, x, hz) for x, y in zip(clips, ys)])
        show('  input lowpass 8000', [lowpass(x, 8000) for x in clips])
