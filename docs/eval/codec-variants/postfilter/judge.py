import numpy as np, sys, json, time
sys.path.insert(0, "/work/main"); sys.path.insert(0, "/tmp/pf")
import torch; torch.set_num_threads(2)
from core.timbre import TimbreClassifier, DEFAULT_PATH
from pf import pitch_postfilter
from evaluation.ceiling import harmonic_profile
j = TimbreClassifier.load(DEFAULT_PATH)
rt = np.load(sys.argv[1])
cfgs = json.loads(sys.argv[2]) if len(sys.argv) > 2 else [None]
insts = sys.argv[3].split(",") if len(sys.argv) > 3 else j.instruments
for cfg in cfgs:
    t = time.time()
    line = []
    for name in insts:
        ok = 0; margins = []
        for i in range(8):
            y = rt[f"{name}_{i}"]
            if cfg is not None:
                y = pitch_postfilter(y, **cfg)
            lg = j.analyse(y, 24000)[0].mean(0)
            t_ = j.instruments.index(name)
            other = np.max(np.delete(lg, t_))
            margins.append(lg[t_] - other); ok += lg[t_] > other
        line.append(f"{name} {ok}/8 min {min(margins):+.2f} med {np.median(margins):+.2f}")
    print(cfg, f"{time.time()-t:.0f}s", " | ".join(line), flush=True)
