# Session 23 probe, kept as run (run from the repository root; see README.md beside it).
import sys, numpy as np, torch
sys.path.insert(0,'.')
from core.codec import Codec
sr=24000
for path in sys.argv[1:]:
    c = Codec.load(path).float().eval()
    print(path)
    for amp in (0.3, 0.03, 0.003, 0.0):
        t=np.arange(sr*3)/sr; x=(amp*np.sin(2*np.pi*440*t)).astype(np.float32)
        with torch.no_grad(): y=c.decode_numpy(c.encode_numpy(x))[:len(x)]
        seg=y[sr:2*sr]*np.hanning(sr); P=np.abs(np.fft.rfft(seg))**2/ (np.hanning(sr).sum()**2/4)
        # absolute dBFS-ish per band (sine amplitude 1 -> 0 dB)
        print(f'  amp {amp:<6}', 'h1 %.0f'%(10*np.log10(P[430:450].sum()+1e-20)), ' bands:', ' '.join(f'{10*np.log10(P[k*1000:(k+1)*1000].sum()+1e-20):.0f}' for k in range(2,12)))
