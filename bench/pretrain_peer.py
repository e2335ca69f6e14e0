"""PyTorch peer of bench/pretrain.ts: one masked-image-modelling (MAE/SparK-style) pretraining step on the
anchor U-Net of ../shared/anchors/unet_step.py (the unet-step benchmark's network), with a 1x1x1
reconstruction head instead of the segmentation head.

Step: draw a block mask on the bottleneck grid (patch / 8), exactly 75 % of the cells per sample, upsample it
(nearest) to the patch, zero the masked voxels, run encoder + decoder + reconstruction head, MSE on the masked
voxels only, backward, AdamW(lr 1e-3).

Needs Debian's python3-torch; run with /usr/bin/python3.
Usage: python3 bench/pretrain_peer.py [--precision bf16|fp32] [--patch 64] [--batch 2] [--steps 6] [--threads 2]
       [--device cuda] [--features 32,64,128,256,320,320]
Prints one JSON line: {"median_s": ..., ...}
"""
import argparse, json, os, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
anchors = os.environ.get("LSMSEG_ANCHORS", os.path.join(here, "..", "..", "shared", "anchors"))
sys.path.insert(0, anchors)
from unet_step import UNet  # noqa: E402


def decoder_features(net, x):
    skips = []
    for e in net.enc:
        x = e(x)
        skips.append(x)
    skips.pop()
    for u, d in zip(net.up, net.dec):
        x = d(torch.cat([u(x), skips.pop()], 1))
    return x


def block_mask(batch, grid, ratio):
    cells = grid ** 3
    masked = round(ratio * cells)
    order = torch.rand(batch, cells).argsort(1)[:, :masked]
    m = torch.zeros(batch, cells)
    m.scatter_(1, order, 1.0)
    return m.view(batch, 1, grid, grid, grid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--features", default="16,32,64,128")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    ch = tuple(int(c) for c in args.features.split(","))
    net = UNet(ch).to(dev)
    recon = nn.Conv3d(ch[0], 1, 1).to(dev)
    params = [p for n, p in net.named_parameters() if not n.startswith("head.")] + list(recon.parameters())
    opt = torch.optim.AdamW(params, 1e-3)
    p = args.patch
    x = torch.randn(args.batch, 1, p, p, p, device=dev)
    grid = p // 2 ** (len(ch) - 1)
    times = []
    for _ in range(args.steps):
        sync()
        t0 = time.perf_counter()
        mask = F.interpolate(block_mask(args.batch, grid, 0.75), size=(p, p, p), mode="nearest").to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            pred = recon(decoder_features(net, x * (1 - mask)))
        pred = pred.float()
        loss = ((pred - x) ** 2 * mask).sum() / mask.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t0)
    times = sorted(times[1:])
    print(json.dumps({"median_s": round(times[len(times) // 2], 4), "params": sum(q.numel() for q in params),
                      "precision": args.precision, "patch": p, "batch": args.batch, "threads": args.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
