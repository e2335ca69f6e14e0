// Trained models on disk: a run folder (checkpoint_final/best/latest.safetensors + plan.json) or a
// single checkpoint. Also the transfer of pretrained (SSL) weights into a segmentation network.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Module } from "../nn/module.ts";
import { type SegNetwork, buildNetwork } from "../nn/networks.ts";
import { type Tensor, loadCheckpoint, readCheckpointMeta } from "../torch/index.ts";
import type { Plan } from "./plan.ts";

export const CHECKPOINT_NAMES = {
  latest: "checkpoint_latest.safetensors", best: "checkpoint_best.safetensors", final: "checkpoint_final.safetensors",
} as const;

/** The checkpoint a path names: a file, or in a run folder final → best → latest (or the one asked for). */
export function resolveCheckpoint(path: string, which?: keyof typeof CHECKPOINT_NAMES): string {
  if (!existsSync(path)) throw new Error(`${path}: no such run folder or checkpoint`);
  if (!statSync(path).isDirectory()) return path;
  const order = which ? [which] : (["final", "best", "latest"] as const);
  for (const w of order) {
    const p = join(path, CHECKPOINT_NAMES[w]);
    if (existsSync(p)) return p;
  }
  throw new Error(`${path}: the run folder has no ${order.map((w) => CHECKPOINT_NAMES[w]).join(" / ")}`);
}

export interface LoadedModel {
  net: SegNetwork;
  plan: Plan;
  checkpoint: string;
  step: number;
}

/** Builds the network a fine-tuned checkpoint describes and loads its weights (eval mode). */
export function loadModel(path: string, which?: keyof typeof CHECKPOINT_NAMES): LoadedModel {
  const file = resolveCheckpoint(path, which);
  const meta = readCheckpointMeta(file);
  const plan = meta.extra?.plan as Plan | undefined;
  if (!plan) throw new Error(`${file}: the checkpoint carries no plan (is it a pretraining checkpoint? fine-tune it first)`);
  const net = buildNetwork(plan.network);
  const ckpt = loadCheckpoint(file);
  try {
    loadWeights(file, ckpt.model, net);
  } finally {
    disposeCheckpoint(ckpt.model, ckpt.optimizer?.params, ckpt.rng);
  }
  net.eval();
  return { net, plan, checkpoint: file, step: meta.step };
}

/**
 * Loads the tensors of checkpoint `file` into `net`: every key of the network (a fine-tuned checkpoint), or with
 * the method's `heads` a pretraining checkpoint's: the trained keys of the network (the others stay as they are)
 * and the heads' under "ssl.".
 */
export function loadWeights(file: string, model: Map<string, Tensor>, net: SegNetwork, heads?: Module): void {
  if (!heads) {
    try {
      net.loadStateDict(model, { strict: true });
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`);
    }
    return;
  }
  const own = new Map<string, Tensor>(), ssl = new Map<string, Tensor>();
  for (const [k, t] of model) (k.startsWith("ssl.") ? ssl : own).set(k.startsWith("ssl.") ? k.slice(4) : k, t);
  const r = net.loadStateDict(own, { strict: false });
  if (r.unexpected.length || r.mismatched.length) {
    const keys = [...r.unexpected, ...r.mismatched.map((m) => m.key)].slice(0, 5).join(", ");
    throw new Error(`${file}: the checkpoint does not fit the planned network (${keys} …)`);
  }
  heads.loadStateDict(ssl, { strict: true });
}

export function disposeCheckpoint(model: Map<string, Tensor>, optim?: (Record<string, Tensor> | null)[], rng?: Tensor | null): void {
  for (const t of model.values()) t.dispose();
  for (const e of optim ?? []) if (e) for (const t of Object.values(e)) t.dispose();
  rng?.dispose();
}

export interface TransferReport {
  source: string;
  transferred: string[];
  skipped: { key: string; reason: string }[];
  /** Keys of the target that received nothing (trained from their initialisation). */
  untouched: string[];
}

/**
 * Loads a pretrained checkpoint's weights into `net` wherever the key exists and the shape matches:
 * the encoder by default, or everything that fits with parts "all" (the decoder where shapes match;
 * the segmentation heads rarely do). Reports the rest. Encoder-only is the default because a decoder
 * trained to reconstruct intensities (MAE, Models Genesis) fine-tuned badly in short runs here.
 */
export function transferWeights(net: SegNetwork, path: string, parts: "encoder" | "all" = "encoder"): TransferReport {
  const file = resolveCheckpoint(path);
  const ckpt = loadCheckpoint(file);
  try {
    const encoder = new Set(net.keyGroups().encoder);
    const wanted = parts === "all" ? ckpt.model : new Map([...ckpt.model].filter(([k]) => encoder.has(k)));
    const res = net.loadStateDict(wanted, { strict: false });
    return {
      source: file,
      transferred: res.loaded,
      skipped: [
        ...res.mismatched.map((m) => ({ key: m.key, reason: `shape [${m.got}] does not fit [${m.expected}]` })),
        ...res.unexpected.map((k) => ({ key: k, reason: "not in the fine-tuning network" })),
        ...[...ckpt.model.keys()].filter((k) => !wanted.has(k)).map((k) => ({ key: k, reason: "not an encoder key (--init-parts all transfers the decoder too)" })),
      ],
      untouched: [...res.missing, ...res.mismatched.map((m) => m.key)],
    };
  } finally {
    disposeCheckpoint(ckpt.model, ckpt.optimizer?.params, ckpt.rng);
  }
}

/** The network config a pretraining checkpoint carries, with the fine-tuning head's class count. */
export function networkFromCheckpoint(path: string, numClasses: number, deepSupervision: boolean): Plan["network"] | null {
  const meta = readCheckpointMeta(resolveCheckpoint(path));
  const net = meta.network as Plan["network"] | undefined;
  return net ? ({ ...net, numClasses, deepSupervision } as Plan["network"]) : null;
}
