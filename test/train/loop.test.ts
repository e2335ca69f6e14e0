// The training loop on a one-parameter problem whose steps are exact in float32: w ← w − ¼·2(w − t) = (w + t)/2
// with t the batch, so the losses, the interval sums and the checkpoint steps are known by hand; the run folder's
// checks, the resumed log and the NaN check.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { SGD } from "../../src/optim/index.ts";
import * as T from "../../src/torch/index.ts";
import { type Interval, appendLog, openRun, resumeLog, trainLoop, trainStep } from "../../src/train/loop.ts";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-loop-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A loader of the given numbers, one per batch. */
function numbers(xs: number[]) {
  let k = 0;
  return { waitMs: 0, next: async () => xs[k++], close: async () => {} };
}

test("trainLoop: exact steps, intervals every 3 steps, checkpoint_latest every 2, counters advanced", async () => {
  const run = openRun({ out: join(dir, "exact"), quiet: true });
  const w = T.zeros([1], { requiresGrad: true });
  const opt = new SGD([w], { lr: 1 });
  const targets = [4, 2, 6, 0, 8, 2, 4];
  const intervals: Interval[] = [], saves: number[] = [], before: number[] = [];
  const at = { step: 0, globalBatches: 0 };
  await trainLoop({
    run, loader: numbers(targets), step: { opt, params: [w], sync: null }, at, steps: targets.length,
    progress: { label: "test", total: targets.length, quiet: true }, schedule: () => 0.25,
    beforeStep: (s) => before.push(s), loss: (t) => w.sub(t).square().sum(), tick: () => "",
    intervalEnds: (done) => done % 3 === 0, onInterval: (i) => { intervals.push(i); },
    checkpoint: { every: 2, everyMs: 3600_000, save: () => saves.push(at.step) },
  });
  // the slow obvious reference: w ← (w + t)/2, loss (w − t)² before the step
  let ref = 0;
  const losses = targets.map((t) => { const l = (ref - t) ** 2; ref = (ref + t) / 2; return l; });
  assert.equal(w.item(), ref);
  assert.deepEqual(intervals.map((i) => [i.steps, i.lossSum]), [[3, losses[0] + losses[1] + losses[2]], [3, losses[3] + losses[4] + losses[5]]]);
  assert.deepEqual(saves, [2, 4, 6]);
  assert.deepEqual(before, [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(at, { step: 7, globalBatches: 7 });
  assert.equal(opt.lr, 0.25);
  w.dispose();
});

test("trainStep: a loss that is not finite stops the run, naming the step", () => {
  const w = T.zeros([1], { requiresGrad: true });
  const opt = new SGD([w], { lr: 0.1 });
  assert.throws(() => trainStep({ opt, params: [w], sync: null }, 5, () => w.mul(Number.NaN).sum()), /the loss became NaN at step 5/);
  w.dispose();
});

test("openRun: a run already there needs --resume, and --resume needs one; resumeLog keeps the covered records", () => {
  const out = join(dir, "folder");
  assert.throws(() => openRun({ out, resume: true, quiet: true }), /nothing to resume \(no checkpoint_latest\.safetensors\)/);
  const run = openRun({ out, quiet: true });
  for (let step = 1; step <= 5; step++) appendLog(run, { step });
  writeFileSync(run.latestPath, "");
  assert.throws(() => openRun({ out, quiet: true }), /a run is already there .*; resume continues it, or choose another out/);
  const resumed = openRun({ out, resume: true, quiet: true });
  assert.deepEqual(resumeLog<{ step: number }>(resumed, (r) => r.step <= 3), [{ step: 1 }, { step: 2 }, { step: 3 }]);
  assert.equal(readFileSync(run.logPath, "utf8"), '{"step":1}\n{"step":2}\n{"step":3}\n');
});
