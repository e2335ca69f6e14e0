// Data parallelism over c10d (Gloo): two processes with batch b reach the same weights as one process
// with batch 2b on the same data; a dead peer is an error within the timeout, not a hang.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { deviceFlag } from "../../src/cli/args.ts";
import { freePort, stripLaunchFlags } from "../../src/dist/launch.ts";
import { ProcessGroup, buildInfo, defaultBackend, distOptionsFromEnv } from "../../src/torch/index.ts";

const rankScript = fileURLToPath(new URL("./ddp_rank.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "lsmseg-ddp-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function runRanks(
  world: number, args: string[], timeoutMs = 20000, extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ codes: number[]; stderr: string[] }> {
  return freePort().then((port) => Promise.all(Array.from({ length: world }, (_, rank) => new Promise<{ code: number; err: string }>((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, LSMSEG_DIST_TIMEOUT_MS: String(timeoutMs), ...extraEnv };
    if (world > 1) Object.assign(env, { WORLD_SIZE: String(world), RANK: String(rank), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) });
    const child = spawn(process.execPath, ["--import", "tsx", rankScript, ...args], { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => { err += d.toString(); });
    child.on("exit", (code) => resolve({ code: code ?? 1, err }));
  }))).then((rs) => ({ codes: rs.map((r) => r.code), stderr: rs.map((r) => r.err) })));
}

function maxWeightDiff(pathA: string, pathB: string): number {
  const a = JSON.parse(readFileSync(pathA, "utf8")) as Record<string, number[]>;
  const b = JSON.parse(readFileSync(pathB, "utf8")) as Record<string, number[]>;
  assert.deepEqual(Object.keys(a), Object.keys(b));
  let maxDiff = 0;
  for (const k of Object.keys(a)) a[k].forEach((v, i) => { maxDiff = Math.max(maxDiff, Math.abs(v - b[k][i])); });
  return maxDiff;
}

test("2 processes with batch 2 each reach the weights of 1 process with batch 4 (within 1e-5)", async () => {
  const one = join(dir, "one.json"), two = join(dir, "two.json");
  const r1 = await runRanks(1, [one, "5", "4"]);
  assert.deepEqual(r1.codes, [0], r1.stderr.join("\n"));
  const r2 = await runRanks(2, [two, "5", "4"]);
  assert.deepEqual(r2.codes, [0, 0], r2.stderr.join("\n"));
  const maxDiff = maxWeightDiff(one, two);
  assert.ok(maxDiff < 1e-5, `max weight difference ${maxDiff}`);
});

test("gradient all-reduce overlapped with backward (hooks, buckets launched in order) gives the same weights", async () => {
  const one = join(dir, "one_o.json"), two = join(dir, "two_o.json");
  const r1 = await runRanks(1, [one, "5", "4"]);
  assert.deepEqual(r1.codes, [0], r1.stderr.join("\n"));
  const r2 = await runRanks(2, [two, "5", "4", "-1", "overlap"]);
  assert.deepEqual(r2.codes, [0, 0], r2.stderr.join("\n"));
  const maxDiff = maxWeightDiff(one, two);
  assert.ok(maxDiff < 1e-5, `max weight difference ${maxDiff}`);
  // 4 parameters in buckets of one each: every bucket's all-reduce started inside backward, before finish()
  for (const rank of [0, 1]) {
    const early = JSON.parse(readFileSync(`${two}.rank${rank}.early.json`, "utf8")) as number[];
    assert.deepEqual(early, [4, 4, 4, 4, 4], `rank ${rank}: all-reduces started during backward, per step`);
  }
});

const gpus = buildInfo().cudaDevices;
test("NCCL: 2 ranks on cuda:0 and cuda:1 reach the weights of 1 CPU process with batch 4", { skip: buildInfo().nccl && gpus >= 2 ? false : "needs the addon built with NCCL and 2 GPUs" }, async () => {
  const one = join(dir, "one_n.json"), two = join(dir, "two_n.json");
  assert.deepEqual((await runRanks(1, [one, "5", "4"])).codes, [0]);
  for (const mode of ["after", "overlap"]) {
    const r2 = await runRanks(2, [two, "5", "4", "-1", mode], 20000, { DDP_DEVICE: "cuda", DDP_EXPECT_BACKEND: "nccl" });
    assert.deepEqual(r2.codes, [0, 0], r2.stderr.join("\n"));
    // cuDNN's convolutions differ from the CPU's in the last bits
    assert.ok(maxWeightDiff(one, two) < 1e-4, `${mode}: max weight difference ${maxWeightDiff(one, two)}`);
  }
});

test("a parameter frozen after the hooks are in place takes no gradient and no update; the rest matches 1 process", async () => {
  const one = join(dir, "one_f.json"), two = join(dir, "two_f.json");
  const r1 = await runRanks(1, [one, "5", "4", "-1", "frozen"]);
  assert.deepEqual(r1.codes, [0], r1.stderr.join("\n"));
  const r2 = await runRanks(2, [two, "5", "4", "-1", "frozen"]);
  assert.deepEqual(r2.codes, [0, 0], r2.stderr.join("\n"));
  const maxDiff = maxWeightDiff(one, two);
  assert.ok(maxDiff < 1e-5, `max weight difference ${maxDiff}`);
});

test("the backend: Gloo on CPU, NCCL only for CUDA ranks and only in a build that has it", () => {
  assert.equal(defaultBackend("cpu", {}), "gloo");
  assert.equal(defaultBackend("cuda:0", {}), buildInfo().nccl ? "nccl" : "gloo");
  assert.equal(defaultBackend("cpu", { LSMSEG_DIST_BACKEND: "nccl" }), "nccl");
  assert.throws(() => defaultBackend("cpu", { LSMSEG_DIST_BACKEND: "mpi" }), /LSMSEG_DIST_BACKEND=mpi: expected gloo or nccl/);
  const opts = { rank: 0, worldSize: 2, masterAddr: "127.0.0.1", masterPort: 1, timeoutMs: 1000 };
  assert.throws(() => ProcessGroup.init({ ...opts, backend: "nccl", device: "cpu" }), /NCCL backend needs a CUDA device, not 'cpu'/);
  if (!buildInfo().nccl) {
    // refused before any rendezvous (nothing listens on port 1)
    assert.throws(() => ProcessGroup.init({ ...opts, backend: "nccl", device: "cuda:0" }), /this build of the addon has no NCCL/);
  }
});

test("--device with --nproc: cuda gives rank r cuda:r; one explicit GPU for every rank is refused", async () => {
  const saved = process.env.LOCAL_WORLD_SIZE;
  process.env.LOCAL_WORLD_SIZE = "2";
  try {
    await assert.rejects(deviceFlag("cuda:1"), /--device cuda:1 with --nproc: every rank would compute on that one GPU/);
    assert.equal(await deviceFlag("cpu"), "cpu");
  } finally {
    if (saved === undefined) delete process.env.LOCAL_WORLD_SIZE; else process.env.LOCAL_WORLD_SIZE = saved;
  }
});

test("a peer that dies mid-run makes the other rank fail with a clear error within the timeout", async () => {
  const t0 = Date.now();
  const r = await runRanks(2, [join(dir, "dead.json"), "6", "4", "2"], 5000);
  assert.equal(r.codes[1], 3, "rank 1 exited on purpose");
  assert.notEqual(r.codes[0], 0, "rank 0 failed instead of hanging");
  assert.match(r.stderr[0], /Error/);
  assert.ok(Date.now() - t0 < 60000);
});

test("launcher conventions: environment variables and flag stripping", () => {
  assert.equal(distOptionsFromEnv({}), null);
  assert.equal(distOptionsFromEnv({ WORLD_SIZE: "1" }), null);
  assert.deepEqual(distOptionsFromEnv({ WORLD_SIZE: "4", RANK: "2", MASTER_ADDR: "10.0.0.1", MASTER_PORT: "1234", LSMSEG_DIST_TIMEOUT_MS: "500" }),
    { rank: 2, worldSize: 4, masterAddr: "10.0.0.1", masterPort: 1234, timeoutMs: 500 });
  assert.throws(() => distOptionsFromEnv({ WORLD_SIZE: "2", RANK: "2" }), /RANK=2 is not in 0…1/);
  assert.deepEqual(stripLaunchFlags(["--data", "d", "--nproc", "2", "--master=h:1", "--epochs", "3"]), ["--data", "d", "--epochs", "3"]);
});
