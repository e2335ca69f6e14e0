// Fine-tuning end to end on the tiny synthetic dataset: a run killed with SIGKILL and resumed reaches
// the same weights as an uninterrupted run; prediction keeps shape, spacing and geometry; bad runs fail clearly.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { readVolume } from "../../src/io/index.ts";
import { finetune } from "../../src/seg/finetune.ts";
import { loadModel } from "../../src/seg/model.ts";
import { predictPaths } from "../../src/seg/predict.ts";
import { synthDataset } from "../../src/synth/index.ts";
import * as T from "../../src/torch/index.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
let dir = "";
let data = "";
const common = { fold: 0 as const, epochs: 3, stepsPerEpoch: 3, workers: 0, precision: "fp32" as const, quiet: true, plan: { baseFeatures: 4, patchSize: [32, 32, 32] as [number, number, number], batchSize: 2 } };

before(async () => {
  T.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), "lsmseg-finetune-"));
  data = join(dir, "data");
  await synthDataset(data, { preset: "tiny", seed: 3, quiet: true });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function cliArgs(out: string, extra: string[] = []): string[] {
  return [join(root, "bin", "lsmseg.js"), "finetune", "--data", data, "--out", out, "--epochs", "3", "--steps-per-epoch", "3", "--workers", "0",
    "--precision", "fp32", "--features", "4", "--patch", "32", "--batch", "2", "--quiet", ...extra];
}

function sameWeights(a: string, b: string): void {
  const x = T.loadCheckpoint(a), y = T.loadCheckpoint(b);
  assert.deepEqual([...x.model.keys()], [...y.model.keys()]);
  for (const [k, t] of x.model) assert.ok(t.eq(y.model.get(k)!).all().item() === 1, `${k} differs`);
}

test("a run killed with SIGKILL after its first epoch and resumed ends with the same weights as an uninterrupted run", async () => {
  const straight = join(dir, "straight");
  await finetune({ data, out: straight, ...common });
  const killed = join(dir, "killed");
  const child = spawn(process.execPath, cliArgs(killed), { stdio: "ignore", env: { ...process.env, LSMSEG_THREADS: "1" } });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  // Kill as soon as the first epoch is logged (wherever the child is then: the outcome must not depend on it).
  while (child.exitCode === null) {
    const log = join(killed, "log.jsonl");
    if (existsSync(log) && readFileSync(log, "utf8").includes("\n")) { child.kill("SIGKILL"); break; }
    await new Promise((r) => setTimeout(r, 50));
  }
  await exited;
  assert.ok(existsSync(join(killed, "checkpoint_latest.safetensors")));
  const res = await finetune({ data, out: killed, resume: true, ...common });
  assert.equal(res.epochs.length, 3, "the log has one line per epoch, none repeated");
  assert.deepEqual(res.epochs.map((e) => e.epoch), [0, 1, 2]);
  sameWeights(join(straight, "checkpoint_final.safetensors"), join(killed, "checkpoint_final.safetensors"));
});

test("--resume can extend the number of epochs; a second run into the same folder is refused", async () => {
  const out = join(dir, "extend");
  await finetune({ data, out, ...common, epochs: 1 });
  await assert.rejects(finetune({ data, out, ...common }), /already there.*; resume continues it/);
  const res = await finetune({ data, out, ...common, epochs: 2, resume: true });
  assert.equal(res.epochs.length, 2);
  await assert.rejects(finetune({ data, out: join(dir, "nothing"), ...common, resume: true }), /nothing to resume/);
});

test("predict writes binary uint8 masks with the input's shape, spacing and name", async () => {
  const out = join(dir, "straight");
  const model = loadModel(out);
  assert.deepEqual(model.plan.patchSize, [32, 32, 32]);
  const pred = join(dir, "pred");
  const written = await predictPaths(model, join(data, "test", "images"), pred, { mirror: false, precision: "fp32" });
  assert.equal(written.length, 10);
  for (const file of written.slice(0, 3)) {
    const name = file.split("/").pop()!;
    const [img, mask] = [await readVolume(join(data, "test", "images", name)), await readVolume(file)];
    assert.equal(mask.dtype, "uint8");
    assert.deepEqual(mask.shape, img.shape);
    assert.deepEqual(mask.spacingUm, img.spacingUm);
    assert.ok(mask.data.every((v) => v === 0 || v === 1));
  }
  model.net.dispose();
});

test("bad input to finetune and predict is a clear error naming the path", async () => {
  await assert.rejects(finetune({ data: join(dir, "missing"), out: join(dir, "x"), ...common }), /missing/);
  assert.throws(() => loadModel(join(dir, "no-run")), /no-run: no such run folder or checkpoint/);
});

test("--freeze-encoder: the transferred encoder stays exactly as loaded while frozen, and trains once unfrozen", async () => {
  const source = join(dir, "freeze-source");
  await finetune({ data, out: source, ...common, epochs: 1 });
  const sourceCkpt = join(source, "checkpoint_final.safetensors");
  const encoderKeys = loadModel(source).net.keyGroups().encoder;
  assert.ok(encoderKeys.length > 0);
  const src = T.loadCheckpoint(sourceCkpt);
  const same = (ckpt: string, k: string) => T.loadCheckpoint(ckpt).model.get(k)!.eq(src.model.get(k)!).all().item() === 1;
  // frozen for all 3 steps: every encoder tensor is bit for bit the source's; the decoder trained
  const frozen = join(dir, "freeze-all");
  await finetune({ data, out: frozen, ...common, epochs: 1, init: sourceCkpt, freezeEncoderSteps: 3 });
  const frozenCkpt = join(frozen, "checkpoint_final.safetensors");
  for (const k of encoderKeys) assert.ok(same(frozenCkpt, k), `${k} changed while frozen`);
  assert.ok([...src.model.keys()].some((k) => !encoderKeys.includes(k) && !same(frozenCkpt, k)), "the decoder trained");
  // frozen for 1 of 3 steps: the encoder moves afterwards
  const thawed = join(dir, "freeze-one");
  await finetune({ data, out: thawed, ...common, epochs: 1, init: sourceCkpt, freezeEncoderSteps: 1 });
  const thawedCkpt = join(thawed, "checkpoint_final.safetensors");
  assert.ok(encoderKeys.some((k) => !same(thawedCkpt, k)), "the encoder trained after step 1");
});
