// Prediction of whole volumes with a fine-tuned model: normalise as in training, sliding window,
// argmax (or a threshold on the foreground probability), write a binary uint8 mask in the input's
// format, shape and geometry. Outputs are written to a temporary name and renamed.
import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { caseNameOf, isNnunetImageFolder, volumeExtensionOf } from "../dataset/names.ts";
import { nonFiniteOf, normalize } from "../data/normalize.ts";
import { type Volume, formatOf, listVolumes, prepareVolumeOutput, readVolume, writeVolume } from "../io/index.ts";
import { prepareOutput } from "../util/output.ts";
import { type Tensor, argmaxAlong, fromBytes, noGrad, softmax, tidy } from "../torch/index.ts";
import type { LoadedModel } from "./model.ts";
import { type PredictOptions, SHARD_WAIT_MS } from "./predict_options.ts";
import { needsOutOfCore, predictLarge } from "./predict_large.ts";
import { slidingWindow } from "./sliding_window.ts";
import { checkExists } from "../util/fserror.ts";

export interface Prediction {
  mask: Uint8Array;
  probabilities?: Float32Array;
}

/** Predicts one volume (raw intensities, any dtype); returns a {0,1} mask of the same shape. */
export function predictVolume(model: LoadedModel, vol: Volume, o: PredictOptions = {}): Prediction {
  const { plan, net } = model;
  const image = normalize(vol.data, { percentiles: plan.normalization.percentiles });
  const [d, h, w] = vol.shape;
  return noGrad(() => tidy(() => {
    const x = fromBytes(new Uint8Array(image.buffer, image.byteOffset, image.byteLength), [1, d, h, w], "float32");
    const logits = slidingWindow((b: Tensor) => net.forward(b) as Tensor, x, {
      patchSize: plan.patchSize, numClasses: plan.network.numClasses, step: o.step, batchSize: o.batchSize, batchesPerForward: o.batchesPerForward,
      mirror: o.mirror ?? true, precision: o.precision, device: o.device, onProgress: o.onProgress,
    });
    const needProb = o.threshold !== undefined || o.probabilities;
    const prob = needProb ? softmax(logits, 0).select(0, 1) : null;
    const mask = o.threshold !== undefined ? prob!.gt(o.threshold) : argmaxAlong(logits, 0).gt(0);
    return { mask: mask.to("uint8").data() as Uint8Array, probabilities: o.probabilities ? (prob!.data() as Float32Array) : undefined };
  }));
}

/** The inputs a path names: one volume (a file, a Zarr, a TIFF plane folder), or every volume in a folder (sorted). */
export function listInputs(path: string): string[] {
  checkExists(path, "no such file or folder");
  const files = listVolumes(path);
  if (files.length === 0) throw new Error(`${path}: the folder holds no volumes (.nii.gz, .nii, .mha, .mhd, .tif, .tiff, .zarr or folders of z-plane .tif files)`);
  return files;
}

/**
 * Where the prediction for `input` goes when the output is a folder: the same name, as the challenge expects;
 * for an image of nnU-Net's imagesTs/ or imagesTr/, the case name without the channel suffix, as nnU-Net names it.
 */
export function outputPathFor(input: string, outDir: string): string {
  const base = basename(input.replace(/\/+$/, ""));
  if (!isNnunetImageFolder(dirname(input.replace(/\/+$/, "")))) return join(outDir, base);
  return join(outDir, caseNameOf(base, true) + (volumeExtensionOf(base) ?? ""));
}

/** Says once per volume that its NaN/Inf voxels count as its minimum (normalize.ts). */
export function warnNonFinite(path: string, data: ArrayLike<number>): void {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return;
  const { count, min } = nonFiniteOf(data);
  if (count) console.error(`${path}: ${count} NaN/Inf voxel${count === 1 ? "" : "s"} treated as the volume's minimum (${min})`);
}

/** Predicts one file and writes the mask (uint8 {0,1}) with the input's geometry; optionally the probabilities. */
export async function predictFile(model: LoadedModel, input: string, output: string, o: PredictOptions = {}): Promise<void> {
  if (o.shard && o.shard.worldSize > 1) return predictLarge(model, input, output, o);
  if (await needsOutOfCore(model, input, o.maxMemoryBytes)) return predictLarge(model, input, output, o);
  let vol: Volume;
  try {
    vol = await readVolume(input);
  } catch (err) {
    throw new Error(`cannot read ${input}: ${(err as Error).message}`);
  }
  warnNonFinite(input, vol.data);
  const pred = predictVolume(model, vol, o);
  const { data: _data, ...header } = vol;
  // an OME-Zarr mask is an OME-NGFF image-label (nearest-neighbour pyramid, "image-label" metadata): a Labels layer in napari
  await writeVolume(output, { ...header, dtype: "uint8", data: pred.mask }, formatOf(output) === "zarr" ? { labelName: "mask" } : {});
  if (pred.probabilities) {
    await writeVolume(probabilityPathFor(output), { ...header, dtype: "float32", data: pred.probabilities });
  }
}

/** Where `--probabilities` writes the foreground probability of the mask `output`: <name>_prob.<ext>. */
export function probabilityPathFor(output: string): string {
  const ext = extname(output) === ".gz" ? ".nii.gz" : extname(output);
  return output.slice(0, output.length - ext.length) + "_prob" + ext;
}

/** The inputs `input` names and the output each goes to (`toFolder`: the output is a folder of masks). */
export function predictionTargets(input: string, output: string): { inputs: string[]; outputs: string[]; toFolder: boolean } {
  const inputs = listInputs(input);
  const toFolder = inputs.length > 1 || (existsSync(output) && statSync(output).isDirectory() && formatOf(output) !== "zarr" && formatOf(output) !== "tiff-folder") || output.endsWith("/");
  return { inputs, outputs: inputs.map((f) => (toFolder ? outputPathFor(f, output) : output)), toFolder };
}

/**
 * Checks every output of a prediction before any work: an existing mask is refused unless `overwrite`
 * (src/util/output.ts); the folder of masks is created.
 */
export function checkPredictionOutputs(input: string, output: string, o: { overwrite?: boolean; probabilities?: boolean } = {}): void {
  const { outputs, toFolder } = predictionTargets(input, output);
  if (toFolder) prepareOutput(output.replace(/\/+$/, ""), { kind: "folder", overwrite: true });
  for (const out of outputs) {
    for (const p of o.probabilities ? [out, probabilityPathFor(out)] : [out]) prepareVolumeOutput(p, { overwrite: o.overwrite });
  }
}

/**
 * Predicts a file or a folder of files into a file or a folder. With `o.shard` (several ranks), a folder's
 * files are dealt out (file i to rank i mod N, each predicted whole by its rank), and a single volume is
 * split into z-slabs dealt out the same way (predict_large.ts), with the result of one process bit for bit;
 * every rank returns the full list of outputs once all are written.
 */
export async function predictPaths(
  model: LoadedModel, input: string, output: string, o: PredictOptions & { onFile?: (i: number, n: number, path: string) => void } = {},
): Promise<string[]> {
  const { inputs, outputs, toFolder } = predictionTargets(input, output);
  if (toFolder) mkdirSync(output, { recursive: true });
  const shard = o.shard && o.shard.worldSize > 1 ? o.shard : null;
  const written: string[] = [];
  for (const [i, file] of inputs.entries()) {
    const out = outputs[i];
    written.push(out);
    if (shard && inputs.length > 1 && i % shard.worldSize !== shard.rank) continue;
    o.onFile?.(i, inputs.length, file);
    await predictFile(model, file, out, inputs.length > 1 ? { ...o, shard: undefined } : o);
  }
  if (shard && inputs.length > 1) shard.barrier(SHARD_WAIT_MS);
  return written;
}
