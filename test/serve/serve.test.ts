// lsmseg serve and export-container on a tiny model: the exported model tarball (checked with the system's
// tar) is unpacked and served on a loopback port; /health, POST /invoke on a test case (the output scored by
// evaluateCase), a busy second invoke, and bad inputs that each get their status and leave no output.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { evaluateCase } from "../../src/eval/evaluate.ts";
import { readVolume } from "../../src/io/index.ts";
import { finetune } from "../../src/seg/finetune.ts";
import { MODEL_CHECKPOINT, exportContainer } from "../../src/serve/container.ts";
import { INPUT_FOLDER, OUTPUT_FILE, type InvokeServer, startServer } from "../../src/serve/server.ts";
import { synthDataset } from "../../src/synth/index.ts";
import * as T from "../../src/torch/index.ts";
import { tarHeader } from "../../src/util/tar.ts";

let dir = "", data = "", run = "", exported = "", modelDir = "";
let server: InvokeServer;
const input = () => join(dir, "input"), output = () => join(dir, "output");
const inputFolder = () => join(input(), INPUT_FOLDER);
const outputFile = () => join(output(), OUTPUT_FILE);

before(async () => {
  T.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), "lsmseg-serve-"));
  data = join(dir, "data");
  await synthDataset(data, { preset: "tiny", seed: 2, quiet: true });
  run = join(dir, "run");
  await finetune({ data, out: run, fold: 0, epochs: 1, stepsPerEpoch: 2, workers: 0, precision: "fp32", quiet: true, plan: { baseFeatures: 4, patchSize: [32, 32, 32], batchSize: 2 } });
  exported = join(dir, "container");
  await exportContainer({ model: run, out: exported });
  modelDir = join(dir, "opt-ml-model");
  mkdirSync(modelDir);
  execFileSync("tar", ["-xzf", join(exported, "model.tar.gz"), "-C", modelDir]);
});
after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Lays out /input with `images` (name → source file or bytes) and an inputs.json; empties /output. */
function stage(images: Record<string, string | Buffer>): void {
  rmSync(input(), { recursive: true, force: true });
  rmSync(output(), { recursive: true, force: true });
  mkdirSync(inputFolder(), { recursive: true });
  mkdirSync(output());
  for (const [name, src] of Object.entries(images)) {
    if (typeof src === "string") copyFileSync(src, join(inputFolder(), name));
    else writeFileSync(join(inputFolder(), name), src);
  }
  writeFileSync(join(input(), "inputs.json"), JSON.stringify([{ interface: { slug: "light-sheet-3d-microscopy", kind: "Image", relative_path: INPUT_FOLDER } }]));
}

/** Every file under `root`. */
function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  const entries = readdirSync(root, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
  return entries.map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
}

const call = async (method: string, path: string) => {
  const res = await fetch(server.url + path, { method });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

test("export-container: a Dockerfile for the invoke API, the sources it builds, and model.tar.gz with the model at its root", async () => {
  const docker = readFileSync(join(exported, "Dockerfile"), "utf8");
  assert.match(docker, /^FROM node:20-bookworm-slim$/m);
  assert.match(docker, /apt-get install -y --no-install-recommends libtorch-dev/);
  assert.match(docker, /^RUN npm ci --omit=dev/m);
  assert.match(docker, /^RUN node scripts\/setup\.mjs$/m);
  assert.match(docker, /^ENTRYPOINT \["node", "\/opt\/lsmseg\/bin\/lsmseg\.js", "serve", "--model", "\/opt\/ml\/model", "--input", "\/input", "--output", "\/output", "--host", "0\.0\.0\.0", "--port", "8080"\]$/m);
  for (const f of ["package.json", "package-lock.json", "binding.gyp", "bin/lsmseg.js", "dist/cli/serve.js", "native/addon.cc", "scripts/setup.mjs"]) assert.ok(existsSync(join(exported, "lsmseg", f)), f);
  assert.ok(!existsSync(join(exported, "lsmseg", "node_modules")) && !existsSync(join(exported, "test")) && !existsSync(join(exported, "lsmseg", "src")), "no node_modules, tests or sources (the image runs dist/)");
  assert.match(readFileSync(join(exported, "README.md"), "utf8"), /docker build -t lsmseg-selma3d \.[\s\S]*POST localhost:8080\/invoke[\s\S]*docker save/);
  // the system's tar reads the archive: the files at the root, byte for byte
  const listing = execFileSync("tar", ["-tzf", join(exported, "model.tar.gz")], { encoding: "utf8" }).trim().split("\n");
  assert.deepEqual(listing, [MODEL_CHECKPOINT, "plan.json", "config.json", "lsmseg-model.json"]);
  assert.deepEqual(readFileSync(join(modelDir, MODEL_CHECKPOINT)), readFileSync(join(run, "checkpoint_final.safetensors")));
  assert.deepEqual(JSON.parse(readFileSync(join(modelDir, "plan.json"), "utf8")), JSON.parse(readFileSync(join(run, "plan.json"), "utf8")));
  const manifest = JSON.parse(readFileSync(join(modelDir, "lsmseg-model.json"), "utf8")) as { sha256: string };
  const { createHash } = await import("node:crypto");
  assert.equal(manifest.sha256, createHash("sha256").update(readFileSync(join(modelDir, MODEL_CHECKPOINT))).digest("hex"));
  // the header's checksum as the ustar format defines it: the sum of its bytes with the field as spaces
  const h = tarHeader("plan.json", 1234, 0);
  const sum = [...h].reduce((s, b, i) => s + (i >= 148 && i < 156 ? 32 : b), 0);
  assert.equal(parseInt(h.subarray(148, 154).toString("ascii"), 8), sum);
  assert.throws(() => tarHeader("x".repeat(101), 1, 0), /at most 100 bytes/);
});

test("serve: /health turns 200 once the model is loaded; /invoke writes output.mha of the input's shape that evaluateCase scores", async () => {
  const testImages = join(data, "test", "images");
  const name = readdirSync(testImages).sort()[0];
  stage({ [name]: join(testImages, name) });
  server = await startServer({ model: modelDir, input: input(), output: output(), host: "127.0.0.1", port: 0, mirror: true, precision: "fp32" });
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const early = await call("GET", "/health");
  assert.ok(early.status === 503 || early.status === 200, `health while loading: ${early.status}`);
  await server.ready;
  const health = await call("GET", "/health");
  assert.equal(health.status, 200);
  assert.equal(health.body.status, "ready");

  const res = await call("POST", "/invoke");
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.output, outputFile());
  assert.deepEqual(res.body.interfaces, ["light-sheet-3d-microscopy"]);
  const inVol = await readVolume(join(testImages, name));
  const out = await readVolume(outputFile());
  assert.equal(out.dtype, "int8");
  assert.deepEqual(out.shape, inVol.shape);
  assert.deepEqual(out.spacingUm, inVol.spacingUm);
  assert.ok(out.data.every((v) => v === 0 || v === 1), "a binary mask");
  assert.equal(Array.from(out.data).reduce((s, v) => s + v, 0), res.body.foregroundVoxels);
  assert.match(readFileSync(outputFile()).subarray(0, 400).toString("latin1"), /CompressedData = True/);
  assert.deepEqual(filesUnder(output()), [outputFile()], "only output.mha under /output");
  const scored = await evaluateCase(outputFile(), join(data, "test", "labels", name));
  assert.ok(scored.dice >= 0 && scored.dice <= 1);
  assert.equal(scored.details.predVoxels, res.body.foregroundVoxels);
  // wrong method and path are JSON errors too
  assert.equal((await call("GET", "/invoke")).status, 405);
  assert.equal((await call("GET", "/nope")).status, 404);
});

test("serve: a second invoke while one runs is answered 409 busy; /health stays up meanwhile", async () => {
  const testImages = join(data, "test", "images");
  const name = readdirSync(testImages).sort()[1];
  stage({ [name]: join(testImages, name) });
  // a second server on the same model, whose first case is held "running" until the test lets it go
  let release = () => {};
  const held = new Promise<void>((r) => { release = r; });
  let claimed = () => {};
  const claimedNow = new Promise<void>((r) => { claimed = r; });
  const gated = await startServer({ model: modelDir, input: input(), output: output(), port: 0, mirror: false, precision: "fp32", holdInvoke: () => { claimed(); return held; } });
  try {
    await gated.ready;
    const first = fetch(gated.url + "/invoke", { method: "POST" });
    await claimedNow;
    const second = await fetch(gated.url + "/invoke", { method: "POST" });
    assert.equal(second.status, 409);
    assert.match(String(((await second.json()) as { error: string }).error), new RegExp(`^busy: .*${name} is being predicted`));
    const health = await fetch(gated.url + "/health");
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { busy: boolean }).busy, true);
    release();
    assert.equal((await first).status, 201);
    assert.ok(existsSync(outputFile()));
    assert.equal(((await (await fetch(gated.url + "/health")).json()) as { busy: boolean }).busy, false);
  } finally {
    release();
    await gated.close();
  }
});

test("serve: no image, two images, an unreadable file and a broken inputs.json each get a clear error and leave no output", async () => {
  const img = join(data, "test", "images", readdirSync(join(data, "test", "images")).sort()[0]);
  const cases: Array<[string, () => void, number, RegExp]> = [
    ["no image", () => stage({}), 400, /no input image in .*light-sheet-3d-microscopy/],
    ["two images", () => stage({ "a.mha": img, "b.tif": img }), 400, /2 images in .*\(a\.mha, b\.tif\): expected exactly one/],
    ["unreadable", () => stage({ "case.mha": Buffer.from("ObjectType = Image\nthis is not a MetaImage\n") }), 422, /cannot read .*case\.mha/],
    ["inputs.json", () => { stage({ "case.mha": img }); writeFileSync(join(input(), "inputs.json"), "{not json"); }, 400, /inputs\.json: not JSON/],
    ["no input folder", () => { stage({}); rmSync(input(), { recursive: true }); }, 400, /does not exist/],
  ];
  for (const [what, setUp, status, message] of cases) {
    setUp();
    const res = await call("POST", "/invoke");
    assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
    assert.match(String(res.body.error), message, what);
    assert.deepEqual(filesUnder(output()), [], `${what}: nothing written under /output`);
  }
  // the server is still usable afterwards
  assert.equal((await call("GET", "/health")).status, 200);
});
