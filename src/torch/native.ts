// Loads the native addon (lsmseg_native.node: prebuilds/<platform>-<arch>/ or build/Release/, through
// node-gyp-build) and types its functions. It loads on first use, not at import, so `import "lsmseg"` works
// on a machine without libtorch and only what computes with tensors fails, with one line saying what to do.
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
  cudaSynchronize(): void;
  setMkldnnEnabled(enabled: boolean): boolean;
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

/** The package's root: src/torch/ and dist/torch/ are both two levels down. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

let addon: NativeAddon | null = null;
const onLoad: ((addon: NativeAddon) => void)[] = [];

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  let path: string;
  try {
    path = (require("node-gyp-build") as { resolve(dir: string): string }).resolve(root);
  } catch (err) {
    if (!/No native build was found/.test(String((err as Error)?.message))) throw new Error(`${root}: lsmseg's native addon: ${(err as Error)?.message}`, { cause: err });
    throw new Error(`lsmseg's native addon (libtorch) is not built in ${root}: in a checkout run 'npm run setup'; in an installed package give it a libtorch, then 'npm rebuild lsmseg' (README: Install as a package)`);
  }
  // node-gyp-build takes build/Release's first .node file: an old build's lsmseg_malloc.node would come first
  const own = join(root, "build", "Release", "lsmseg_native.node");
  if (path.startsWith(join(root, "build")) && path !== own && existsSync(own)) path = own;
  let loaded: NativeAddon;
  try {
    loaded = require(path) as NativeAddon;
  } catch (e) {
    throw new Error(`lsmseg's native addon ${path} does not load (${(e as Error).message.split("\n")[0]}): was the libtorch it was built against moved or removed? Rebuild it: 'npm run setup' in a checkout, 'npm rebuild lsmseg' in a package`);
  }
  addon = loaded;
  for (const f of onLoad) f(loaded);
  return loaded;
}

/** Runs `f` once the addon is loaded (at once when it is): process-wide settings such as the thread count. */
export function whenLoaded(f: (addon: NativeAddon) => void): void {
  if (addon) f(addon);
  else onLoad.push(f);
}

/** The addon, loaded on first use (a property read costs a proxy trap, small beside any libtorch call). */
export const native: NativeAddon = new Proxy({} as NativeAddon, {
  get: (_target, key) => (addon ?? load())[key as keyof NativeAddon],
});
