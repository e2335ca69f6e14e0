// Loads the native addon (build/Release/lsmseg_native.node) and types its functions.
// Nothing outside src/torch/ and src/optim/ (libtorch's optimizers) talks to it directly.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** An opaque handle to a native object (a tensor, an operator, an optimizer, a generator). */
export type Handle = { readonly __brand: "native-handle" };

/** What the addon was built against. */
export interface BuildInfo {
  torchVersion: string;
  /** libtorch has CUDA and a driver answers */
  cuda: boolean;
  cudaDevices: number;
  /** the addon was built with NCCL (a CUDA libtorch and the NCCL headers) */
  nccl: boolean;
  mkldnn: boolean;
  parallel: string;
  config: string;
}

export interface NativeAddon {
  fromBuffer(data: ArrayBufferView, shape: number[], dtype: number): Handle;
  toBuffer(t: Handle): ArrayBuffer;
  copyInto(t: Handle, target: ArrayBufferView): void;
  dispose(t: Handle): void;
  isDisposed(t: Handle): boolean;
  meta(t: Handle): [number[], number, string, boolean];
  strides(t: Handle): number[];
  isContiguous(t: Handle, memoryFormat?: number): boolean;
  sameStorage(a: Handle, b: Handle): boolean;
  liveStats(): { tensors: number; bytes: number };
  op(name: string, overload: string): Handle;
  call(op: Handle, ...args: unknown[]): any;
  callVoid(op: Handle, ...args: unknown[]): void;
  schemas(name: string): string[];
  newGenerator(seed: number): Handle;
  backward(t: Handle, grad?: Handle | null, retainGraph?: boolean): void;
  autogradGrad(outputs: Handle[], inputs: Handle[], gradOutputs?: Handle[] | null, createGraph?: boolean): Handle[];
  getGrad(t: Handle): Handle | null;
  setGrad(t: Handle, g: Handle | null): void;
  setRequiresGrad(t: Handle, v: boolean): void;
  isLeaf(t: Handle): boolean;
  gradFnName(t: Handle): string | null;
  retainGrad(t: Handle): void;
  setGradEnabled(v: boolean): boolean;
  isGradEnabled(): boolean;
  autocastEnter(device: string, dtype: number): [boolean, number];
  autocastExit(device: string, enabled: boolean, dtype: number): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  getRngState(): Handle;
  setRngState(t: Handle): void;
  buildInfo(): BuildInfo;
  optimCreate(kind: string, params: Handle[], options: Record<string, number | boolean>): Handle;
  optimStep(h: Handle): void;
  optimZeroGrad(h: Handle, setToNone?: boolean): void;
  optimSetLr(h: Handle, lr: number): void;
  optimGetState(h: Handle): (Record<string, Handle> | null)[];
  optimSetState(h: Handle, state: (Record<string, Handle> | null)[]): void;
  clipGradNorm(params: Handle[], maxNorm: number, normType?: number): number;
  distInit(rank: number, worldSize: number, host: string, port: number, timeoutMs: number, backend: string): Handle;
  allReduce(g: Handle, tensors: Handle[], op: string): void;
  broadcast(g: Handle, tensors: Handle[], root: number): void;
  allGather(g: Handle, t: Handle): Handle[];
  barrier(g: Handle, timeoutMs?: number): void;
  groupInfo(g: Handle): { rank: number; worldSize: number; backend: string };
  allReduceGrads(g: Handle, params: Handle[], bucketCapMB: number): number;
  gradSyncCreate(g: Handle, params: Handle[], bucketCapMB: number): Handle;
  gradSyncFinish(s: Handle): { buckets: number; duringBackward: number };
  gradSyncDestroy(s: Handle): void;
  distDestroy(g: Handle): void;
  /** Whether the addon switched glibc malloc to heap-only, untrimmed (see native/addon.cc). */
  mallocTuned: boolean;
  mallocTrim(): boolean;
  /** Per-operator timing over libtorch's RecordFunction callbacks (native/profiler.cc). */
  profilerStart(): void;
  profilerStop(): { name: string; calls: number; totalUs: number; selfUs: number }[];
}

function load(): NativeAddon {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const path = join(root, "build", "Release", "lsmseg_native.node");
  if (!existsSync(path)) {
    throw new Error(`the native addon ${path} is not built: run 'npm run setup' (it installs libtorch and builds the addon)`);
  }
  const require = createRequire(import.meta.url);
  return require(path) as NativeAddon;
}

export const native: NativeAddon = load();
