// Checkpoints: one safetensors file holding the model's state dict ("model.<key>"), the optimizer's
// per-parameter state ("optim.<i>.<name>"), the global RNG state ("rng"), and in its metadata a JSON
// document with the step, the network config and whatever the caller adds (plan, normalisation,
// key groups). Written atomically; a checkpoint once written is never overwritten in place.
import { existsSync } from "node:fs";
import { keep } from "./scope.ts";
import { type Tensor } from "./tensor.ts";
import { getRngState, setRngState } from "./runtime.ts";
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from "./safetensors.ts";

export interface CheckpointMeta {
  format: "lsmseg-checkpoint";
  version: 1;
  step: number;
  /** The network config (a plain object that buildNetwork() accepts). */
  network?: Record<string, unknown>;
  /** numParams: how many parameters the optimizer had (the state of some may be empty). */
  optimizer?: { kind: string; lr: number; numParams?: number };
  /** Anything else the caller wants to carry (plan, normalisation, key groups, epoch, ...). */
  extra?: Record<string, unknown>;
  savedAt: string;
}

export interface Checkpoint {
  meta: CheckpointMeta;
  model: Map<string, Tensor>;
  optimizer: { kind: string; lr: number; params: (Record<string, Tensor> | null)[] } | null;
  rng: Tensor | null;
}

export interface SaveCheckpointInput {
  step: number;
  model: Map<string, Tensor>;
  optimizer?: { kind: string; lr: number; params: (Record<string, Tensor> | null)[] };
  network?: Record<string, unknown>;
  extra?: Record<string, unknown>;
  /** Store the global RNG state (default true) so that a resumed run draws the same numbers. */
  rng?: boolean;
  /** Allow replacing an existing file (atomically). Default false: checkpoints are never overwritten by accident. */
  overwrite?: boolean;
}

export function saveCheckpoint(path: string, c: SaveCheckpointInput): void {
  if (!c.overwrite && existsSync(path)) throw new Error(`${path}: a checkpoint already exists there (pass overwrite: true to replace it atomically)`);
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of c.model) tensors.set(`model.${k}`, t);
  c.optimizer?.params.forEach((entry, i) => {
    if (entry) for (const [name, t] of Object.entries(entry)) tensors.set(`optim.${i}.${name}`, t);
  });
  const rng = c.rng === false ? null : getRngState();
  if (rng) tensors.set("rng", rng);
  const meta: CheckpointMeta = {
    format: "lsmseg-checkpoint", version: 1, step: c.step, network: c.network,
    optimizer: c.optimizer ? { kind: c.optimizer.kind, lr: c.optimizer.lr, numParams: c.optimizer.params.length } : undefined,
    extra: c.extra, savedAt: new Date().toISOString(),
  };
  try {
    saveSafetensors(path, tensors, { lsmseg: JSON.stringify(meta) });
  } finally {
    rng?.dispose();
  }
}

function parseMeta(path: string, metadata: Record<string, string>): CheckpointMeta {
  if (typeof metadata.lsmseg !== "string") throw new Error(`${path}: a safetensors file but not an lsmseg checkpoint (no 'lsmseg' metadata)`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(metadata.lsmseg) as CheckpointMeta;
  } catch (err) {
    throw new Error(`${path}: the checkpoint's metadata is not JSON (${(err as Error).message})`);
  }
  if (meta.format !== "lsmseg-checkpoint") throw new Error(`${path}: unknown checkpoint format '${String(meta.format)}'`);
  if (meta.version !== 1) throw new Error(`${path}: checkpoint version ${meta.version} is newer than this lsmseg reads (1)`);
  return meta;
}

/** Reads only the metadata (fast: the tensors are not decoded). */
export function readCheckpointMeta(path: string): CheckpointMeta {
  if (!existsSync(path)) throw new Error(`${path}: no such checkpoint`);
  return parseMeta(path, readSafetensorsHeader(path).metadata);
}

/** Loads a checkpoint. restoreRng (default false) also sets the global RNG state. Tensors are kept (caller disposes). */
export function loadCheckpoint(path: string, opts: { restoreRng?: boolean } = {}): Checkpoint {
  if (!existsSync(path)) throw new Error(`${path}: no such checkpoint`);
  const { tensors, metadata } = loadSafetensors(path);
  const disposeAll = () => {
    for (const t of tensors.values()) t.dispose();
  };
  let meta: CheckpointMeta;
  try {
    meta = parseMeta(path, metadata);
  } catch (err) {
    disposeAll();
    throw err;
  }
  const model = new Map<string, Tensor>();
  // Parameters without state (no step yet, no gradient, SGD without momentum) have no tensors in the
  // file: the list is as long as the optimizer's parameters, with null for those.
  const numParams = meta.optimizer?.numParams;
  const optimParams: (Record<string, Tensor> | null)[] = new Array(numParams ?? 0).fill(null);
  let rng: Tensor | null = null;
  for (const t of tensors.values()) keep(t);
  for (const [k, t] of tensors) {
    if (k.startsWith("model.")) model.set(k.slice(6), t);
    else if (k.startsWith("optim.")) {
      const rest = k.slice(6);
      const dot = rest.indexOf(".");
      const i = dot > 0 ? Number(rest.slice(0, dot)) : NaN;
      if (!Number.isInteger(i) || i < 0 || (numParams !== undefined && i >= numParams)) {
        disposeAll();
        throw new Error(`${path}: tensor '${k}' does not name one of the optimizer's ${numParams ?? "?"} parameters`);
      }
      while (optimParams.length <= i) optimParams.push(null);
      (optimParams[i] ??= {})[rest.slice(dot + 1)] = t;
    } else if (k === "rng") rng = t;
  }
  if (opts.restoreRng && rng) setRngState(rng);
  const optimizer = meta.optimizer ? { kind: meta.optimizer.kind, lr: meta.optimizer.lr, params: optimParams } : null;
  return { meta, model, optimizer, rng };
}
