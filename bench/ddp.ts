// Data-parallel scaling: U-Net training samples per second with 1 process (all cores) and with 2
// processes (the cores split between them, gradients averaged over c10d/Gloo every step).
// Usage: npm run bench -- ddp [--steps 6] [--patch 48] [--batch 2]
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { freePort } from "../src/dist/launch.ts";
import { benchArgs, interleave, load, machine, round } from "./common.ts";

const { values, reps } = benchArgs("ddp", { steps: { type: "string", default: "6" }, patch: { type: "string", default: "48" }, batch: { type: "string", default: "2" } });
const cores = availableParallelism();
const script = new URL("./ddp_rank.ts", import.meta.url).pathname;

async function run(nproc: number): Promise<number> {
  const port = await freePort();
  const threads = String(Math.max(1, Math.floor(cores / nproc)));
  const procs = Array.from({ length: nproc }, (_, rank) => ({ rank }));
  const results = await Promise.all(procs.map(({ rank }) => new Promise<string>((resolve) => {
    const env = { ...process.env, LSMSEG_THREADS: threads, ...(nproc > 1 ? { WORLD_SIZE: String(nproc), RANK: String(rank), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) } : {}) };
    const c = spawn(process.execPath, ["--import", "tsx", script, values.steps, values.patch, values.batch], { env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    c.stdout.on("data", (d: Buffer) => { out += d.toString(); });
    c.on("exit", () => resolve(out));
  })));
  const line = results[0].trim().split("\n").pop() ?? "{}";
  return Number((JSON.parse(line) as { samples_per_s: number }).samples_per_s);
}

console.log(`ddp: anchor U-Net, ${values.patch}³ × batch ${values.batch} per process, AdamW, ${cores} cores`);
console.log(`machine: ${machine()}; load ${load().join(" ")}`);
const samples = (nproc: number) => Number(values.steps) * Number(values.batch) * nproc;
// seconds per sample, so that the minimum is the fastest run
const { times, load: l } = await interleave([1, 2].map((nproc) => ({ label: `p${nproc}`, rep: async () => samples(nproc) / (await run(nproc)) })), reps, { quiet: true });
const rate = (nproc: number, k: "min" | "median") => 1 / times[`p${nproc}`][k];
const one = rate(1, "min"), two = rate(2, "min");
console.log(`  1 process (${cores} threads):  ${one.toFixed(2)} samples/s (median ${rate(1, "median").toFixed(2)})`);
console.log(`  2 processes (${Math.max(1, Math.floor(cores / 2))} thread each): ${two.toFixed(2)} samples/s (median ${rate(2, "median").toFixed(2)})`);
const efficiency = two / one;
console.log(`  scaling efficiency (same cores, split): ${(efficiency * 100).toFixed(0)} % at the fastest runs, ${((rate(2, "median") / rate(1, "median")) * 100).toFixed(0)} % at the medians; load ${l.before[0]} → ${l.after[0]}`);
console.log(JSON.stringify({ bench: "ddp", reps, samples_per_s_1: round(one, 3), samples_per_s_2: round(two, 3), efficiency: round(efficiency, 3), samples_per_s_1_median: round(rate(1, "median"), 3), samples_per_s_2_median: round(rate(2, "median"), 3), load: l, cores, machine: machine() }));
