// `npm run bench -- all`: every benchmark in one run, one after the other, then the README's performance table
// (between <!-- bench:start --> and <!-- bench:end -->) and the profile in docs/performance.md (between
// <!-- profile:start --> and <!-- profile:end -->) rewritten from that run alone, with its date, machine and load.
//   npm run bench -- all [--reps N] [--only a,b] [--no-write] [--smoke]
// --only runs some benchmarks and writes nothing (a table is always one whole run); --no-write only prints;
// --smoke runs every benchmark on tiny sizes, once, to check that they all work, and writes nothing.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, realpathSync, renameSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { benchArgs, FAIR_GLIBC_TUNABLES, load, machine, root } from "./common.ts";

type Json = Record<string, unknown>;
interface SideTimes { min: number; median: number }
interface Comparison {
  lsmseg: SideTimes; peer: SideTimes | null; peer_fair: SideTimes | null;
  ratio: number | null; ratio_median: number | null; ratio_shipped: number | null; ratio_shipped_median: number | null;
  load: { before: number[]; after: number[] };
}

const { values, reps } = benchArgs("all", { only: { type: "string", default: "" }, "no-write": { type: "boolean", default: false }, smoke: { type: "boolean", default: false } });
const passReps = process.argv.includes("--reps") ? ["--reps", String(reps)] : [];

// name, arguments: sizes and repetitions chosen so that the whole run stays within about 15–35 minutes on this
// 2-core machine under the load its neighbours put on it (1-minute load 5–25); each benchmark alone defaults to more
const R = passReps.length ? passReps : ["--reps", "5"];
const BENCHES: [string, string[]][] = [
  ["unet-step", ["--precisions", "bf16,fp32", ...R]],
  ["predict", R], // 128³, as `npm run bench -- predict` (27 windows: 96³ has 8, and its ratio swung more)
  ["pretrain", R],
  ["evaluate", ["4", "200", ...R]],
  ["io", ["200", ...R]],
  ["loader", ["20", ...R]],
  ["ddp", ["--steps", "2", ...(passReps.length ? passReps : ["--reps", "3"])]],
  ["curate", ["--shape", "100,512,512"]],
  ["predict-large", []],
];
const SMOKE: Record<string, string[]> = {
  "unet-step": ["--patch", "32", "--reps", "1"], predict: ["--size", "64", "--reps", "1"], pretrain: ["--patch", "32", "--reps", "1"],
  evaluate: ["2", "64", "--reps", "1"], io: ["64", "--reps", "1"], loader: ["4", "--reps", "1"], ddp: ["--steps", "1", "--patch", "32", "--reps", "1"],
  curate: ["--shape", "32,128,128"], "predict-large": ["--shape", "32,96,96"],
};
if (values.smoke) for (const b of BENCHES) b[1] = SMOKE[b[0]];
const only = values.only ? values.only.split(",") : null;
if (only) for (const o of only) if (!BENCHES.some(([n]) => n === o)) {
  console.error(`bench all: --only: unknown benchmark '${o}' (expected some of ${BENCHES.map(([n]) => n).join(", ")})`);
  process.exit(2);
}

function runBench(name: string, args: string[]): Promise<Json | null> {
  return new Promise((resolveRun) => {
    const c = spawn(process.execPath, ["--import", "tsx", join(root, "bench", `${name}.ts`), ...args], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    c.stdout.on("data", (d: Buffer) => { process.stdout.write(d); out += d.toString(); });
    c.on("exit", (code) => {
      const line = out.trim().split("\n").reverse().find((l) => l.startsWith("{"));
      if (code !== 0 || !line) { console.log(`  (${name} failed: exit ${code})`); resolveRun(null); return; }
      resolveRun(JSON.parse(line) as Json);
    });
  });
}

const started = new Date();
const loadBefore = load();
const results: Record<string, Json | null> = {};
for (const [name, args] of BENCHES) {
  if (only && !only.includes(name)) continue;
  console.log(`\n=== ${name} ${args.join(" ")} (load ${load().join(" ")})`);
  const t0 = performance.now();
  results[name] = await runBench(name, args);
  console.log(`=== ${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
const minutes = (Date.now() - started.getTime()) / 60000;
const loadAfter = load();

// ---- the README table
const s3 = (x: number) => (x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
const times = (t: SideTimes | null) => (t ? `${s3(t.min)} / ${s3(t.median)} s` : "—");
const ratio = (a: number | null, b: number | null) => (a === null ? "—" : `${a.toFixed(2)} (${b?.toFixed(2) ?? "—"})`);
const loads = (l: { before: number[]; after: number[] }) => `${l.before[0]} → ${l.after[0]}`;
function row(bench: string, work: string, c: Comparison | undefined): string {
  if (!c) return `| \`${bench}\` | ${work} | (failed) | | | | | |`;
  return `| \`${bench}\` | ${work} | ${times(c.lsmseg)} | ${times(c.peer)} | ${times(c.peer_fair)} | **${ratio(c.ratio, c.ratio_median)}** | ${ratio(c.ratio_shipped, c.ratio_shipped_median)} | ${loads(c.load)} |`;
}
const r = results as Record<string, (Json & Record<string, Comparison & Json>) | null>;
const blas = (() => {
  try {
    const lib = realpathSync("/usr/lib/x86_64-linux-gnu/libblas.so.3");
    return lib.includes("openblas") ? "OpenBLAS" : lib.includes("/blas/") ? "the reference BLAS" : basename(dirname(lib));
  } catch {
    return "BLAS unknown";
  }
})();
const torchVersion = spawnSync("/usr/bin/python3", ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" }).stdout.trim() || "not installed";
const lines: string[] = [];
lines.push(`Measured by \`npm run bench -- all\` on ${started.toISOString().slice(0, 16).replace("T", " ")} UTC in ${minutes.toFixed(0)} minutes: ${machine()}, Node ${process.version}, libtorch 1.13 (Debian) with ${blas}, PyTorch ${torchVersion}; load average (1 minute) ${loadBefore[0]} at the start, ${loadAfter[0]} at the end. This machine is shared: the load is what the neighbours did, and the method below is what makes the ratios hold anyway.`);
lines.push("");
lines.push(`Each side: minimum / median of ${passReps.length ? reps : 5} repetitions (3 for \`ddp\`) after a warm-up, the sides interleaved (lsmseg, PyTorch, PyTorch fair, lsmseg, …). Ratio = lsmseg / peer, minima (medians in brackets); below 1 is faster. "Fair" runs the peer with the glibc heap settings that lsmseg's addon applies to itself (\`GLIBC_TUNABLES=${FAIR_GLIBC_TUNABLES}\`); the bold ratio is the fair one. Method, profile and GFLOP/s: [docs/performance.md](docs/performance.md).`);
lines.push("");
lines.push("| benchmark | work | lsmseg | peer as shipped | peer fair | ratio fair | ratio as shipped | load |");
lines.push("|---|---|---|---|---|---|---|---|");
const us = r["unet-step"];
lines.push(row("unet-step", "one training step of the anchor U-Net (1.40 M parameters), 64³ × 2, CE + soft Dice, AdamW, **bf16** autocast", us?.bf16));
if (us?.fp32) lines.push(row("unet-step", "the same step in **fp32**", us.fp32));
const fp32Note = us && !us.fp32 ? " The fp32 step is left out of `all` to keep the run short on this machine: `npm run bench -- unet-step` times both." : "";
const pr = r.predict;
lines.push(row("predict", `sliding window over a ${pr?.size ?? 128}³ volume, patch 64, step 0.5, batch 2, bf16, no mirroring`, pr as unknown as Comparison | undefined));
lines.push(row("pretrain", "one MAE step (75 % block mask, masked MSE) of the anchor U-Net + 1×1×1 head, 64³ × 2, bf16, AdamW", r.pretrain as unknown as Comparison | undefined));
const ev = r.evaluate;
lines.push(row("evaluate", `${ev?.cases ?? 6} cases of ${ev?.side ?? 200}³ (Dice, clDice, PQ), one thread, vs numpy + scikit-image (same numbers: largest difference ${ev?.max_abs_diff ?? "—"})`, ev as unknown as Comparison | undefined));
const io = r.io;
lines.push(row("io", `read a ${io?.side ?? 300}³ uint16 \`.nii.gz\` vs nibabel`, io?.nii_gz_read));
lines.push(row("io", "write it (lsmseg's gzip level vs nibabel's default)", io?.nii_gz_write));
lines.push("");
const gf = (x: Json | null | undefined, k: string) => ((x?.[k] as Json | undefined)?.gflops as Record<string, number | null> | undefined);
const mm = us?.matmul_gflops as { bf16: number; fp32: number } | undefined;
if (us && mm) {
  const b = gf(us, "bf16"), f = gf(us, "fp32");
  const pg = pr?.gflops as Record<string, number | null> | undefined;
  lines.push(`GFLOP/s at the minima (convolutions counted from the network's shape: ${us.step_gflop} GFLOP a training step${pr ? `, ${pr.gflop} GFLOP the ${pr.size}³ prediction` : ""}) against this machine's 2048² matrix product, measured in the same run (bf16 ${mm.bf16}, fp32 ${mm.fp32} GFLOP/s): training step bf16 lsmseg ${b?.lsmseg}, PyTorch ${b?.peer ?? "—"} (fair ${b?.peer_fair ?? "—"})${f ? `; fp32 lsmseg ${f.lsmseg}, PyTorch ${f.peer ?? "—"} (fair ${f.peer_fair ?? "—"})` : ""}${pg ? `; prediction lsmseg ${pg.lsmseg}, PyTorch ${pg.peer ?? "—"} (fair ${pg.peer_fair ?? "—"})` : ""}.`);
  lines.push("");
}
const other: string[] = [];
const ld = r.loader as Json | null;
if (ld) other.push(`\`loader\` ${ld.workers1_ms_per_batch} ms per augmented 2 × 64³ batch with one worker (${ld.workers0_ms_per_batch} inline, ${ld.workers2_ms_per_batch} with two)`);
const dd = r.ddp as Json | null;
if (dd) other.push(`\`ddp\` 1 process × 2 threads ${dd.samples_per_s_1} samples/s, 2 processes × 1 thread ${dd.samples_per_s_2} ("efficiency" ${dd.efficiency}: the same 2 cores split, so this measures the all-reduce's overhead, not scaling)`);
const cu = r.curate as Json | null;
if (cu) other.push(`\`curate\` (${(cu.shape as number[]).join("×")} uint16) scan ${cu.scanMBps} MB/s, ${cu.tilesPerS} tiles/s, whole run ${cu.totalMBps} MB/s`);
const pl = r["predict-large"] as Json | null;
if (pl) other.push(`\`predict-large\` (${(pl.shape as number[]).join("×")}, --max-memory-mb ${pl.maxMemoryMb}) ${((pl.voxelsPerS as number) / 1e6).toFixed(2)} M voxels/s out of core, ${pl.inMemorySeconds ?? "—"} s in memory against ${pl.seconds} s, peak RSS ${pl.peakRssGiB} GiB`);
if (other.length) lines.push(`Without a peer, same run: ${other.join("; ")}.${fp32Note}`);
const failed = Object.entries(results).filter(([, v]) => v === null).map(([k]) => `\`${k}\``);
if (failed.length) lines.push("", `Failed in this run (no figures): ${failed.join(", ")}.`);
const table = lines.join("\n");

// ---- the profile for docs/performance.md
type ProfileSide = { s: number; ops: { name: string; calls: number; selfMs: number }[] };
const prof = us?.profile as { lsmseg: ProfileSide; peer_fair: ProfileSide | null } | undefined;
let profile = "";
if (prof) {
  const a = prof.lsmseg.ops, b = prof.peer_fair?.ops ?? [];
  const p: string[] = [];
  p.push(`One bf16 training step of \`unet-step\` after its timed repetitions, from the run of ${started.toISOString().slice(0, 16).replace("T", " ")} UTC (load ${us!.bf16 ? loads((us!.bf16 as Comparison).load) : "—"}): lsmseg ${Math.round(prof.lsmseg.s * 1000)} ms, PyTorch fair ${prof.peer_fair ? Math.round(prof.peer_fair.s * 1000) : "—"} ms wall. Self time per operator (ms) and calls, the 15 largest of each side.`);
  p.push("");
  p.push("| lsmseg operator | calls | self ms | PyTorch operator | calls | self ms |");
  p.push("|---|---|---|---|---|---|");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i], y = b[i];
    p.push(`| ${x ? `\`${x.name}\` | ${x.calls} | ${x.selfMs.toFixed(1)}` : " | | "} | ${y ? `\`${y.name}\` | ${y.calls} | ${y.selfMs.toFixed(1)}` : " | | "} |`);
  }
  profile = p.join("\n");
}

console.log(`\n${table}\n`);
if (profile) console.log(`${profile}\n`);

function replaceRegion(file: string, start: string, end: string, body: string): void {
  const path = join(root, file);
  const text = readFileSync(path, "utf8");
  // a marker counts only on a line of its own, so that prose that names it is never mistaken for it
  const at = (marker: string) => text.search(new RegExp(`^${marker.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[ \t]*$`, "m"));
  const i = at(start), j = at(end);
  if (i < 0 || j < i) throw new Error(`${file}: the markers ${start} … ${end} are missing (each on a line of its own)`);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${text.slice(0, i + start.length)}\n${body}\n${text.slice(j)}`);
  renameSync(tmp, path);
  console.log(`wrote ${file}`);
}

if (only || values["no-write"] || values.smoke) {
  console.log(`(${only ? "--only" : values.smoke ? "--smoke" : "--no-write"}: README.md and docs/performance.md left as they are)`);
} else {
  replaceRegion("README.md", "<!-- bench:start -->", "<!-- bench:end -->", table);
  if (profile) replaceRegion("docs/performance.md", "<!-- profile:start -->", "<!-- profile:end -->", profile);
  if (failed.length) process.exit(1);
}
