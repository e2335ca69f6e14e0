"""The PyTorch (and numpy) peer of lsmseg's benchmarks, as one long-lived process per variant: it sets the work up,
prints {"ready": ...}, then for every line "run [TASK]" on stdin runs one repetition and prints one JSON line
{"s": seconds, ...}; "profile" runs one repetition under torch's autograd profiler and prints its per-operator
totals; "quit" (or end of input) ends it. bench/common.ts starts it as shipped and with lsmseg's heap settings.

Works (the same work as the anchor scripts in ../shared/anchors, which stay the definition of it):
  unet-step --precision P --patch N --batch B --threads T   one training step of unet_step.py's U-Net
  pretrain  --precision P --patch N --batch B --threads T   one MAE step (bench/pretrain_peer.py)
  predict   --size S --patch N --batch B --precision P --threads T [--mirror]
                                                            sliding_window.py's prediction of one cube
  (these three also take --device cpu|cuda[:N] and --features C1,C2,... (the U-Net's channels, 16,32,64,128 by
  default): on CUDA the work runs there, under torch.autocast("cuda"), timed between torch.cuda.synchronize())
  evaluate  PRED_DIR GT_DIR                                 the challenge metrics of every case (numpy +
                                                            scikit-image, fixtures/eval/make_metric_fixtures.py)
  io        FILE.nii.gz OUT.nii.gz                          nibabel: TASK read | write

Needs Debian's python3-torch (and python3-skimage, python3-nibabel for evaluate and io); run with /usr/bin/python3,
or the interpreter in LSMSEG_PYTHON (a CUDA PyTorch's, on a GPU machine).
"""
import argparse, itertools, json, math, os, sys, time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("LSMSEG_ANCHORS", os.path.join(here, "..", "..", "shared", "anchors")))

# waits for the device's queue around every timed repetition; set_device makes it torch.cuda.synchronize on CUDA
sync = lambda: None  # noqa: E731


def step_args(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--mirror", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--features", default="16,32,64,128")
    return ap.parse_args(argv)


def set_device(a):
    """The torch.device of --device (and the timing's sync for it), and --features as a tuple of channels."""
    global sync
    import torch
    dev = torch.device(a.device)
    if dev.type == "cuda":
        sync = torch.cuda.synchronize
    return dev, tuple(int(c) for c in a.features.split(","))


def unet_step(argv):
    """unet_step.py's loop body: forward in autocast, CE + soft Dice, backward, AdamW."""
    import torch, torch.nn.functional as F
    from unet_step import UNet
    a = step_args(argv)
    dev, ch = set_device(a)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = UNet(ch).to(dev)
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    p = a.patch
    x = torch.randn(a.batch, 1, p, p, p).to(dev)
    y = (torch.rand(a.batch, p, p, p) > 0.9).long().to(dev)

    def rep(_task):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            logits = net(x)
        logits = logits.float()
        prob = logits.softmax(1)[:, 1]
        dice = 1 - (2 * (prob * y).sum() + 1) / (prob.sum() + y.sum() + 1)
        loss = F.cross_entropy(logits, y) + dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {}
    return rep, {"torch": torch.__version__, "params": sum(q.numel() for q in net.parameters())}


def pretrain(argv):
    """bench/pretrain_peer.py's step: block mask on the bottleneck grid, masked MSE, AdamW."""
    import torch, torch.nn as nn, torch.nn.functional as F
    from unet_step import UNet
    from pretrain_peer import block_mask, decoder_features
    a = step_args(argv)
    dev, ch = set_device(a)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = UNet(ch).to(dev)
    recon = nn.Conv3d(ch[0], 1, 1).to(dev)
    params = [q for n, q in net.named_parameters() if not n.startswith("head.")] + list(recon.parameters())
    opt = torch.optim.AdamW(params, 1e-3)
    p = a.patch
    x = torch.randn(a.batch, 1, p, p, p).to(dev)
    grid = p // 2 ** (len(ch) - 1)

    def rep(_task):
        mask = F.interpolate(block_mask(a.batch, grid, 0.75), size=(p, p, p), mode="nearest").to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            pred = recon(decoder_features(net, x * (1 - mask)))
        pred = pred.float()
        loss = ((pred - x) ** 2 * mask).sum() / mask.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {}
    return rep, {"torch": torch.__version__}


def predict(argv):
    """sliding_window.py's timed region, unchanged: Gaussian map, step 0.5, batched windows, fp32 accumulation."""
    import torch
    from unet_step import UNet
    a = step_args(argv)
    dev, ch = set_device(a)
    torch.set_num_threads(a.threads)
    net = UNet(ch).to(dev).eval()

    def gaussian(p):
        c = (torch.arange(p, dtype=torch.float32) - (p - 1) / 2) / (p / 8)
        g1 = torch.exp(-0.5 * c * c)
        g = g1[:, None, None] * g1[None, :, None] * g1[None, None, :]
        g = g / g.max()
        return g.clamp_min(g[g > 0].min())

    def starts(n, p, step):
        if n <= p:
            return [0]
        k = math.ceil((n - p) / (p * step)) + 1
        return [round(i * (n - p) / (k - 1)) for i in range(k)]

    torch.manual_seed(0)
    s, p = a.size, a.patch
    vol = torch.randn(1, s, s, s).to(dev)
    w = gaussian(p).to(dev)

    def rep(_task):
        acc = torch.zeros(2, s, s, s, device=dev)
        norm = torch.zeros(s, s, s, device=dev)
        boxes = list(itertools.product(*(starts(s, p, 0.5) for _ in range(3))))
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            for i in range(0, len(boxes), a.batch):
                chunk = boxes[i:i + a.batch]
                x = torch.stack([vol[:, z:z + p, y:y + p, xx:xx + p] for z, y, xx in chunk])
                out = net(x).float()
                if a.mirror:
                    for axes in [ax for r in range(1, 4) for ax in itertools.combinations((2, 3, 4), r)]:
                        out += net(x.flip(axes)).float().flip(axes)
                    out /= 8
                for (z, y, xx), o in zip(chunk, out):
                    acc[:, z:z + p, y:y + p, xx:xx + p] += o * w
                    norm[z:z + p, y:y + p, xx:xx + p] += w
        (acc / norm).argmax(0).to(torch.uint8).cpu()
        return {"windows": len(boxes)}
    return rep, {"torch": torch.__version__}


def evaluate(argv):
    """The challenge's metrics of every case in PRED_DIR against GT_DIR, reading the .nii.gz files each time."""
    sys.path.insert(0, os.path.join(here, "..", "fixtures", "eval"))
    import nibabel as nib, numpy as np
    from make_metric_fixtures import evaluate_case
    pred_dir, gt_dir = argv
    names = sorted(os.listdir(gt_dir))

    def rep(_task):
        out = {}
        for f in names:
            gt = np.asanyarray(nib.load(os.path.join(gt_dir, f)).dataobj).transpose(2, 1, 0)
            pred = np.asanyarray(nib.load(os.path.join(pred_dir, f)).dataobj).transpose(2, 1, 0)
            r = evaluate_case(f, pred, gt)
            v = r.get("cldice", r.get("panoptic_quality"))
            out[f[:-7]] = [None if v is None or v != v else v, r["dice"]]
        return {"cases": out}
    return rep, {"numpy": np.__version__}


def io(argv):
    """nibabel reading a .nii.gz into memory, or writing it with nibabel's default gzip level."""
    import nibabel as nib, numpy as np
    src, dst = argv
    data = np.asanyarray(nib.load(src).dataobj)

    def rep(task):
        if task == "write":
            nib.save(nib.Nifti1Image(data, np.eye(4)), dst)
        else:
            np.asanyarray(nib.load(src).dataobj)
        return {}
    return rep, {"nibabel": nib.__version__}


def profile(rep):
    """One repetition under torch's autograd profiler: per-operator calls, total and self time (µs)."""
    import torch
    with torch.autograd.profiler.profile() as prof:
        sync()
        t0 = time.perf_counter()
        rep("")
        sync()
        s = time.perf_counter() - t0
    ops = [{"name": e.key, "calls": e.count, "totalUs": e.cpu_time_total, "selfUs": e.self_cpu_time_total} for e in prof.key_averages()]
    return {"s": s, "ops": ops}


WORKS = {"unet-step": unet_step, "pretrain": pretrain, "predict": predict, "evaluate": evaluate, "io": io}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in WORKS:
        sys.exit(f"usage: peer.py {{{','.join(WORKS)}}} ARGS")
    rep, info = WORKS[sys.argv[1]](sys.argv[2:])
    print(json.dumps({"ready": True, "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""), **info}), flush=True)
    for line in sys.stdin:
        cmd, _, task = line.strip().partition(" ")
        if cmd == "quit":
            break
        if cmd == "profile":
            print(json.dumps(profile(rep)), flush=True)
            continue
        sync()
        t0 = time.perf_counter()
        extra = rep(task)
        sync()
        print(json.dumps({"s": time.perf_counter() - t0, **extra}).replace("NaN", "null"), flush=True)


if __name__ == "__main__":
    main()
