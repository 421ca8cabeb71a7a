import numpy as np, sys, json
sys.path.insert(0, "/work/main"); sys.path.insert(0, "/tmp/pf")
import torch; torch.set_num_threads(2)
from core.timbre import TimbreClassifier, DEFAULT_PATH
from exp import expander
from evaluation.ceiling import band_level_change
j = TimbreClassifier.load(DEFAULT_PATH)
split = sys.argv[1]
rt = np.load(f"/tmp/pf/rt-{sys.argv[2]}-{split}.npz" if split != "heldout" else f"/tmp/pf/rt-{sys.argv[2]}.npz")
xin = np.load(f"/tmp/pf/in-{split}.npz" if split != "heldout" else "/tmp/pf/in.npz")
cfgs = json.loads(sys.argv[3])
for cfg in cfgs:
    line = []; tot = 0
    for name in j.instruments:
        ok = 0; margins = []; bands = []
        for i in range(8):
            x = xin[f"{name}_{i}"]; y = rt[f"{name}_{i}"]
            if cfg == "input": y = x
            elif cfg is not None: y = expander(y, **cfg)
            lg = j.analyse(y, 24000)[0].mean(0)
            t_ = j.instruments.index(name)
            margins.append(lg[t_] - np.max(np.delete(lg, t_))); ok += margins[-1] > 0
            bands.append(band_level_change(x, y, 24000))
        tot += ok
        b = {k: np.mean([d[k] for d in bands]) for k in bands[0]}
        line.append(f"{name[:4]} {ok}/8 m{min(margins):+.1f} [{' '.join(f'{v:+.0f}' for v in b.values())}]")
    print(cfg, tot, " | ".join(line), flush=True)
