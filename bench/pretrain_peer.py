"""PyTorch peer of bench/pretrain.ts: one masked-image-modelling (MAE/SparK-style) pretraining step on the
anchor U-Net of ../shared/anchors/unet_step.py (the unet-step benchmark's network), with a 1x1x1
reconstruction head instead of the segmentation head.

Step: draw a block mask on the bottleneck grid (patch / 8), exactly 75 % of the cells per sample, upsample it
(nearest) to the patch, zero the masked voxels, run encoder + decoder + reconstruction head, MSE on the masked
voxels only, backward, AdamW(lr 1e-3).

The step itself is bench/peer.py's `pretrain` work (one repetition per request, as every peer runs); this file
holds the pieces it shares with the anchors (the work's --device and --features are peer.py's). Needs Debian's
python3-torch; run with /usr/bin/python3 or LSMSEG_PYTHON.
"""
import torch


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
