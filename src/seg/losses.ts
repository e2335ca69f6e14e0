// Segmentation losses: nnU-Net's Dice + cross-entropy with deep supervision, and soft clDice
// (Shit et al., CVPR 2021) for tubular structures. With `ignore`, target voxels of IGNORE_LABEL (sparse
// annotation) count in no term, as nnU-Net's DC_and_CE_loss with an ignore label: the Dice sums run over a loss
// mask, the cross-entropy is the mean over labelled voxels (0 when a batch has none).
import { IGNORE_LABEL } from "../data/labels.ts";
import { type Tensor, crossEntropy, interpolate, maxPool3d, oneHot, ones, relu, softmax, zeros } from "../torch/index.ts";

/** Target voxels that are labelled (not IGNORE_LABEL) as a float mask [B, 1, D, H, W], and the target with ignored voxels set to 0. */
function labelledMask(target: Tensor): { mask: Tensor; target: Tensor } {
  const ignored = target.eq(IGNORE_LABEL);
  return { mask: ignored.logicalNot().unsqueeze(1).float(), target: target.maskedFill(ignored, 0) };
}

export interface IgnoreOption {
  /** Leave target voxels of IGNORE_LABEL out of the loss. */
  ignore?: boolean;
}

/**
 * Soft Dice over foreground classes, as nnU-Net's MemoryEfficientSoftDiceLoss (batch Dice, smooth 1e-5,
 * background excluded). logits: [B, C, D, H, W]; target: [B, D, H, W] int64. Returns 1 − mean Dice.
 */
export function softDiceLoss(logits: Tensor, target: Tensor, o: { smooth?: number; batchDice?: boolean } & IgnoreOption = {}): Tensor {
  const smooth = o.smooth ?? 1e-5;
  const c = logits.shape[1];
  const m = o.ignore ? labelledMask(target) : null;
  let probs = softmax(logits.float(), 1).narrow(1, 1, c - 1);               // [B, C-1, D, H, W]
  let onehot = oneHot(m ? m.target : target, c).permute(0, 4, 1, 2, 3).narrow(1, 1, c - 1).float();
  if (m) { probs = probs.mul(m.mask); onehot = onehot.mul(m.mask); }
  const axes = o.batchDice ?? true ? [0, 2, 3, 4] : [2, 3, 4];
  const intersect = probs.mul(onehot).sum(axes);
  const denom = probs.sum(axes).add(onehot.sum(axes)).add(smooth).clamp(1e-8);
  const dice = intersect.mul(2).add(smooth).div(denom);
  return ones([]).sub(dice.mean());
}

/** Cross-entropy + soft Dice, weight 1 each (nnU-Net's DC_and_CE_loss). */
export function diceCeLoss(logits: Tensor, target: Tensor, o: IgnoreOption = {}): Tensor {
  if (!o.ignore) return crossEntropy(logits.float(), target).add(softDiceLoss(logits, target));
  const labelled = target.ne(IGNORE_LABEL).sum().item();
  const ce = labelled === 0
    ? zeros([])
    : crossEntropy(logits.float(), target, { ignoreIndex: IGNORE_LABEL, reduction: "sum" }).div(labelled);
  return ce.add(softDiceLoss(logits, target, { ignore: true }));
}

/**
 * nnU-Net's deep-supervision weights for n outputs (full resolution first): 1/2^i, the lowest
 * resolution weighted 0, normalised to sum 1.
 */
export function deepSupervisionWeights(n: number): number[] {
  const w = Array.from({ length: n }, (_, i) => (n > 1 && i === n - 1 ? 0 : 1 / 2 ** i));
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / s);
}

/** The target resized by nearest neighbour to an output's spatial size (target: [B, D, H, W] int64). */
export function downsampleTarget(target: Tensor, size: number[]): Tensor {
  const s = target.shape;
  if (s[1] === size[0] && s[2] === size[1] && s[3] === size[2]) return target;
  return interpolate(target.unsqueeze(1).float(), { size, mode: "nearest" }).squeeze(1).long();
}

/** Soft erosion: a min-pool along each axis separately (the cross-shaped kernel of soft clDice). */
function softErode(x: Tensor): Tensor {
  const n = x.neg();
  const a = maxPool3d(n, [3, 1, 1], { stride: 1, padding: [1, 0, 0] });
  const b = maxPool3d(n, [1, 3, 1], { stride: 1, padding: [0, 1, 0] });
  const c = maxPool3d(n, [1, 1, 3], { stride: 1, padding: [0, 0, 1] });
  return a.maximum(b).maximum(c).neg();
}

function softDilate(x: Tensor): Tensor {
  return maxPool3d(x, 3, { stride: 1, padding: 1 });
}

/** Soft skeleton by iterated soft morphological opening (x: [B, 1, D, H, W] in [0, 1]). */
export function softSkeleton(x: Tensor, iterations = 10): Tensor {
  let img = x;
  let skel = relu(img.sub(softDilate(softErode(img))));
  for (let i = 0; i < iterations; i++) {
    img = softErode(img);
    const delta = relu(img.sub(softDilate(softErode(img))));
    skel = skel.add(relu(delta.sub(skel.mul(delta))));
  }
  return skel;
}

/** Soft clDice loss of the foreground class (1 − clDice on soft skeletons); ignored voxels are background in both. */
export function softClDiceLoss(logits: Tensor, target: Tensor, iterations = 10, smooth = 1, o: IgnoreOption = {}): Tensor {
  let p = softmax(logits.float(), 1).narrow(1, 1, 1);
  let g: Tensor;
  if (o.ignore) {
    const m = labelledMask(target);
    p = p.mul(m.mask);
    g = m.target.unsqueeze(1).float();
  } else {
    g = target.unsqueeze(1).float();
  }
  const sp = softSkeleton(p, iterations);
  const sg = softSkeleton(g, iterations);
  const tprec = sp.mul(g).sum().add(smooth).div(sp.sum().add(smooth));
  const tsens = sg.mul(p).sum().add(smooth).div(sg.sum().add(smooth));
  return ones([]).sub(tprec.mul(tsens).mul(2).div(tprec.add(tsens)));
}

export interface SegLossOptions extends IgnoreOption {
  /** Weight of the soft clDice term (0 = off). */
  clDiceWeight?: number;
}

/** The training loss over one or several (deep-supervision) outputs. */
export function segmentationLoss(outputs: Tensor | Tensor[], target: Tensor, o: SegLossOptions = {}): Tensor {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const weights = deepSupervisionWeights(outs.length);
  let total: Tensor | null = null;
  outs.forEach((out, i) => {
    if (weights[i] === 0) return;
    const t = downsampleTarget(target, out.shape.slice(2));
    let l = diceCeLoss(out, t, { ignore: o.ignore });
    if (i === 0 && (o.clDiceWeight ?? 0) > 0) l = l.add(softClDiceLoss(out, t, 10, 1, { ignore: o.ignore }).mul(o.clDiceWeight!));
    const w = l.mul(weights[i]);
    total = total ? total.add(w) : w;
  });
  return total!;
}
