// Data loading speed: batches of 2 × 64³ patches, nnU-Net's default augmentation (plus light-sheet artefacts),
// from the annotated cases of the `demo` synthetic dataset, made inline (0 workers) and by 1 and 2 worker threads;
// and the time of each augmentation on one 64³ patch (probability 1).
// The three settings run interleaved (the shared method of bench/common.ts): after the warm-up pass, `reps` rounds of
// BATCHES / reps batches each from every loader in turn (a worker loader's prefetched batches taken untimed first);
// the minimum and median ms per batch over the rounds.
//   npm run bench -- loader [BATCHES] [--reps 5]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Vec3 } from "../src/io/index.ts";
import {
  DEFAULT_AUGMENT, NO_AUGMENT, type AugmentConfig, PatchLoader, annotatedCases, augment, augmentConfig, loadCase, stream,
} from "../src/data/index.ts";
import { synthDataset } from "../src/synth/index.ts";
import { benchArgs, interleave, load, machine, median, round, seconds } from "./common.ts";

const { positionals, reps } = benchArgs("loader", {});
const batches = Number(positionals[0] ?? 40);
const perRound = Math.max(1, Math.round(batches / reps));
const patchSize: Vec3 = [64, 64, 64];
const PREFETCH = 4;
const dir = mkdtempSync(join(tmpdir(), "lsmseg-bench-loader-"));
console.log(`machine: ${machine()}; load ${load().join(" ")}`);
try {
  await synthDataset(join(dir, "demo"), { preset: "demo", seed: 0, quiet: true, overrides: { unannotatedPerType: 0, testPerType: 0, rawVolumes: 0 } });
  const cases = await annotatedCases(join(dir, "demo"));
  console.log(`${cases.length} annotated cases of ${cases.length ? "64³" : "?"}, batch 2 × ${patchSize.join("×")}, default augmentation, ${batches} batches after a warm-up pass`);

  const result: Record<string, unknown> = {};
  const loaders = [0, 1, 2].map((workers) => ({
    workers, loader: new PatchLoader({ cases, patchSize, batchSize: 2, seed: 0, augment: DEFAULT_AUGMENT, workers, prefetch: PREFETCH }),
  }));
  // A worker loader keeps prefetching while the other loaders' rounds run, so its first `prefetch` batches of a
  // round are ready and cost nothing: each round takes those untimed first, and times the batches the workers must
  // then make while it waits (their production rate, what a training step faster than the loader sees).
  const sides = loaders.map(({ workers, loader }) => ({
    label: `workers${workers}`,
    rep: async () => {
      for (let i = 0; i < (workers > 0 ? PREFETCH : 0); i++) await loader.next();
      return seconds(async () => { for (let i = 0; i < perRound; i++) await loader.next(); });
    },
  }));
  // warm-up: every case decoded and cached once by every loader (the caches then serve every epoch)
  for (const { loader } of loaders) for (let i = 0; i < cases.length; i++) await loader.next();
  const { times, load: l } = await interleave(sides, reps, { warmup: false, quiet: true });
  for (const { loader } of loaders) await loader.close();
  for (const [label, t] of Object.entries(times)) {
    const ms = (x: number) => round((1000 * x) / perRound, 1);
    console.log(`  ${label}: ${ms(t.min)} / ${ms(t.median)} ms per batch (min / median of ${reps} rounds of ${perRound} batches)`);
    result[`${label}_ms_per_batch`] = ms(t.min);
    result[`${label}_ms_per_batch_median`] = ms(t.median);
    result[`${label}_batches_per_s`] = round(perRound / t.min, 2);
  }
  result.load = l;

  // each transform alone, probability 1, on one patch cut from a cached case
  const vol = await loadCase(cases[0]);
  const only = (overrides: Partial<AugmentConfig>) => augmentConfig({ ...NO_AUGMENT, ...overrides });
  const transforms: Record<string, AugmentConfig> = {
    crop: NO_AUGMENT,
    "rotation+scale": only({ pRotation: 1, pScale: 1 }),
    noise: only({ pNoise: 1 }),
    blur: only({ pBlur: 1 }),
    brightness: only({ pBrightness: 1 }),
    contrast: only({ pContrast: 1 }),
    "low resolution": only({ pLowRes: 1 }),
    gamma: only({ pGamma: 1 }),
    mirror: only({ pMirror: 1 }),
    stripes: only({ pStripes: 1 }),
    "depth attenuation": only({ pDepthAttenuation: 1 }),
    "anisotropic blur": only({ pAnisotropicBlur: 1 }),
    "default (mean over draws)": DEFAULT_AUGMENT,
  };
  console.log("one 64³ patch, ms (median of 15):");
  const opts = { patchSize, center: vol.shape.map((n) => (n - 1) / 2) as Vec3, padValue: vol.padValue };
  for (const [name, cfg] of Object.entries(transforms)) {
    const t: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      augment(vol, cfg, stream(1, name, i), opts);
      t.push(performance.now() - t0);
    }
    const ms = name.startsWith("default") ? t.reduce((a, b) => a + b, 0) / t.length : median(t);
    console.log(`  ${name.padEnd(26)} ${round(ms, 2)}`);
    result[`ms_${name.split(" ")[0].replace(/\W/g, "_")}`] = round(ms, 2);
  }
  console.log(JSON.stringify({ bench: "loader", machine: machine(), batch: "2x64^3", batches: perRound * reps, reps, ...result, load_after: load() }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
