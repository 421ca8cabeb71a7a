"""Weight soups of codecs from one lineage (same config): the mean of their float weights, statistics unfitted."""
import sys, torch
sys.path.insert(0, "/work/main")
from core.codec import Codec
out, files = sys.argv[1], sys.argv[2:]
cks = [torch.load(f, map_location="cpu", weights_only=False) for f in files]
assert all(c["config"] == cks[0]["config"] for c in cks)
codec = Codec.compact(**cks[0]["config"])
sd = {}
for k, v in cks[0]["state_dict"].items():
    if k in ("latent_mean", "latent_std") or not v.is_floating_point():
        sd[k] = codec.state_dict()[k] if k.startswith("latent_") else v
    else:
        sd[k] = sum(c["state_dict"][k].float() for c in cks) / len(cks)
codec.load_state_dict(sd)
codec.train_info = dict(soup=files)
codec.save(out, half=False)
print(out, "from", files)
