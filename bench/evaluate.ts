// Evaluation speed: N synthetic 200³ cases (the challenge's patch size; contiguous and isolated types in
// turn, the prediction an eroded, shifted, speckled copy of the truth), scored by lsmseg evaluate in one
// thread and with its worker pool, and in the same run by the Python reference of the challenge's
// metrics (fixtures/eval/make_metric_fixtures.py: numpy + scikit-image, single-threaded as the
// challenge's code is), skipped with a note when python3-skimage or python3-nibabel is absent. Both read
// the same .nii.gz files. The numbers are compared as well as the times.
//   npm run bench -- evaluate [N] [SIDE]
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { evaluateFolder, type MetricsJson } from "../src/eval/evaluate.ts";
import { makeVolume, writeVolume, type Vec3 } from "../src/io/index.ts";
import { makeCanvas, Rng, structureType } from "../src/synth/index.ts";
import { machine, median, root, round } from "./common.ts";

const n = Number(process.argv[2] ?? 6);
const side = Number(process.argv[3] ?? 200);
const shape: Vec3 = [side, side, side];
const reps = 3;
const TYPES = ["blood_vessel", "cell_nuclei", "gutnerve", "microglia", "lymphatic_vessel", "AD_plaques", "peripheral_nerve", "cfos_neuron"];
const dir = mkdtempSync(join(tmpdir(), "lsmseg-bench-evaluate-"));
const gtDir = join(dir, "gt"), predDir = join(dir, "pred");
mkdirSync(gtDir);
mkdirSync(predDir);

console.log(`evaluate: ${n} cases of ${side}³ (${TYPES.slice(0, Math.min(n, TYPES.length)).join(", ")}${n > TYPES.length ? ", …" : ""}); ${machine()}, node ${process.version}`);
const [nz, ny, nx] = shape;
for (let k = 0; k < n; k++) {
  const type = TYPES[k % TYPES.length];
  const rng = new Rng(`bench/evaluate/${k}`);
  const cv = makeCanvas(shape);
  structureType(type).draw(rng, cv);
  const gt = cv.label;
  // prediction: keep voxels whose x-neighbours are set, shift one voxel along y, add sparse speckle
  const pred = new Uint8Array(gt.length);
  for (let z = 0; z < nz; z++) for (let y = 1; y < ny; y++) for (let x = 1; x < nx - 1; x++) {
    const i = (z * ny + y - 1) * nx + x;
    if (gt[i] && gt[i - 1] && gt[i + 1]) pred[(z * ny + y) * nx + x] = 1;
  }
  for (let i = 0; i < pred.length; i++) if (rng.uniform(0, 1) < 2e-5) pred[i] = 1;
  const name = `${type}_${String(k + 1).padStart(4, "0")}.nii.gz`;
  await writeVolume(join(gtDir, name), makeVolume("uint8", shape, [1, 1, 1], gt.map((v) => (v > 0 ? 1 : 0))));
  await writeVolume(join(predDir, name), makeVolume("uint8", shape, [1, 1, 1], pred));
}

async function time(workers: number): Promise<[number, MetricsJson]> {
  const t: number[] = [];
  let last: MetricsJson | null = null;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    last = await evaluateFolder(predDir, gtDir, { workers, quiet: true });
    t.push((performance.now() - t0) / 1000);
  }
  return [median(t), last!];
}

const pool = Math.min(availableParallelism(), 8, n);
const [oneS, metrics] = await time(1);
const [poolS] = await time(pool);
const perCase = (s: number) => `${((s / n) * 1000).toFixed(0)} ms/case`;
console.log(`  lsmseg, 1 thread:      ${oneS.toFixed(2)} s (${perCase(oneS)})`);
console.log(`  lsmseg, ${pool} workers:     ${poolS.toFixed(2)} s (${perCase(poolS)}); 96 cases would take about ${((poolS / n) * 96).toFixed(0)} s`);
const slowest = [...metrics.results].sort((a, b) => b.seconds - a.seconds).slice(0, 3);
console.log(`  slowest cases (1 thread): ${slowest.map((r) => `${r.case} ${r.seconds.toFixed(2)} s`).join(", ")}`);

const results: Record<string, number | string | null> = { cases: n, side, lsmseg_1thread_s: round(oneS, 3), lsmseg_pool_s: round(poolS, 3), workers: pool };
const py = `
import json, os, sys, time
sys.path.insert(0, sys.argv[3])
import nibabel as nib, numpy as np
from make_metric_fixtures import evaluate_case
pred_dir, gt_dir = sys.argv[1], sys.argv[2]
names = sorted(os.listdir(gt_dir))
times, out = [], {}
for rep in range(${reps}):
    t0 = time.perf_counter()
    for f in names:
        gt = np.asanyarray(nib.load(os.path.join(gt_dir, f)).dataobj).transpose(2, 1, 0)
        pred = np.asanyarray(nib.load(os.path.join(pred_dir, f)).dataobj).transpose(2, 1, 0)
        r = evaluate_case(f, pred, gt)
        out[f[:-7]] = r.get("cldice", r.get("panoptic_quality")), r["dice"]
    times.append(time.perf_counter() - t0)
print(json.dumps({"s": sorted(times)[len(times) // 2], "cases": out}).replace("NaN", "null"))
`;
const check = spawnSync("/usr/bin/python3", ["-c", "import skimage, nibabel, scipy"], { stdio: "ignore" });
if (check.status !== 0) {
  console.log("  (Python reference skipped: python3-skimage, python3-nibabel and python3-scipy are needed; apt-get install -y python3-skimage python3-nibabel)");
  results.python_s = null;
} else {
  const r = spawnSync("/usr/bin/python3", ["-c", py, predDir, gtDir, join(root, "fixtures", "eval")], { encoding: "utf8" });
  if (r.status !== 0) {
    console.log(`  (Python reference failed: ${r.stderr.trim().split("\n").pop()})`);
    results.python_s = null;
  } else {
    const ref = JSON.parse(r.stdout.trim().split("\n").pop()!) as { s: number; cases: Record<string, [number | null, number]> };
    let maxDiff = 0;
    for (const c of metrics.results) {
      const [other, d] = ref.cases[c.case];
      const mine = c.cldice ?? c.panoptic_quality!;
      const diff = other === null ? (Number.isNaN(mine) ? 0 : Infinity) : Math.abs(mine - other);
      maxDiff = Math.max(maxDiff, diff, Math.abs(c.dice - d));
    }
    console.log(`  Python (numpy ${"+"} scikit-image, 1 thread): ${ref.s.toFixed(2)} s (${perCase(ref.s)})`);
    console.log(`  lsmseg / Python: ${(oneS / ref.s).toFixed(2)} in one thread, ${(poolS / ref.s).toFixed(2)} with ${pool} workers; largest difference in any case's numbers: ${maxDiff}`);
    Object.assign(results, { python_s: round(ref.s, 3), ratio_1thread: round(oneS / ref.s, 3), ratio_pool: round(poolS / ref.s, 3), max_abs_diff: maxDiff });
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ bench: "evaluate", ...results, machine: machine() }));
