// Engine-wide settings: threads, seeds, random state, build information, live memory.
import { spawnSync } from "node:child_process";
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
 * The memory of the GPU behind a device string ("cuda", "cuda:1"), in bytes: LSMSEG_GPU_MEMORY_MB when set (to plan
 * for another GPU, or to leave room for other work), else nvidia-smi's memory.total (the index taken through
 * CUDA_VISIBLE_DEVICES, as CUDA numbers the devices). Null where neither says.
 */
export function gpuMemoryBytes(device: string, env: NodeJS.ProcessEnv = process.env): number | null {
  if (env.LSMSEG_GPU_MEMORY_MB !== undefined) {
    const mb = Number(env.LSMSEG_GPU_MEMORY_MB);
    if (!Number.isFinite(mb) || mb <= 0) throw new Error(`LSMSEG_GPU_MEMORY_MB: expected a positive number of MiB, got "${env.LSMSEG_GPU_MEMORY_MB}"`);
    return mb * 2 ** 20;
  }
  const index = Number(/^cuda:(\d+)$/.exec(device)?.[1] ?? 0);
  const visible = env.CUDA_VISIBLE_DEVICES?.split(",").map((s) => s.trim()).filter(Boolean);
  const physical = visible && visible.length > index ? visible[index] : String(index);
  const r = spawnSync("nvidia-smi", ["--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", physical], { encoding: "utf8" });
  const mb = r.status === 0 ? Number(r.stdout.trim().split("\n")[0]) : NaN;
  return Number.isFinite(mb) && mb > 0 ? mb * 2 ** 20 : null;
}

/** Whether CPU convolutions may use oneDNN (torch.backends.mkldnn.enabled; on by default); returns the previous setting. */
export function setMkldnnEnabled(enabled: boolean): boolean {
  return native.setMkldnnEnabled(enabled);
}

/** Waits until the GPU has run everything queued so far (for timing GPU work); does nothing without CUDA. */
export function cudaSynchronize(): void {
  native.cudaSynchronize();
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
