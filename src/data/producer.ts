// The work of one training sample, the same whether it runs in a worker thread or inline: read and normalise
// the case (through a bounded LRU cache of decoded volumes), place the patch, augment it.
import { type Vec3, readVolume } from "../io/index.ts";
import { type AugmentConfig, augment, twoViews } from "./augment.ts";
import type { Case } from "./dataset.ts";
import { applyLabelMap } from "./labels.ts";
import { type NormalizeOptions, normalize } from "./normalize.ts";
import { stream } from "./rng.ts";
import { type Sample, cropPatch, foregroundLocations, minimumOf, patchCenter, patchStart } from "./sampling.ts";

/** A case read for training or prediction: image normalised, label 0/1/IGNORE_LABEL (by the case's label map) or null. */
export interface LoadedCase extends Sample {
  id: string;
  spacingUm: Vec3;
  /** The image's minimum after normalisation: the value patches are padded with. */
  padValue: number;
  /** Linear indices of (a subsample of at most 10,000) foreground voxels, never ignored ones; empty without a label. */
  foreground: Uint32Array;
}

/** Reads `c`: the image normalised (percentile clip + z-score), the label mapped (./labels.ts) and checked against the image's shape. */
export async function loadCase(c: Case, opts: NormalizeOptions = {}): Promise<LoadedCase> {
  const [vol, lab] = await Promise.all([readVolume(c.imagePath), c.labelPath ? readVolume(c.labelPath) : null]);
  if (lab && lab.shape.join() !== vol.shape.join()) {
    throw new Error(`${c.labelPath}: shape ${lab.shape.join("×")} does not match image ${c.imagePath} ${vol.shape.join("×")}`);
  }
  const image = normalize(vol.data, opts);
  const label = lab ? applyLabelMap(lab.data, c.labelMap) : null;
  return {
    id: c.id, image, label, shape: [...vol.shape], spacingUm: [...vol.spacingUm],
    padValue: minimumOf(image), foreground: label ? foregroundLocations(label) : new Uint32Array(0),
  };
}

const bytesOf = (c: LoadedCase) => c.image.byteLength + (c.label?.byteLength ?? 0) + c.foreground.byteLength;

/** Loaded cases kept up to a byte budget, least recently used evicted first; concurrent loads of one case are shared. */
export class CaseCache {
  private readonly entries = new Map<string, LoadedCase>();
  private readonly loading = new Map<string, Promise<LoadedCase>>();
  bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly budgetBytes: number, readonly normalizeOptions: NormalizeOptions = {}) {}

  async get(c: Case): Promise<LoadedCase> {
    const hit = this.entries.get(c.id);
    if (hit) {
      this.entries.delete(c.id);
      this.entries.set(c.id, hit);
      this.hits++;
      return hit;
    }
    const inFlight = this.loading.get(c.id);
    if (inFlight) return inFlight;
    this.misses++;
    const p = loadCase(c, this.normalizeOptions).then((loaded) => {
      this.loading.delete(c.id);
      this.put(loaded);
      return loaded;
    }, (err) => {
      this.loading.delete(c.id);
      throw err;
    });
    this.loading.set(c.id, p);
    return p;
  }

  private put(loaded: LoadedCase): void {
    const size = bytesOf(loaded);
    if (size > this.budgetBytes) return;
    this.entries.set(loaded.id, loaded);
    this.bytes += size;
    for (const [id, old] of this.entries) {
      if (this.bytes <= this.budgetBytes) break;
      this.entries.delete(id);
      this.bytes -= bytesOf(old);
    }
  }
}

/** What every sample of a loader shares. */
export interface ProducerSettings {
  cases: Case[];
  patchSize: Vec3;
  seed: number;
  augment: AugmentConfig | null;
  /** 2: a second, independently augmented view of the same crop. */
  views: 1 | 2;
}

/** Sample `slot` of batch `batch`: which case (chosen by the caller) and whether it is centred on foreground. */
export interface SampleTask {
  batch: number;
  slot: number;
  caseIndex: number;
  forceForeground: boolean;
}

export interface ProducedSample {
  image: Float32Array;
  image2: Float32Array | null;
  label: Uint8Array | null;
}

/** Makes one sample; its content depends only on the settings, the task and the case's files. */
export async function produceSample(settings: ProducerSettings, cache: CaseCache, task: SampleTask): Promise<ProducedSample> {
  const c = settings.cases[task.caseIndex];
  const vol = await cache.get(c);
  const rng = stream(settings.seed, "batch", task.batch, "sample", task.slot);
  const fg = task.forceForeground && vol.foreground.length > 0 ? vol.foreground[rng.int(0, vol.foreground.length - 1)] : null;
  const start = patchStart(vol.shape, settings.patchSize, rng, fg);
  if (!settings.augment) {
    const p = cropPatch(vol, start, settings.patchSize, vol.padValue);
    return { image: p.image, image2: settings.views === 2 ? p.image.slice() : null, label: p.label };
  }
  const opts = { patchSize: settings.patchSize, center: patchCenter(start, settings.patchSize), padValue: vol.padValue };
  if (settings.views === 2) {
    const [a, b] = twoViews(vol, settings.augment, rng, opts);
    return { image: a.image, image2: b.image, label: a.label };
  }
  const p = augment(vol, settings.augment, rng, opts);
  return { image: p.image, image2: null, label: p.label };
}
