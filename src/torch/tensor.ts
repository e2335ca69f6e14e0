// The Tensor type: one JS object wraps one at::Tensor. Every operation goes through libtorch's
// dispatcher by name (see native/ops.cc), so autograd and autocast behave exactly as in PyTorch.
import { types } from "node:util";
import { native, type Handle } from "./native.ts";
import { type DataTypeMap, type DType, type MemoryFormat, type TypedArray, MEMORY_FORMAT, dtypeCode, dtypeFromCode, dtypeOfArray } from "./dtype.ts";
import { track } from "./scope.ts";

const opCache = new Map<string, Handle>();

/** The handle of operator `name` ("conv3d", "add.Tensor", "aten::sum.dim_IntList"), cached. */
export function opHandle(name: string): Handle {
  let h = opCache.get(name);
  if (!h) {
    const full = name.includes("::") ? name : `aten::${name}`;
    const dot = full.indexOf(".", full.indexOf("::"));
    h = dot < 0 ? native.op(full, "") : native.op(full.slice(0, dot), full.slice(dot + 1));
    opCache.set(name, h);
  }
  return h;
}

function toNative(a: unknown): unknown {
  if (a instanceof Tensor) return a.handle;
  if (Array.isArray(a) && a.length > 0 && (a[0] instanceof Tensor || a[0] === null)) {
    return a.map((x) => (x instanceof Tensor ? x.handle : x));
  }
  return a;
}

function fromNative(v: unknown): any {
  if (types.isExternal(v)) return new Tensor(v as Handle);
  if (Array.isArray(v)) return v.map(fromNative);
  return v;
}

/** Calls a libtorch operator; Tensors in, Tensors out. Arguments in schema order (undefined = default). */
export function callOp(name: string, ...args: unknown[]): any {
  return fromNative(native.call(opHandle(name), ...args.map(toNative)));
}

/** Calls an in-place operator and discards its result (the caller already holds it). */
export function callOpInPlace(name: string, ...args: unknown[]): void {
  native.callVoid(opHandle(name), ...args.map(toNative));
}

const op = (name: string, ...args: unknown[]): Tensor => callOp(name, ...args) as Tensor;

export type Scalar = number | boolean;
export type TensorOrScalar = Tensor | number;

function normDim(dim: number, ndim: number): number {
  return dim < 0 ? dim + ndim : dim;
}

function asList(dims: number | number[] | undefined): number[] | undefined {
  return dims === undefined ? undefined : Array.isArray(dims) ? dims : [dims];
}

export class Tensor {
  readonly handle: Handle;
  private cachedShape?: number[];
  private cachedDtype?: DType;

  constructor(handle: Handle) {
    this.handle = handle;
    track(this);
  }

  // --- metadata -------------------------------------------------------------------------------
  private loadMeta(): void {
    const [shape, code] = native.meta(this.handle);
    this.cachedShape = shape;
    this.cachedDtype = dtypeFromCode(code);
  }
  get shape(): number[] {
    if (!this.cachedShape) this.loadMeta();
    return this.cachedShape!.slice();
  }
  get dtype(): DType {
    if (!this.cachedDtype) this.loadMeta();
    return this.cachedDtype!;
  }
  get ndim(): number {
    if (!this.cachedShape) this.loadMeta();
    return this.cachedShape!.length;
  }
  get numel(): number {
    if (!this.cachedShape) this.loadMeta();
    return this.cachedShape!.reduce((a, b) => a * b, 1);
  }
  size(dim: number): number {
    const s = this.shape;
    const d = normDim(dim, s.length);
    if (d < 0 || d >= s.length) throw new RangeError(`size(${dim}): dimension out of range for a ${s.length}-d tensor`);
    return s[d];
  }
  get device(): string {
    return native.meta(this.handle)[2];
  }
  get strides(): number[] {
    return native.strides(this.handle);
  }
  isContiguous(format: MemoryFormat = "contiguous"): boolean {
    return native.isContiguous(this.handle, MEMORY_FORMAT[format]);
  }
  get isDisposed(): boolean {
    return native.isDisposed(this.handle);
  }
  toString(): string {
    return this.isDisposed ? "Tensor(disposed)" : `Tensor(shape=[${this.shape.join(", ")}], dtype=${this.dtype}, device=${this.device})`;
  }

  // --- memory ---------------------------------------------------------------------------------
  /** Frees the native memory now (views of it stay valid). Using the tensor afterwards throws. */
  dispose(): void {
    native.dispose(this.handle);
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // --- data in and out ------------------------------------------------------------------------
  /** A copy of the elements in row-major order (float16/bfloat16 widened to float32). */
  data<D extends DType = DType>(): DataTypeMap[D] {
    const d = this.dtype;
    if (d === "float16" || d === "bfloat16") {
      const f = this.to("float32");
      try {
        return f.data() as DataTypeMap[D];
      } finally {
        f.dispose();
      }
    }
    const buf = native.toBuffer(this.handle);
    switch (d) {
      case "uint8": case "bool": return new Uint8Array(buf) as DataTypeMap[D];
      case "int8": return new Int8Array(buf) as DataTypeMap[D];
      case "int16": return new Int16Array(buf) as DataTypeMap[D];
      case "int32": return new Int32Array(buf) as DataTypeMap[D];
      case "int64": return new BigInt64Array(buf) as DataTypeMap[D];
      case "float64": return new Float64Array(buf) as DataTypeMap[D];
      default: return new Float32Array(buf) as DataTypeMap[D];
    }
  }
  /** The raw bytes of the elements in row-major order (bfloat16/float16 as stored). */
  bytes(): Uint8Array {
    return new Uint8Array(native.toBuffer(this.handle));
  }
  /** The elements as plain numbers (int64 converted with Number()). */
  toArray(): number[] {
    const d = this.data();
    return d instanceof BigInt64Array ? Array.from(d, Number) : Array.from(d as ArrayLike<number>);
  }
  /** The value of a one-element tensor. */
  item(): number {
    if (this.numel !== 1) throw new Error(`item(): the tensor has ${this.numel} elements, not 1 (shape [${this.shape.join(", ")}])`);
    const v = callOp("item", this) as number | boolean;
    return typeof v === "boolean" ? Number(v) : v;
  }

  // --- autograd -------------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return native.meta(this.handle)[3];
  }
  set requiresGrad(v: boolean) {
    native.setRequiresGrad(this.handle, v);
  }
  requiresGrad_(v = true): this {
    native.setRequiresGrad(this.handle, v);
    return this;
  }
  /** The accumulated gradient, or null. A new handle each call: dispose it (or tidy) when done. */
  get grad(): Tensor | null {
    const g = native.getGrad(this.handle);
    return g ? new Tensor(g) : null;
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.handle, g ? g.handle : null);
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  get gradFn(): string | null {
    return native.gradFnName(this.handle);
  }
  retainGrad(): this {
    native.retainGrad(this.handle);
    return this;
  }
  /** Back-propagates from this tensor (a scalar, or with an explicit `gradient` of its shape). */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    if (!gradient && this.numel !== 1) {
      throw new Error(`backward(): the tensor has shape [${this.shape.join(", ")}]; pass a gradient of that shape or reduce it to a scalar first`);
    }
    native.backward(this.handle, gradient ? gradient.handle : null, opts.retainGraph ?? false);
  }
  detach(): Tensor { return op("detach", this); }

  // --- conversion -----------------------------------------------------------------------------
  to(target: DType | string, opts: { copy?: boolean } = {}): Tensor {
    if (target === "cpu" || target.startsWith("cuda")) return op("to.device", this, target, dtypeCode(this.dtype), false, opts.copy ?? false);
    return op("to.dtype", this, dtypeCode(target as DType), false, opts.copy ?? false);
  }
  float(): Tensor { return this.to("float32"); }
  long(): Tensor { return this.to("int64"); }
  cpu(): Tensor { return this.to("cpu"); }
  clone(): Tensor { return op("clone", this); }
  contiguous(format: MemoryFormat = "contiguous"): Tensor { return op("contiguous", this, MEMORY_FORMAT[format]); }
  /** The same values laid out channels-last (NDHWC in memory), the layout oneDNN convolutions prefer. */
  toChannelsLast3d(): Tensor { return this.contiguous("channelsLast3d"); }

  // --- shape ----------------------------------------------------------------------------------
  reshape(...shape: number[] | [number[]]): Tensor { return op("reshape", this, Array.isArray(shape[0]) ? shape[0] : shape); }
  view(...shape: number[] | [number[]]): Tensor { return op("view", this, Array.isArray(shape[0]) ? shape[0] : shape); }
  flatten(startDim = 0, endDim = -1): Tensor { return op("flatten.using_ints", this, startDim, endDim); }
  permute(...dims: number[] | [number[]]): Tensor { return op("permute", this, Array.isArray(dims[0]) ? dims[0] : dims); }
  transpose(dim0: number, dim1: number): Tensor { return op("transpose.int", this, dim0, dim1); }
  get T(): Tensor { return op("t", this); }
  squeeze(dim?: number): Tensor { return dim === undefined ? op("squeeze", this) : op("squeeze.dim", this, dim); }
  unsqueeze(dim: number): Tensor { return op("unsqueeze", this, dim); }
  narrow(dim: number, start: number, length: number): Tensor { return op("narrow", this, dim, start, length); }
  /** Elements [start, end) with `step` along `dim` (a view). */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor { return op("slice.Tensor", this, dim, start ?? null, end ?? null, step); }
  select(dim: number, index: number): Tensor { return op("select.int", this, dim, index); }
  indexSelect(dim: number, index: Tensor): Tensor { return op("index_select", this, dim, index); }
  gather(dim: number, index: Tensor): Tensor { return op("gather", this, dim, index); }
  scatter(dim: number, index: Tensor, src: Tensor | number): Tensor {
    return src instanceof Tensor ? op("scatter.src", this, dim, index, src) : op("scatter.value", this, dim, index, src);
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor { return op("scatter_add", this, dim, index, src); }
  /** Boolean-mask selection (a copy). */
  maskedSelect(mask: Tensor): Tensor { return op("masked_select", this, mask); }
  maskedFill(mask: Tensor, value: number): Tensor { return op("masked_fill.Scalar", this, mask, value); }
  split(sizeOrSizes: number | number[], dim = 0): Tensor[] {
    return (Array.isArray(sizeOrSizes) ? callOp("split.sizes", this, sizeOrSizes, dim) : callOp("split.Tensor", this, sizeOrSizes, dim)) as Tensor[];
  }
  chunk(chunks: number, dim = 0): Tensor[] { return callOp("chunk", this, chunks, dim) as Tensor[]; }
  unbind(dim = 0): Tensor[] { return callOp("unbind.int", this, dim) as Tensor[]; }
  flip(dims: number | number[]): Tensor { return op("flip", this, asList(dims)); }
  roll(shifts: number | number[], dims: number | number[]): Tensor { return op("roll", this, asList(shifts), asList(dims)); }
  repeat(...repeats: number[] | [number[]]): Tensor { return op("repeat", this, Array.isArray(repeats[0]) ? repeats[0] : repeats); }
  expand(...shape: number[] | [number[]]): Tensor { return op("expand", this, Array.isArray(shape[0]) ? shape[0] : shape); }
  expandAs(other: Tensor): Tensor { return op("expand_as", this, other); }

  // --- element-wise maths (broadcasting) ------------------------------------------------------
  add(other: TensorOrScalar, alpha = 1): Tensor { return other instanceof Tensor ? op("add.Tensor", this, other, alpha) : op("add.Scalar", this, other, alpha); }
  sub(other: TensorOrScalar, alpha = 1): Tensor { return other instanceof Tensor ? op("sub.Tensor", this, other, alpha) : op("sub.Scalar", this, other, alpha); }
  mul(other: TensorOrScalar): Tensor { return other instanceof Tensor ? op("mul.Tensor", this, other) : op("mul.Scalar", this, other); }
  div(other: TensorOrScalar): Tensor { return other instanceof Tensor ? op("div.Tensor", this, other) : op("div.Scalar", this, other); }
  pow(exponent: TensorOrScalar): Tensor { return exponent instanceof Tensor ? op("pow.Tensor_Tensor", this, exponent) : op("pow.Tensor_Scalar", this, exponent); }
  remainder(other: TensorOrScalar): Tensor { return other instanceof Tensor ? op("remainder.Tensor", this, other) : op("remainder.Scalar", this, other); }
  neg(): Tensor { return op("neg", this); }
  exp(): Tensor { return op("exp", this); }
  log(): Tensor { return op("log", this); }
  log1p(): Tensor { return op("log1p", this); }
  sqrt(): Tensor { return op("sqrt", this); }
  rsqrt(): Tensor { return op("rsqrt", this); }
  square(): Tensor { return op("square", this); }
  abs(): Tensor { return op("abs", this); }
  sign(): Tensor { return op("sign", this); }
  floor(): Tensor { return op("floor", this); }
  ceil(): Tensor { return op("ceil", this); }
  round(): Tensor { return op("round", this); }
  reciprocal(): Tensor { return op("reciprocal", this); }
  sin(): Tensor { return op("sin", this); }
  cos(): Tensor { return op("cos", this); }
  sigmoid(): Tensor { return op("sigmoid", this); }
  tanh(): Tensor { return op("tanh", this); }
  relu(): Tensor { return op("relu", this); }
  clamp(min?: number | null, max?: number | null): Tensor {
    if ((min === undefined || min === null) && (max === undefined || max === null)) throw new Error("clamp(): give min, max or both");
    return op("clamp", this, min ?? null, max ?? null);
  }
  maximum(other: Tensor): Tensor { return op("maximum", this, other); }
  minimum(other: Tensor): Tensor { return op("minimum", this, other); }
  lerp(end: Tensor, weight: number): Tensor { return op("lerp.Scalar", this, end, weight); }

  // --- comparisons ----------------------------------------------------------------------------
  eq(other: TensorOrScalar): Tensor { return other instanceof Tensor ? op("eq.Tensor", this, other) : op("eq.Scalar", this, other); }
  ne(other: TensorOrScalar): Tensor { return other instanceof Tensor ? op("ne.Tensor", this, other) : op("ne.Scalar", this, other); }
  lt(other: TensorOrScalar): Tensor { return other instanceof Tensor ? op("lt.Tensor", this, other) : op("lt.Scalar", this, other); }
  le(other: TensorOrScalar): Tensor { return other instanceof Tensor ? op("le.Tensor", this, other) : op("le.Scalar", this, other); }
  gt(other: TensorOrScalar): Tensor { return other instanceof Tensor ? op("gt.Tensor", this, other) : op("gt.Scalar", this, other); }
  ge(other: TensorOrScalar): Tensor { return other instanceof Tensor ? op("ge.Tensor", this, other) : op("ge.Scalar", this, other); }
  logicalAnd(other: Tensor): Tensor { return op("logical_and", this, other); }
  logicalOr(other: Tensor): Tensor { return op("logical_or", this, other); }
  logicalNot(): Tensor { return op("logical_not", this); }
  isnan(): Tensor { return op("isnan", this); }
  allClose(other: Tensor, rtol = 1e-5, atol = 1e-8): boolean { return callOp("allclose", this, other, rtol, atol, false) as boolean; }

  // --- reductions -----------------------------------------------------------------------------
  sum(dims?: number | number[], keepdim = false): Tensor { return dims === undefined ? op("sum", this) : op("sum.dim_IntList", this, asList(dims), keepdim); }
  mean(dims?: number | number[], keepdim = false): Tensor { return dims === undefined ? op("mean", this) : op("mean.dim", this, asList(dims), keepdim); }
  prod(dim?: number, keepdim = false): Tensor { return dim === undefined ? op("prod", this) : op("prod.dim_int", this, dim, keepdim); }
  /** Maximum over everything, or over `dim` (values only; see maxWithIndices). */
  max(dim?: number, keepdim = false): Tensor {
    if (dim === undefined) return op("max", this);
    const [values, indices] = callOp("max.dim", this, dim, keepdim) as [Tensor, Tensor];
    indices.dispose();
    return values;
  }
  min(dim?: number, keepdim = false): Tensor {
    if (dim === undefined) return op("min", this);
    const [values, indices] = callOp("min.dim", this, dim, keepdim) as [Tensor, Tensor];
    indices.dispose();
    return values;
  }
  maxWithIndices(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = callOp("max.dim", this, dim, keepdim) as [Tensor, Tensor];
    return { values, indices };
  }
  amax(dims: number | number[], keepdim = false): Tensor { return op("amax", this, asList(dims), keepdim); }
  amin(dims: number | number[], keepdim = false): Tensor { return op("amin", this, asList(dims), keepdim); }
  argmax(dim?: number, keepdim = false): Tensor { return op("argmax", this, dim ?? null, keepdim); }
  argmin(dim?: number, keepdim = false): Tensor { return op("argmin", this, dim ?? null, keepdim); }
  /** Standard deviation with Bessel's correction by default (correction = 1), as torch.std. */
  std(dims?: number | number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return op("std.correction", this, asList(dims) ?? null, opts.correction ?? 1, opts.keepdim ?? false);
  }
  var(dims?: number | number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return op("var.correction", this, asList(dims) ?? null, opts.correction ?? 1, opts.keepdim ?? false);
  }
  norm(p = 2, dims?: number | number[], keepdim = false): Tensor {
    return dims === undefined ? op("norm.Scalar", this, p) : op("norm.ScalarOpt_dim", this, p, asList(dims), keepdim);
  }
  all(): Tensor { return op("all", this); }
  any(): Tensor { return op("any", this); }
  cumsum(dim: number): Tensor { return op("cumsum", this, dim); }

  // --- linear algebra -------------------------------------------------------------------------
  matmul(other: Tensor): Tensor { return op("matmul", this, other); }

  // --- in place (for optimizers, running statistics, accumulators) ----------------------------
  add_(other: TensorOrScalar, alpha = 1): this { if (other instanceof Tensor) callOpInPlace("add_.Tensor", this, other, alpha); else callOpInPlace("add_.Scalar", this, other, alpha); return this; }
  sub_(other: TensorOrScalar, alpha = 1): this { if (other instanceof Tensor) callOpInPlace("sub_.Tensor", this, other, alpha); else callOpInPlace("sub_.Scalar", this, other, alpha); return this; }
  mul_(other: TensorOrScalar): this { if (other instanceof Tensor) callOpInPlace("mul_.Tensor", this, other); else callOpInPlace("mul_.Scalar", this, other); return this; }
  div_(other: TensorOrScalar): this { if (other instanceof Tensor) callOpInPlace("div_.Tensor", this, other); else callOpInPlace("div_.Scalar", this, other); return this; }
  clamp_(min?: number | null, max?: number | null): this { callOpInPlace("clamp_", this, min ?? null, max ?? null); return this; }
  fill_(value: number): this { callOpInPlace("fill_.Scalar", this, value); return this; }
  zero_(): this { callOpInPlace("zero_", this); return this; }
  copy_(src: Tensor): this { callOpInPlace("copy_", this, src); return this; }
  lerp_(end: Tensor, weight: number): this { callOpInPlace("lerp_.Scalar", this, end, weight); return this; }
  maskedFill_(mask: Tensor, value: number): this { callOpInPlace("masked_fill_.Scalar", this, mask, value); return this; }
}

// --- creation -----------------------------------------------------------------------------------

export interface CreateOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

function created(t: Tensor, opts: CreateOptions): Tensor {
  if (opts.requiresGrad) native.setRequiresGrad(t.handle, true);
  return t;
}

const dt = (opts: CreateOptions, fallback: DType = "float32") => dtypeCode(opts.dtype ?? fallback);
const dev = (opts: CreateOptions) => opts.device ?? null;

export function zeros(shape: number[], opts: CreateOptions = {}): Tensor { return created(op("zeros", shape, dt(opts), null, dev(opts)), opts); }
export function ones(shape: number[], opts: CreateOptions = {}): Tensor { return created(op("ones", shape, dt(opts), null, dev(opts)), opts); }
export function full(shape: number[], value: number, opts: CreateOptions = {}): Tensor { return created(op("full", shape, value, dt(opts), null, dev(opts)), opts); }
/** Uninitialised memory (fast; every element must be written before it is read). */
export function empty(shape: number[], opts: CreateOptions = {}): Tensor { return created(op("empty.memory_format", shape, dt(opts), null, dev(opts)), opts); }
export function zerosLike(t: Tensor, opts: CreateOptions = {}): Tensor { return zeros(t.shape, { dtype: t.dtype, ...opts }); }
export function onesLike(t: Tensor, opts: CreateOptions = {}): Tensor { return ones(t.shape, { dtype: t.dtype, ...opts }); }

/** A seeded random generator, independent of the global one. */
export class Generator {
  readonly handle: Handle;
  constructor(seed: number) {
    this.handle = native.newGenerator(seed);
  }
}

export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}
const gen = (opts: RandomOptions) => opts.generator?.handle ?? null;

/** Uniform on [0, 1). */
export function rand(shape: number[], opts: RandomOptions = {}): Tensor { return created(op("rand.generator", shape, gen(opts), dt(opts), null, dev(opts)), opts); }
/** Standard normal. */
export function randn(shape: number[], opts: RandomOptions = {}): Tensor { return created(op("randn.generator", shape, gen(opts), dt(opts), null, dev(opts)), opts); }
/** Integers uniform on [low, high). */
export function randint(low: number, high: number, shape: number[], opts: RandomOptions = {}): Tensor {
  return op("randint.low_generator", low, high, shape, gen(opts), dt(opts, "int64"), null, dev(opts));
}
export function randperm(n: number, opts: RandomOptions = {}): Tensor { return op("randperm.generator", n, gen(opts), dt(opts, "int64"), null, dev(opts)); }
export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  const allInt = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  return op("arange.start_step", start, end, step, dtypeCode(opts.dtype ?? (allInt ? "int64" : "float32")), null, dev(opts));
}
export function linspace(start: number, end: number, steps: number, opts: CreateOptions = {}): Tensor {
  return op("linspace", start, end, steps, dt(opts), null, dev(opts));
}

/** A tensor from raw little-endian bytes of `dtype` (copied). */
export function fromBytes(bytes: Uint8Array, shape: number[], dtype: DType): Tensor {
  return new Tensor(native.fromBuffer(bytes, shape, dtypeCode(dtype)));
}

function flattenNested(v: unknown, shape: number[], out: number[], depth: number): void {
  if (Array.isArray(v)) {
    if (shape.length === depth) shape.push(v.length);
    else if (shape[depth] !== v.length) throw new Error(`tensor(): ragged nested array (length ${v.length} where ${shape[depth]} was expected at depth ${depth})`);
    for (const x of v) flattenNested(x, shape, out, depth + 1);
  } else if (typeof v === "number" || typeof v === "boolean") {
    if (shape.length !== depth) throw new Error("tensor(): ragged nested array");
    out.push(Number(v));
  } else {
    throw new TypeError(`tensor(): unexpected element ${String(v)}`);
  }
}

/**
 * A tensor from a typed array with a shape (copied), or from nested number arrays.
 * `tensor(new Float32Array(n), [2, 3])`, `tensor([[1, 2], [3, 4]])`, `tensor(3.5)`.
 */
export function tensor(data: TypedArray | number | number[] | number[][] | unknown[], shape?: number[], opts: CreateOptions = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    const arr = data as TypedArray;
    const s = shape ?? [arr.length];
    const n = s.reduce((a, b) => a * b, 1);
    if (n !== arr.length) throw new Error(`tensor(): shape [${s.join(", ")}] holds ${n} elements, the array has ${arr.length}`);
    let src: TypedArray = arr;
    if (arr instanceof Uint16Array) src = Int32Array.from(arr);
    else if (arr instanceof Uint32Array) src = BigInt64Array.from(arr, (x) => BigInt(x));
    let t = new Tensor(native.fromBuffer(src, s, dtypeCode(dtypeOfArray(src))));
    if (opts.dtype && opts.dtype !== t.dtype) {
      const c = t.to(opts.dtype);
      t.dispose();
      t = c;
    }
    if (opts.device && opts.device !== "cpu") {
      const c = t.to(opts.device);
      t.dispose();
      t = c;
    }
    return created(t, opts);
  }
  const flat: number[] = [];
  const s: number[] = [];
  flattenNested(data, s, flat, 0);
  const wanted = opts.dtype ?? "float32";
  // float64 holds every int32 and every float16/bfloat16 exactly, so only float32 goes in as float32
  // (rounding through float32 would corrupt int32 values above 2^24).
  const base = wanted === "float32" ? new Float32Array(flat) : wanted === "int64" ? BigInt64Array.from(flat, (x) => BigInt(Math.trunc(x))) : new Float64Array(flat);
  return tensor(base, shape ?? s, { ...opts, dtype: wanted });
}
