// Data parallelism through PyTorch's own distributed layer (c10d): a TCPStore rendezvous and a Gloo process
// group (NCCL between CUDA ranks when the addon was built with it), with the launcher conventions of torchrun
// (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT). Every collective waits at most `timeoutMs`: a dead peer becomes
// an Error, never a hang.
import { native, type Handle } from "./native.ts";
import { Tensor } from "./tensor.ts";

export interface DistOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs?: number;
  /** "gloo" or "nccl"; by default NCCL when `device` is CUDA and the addon has it, else Gloo
   *  (LSMSEG_DIST_BACKEND in the environment chooses too) */
  backend?: Backend;
  /** the device this rank computes on ("cpu", "cuda:1"): NCCL's collectives run there */
  device?: string;
}

export type Backend = "gloo" | "nccl";

/** The backend for a rank on `device`: NCCL for CUDA when the addon was built with it, else Gloo. */
export function defaultBackend(device = "cpu", env: NodeJS.ProcessEnv = process.env): Backend {
  const asked = env.LSMSEG_DIST_BACKEND;
  if (asked !== undefined && asked !== "") {
    if (asked !== "gloo" && asked !== "nccl") throw new Error(`LSMSEG_DIST_BACKEND=${asked}: expected gloo or nccl`);
    return asked;
  }
  return device.startsWith("cuda") && native.buildInfo().nccl ? "nccl" : "gloo";
}

/** The process group settings from the environment, or null when this is not a multi-process run. */
export function distOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): DistOptions | null {
  const world = Number(env.WORLD_SIZE ?? 1);
  if (!Number.isInteger(world) || world <= 1) return null;
  const rank = Number(env.RANK);
  const port = Number(env.MASTER_PORT ?? 29500);
  if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw new Error(`RANK=${env.RANK} is not in 0…${world - 1} (WORLD_SIZE=${world})`);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`MASTER_PORT=${env.MASTER_PORT} is not a port number`);
  const timeout = Number(env.LSMSEG_DIST_TIMEOUT_MS ?? 120_000);
  return { rank, worldSize: world, masterAddr: env.MASTER_ADDR ?? "127.0.0.1", masterPort: port, timeoutMs: timeout };
}

export type ReduceOp = "sum" | "max" | "min" | "product";

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: Backend;
  /** where NCCL's collectives run (tensors elsewhere are copied there and back); null for Gloo, which
   *  takes tensors where they are */
  readonly commDevice: string | null;
  private handle: Handle | null;

  private constructor(handle: Handle, rank: number, worldSize: number, backend: Backend, commDevice: string | null) {
    this.handle = handle;
    this.rank = rank;
    this.worldSize = worldSize;
    this.backend = backend;
    this.commDevice = commDevice;
  }

  /** Joins the group: blocks until every rank has joined (or the timeout passes). */
  static init(o: DistOptions): ProcessGroup {
    const device = o.device ?? "cpu";
    const backend = o.backend ?? defaultBackend(device);
    if (backend === "nccl") {
      if (!device.startsWith("cuda")) throw new Error(`the NCCL backend needs a CUDA device, not '${device}'`);
      // a dead peer must become an error after the timeout, not a hang: wait on the host for each collective
      process.env.TORCH_NCCL_BLOCKING_WAIT ??= "1";
      process.env.NCCL_BLOCKING_WAIT ??= "1";
    }
    const h = native.distInit(o.rank, o.worldSize, o.masterAddr, o.masterPort, o.timeoutMs ?? 120_000, backend);
    return new ProcessGroup(h, o.rank, o.worldSize, backend, backend === "nccl" ? device : null);
  }

  /** Runs `op` on the tensors as the backend needs them (on the NCCL device), writing results back in place. */
  private staged(tensors: Tensor[], op: (handles: Handle[]) => void): void {
    const dev = this.commDevice;
    const away = dev === null ? [] : tensors.filter((t) => t.device !== dev);
    if (away.length === 0) { op(tensors.map((t) => t.handle)); return; }
    const moved = tensors.map((t) => (t.device === dev ? t : t.to(dev!)));
    try {
      op(moved.map((t) => t.handle));
      tensors.forEach((t, i) => { if (moved[i] !== t) t.copy_(moved[i]); });
    } finally {
      moved.forEach((m, i) => { if (m !== tensors[i]) m.dispose(); });
    }
  }

  private get h(): Handle {
    if (!this.handle) throw new Error("the process group has been destroyed");
    return this.handle;
  }

  /** In place: each tensor becomes the reduction over all ranks. */
  allReduce(tensors: Tensor[], op: ReduceOp = "sum"): void {
    this.staged(tensors, (hs) => native.allReduce(this.h, hs, op));
  }

  /** In place: each tensor becomes rank `root`'s value. */
  broadcast(tensors: Tensor[], root = 0): void {
    this.staged(tensors, (hs) => native.broadcast(this.h, hs, root));
  }

  /** Every rank's copy of `t`, in rank order. */
  allGather(t: Tensor): Tensor[] {
    const dev = this.commDevice;
    if (dev === null || t.device === dev) return native.allGather(this.h, t.handle).map((h) => new Tensor(h));
    const moved = t.to(dev);
    try {
      return native.allGather(this.h, moved.handle).map((h) => { const g = new Tensor(h); const back = g.to(t.device); g.dispose(); return back; });
    } finally {
      moved.dispose();
    }
  }

  /** Waits for every rank; `timeoutMs` overrides the group's timeout (waiting for peers' long work). */
  barrier(timeoutMs?: number): void {
    native.barrier(this.h, timeoutMs);
  }

  /**
   * DistributedDataParallel's gradient step: every parameter's gradient becomes its mean over the ranks
   * (flattened into buckets of `bucketCapMB`, all buckets' all-reduces in flight together).
   */
  averageGradients(params: Tensor[], bucketCapMB = 25): number {
    return native.allReduceGrads(this.h, params.map((p) => p.handle), bucketCapMB);
  }

  /**
   * DistributedDataParallel's overlap: hooks on `params` copy each gradient into its bucket as backward computes
   * it, and a bucket's all-reduce starts as soon as its last gradient is in (buckets in reverse parameter order,
   * launched in order on every rank), while backward goes on. Call `finish()` after each backward (gradients
   * must start from none: zeroGrad before backward); then every .grad is the mean over the ranks.
   */
  gradSync(params: Tensor[], bucketCapMB = 25): GradSync {
    return new GradSync(native.gradSyncCreate(this.h, params.map((p) => p.handle), bucketCapMB));
  }

  destroy(): void {
    if (this.handle) native.distDestroy(this.handle);
    this.handle = null;
  }
}

/** Gradient averaging overlapped with backward; see ProcessGroup.gradSync. */
export class GradSync {
  private handle: Handle | null;

  constructor(handle: Handle) {
    this.handle = handle;
  }

  /** Waits for the buckets' all-reduces and writes the means into .grad; returns how many buckets there are
   *  and how many of their all-reduces had started during backward. */
  finish(): { buckets: number; duringBackward: number } {
    if (!this.handle) throw new Error("the gradient sync has been disposed");
    return native.gradSyncFinish(this.handle);
  }

  /** Removes the hooks from the parameters. */
  dispose(): void {
    if (this.handle) native.gradSyncDestroy(this.handle);
    this.handle = null;
  }
}
