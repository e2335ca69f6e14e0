// Forward time (CPU, fp32, eval, no grad) of lsmseg's UNETR and SwinUNETR against MONAI's own classes in
// PyTorch 1.13 (bench/transformers_peer.py) in the same run: rounds alternate lsmseg and the peer so that
// both see the same machine load; min and median over all repetitions, and the load average.
// The peer needs a MONAI checkout and einops: LSMSEG_MONAI=/path/to/MONAI LSMSEG_PYLIB=/path/with/einops.
// Usage: npm run bench -- transformers [--size 64] [--rounds 3] [--reps 2] [--threads 2]
//          [--unetr-feature 16] [--hidden 768] [--heads 12] [--swin-feature 24]
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SwinUNETR, UNETR } from "../src/nn/index.ts";
import * as T from "../src/torch/index.ts";
import { machine, median, root, round, pythonHas } from "./common.ts";

const { values } = parseArgs({ options: {
  size: { type: "string", default: "64" }, rounds: { type: "string", default: "3" }, reps: { type: "string", default: "2" }, threads: { type: "string", default: "2" },
  "unetr-feature": { type: "string", default: "16" }, hidden: { type: "string", default: "768" }, heads: { type: "string", default: "12" }, "swin-feature": { type: "string", default: "24" },
} });
const size = Number(values.size), rounds = Number(values.rounds), reps = Number(values.reps), threads = Number(values.threads);
const uf = Number(values["unetr-feature"]), hidden = Number(values.hidden), heads = Number(values.heads), sf = Number(values["swin-feature"]);
T.setNumThreads(threads);

const monai = process.env.LSMSEG_MONAI ?? "/tmp/monai_src";
const pylib = process.env.LSMSEG_PYLIB ?? "/tmp/pylib";
const peerOk = pythonHas(["torch"]) && existsSync(join(monai, "monai"));

function build(arch: "unetr" | "swinunetr") {
  return arch === "unetr"
    ? new UNETR({ imgSize: [size, size, size], featureSize: uf, hiddenSize: hidden, mlpDim: 4 * hidden, numHeads: heads, projType: "perceptron" })
    : new SwinUNETR({ featureSize: sf, useV2: true });
}

function ours(net: UNETR | SwinUNETR, x: T.Tensor): number[] {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    T.noGrad(() => T.tidy(() => { net.forward(x); }));
    times.push((performance.now() - t0) / 1000);
  }
  return times;
}

function peer(arch: string): number[] | null {
  const feature = arch === "unetr" ? uf : sf;
  const r = spawnSync("/usr/bin/python3", [join(root, "bench", "transformers_peer.py"), "--arch", arch, "--size", String(size), "--reps", String(reps), "--threads", String(threads),
    "--feature", String(feature), "--hidden", String(hidden), "--heads", String(heads)], { encoding: "utf8", env: { ...process.env, PYTHONPATH: `${monai}:${pylib}` } });
  if (r.status !== 0) { console.log(`  (peer failed: ${r.stderr.trim().split("\n").pop()})`); return null; }
  return (JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { times_s: number[] }).times_s;
}

console.log(`transformers: forward of UNETR (feature ${uf}, hidden ${hidden}, ${heads} heads, perceptron) and SwinUNETR v2 (feature ${sf}, depths 2/2/2/2, window 7) at ${size}³, batch 1, fp32, ${threads} threads; ${rounds} rounds × ${reps} repetitions, alternating with MONAI`);
console.log(`machine: ${machine()}; libtorch ${T.buildInfo().torchVersion}; load average at start ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
if (!peerOk) console.log(`  (peer skipped: needs /usr/bin/python3 with torch and a MONAI checkout at ${monai}; set LSMSEG_MONAI / LSMSEG_PYLIB)`);
const result: Record<string, unknown> = { size, threads, rounds, reps };
for (const arch of ["unetr", "swinunetr"] as const) {
  const net = build(arch).eval();
  const x = T.randn([1, 1, size, size, size]);
  // warm-up
  T.noGrad(() => T.tidy(() => { net.forward(x); }));
  const a: number[] = [], b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    a.push(...ours(net, x));
    if (peerOk) b.push(...(peer(arch) ?? []));
  }
  const fmt = (xs: number[]) => (xs.length ? `min ${Math.min(...xs).toFixed(3)} s, median ${median(xs).toFixed(3)} s` : "n/a");
  console.log(`${arch.padEnd(9)} lsmseg ${fmt(a)} | MONAI/PyTorch ${fmt(b)}${b.length ? ` | ratio of medians ${(median(a) / median(b)).toFixed(2)}` : ""}  (${net.numParameters()} parameters)`);
  const side = (xs: number[]) => ({ min: round(Math.min(...xs)), median: round(median(xs)) });
  result[arch] = { lsmseg: side(a), pytorch: b.length ? side(b) : null, params: net.numParameters() };
  net.dispose();
  x.dispose();
}
console.log(`load average at end ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log(JSON.stringify({ ...result, loadavg: loadavg() }));
