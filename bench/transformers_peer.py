"""PyTorch peer of bench/transformers.ts: the forward time of MONAI's own UNETR or SwinUNETR (fp32, eval,
no_grad) on the same configuration, on CPU.

Needs Debian's python3-torch, einops and a MONAI source checkout on PYTHONPATH (bench/transformers.ts passes
LSMSEG_MONAI and LSMSEG_PYLIB; see fixtures/nn/make_transformer_parity.py). Run with /usr/bin/python3.
Usage: python3 bench/transformers_peer.py --arch unetr|swinunetr --size 64 --reps 3 --threads 2 [--feature 16 --hidden 768 --heads 12]
Prints one JSON line: {"times_s": [...]}
"""
import argparse, json, time
import torch
from monai.networks.nets import UNETR, SwinUNETR

p = argparse.ArgumentParser()
p.add_argument("--arch", default="unetr")
p.add_argument("--size", type=int, default=64)
p.add_argument("--reps", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--feature", type=int, default=16)
p.add_argument("--hidden", type=int, default=768)
p.add_argument("--heads", type=int, default=12)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
s = a.size
if a.arch == "unetr":
    net = UNETR(1, 2, (s, s, s), feature_size=a.feature, hidden_size=a.hidden, mlp_dim=4 * a.hidden, num_heads=a.heads, proj_type="perceptron")
else:
    net = SwinUNETR(1, 2, feature_size=a.feature, use_v2=True)
net.eval()
x = torch.randn(1, 1, s, s, s)
times = []
with torch.no_grad():
    net(x)  # warm-up
    for _ in range(a.reps):
        t0 = time.perf_counter()
        net(x)
        times.append(time.perf_counter() - t0)
print(json.dumps({"times_s": times}))
