// Sparse annotation end to end at a tiny budget: a TRAILMAP-style label map (0 = not labelled, 1 = background,
// 2 = axon, 4 = axon edge) trains through `lsmseg finetune --label-map`, and `lsmseg evaluate --label-map`
// scores only the labelled voxels and says so in metrics.json.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { readVolume } from "../../src/io/index.ts";
import { loadModel } from "../../src/seg/model.ts";
import { predictPaths } from "../../src/seg/predict.ts";
import * as T from "../../src/torch/index.ts";
import { TRAILMAP_MAP, writeSparseDataset } from "../data/sparse.ts";

const bin = fileURLToPath(new URL("../../bin/lsmseg.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "lsmseg-sparse-"));
const data = join(dir, "data");
before(async () => {
  T.setNumThreads(1);
  await writeSparseDataset(data, { cases: 2, test: 1 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function lsmseg(args: string[]): string {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, LSMSEG_THREADS: "1" } });
  assert.equal(r.status, 0, `lsmseg ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

test("a TRAILMAP-style label map trains (finite loss) and evaluates on labelled voxels only", async () => {
  const run = join(dir, "run");
  lsmseg(["finetune", "--data", data, "--out", run, "--fold", "all", "--epochs", "1", "--steps-per-epoch", "4", "--workers", "0", "--precision", "fp32",
    "--features", "4", "--patch", "16", "--batch", "2", "--quiet", "--label-map", TRAILMAP_MAP]);
  const log = readFileSync(join(run, "log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { trainLoss: number });
  assert.ok(log.length === 1 && Number.isFinite(log[0].trainLoss) && log[0].trainLoss > 0, `train loss ${log[0]?.trainLoss}`);
  const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8")) as { labelMap: Record<string, string> };
  assert.deepEqual(config.labelMap, { 0: "ignore", 1: "background", 2: "foreground", 4: "foreground" });

  const model = loadModel(run);
  const pred = join(dir, "pred");
  try {
    await predictPaths(model, join(data, "test", "images"), pred + "/", { mirror: false, precision: "fp32" });
  } finally {
    model.net.dispose();
  }
  const metricsPath = join(dir, "metrics.json");
  lsmseg(["evaluate", "--pred", pred, "--gt", join(data, "test", "labels"), "--out", metricsPath, "--workers", "1", "--label-map", TRAILMAP_MAP]);
  const m = JSON.parse(readFileSync(metricsPath, "utf8")) as { note: string[]; results: Array<{ dice: number; labelledVoxels: number; ignoredVoxels: number }> };
  const r = m.results[0];
  assert.equal(r.labelledVoxels, 2 * 24 * 24, "two labelled planes");
  assert.equal(r.ignoredVoxels, 18 * 24 * 24);
  assert.ok(m.note.some((n) => n.startsWith("sparse annotation")));
  // the Dice of the labelled voxels, by hand: axon = 2 or 4, background = 1, 0 left out
  const [p, g] = [await readVolume(join(pred, "axonalmarker_100.nii.gz")), await readVolume(join(data, "test", "labels", "axonalmarker_100.nii.gz"))];
  let tp = 0, np = 0, ng = 0;
  for (let i = 0; i < g.data.length; i++) {
    if (g.data[i] === 0) continue;
    const a = p.data[i] > 0, b = g.data[i] === 2 || g.data[i] === 4;
    if (a) np++;
    if (b) ng++;
    if (a && b) tp++;
  }
  const want = np + ng === 0 ? 1 : (2 * tp) / (np + ng);
  assert.ok(Math.abs(r.dice - want) < 1e-12, `Dice ${r.dice} vs ${want}`);
  // without the map the file's values are scored as they are (0 background, everything else foreground)
  lsmseg(["evaluate", "--pred", pred, "--gt", join(data, "test", "labels"), "--out", metricsPath, "--workers", "1"]);
  const plain = JSON.parse(readFileSync(metricsPath, "utf8")) as { note: string[]; results: Array<{ labelledVoxels?: number }> };
  assert.equal(plain.results[0].labelledVoxels, undefined);
  assert.ok(!plain.note.some((n) => n.startsWith("sparse annotation")));
});
