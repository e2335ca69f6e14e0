"""PyTorch peer of bench/unet-step.ts and bench/predict.ts on any device (the GPU check runs it on CUDA), with the
anchor U-Net of ../shared/anchors/unet_step.py at any channel list (--features 32,64,128,256,320,320 is nnU-Net's
scale). The work is the anchors' unet_step.py and sliding_window.py, timed with torch.cuda.synchronize().

Usage: python3 bench/gpu_peer.py unet-step|predict [--device cuda] [--features 16,32,64,128] [--patch 64]
       [--batch 2] [--steps 6] [--size 128] [--precision bf16|fp32]
Prints one JSON line: {"median_s": ...} (unet-step) or {"seconds": ...} (predict).
"""
import argparse, itertools, json, math, os, sys, time
import torch, torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("LSMSEG_ANCHORS", os.path.join(here, "..", "..", "shared", "anchors")))
from unet_step import UNet  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("task", choices=["unet-step", "predict"])
ap.add_argument("--device", default="cuda")
ap.add_argument("--features", default="16,32,64,128")
ap.add_argument("--patch", type=int, default=64)
ap.add_argument("--batch", type=int, default=2)
ap.add_argument("--steps", type=int, default=6)
ap.add_argument("--size", type=int, default=128)
ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
args = ap.parse_args()
dev = torch.device(args.device)
sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
torch.manual_seed(0)
net = UNet(tuple(int(c) for c in args.features.split(","))).to(dev)
bf16 = args.precision == "bf16"
p = args.patch

if args.task == "unet-step":
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    x = torch.randn(args.batch, 1, p, p, p, device=dev)
    y = (torch.rand(args.batch, p, p, p, device=dev) > 0.9).long()
    times = []
    for _ in range(args.steps):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            logits = net(x)
        logits = logits.float()
        prob = logits.softmax(1)[:, 1]
        loss = F.cross_entropy(logits, y) + 1 - (2 * (prob * y).sum() + 1) / (prob.sum() + y.sum() + 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t0)
    times = sorted(times[1:])
    print(json.dumps({"median_s": round(times[len(times) // 2], 4), "patch": p, "batch": args.batch, "precision": args.precision,
                      "device": args.device, "features": args.features, "torch": torch.__version__}))
else:
    net.eval()
    s = args.size
    c = (torch.arange(p, dtype=torch.float32) - (p - 1) / 2) / (p / 8)
    g1 = torch.exp(-0.5 * c * c)
    w = g1[:, None, None] * g1[None, :, None] * g1[None, None, :]
    w = (w / w.max()).clamp_min(1e-6).to(dev)
    starts = [0] if s <= p else [round(i * (s - p) / (math.ceil((s - p) / (p * 0.5)))) for i in range(math.ceil((s - p) / (p * 0.5)) + 1)]
    boxes = list(itertools.product(starts, starts, starts))
    vol = torch.randn(1, s, s, s, device=dev)
    sync()
    t0 = time.perf_counter()
    acc = torch.zeros(2, s, s, s, device=dev)
    norm = torch.zeros(s, s, s, device=dev)
    with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(boxes), args.batch):
            chunk = boxes[i:i + args.batch]
            out = net(torch.stack([vol[:, z:z + p, yy:yy + p, xx:xx + p] for z, yy, xx in chunk])).float()
            for (z, yy, xx), o in zip(chunk, out):
                acc[:, z:z + p, yy:yy + p, xx:xx + p] += o * w
                norm[z:z + p, yy:yy + p, xx:xx + p] += w
    seg = (acc / norm).argmax(0).to(torch.uint8).cpu()
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": round(dt, 3), "voxels_per_s": round(s ** 3 / dt), "windows": len(boxes), "size": s, "patch": p,
                      "precision": args.precision, "device": args.device, "features": args.features, "torch": torch.__version__}))
