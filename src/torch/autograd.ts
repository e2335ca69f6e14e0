// Gradient-mode scopes and torch.autograd.grad.
import { native } from "./native.ts";
import { Tensor } from "./tensor.ts";

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = native.setGradEnabled(enabled);
  try {
    const r = fn();
    if (r && typeof (r as { then?: unknown }).then === "function") {
      throw new Error("noGrad/enableGrad: fn returned a Promise; grad mode is per thread and must be used synchronously");
    }
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn with autograd off (inference, metrics, optimizer-side updates). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs fn with autograd on (inside a noGrad scope). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/** Gradients of `outputs` with respect to `inputs` (torch.autograd.grad). */
export function grad(outputs: Tensor[], inputs: Tensor[], opts: { gradOutputs?: Tensor[]; createGraph?: boolean } = {}): Tensor[] {
  const gradOutputs = opts.gradOutputs?.map((t) => t.handle) ?? null;
  const hs = native.autogradGrad(outputs.map((t) => t.handle), inputs.map((t) => t.handle), gradOutputs, opts.createGraph ?? false);
  return hs.map((h) => new Tensor(h));
}
