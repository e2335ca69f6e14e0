// Data parallelism through PyTorch's own distributed layer (c10d): a TCPStore rendezvous and a Gloo
// process group, with the launcher conventions of torchrun (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT).
// Every collective waits at most `timeoutMs`: a dead peer becomes an Error, never a hang.
import { native, type Handle } from "./native.ts";
import { Tensor } from "./tensor.ts";

export interface DistOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs?: number;
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
  private handle: Handle | null;

  private constructor(handle: Handle, rank: number, worldSize: number) {
    this.handle = handle;
    this.rank = rank;
    this.worldSize = worldSize;
  }

  /** Joins the group: blocks until every rank has joined (or the timeout passes). */
  static init(o: DistOptions): ProcessGroup {
    const h = native.distInit(o.rank, o.worldSize, o.masterAddr, o.masterPort, o.timeoutMs ?? 120_000);
    return new ProcessGroup(h, o.rank, o.worldSize);
  }

  private get h(): Handle {
    if (!this.handle) throw new Error("the process group has been destroyed");
    return this.handle;
  }

  /** In place: each tensor becomes the reduction over all ranks. */
  allReduce(tensors: Tensor[], op: ReduceOp = "sum"): void {
    native.allReduce(this.h, tensors.map((t) => t.handle), op);
  }

  /** In place: each tensor becomes rank `root`'s value. */
  broadcast(tensors: Tensor[], root = 0): void {
    native.broadcast(this.h, tensors.map((t) => t.handle), root);
  }

  /** Every rank's copy of `t`, in rank order. */
  allGather(t: Tensor): Tensor[] {
    return native.allGather(this.h, t.handle).map((h) => new Tensor(h));
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
