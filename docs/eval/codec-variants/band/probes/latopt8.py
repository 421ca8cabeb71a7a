# Session 23 probe, kept as run (run from the repository root; see README.md beside it).
import sys, numpy as np, torch
sys.path.insert(0,'.')
from pathlib import Path
from evaluation.ceiling import load_clips
from core.codec import Codec
from core.timbre import TimbreClassifier, DEFAULT_PATH
from core.spectral import MelLoss
torch.set_num_threads(2)
sr=24000
c = Codec.load(sys.argv[1]).float().eval(); c.requires_grad_(False)
judge = TimbreClassifier.load(DEFAULT_PATH); ins = judge.instruments
xs = load_clips(Path('data/corpus'), 'heldout', ['clarinet'], sr, 8, 8.0)['clarinet']
X = torch.tensor(np.stack(xs))[:, None]
mel = MelLoss(sr)
win = torch.hann_window(1024)
f = torch.fft.rfftfreq(1024, 1/sr)
edges = [2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12001]
B = torch.stack([((f >= lo) & (f < hi)).float() for lo, hi in zip(edges[:-1], edges[1:])])  # bands x bins
def env(a):
    S = torch.stft(a.reshape(-1, a.shape[-1]), 1024, 256, window=win, return_complex=True).abs() ** 2  # clips, bins, frames
    return torch.einsum('kb,cbt->ckt', B, S)
ex = env(X); floor = ex.amax(dim=(1, 2), keepdim=True) * 1e-10
def band_loss(y):
    return (torch.log(env(y) + floor) - torch.log(ex + floor)).abs().mean()
with torch.no_grad(): z0 = c.encode_raw(X)
z = z0.clone().requires_grad_(True)
opt = torch.optim.Adam([z], lr=0.5)
w = float(sys.argv[2])
def probs(y):
    l = judge.analyse(y, sr)[0].mean(0); p = np.exp(l - l.max()); return p / p.sum()
def report(tag, Y):
    k = ins.index('clarinet'); ps = [probs(y) for y in Y[:, 0].numpy()]
    print(tag, ' '.join(f'{p[k]:.2f}{"" if np.argmax(p)==k else "*"+ins[np.argmax(p)][:2]}' for p in ps), f' n={sum(np.argmax(p)==k for p in ps)}/8', flush=True)
for it in range(int(sys.argv[3]) + 1):
    y = c.decoder(z)[..., :X.shape[-1]]
    lm, lb = mel(y, X), band_loss(y)
    if it % 50 == 0:
        print(it, f'mel {float(lm):.3f} band {float(lb):.3f} dz {float((z-z0).pow(2).mean().sqrt()/z0.std()):.3f}', flush=True)
        if it % 100 == 0: report('   judge', y.detach())
    opt.zero_grad(); (lm + w * lb).backward(); opt.step()
