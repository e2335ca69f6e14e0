// Engine-wide settings: threads, seeds, random state, build information, live memory.
import { availableParallelism } from "node:os";
import { native, whenLoaded, type BuildInfo } from "./native.ts";
import { Tensor } from "./tensor.ts";

/** Sets libtorch's intra-op threads (default: the number of cores, or LSMSEG_THREADS). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNumThreads: expected a positive integer, got ${n}`);
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Seeds libtorch's global generator (rand, randn, dropout, ...). */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}

/** The global generator's state (a uint8 tensor), for checkpoints. */
export function getRngState(): Tensor {
  return new Tensor(native.getRngState());
}
export function setRngState(state: Tensor): void {
  native.setRngState(state.handle);
}

export function buildInfo(): BuildInfo {
  return native.buildInfo();
}

export function cudaAvailable(): boolean {
  return native.buildInfo().cuda;
}

/**
 * Gives the heap's free pages back to the system. The addon keeps freed memory mapped (fast training
 * steps); a long job whose unit of work changes size (out-of-core prediction's blocks) calls this between
 * units so that its resident memory stays near one unit's, not the largest fragmentation seen.
 */
export function releaseFreeMemory(): boolean {
  return native.mallocTrim();
}

/** Live tensor handles and their bytes, as the native layer counts them (for leak tests). */
export function liveTensors(): { tensors: number; bytes: number } {
  return native.liveStats();
}

/** Every overload's schema of an operator, e.g. schemas("aten::conv3d"): for extending the bindings. */
export function schemas(name: string): string[] {
  return native.schemas(name.includes("::") ? name : `aten::${name}`);
}

const envThreads = Number(process.env.LSMSEG_THREADS);
whenLoaded((addon) => addon.setNumThreads(Number.isInteger(envThreads) && envThreads > 0 ? envThreads : availableParallelism()));
