import numpy as np, torch, sys
sys.path.insert(0, "/work/main")
from pathlib import Path
from evaluation.ceiling import load_clips, codec_round_trip
torch.set_num_threads(2)
SPLIT = __import__("os").environ.get("SPLIT","heldout")
insts = "cello,clarinet,flute,tenor_sax,trumpet,violin".split(",")
clips = load_clips(Path("/work/main/data/corpus"), SPLIT, insts, 24000, 8, 8.0)
for codec in sys.argv[1:]:
    through, sr = codec_round_trip(Path(codec))
    out = {}
    for k, xs in clips.items():
        out[k] = [through(x) for x in xs]
    tag = Path(codec).parent.name + "-" + Path(codec).stem
    np.savez(f"/tmp/pf/rt-{tag}-{SPLIT}.npz", **{f"{k}_{i}": y for k, ys in out.items() for i, y in enumerate(ys)})
np.savez(f"/tmp/pf/in-{SPLIT}.npz", **{f"{k}_{i}": y for k, ys in clips.items() for i, y in enumerate(ys)})
