// Weight initialisation (in place, without autograd), with PyTorch's fan computation.
import { type Tensor, noGrad, randn, rand } from "../torch/index.ts";

/** fan_in and fan_out as torch.nn.init._calculate_fan_in_and_fan_out. */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  const s = t.shape;
  if (s.length < 2) throw new Error(`fans: need a tensor of at least 2 dimensions, got [${s}]`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: s[1] * receptive, fanOut: s[0] * receptive };
}

/** Kaiming (He) normal, std = gain / sqrt(fan_in) with gain = sqrt(2 / (1 + a²)); nnU-Net uses a = 0.01. */
export function kaimingNormal_(t: Tensor, a = 0.01, mode: "fanIn" | "fanOut" = "fanIn"): Tensor {
  const f = fans(t);
  const std = Math.sqrt(2 / (1 + a * a)) / Math.sqrt(mode === "fanIn" ? f.fanIn : f.fanOut);
  noGrad(() => {
    const r = randn(t.shape, { dtype: t.dtype });
    t.copy_(r).mul_(std);
    r.dispose();
  });
  return t;
}

/** Uniform on [-bound, bound]. */
export function uniform_(t: Tensor, bound: number): Tensor {
  noGrad(() => {
    const r = rand(t.shape, { dtype: t.dtype });
    t.copy_(r).mul_(2 * bound).sub_(bound);
    r.dispose();
  });
  return t;
}

/** PyTorch's default for Conv/Linear: kaiming_uniform(a = sqrt(5)) on the weight, i.e. bound 1/sqrt(fan_in). */
export function defaultWeightInit_(w: Tensor): Tensor {
  return uniform_(w, 1 / Math.sqrt(fans(w).fanIn));
}

export function zeros_(t: Tensor): Tensor {
  noGrad(() => t.zero_());
  return t;
}

/** Normal(0, std) truncated to [a, b] by clamping (timm's trunc_normal_ redraws; with MONAI's a = -2, b = 2 and std 0.02 nothing is cut). */
export function truncNormal_(t: Tensor, std: number, a = -2, b = 2): Tensor {
  noGrad(() => {
    const r = randn(t.shape, { dtype: t.dtype });
    t.copy_(r).mul_(std).clamp_(a, b);
    r.dispose();
  });
  return t;
}
