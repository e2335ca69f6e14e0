// The whole loop on the tiny synthetic dataset: synth → finetune → predict → evaluate, as `lsmseg demo` runs it.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runDemo } from "../src/demo/demo.ts";
import * as T from "../src/torch/index.ts";

test("the demo loop runs end to end on the tiny preset and writes metrics.json with the challenge's keys", async () => {
  T.setNumThreads(1);
  const dir = mkdtempSync(join(tmpdir(), "lsmseg-e2e-"));
  try {
    const res = await runDemo({ data: join(dir, "data"), out: join(dir, "run"), preset: "tiny", epochs: 1, stepsPerEpoch: 2, pretrainSteps: 2, quiet: true, features: 4, workers: 0, mirror: false, report: false });
    const m = JSON.parse(readFileSync(join(dir, "run", "finetune", "metrics.json"), "utf8"));
    assert.deepEqual(res.runs.map((r) => r.label), ["scratch", "mae"]);
    assert.ok(existsSync(join(dir, "run", "finetune-mae", "metrics.json")));
    assert.ok(existsSync(join(dir, "run", "pretrain-mae", "checkpoint_final.safetensors")));
    for (const k of ["iso_dice_mean", "iso_dice_std", "iso_panoptic_quality_mean", "iso_panoptic_quality_std", "con_dice_mean", "con_dice_std", "con_cldice_mean", "con_cldice_std"]) {
      assert.ok(k in m.aggregates, `metrics.json has ${k}`);
    }
    assert.equal(res.metrics.results.length, 10);
    assert.deepEqual(Object.keys(m.categories).sort(), ["contiguous dense", "contiguous sparse", "isolated dense", "isolated sparse"]);
    assert.ok(m.roles.heldOut.cases > 0 && m.roles.seen.cases > 0);
    for (const r of res.metrics.results) assert.ok(r.dice >= 0 && r.dice <= 1);
    assert.ok(existsSync(join(dir, "run", "finetune", "checkpoint_final.safetensors")));
    // A second run reuses the dataset and the finished training run.
    const again = await runDemo({ data: join(dir, "data"), out: join(dir, "run"), preset: "tiny", epochs: 1, stepsPerEpoch: 2, pretrainSteps: 2, quiet: true, features: 4, workers: 0, mirror: false, report: false });
    assert.deepEqual(again.metrics.aggregates, res.metrics.aggregates);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
