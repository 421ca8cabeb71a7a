# Session 23 probe, kept as run (run from the repository root; see README.md beside it).
import sys, numpy as np, torch
sys.path.insert(0, '.')
from pathlib import Path
from core.timbre import TimbreClassifier, DEFAULT_PATH
from evaluation.ceiling import load_clips, codec_round_trip
torch.set_num_threads(2)
judge = TimbreClassifier.load(DEFAULT_PATH); ins = judge.instruments; sr = 24000
split = sys.argv[1]; name = sys.argv[2]; c = sys.argv[3]
clips = load_clips(Path('data/corpus'), split, [name], sr, 8, 8.0)[name]
through, _ = codec_round_trip(Path(c)); ys = [through(x) for x in clips]
def probs(y):
    l = judge.analyse(y, sr)[0].mean(0); p = np.exp(l - l.max()); return p / p.sum()
def show(tag, ys):
    k = ins.index(name); ps = [probs(y) for y in ys]
    print(f'{tag:34s}', ' '.join(f'{p[k]:.2f}{"" if np.argmax(p)==k else "*"+ins[np.argmax(p)][:2]}' for p in ps), f' n={sum(np.argmax(p)==k for p in ps)}/{len(ps)}', flush=True)
exec((Path(__file__).parent / 'envlib.py').read_text())  # stft_np, istft_np, envmatch
stft, istft, f = stft_np, istft_np, _f
def clipmatch(x, y, edges):  # one gain per band over the clip (static EQ)
    X, Y = stft(x), stft(y)
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (f >= lo) & (f < hi)
        Y[:, m] *= np.sqrt((np.abs(X[:, m])**2).sum() / ((np.abs(Y[:, m])**2).sum() + 1e-12))
    return istft(Y, len(y))
show('input', clips); show(c, ys)
show('  istft(stft(y)) check', [istft(stft(y), len(y)) for y in ys])
E = [2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12001]
show('  env-match per frame 1k bands >2k', [envmatch(x, y, E) for x, y in zip(clips, ys)])
show('  static EQ per clip 1k bands >2k', [clipmatch(x, y, E) for x, y in zip(clips, ys)])
show('  env-match per frame >4k', [envmatch(x, y, E[2:]) for x, y in zip(clips, ys)])
show('  static EQ >4k', [clipmatch(x, y, E[2:]) for x, y in zip(clips, ys)])
for i,(x,y) in enumerate(zip(clips, ys)):
    X, Y = np.abs(stft(x))**2, np.abs(stft(y))**2
    print(i, ' '.join(f'{10*np.log10(Y[:, (f>=lo)&(f<hi)].sum()/X[:, (f>=lo)&(f<hi)].sum()):+5.1f}' for lo,hi in zip([0,500,1000]+E[:-1],[500,1000,2000]+E[1:])))
