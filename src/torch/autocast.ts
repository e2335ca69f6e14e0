// Mixed precision: inside an autocast scope, libtorch runs convolutions and matrix products in a
// lower precision (bf16 on CPU; bf16 or fp16 on CUDA) and keeps reductions and losses in fp32,
// exactly as torch.autocast. On CPUs with avx512_bf16 a bf16 U-Net step is about 3x faster.
import { readFileSync } from "node:fs";
import { native } from "./native.ts";
import { type DType, dtypeCode } from "./dtype.ts";

export interface AutocastOptions {
  device?: "cpu" | "cuda";
  dtype?: DType;
  /** false runs fn without autocast (so callers can pass a flag straight through). */
  enabled?: boolean;
}

/** Runs fn inside an autocast scope; scopes nest, and the cast-weight cache is dropped on exit. */
export function autocast<T>(fn: () => T, opts: AutocastOptions = {}): T {
  const device = opts.device ?? "cpu";
  if (opts.enabled === false) return withoutAutocast(device, fn);
  const dtype = opts.dtype ?? "bfloat16";
  if (device === "cpu" && dtype !== "bfloat16") throw new Error(`autocast: on CPU only bfloat16 is supported, got ${dtype}`);
  const [prevEnabled, prevDtype] = native.autocastEnter(device, dtypeCode(dtype));
  try {
    return fn();
  } finally {
    native.autocastExit(device, prevEnabled, prevDtype);
  }
}

/**
 * Runs fn with autocast switched off, even inside an enabled scope, as torch.autocast(enabled=False)
 * does (the way to keep one part of a network in fp32). Each enter/exit pair keeps the nesting count
 * balanced; the outer state is restored afterwards.
 */
function withoutAutocast<T>(device: string, fn: () => T): T {
  const [prevEnabled, prevDtype] = native.autocastEnter(device, dtypeCode("bfloat16"));
  native.autocastExit(device, false, prevDtype);
  try {
    return fn();
  } finally {
    native.autocastEnter(device, prevDtype);
    native.autocastExit(device, prevEnabled, prevDtype);
  }
}

let bf16Cache: boolean | undefined;

/** Whether this CPU computes bf16 natively (avx512_bf16 or amx_bf16): where autocast pays off. */
export function cpuHasBf16(): boolean {
  if (bf16Cache === undefined) {
    try {
      const flags = readFileSync("/proc/cpuinfo", "utf8");
      bf16Cache = /\b(avx512_bf16|amx_bf16)\b/.test(flags);
    } catch {
      bf16Cache = false;
    }
  }
  return bf16Cache;
}

/** The default precision for training and inference here: bf16 autocast where the CPU has it. */
export function defaultPrecision(device = "cpu"): "bf16" | "fp32" {
  if (process.env.LSMSEG_PRECISION === "fp32" || process.env.LSMSEG_PRECISION === "bf16") return process.env.LSMSEG_PRECISION;
  return device.startsWith("cuda") || cpuHasBf16() ? "bf16" : "fp32";
}
