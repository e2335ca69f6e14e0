// Pretraining end to end on the tiny synthetic dataset: every method's loss falls; a run killed with SIGKILL
// and resumed ends with the same weights as an unbroken one; the checkpoint carries the adaptation plan, and
// fine-tuning from it transfers the encoder (and the decoder where trained) and reports the rest.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { finetune } from "../../src/seg/finetune.ts";
import { type AdaptationPlan, type PretrainOptions, pretrain } from "../../src/ssl/pretrain.ts";
import { synthDataset } from "../../src/synth/index.ts";
import * as T from "../../src/torch/index.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
let dir = "";
let data = "";

before(async () => {
  T.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), "lsmseg-pretrain-"));
  data = join(dir, "data");
  await synthDataset(data, { preset: "tiny", seed: 3, quiet: true, overrides: { testPerType: 0, rawVolumes: 0 } });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const base = (method: string, out: string): PretrainOptions => ({
  data, out, method, workers: 0, precision: "fp32", quiet: true, lr: 3e-3, indexPath: join(dir, "index.json"),
  plan: { baseFeatures: 4, patchSize: [32, 32, 32] },
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

for (const method of ["mae", "genesis", "simclr"]) {
  test(`${method}: the loss falls on tiny data`, async () => {
    // the contrastive loss needs more, smaller steps before it leaves log(2N − 1)
    const o = method === "simclr"
      ? {
        ...base(method, join(dir, method)), steps: 48, logEvery: 8,
        plan: { baseFeatures: 4, patchSize: [16, 16, 16] as [number, number, number], batchSize: 8 },
      }
      : { ...base(method, join(dir, method)), steps: 12, logEvery: 3 };
    const res = await pretrain(o);
    const losses = res.records.map((r) => r.loss);
    assert.equal(losses.length, o.steps / o.logEvery);
    assert.ok(losses.every(Number.isFinite));
    assert.ok(mean(losses.slice(-2)) < mean(losses.slice(0, 2)), `${method}: ${losses.map((l) => l.toFixed(4)).join(" → ")}`);
    assert.ok(res.records.every((r) => r.dataWaitFraction >= 0 && r.dataWaitFraction <= 1));
  });
}

function sameWeights(a: string, b: string): void {
  const x = T.loadCheckpoint(a), y = T.loadCheckpoint(b);
  assert.deepEqual([...x.model.keys()], [...y.model.keys()]);
  for (const [k, t] of x.model) assert.ok(t.eq(y.model.get(k)!).all().item() === 1, `${k} differs`);
}

test("a run killed with SIGKILL and resumed ends with the same weights as an unbroken run", async () => {
  const small = { plan: { baseFeatures: 4, patchSize: [16, 16, 16] as [number, number, number], batchSize: 2 }, steps: 40 };
  const straight = join(dir, "straight");
  await pretrain({ ...base("mae", straight), ...small });
  const killed = join(dir, "killed");
  const args = [join(root, "bin", "lsmseg.js"), "pretrain", "--data", data, "--out", killed, "--method", "mae", "--steps", "40", "--save-every", "3",
    "--workers", "0", "--precision", "fp32", "--features", "4", "--patch", "16", "--batch", "2", "--lr", "3e-3", "--index", join(dir, "index.json"), "--quiet"];
  const child = spawn(process.execPath, args, { stdio: "ignore", env: { ...process.env, LSMSEG_THREADS: "1" } });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const latest = join(killed, "checkpoint_latest.safetensors");
  while (child.exitCode === null) {
    if (existsSync(latest)) { child.kill("SIGKILL"); break; }
    await new Promise((r) => setTimeout(r, 10));
  }
  await exited;
  const at = (T.readCheckpointMeta(latest).extra as unknown as AdaptationPlan).state.step;
  assert.ok(at < 40 && !existsSync(join(killed, "checkpoint_final.safetensors")), `killed at step ${at}`);
  const res = await pretrain({ ...base("mae", killed), ...small, resume: true });
  assert.deepEqual(res.records.map((r) => r.step), [10, 20, 30, 40], "the log has one line per interval, none repeated");
  sameWeights(join(straight, "checkpoint_final.safetensors"), join(killed, "checkpoint_final.safetensors"));
});

test("the checkpoint carries the adaptation plan; finetune --init transfers the pretrained keys and reports the rest", async () => {
  for (const method of ["mae", "simclr"]) {
    const ckpt = join(dir, method, "checkpoint_final.safetensors");
    const meta = T.readCheckpointMeta(ckpt);
    const plan = meta.extra as unknown as AdaptationPlan;
    assert.equal(plan.method, method);
    assert.equal((meta.network as { arch: string }).arch, "unet");
    assert.equal(plan.normalization.scheme, "percentile-zscore");
    assert.ok(plan.keyGroups.encoder.length > 0 && plan.keyGroups.stem.every((k) => plan.keyGroups.encoder.includes(k)));
    const res = await finetune({ data, out: join(dir, `ft-${method}`), init: ckpt, epochs: 1, stepsPerEpoch: 1, workers: 0, precision: "fp32", quiet: true, plan: { patchSize: [32, 32, 32] } });
    const t = res.transfer!;
    assert.ok(plan.keyGroups.encoder.every((k) => t.transferred.includes(k)), "every encoder key is transferred");
    assert.ok(t.untouched.includes("head.weight"), "the segmentation head starts from its initialisation");
    assert.ok(t.skipped.some((s) => s.key.startsWith("ssl.")), "the method's heads are reported as not used");
    assert.ok(!t.transferred.some((k) => k.startsWith("dec.")), `${method}: by default only the encoder is transferred`);
    if (method === "mae") {
      const all = await finetune({ data, out: join(dir, `ft-${method}-all`), init: ckpt, initParts: "all", epochs: 1, stepsPerEpoch: 1, workers: 0, precision: "fp32", quiet: true, plan: { patchSize: [32, 32, 32] } });
      assert.ok(all.transfer!.transferred.some((k) => k.startsWith("dec.")), "mae with initParts all: the decoder it trained is transferred too");
    }
  }
});
