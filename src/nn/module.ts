// Module: named parameters, buffers and children, with state-dict keys equal to PyTorch's for the
// same structure (a child registered as "enc" holding a Sequential gives "enc.0.weight", ...).
import { Tensor, callOp, keep, noGrad } from "../torch/index.ts";

export type StateDict = Map<string, Tensor>;

export interface LoadResult {
  missing: string[];
  unexpected: string[];
  /** Keys present in both but with different shapes (never loaded). */
  mismatched: { key: string; expected: number[]; got: number[] }[];
  loaded: string[];
}

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  abstract forward(...inputs: Tensor[]): Tensor | Tensor[];

  /** Registers a trainable tensor (requiresGrad is set; no tidy() scope will dispose it). */
  protected param(name: string, t: Tensor): Tensor {
    keep(t);
    t.requiresGrad = true;
    this.params.set(name, t);
    return t;
  }

  /** Registers a non-trainable tensor that belongs to the state (running statistics). */
  protected buffer(name: string, t: Tensor): Tensor {
    keep(t);
    this.buffers.set(name, t);
    return t;
  }

  /** Registers a child module under `name` (its keys become "name.<key>"). */
  protected child<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** Every module below this one (itself first), with its dotted path. */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this.children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this.params) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this.buffers) out.push([prefix + n, b]);
    for (const [n, c] of this.children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Number of trainable scalars. */
  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.numel, 0);
  }

  /** Parameters and buffers in PyTorch's order (each module's own parameters, then buffers, then children). */
  stateDict(prefix = ""): StateDict {
    const sd: StateDict = new Map();
    for (const [n, p] of this.params) sd.set(prefix + n, p);
    for (const [n, b] of this.buffers) sd.set(prefix + n, b);
    for (const [n, c] of this.children) for (const [k, v] of c.stateDict(`${prefix}${n}.`)) sd.set(k, v);
    return sd;
  }

  /**
   * Moves every parameter and buffer to `device` ("cpu", "cuda", "cuda:1") in place, as PyTorch's
   * Module.to: the tensors keep their identity (their data is swapped), so build optimizers after this.
   */
  to(device: string): this {
    noGrad(() => {
      for (const t of [...this.parameters(), ...this.namedBuffers().map(([, b]) => b)]) {
        if (t.device === device || (device === "cuda" && t.device === "cuda:0")) continue;
        const moved = t.to(device);
        callOp("set_data", t, moved);
        moved.dispose();
      }
    });
    return this;
  }

  /**
   * Copies values into this module's tensors (in place, so optimizers keep working). strict: throw
   * when keys are missing, unexpected or of another shape; otherwise load what matches and report the rest.
   */
  loadStateDict(sd: StateDict | Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    const src = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const result: LoadResult = { missing: [], unexpected: [], mismatched: [], loaded: [] };
    for (const k of own.keys()) if (!src.has(k)) result.missing.push(k);
    for (const k of src.keys()) if (!own.has(k)) result.unexpected.push(k);
    for (const [k, t] of own) {
      const s = src.get(k);
      if (!s) continue;
      const a = t.shape, b = s.shape;
      if (a.length !== b.length || a.some((d, i) => d !== b[i])) result.mismatched.push({ key: k, expected: a, got: b });
    }
    if ((opts.strict ?? true) && (result.missing.length || result.unexpected.length || result.mismatched.length)) {
      const parts = [];
      if (result.missing.length) parts.push(`missing keys: ${result.missing.join(", ")}`);
      if (result.unexpected.length) parts.push(`unexpected keys: ${result.unexpected.join(", ")}`);
      if (result.mismatched.length) parts.push(`shape mismatches: ${result.mismatched.map((m) => `${m.key} expects [${m.expected}] got [${m.got}]`).join("; ")}`);
      throw new Error(`loadStateDict: ${parts.join("; ")}`);
    }
    const bad = new Set(result.mismatched.map((m) => m.key));
    noGrad(() => {
      for (const [k, t] of own) {
        const s = src.get(k);
        if (!s || bad.has(k)) continue;
        t.copy_(s);
        result.loaded.push(k);
      }
    });
    return result;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears the gradients of all parameters. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const [, t] of this.stateDict()) t.dispose();
  }
}

/** Children called in order; intermediate results are freed as soon as the next layer has run. */
export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.child(String(i), m));
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.layers) {
      const out = m.forward(h) as Tensor;
      if (h !== x && out !== h) h.dispose();
      h = out;
    }
    return h;
  }
}

/** A list of modules with keys "0", "1", ... (nn.ModuleList); it has no forward of its own. */
export class ModuleList extends Module {
  readonly items: Module[];
  constructor(items: Module[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.child(String(i), m));
  }
  forward(): Tensor {
    throw new Error("ModuleList has no forward(); call its items");
  }
}
