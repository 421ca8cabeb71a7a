# Session 23 probe, kept as run (run from the repository root; see README.md beside it).
import sys, numpy as np, torch
sys.path.insert(0,'.')
from pathlib import Path
from evaluation.ceiling import load_clips, codec_round_trip
from core.spectral import MelLoss, LogStftLoss, HarmonicPeakLoss
from train.losses import hinge_g_loss, feature_matching_loss
from train.codec import disc_path, DISC_FORMAT
from core.io import load_checkpoint
from encodec.msstftd import MultiScaleSTFTDiscriminator
torch.set_num_threads(2)
sr=24000
exec((Path(__file__).parent / 'envlib.py').read_text())
disc = MultiScaleSTFTDiscriminator(filters=16)
disc.load_state_dict({k: v.float() for k, v in load_checkpoint(disc_path(Path(sys.argv[1])), DISC_FORMAT)["disc"].items()}); disc.eval()
mel, stft, peak = MelLoss(sr), LogStftLoss(), HarmonicPeakLoss(sample_rate=sr)
through,_ = codec_round_trip(Path(sys.argv[1]))
for split, name in (('heldout','clarinet'), ('test','clarinet'), ('heldout','violin'), ('heldout','flute')):
    xs = load_clips(Path('data/corpus'), split, [name], sr, 8, 4.0)[name]
    ys = [through(x) for x in xs]
    E = [4000, 5000, 6000, 7000, 8000, 10000, 12001]
    zs = [envmatch(x, y, E) for x, y in zip(xs, ys)]
    X, Y, Z = (torch.tensor(np.stack(v))[:, None] for v in (xs, ys, zs))
    with torch.no_grad():
        def terms(A):
            lm, ll = mel.log_and_linear(A, X)
            lr, fr = disc(X); la, fa = disc(A)
            return dict(time=float((A-X).abs().mean()), mel=float(lm), lin=float(ll), stft=float(stft(A, X)), peak=float(peak(A, X)),
                        g=float(hinge_g_loss(la)), fm=float(feature_matching_loss(fr, fa)))
        ty, tz = terms(Y), terms(Z)
    print(split, name, '  '.join(f'{k} {ty[k]:.3f}->{tz[k]:.3f}' for k in ty), flush=True)
