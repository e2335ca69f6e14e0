// Optimizers: libtorch's own SGD and AdamW (torch::optim), driven from TypeScript. The learning rate
// is set from a schedule before each step; the state (momentum, Adam moments) saves and restores.
import { native, type Handle } from "../torch/native.ts";
import { Tensor, keep } from "../torch/index.ts";

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

/** Per-parameter state as named tensors, in parameter order (null before a parameter's first step). */
export type OptimizerState = { kind: string; lr: number; params: (Record<string, Tensor> | null)[] };

export abstract class Optimizer {
  protected readonly handle: Handle;
  private currentLr: number;

  protected constructor(readonly kind: "sgd" | "adamw", readonly params: Tensor[], options: Record<string, number | boolean>, lr: number) {
    if (params.length === 0) throw new Error(`${kind}: no parameters to optimise`);
    this.handle = native.optimCreate(kind, params.map((p) => p.handle), options);
    this.currentLr = lr;
  }

  get lr(): number {
    return this.currentLr;
  }
  set lr(v: number) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`learning rate must be a finite number >= 0, got ${v}`);
    native.optimSetLr(this.handle, v);
    this.currentLr = v;
  }

  step(): void {
    native.optimStep(this.handle);
  }

  /** Clears gradients (setToNone frees them, as PyTorch's default). */
  zeroGrad(setToNone = true): void {
    native.optimZeroGrad(this.handle, setToNone);
  }

  /** A copy of the state; the caller owns (and disposes) the tensors. */
  stateDict(): OptimizerState {
    const raw = native.optimGetState(this.handle);
    return {
      kind: this.kind,
      lr: this.currentLr,
      params: raw.map((entry) => entry === null ? null : Object.fromEntries(Object.entries(entry).map(([k, h]) => [k, keep(new Tensor(h))]))),
    };
  }

  /** Loads `state` (its tensors are copied to each parameter's device first, e.g. a CPU checkpoint onto CUDA). */
  loadStateDict(state: OptimizerState): void {
    const moved: Tensor[] = [];
    state = {
      ...state,
      params: state.params.map((e, i) => e === null ? null : Object.fromEntries(Object.entries(e).map(([k, t]) => {
        const device = this.params[i]?.device;
        if (!device || t.device === device) return [k, t];
        const m = t.to(device);
        moved.push(m);
        return [k, m];
      }))),
    };
    try {
      this.loadState(state);
    } finally {
      for (const m of moved) m.dispose();
    }
  }

  private loadState(state: OptimizerState): void {
    if (state.kind !== this.kind) throw new Error(`optimizer state is for '${state.kind}', this optimizer is '${this.kind}'`);
    if (state.params.length !== this.params.length) {
      throw new Error(`optimizer state has ${state.params.length} parameters, this optimizer has ${this.params.length} (was the network changed?)`);
    }
    const handles = state.params.map((e) => (e === null ? null : Object.fromEntries(Object.entries(e).map(([k, t]) => [k, t.handle]))));
    native.optimSetState(this.handle, handles);
    this.lr = state.lr;
  }
}

/** SGD with momentum, Nesterov and (coupled) weight decay: nnU-Net's optimiser (lr 0.01, momentum 0.99, Nesterov, wd 3e-5). */
export class SGD extends Optimizer {
  constructor(params: Tensor[], o: SGDOptions) {
    // Checked before libtorch is asked, which would refuse with a message of its own.
    if (o.nesterov && (!o.momentum || (o.dampening ?? 0) !== 0)) throw new Error("SGD: Nesterov needs momentum > 0 and dampening 0");
    super("sgd", params, { lr: o.lr, momentum: o.momentum ?? 0, dampening: o.dampening ?? 0, weightDecay: o.weightDecay ?? 0, nesterov: o.nesterov ?? false }, o.lr);
  }
}

/** AdamW (decoupled weight decay, Loshchilov & Hutter 2019). */
export class AdamW extends Optimizer {
  constructor(params: Tensor[], o: AdamWOptions) {
    const [beta1, beta2] = o.betas ?? [0.9, 0.999];
    super("adamw", params, { lr: o.lr, beta1, beta2, eps: o.eps ?? 1e-8, weightDecay: o.weightDecay ?? 1e-2, amsgrad: o.amsgrad ?? false }, o.lr);
  }
}

/** Scales gradients so that their global norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): number {
  return native.clipGradNorm(params.map((p) => p.handle), maxNorm, normType);
}
