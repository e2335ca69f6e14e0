// The options of prediction, shared by in-memory (predict.ts) and out-of-core (predict_large.ts) prediction.
import type { OptionError } from "../util/option_error.ts";

export interface PredictOptions {
  mirror?: boolean;
  step?: number;
  batchSize?: number;
  /** Batches run together in one forward pass (default: sliding_window.ts's defaultBatchesPerForward). */
  batchesPerForward?: number;
  precision?: "bf16" | "fp32";
  /** Where the network runs ("cpu", "cuda", "cuda:N"; the model must be there: LoadedModel's net.to(device)). */
  device?: string;
  /** Foreground probability threshold; undefined = argmax over classes. */
  threshold?: number;
  /** Also return the foreground probability map (float32). */
  probabilities?: boolean;
  /** Called after each batch of windows with (windows run, windows to run). */
  onProgress?: (done: number, total: number) => void;
  /** Volumes whose in-memory prediction would need more than this (default 4 GiB) are predicted block by block
   *  (predict_large.ts), whose volume-sized arrays it bounds; the network's own working memory for a batch of
   *  windows (a few hundred MB for nnU-Net's widths at 128³) comes on top. */
  maxMemoryBytes?: number;
  /** This process's part of a multi-process prediction (`lsmseg predict --nproc N`); see predictPaths. */
  shard?: PredictShard;
  /** Told of a setting that cannot be honoured and what is done instead (default: console.warn of its message;
   *  a command line names its flags with messageWith). */
  onWarning?: (warning: OptionError) => void;
}

/** One rank of a multi-process prediction: its rank, the number of ranks, and a barrier over them. */
export interface PredictShard {
  rank: number;
  worldSize: number;
  barrier: (timeoutMs?: number) => void;
}

export const DEFAULT_MAX_MEMORY_BYTES = 4096 * 2 ** 20;
/** How long a rank of a multi-process prediction waits at a barrier for its peers' share of the work. */
export const SHARD_WAIT_MS = 24 * 3600_000;
