// Start-up: `lsmseg --help`, `lsmseg evaluate --help` and a worker thread's first answer, from the sources
// through tsx (how lsmseg ran before dist/: LSMSEG_FROM_SRC=1) and compiled (dist/), interleaved, each a fresh
// process. The worker is evaluate's (./worker.ts beside the caller, as evaluate names it), started with
// tsWorker and timed from `new Worker` to its reply to a task naming a missing file (modules loaded, no work).
// Beside wall time, CPU time (user + system, of the command's process through /usr/bin/time where it exists,
// of the worker's start from process.cpuUsage()), which a loaded machine inflates less.
//   npm run bench -- startup [RUNS]
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { machine, median, root } from "./common.ts";

const runs = Number(process.argv[2] ?? 15);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`startup: RUNS must be a positive integer, got '${process.argv[2]}'`);
const built = spawnSync(process.execPath, [join(root, "scripts", "build.mjs"), "--if-stale", "--quiet"], { stdio: "inherit" });
if (built.status !== 0) throw new Error("startup: could not build dist/ (npm run build)");

const bin = join(root, "bin", "lsmseg.js");
const tmp = mkdtempSync(join(tmpdir(), "lsmseg-bench-startup-"));
const workerScript = join(tmp, "worker-start.mjs");
writeFileSync(workerScript, `
const [workers, script] = process.argv.slice(2);
const { tsWorker } = await import(workers);
const t0 = performance.now(), c0 = process.cpuUsage();
const w = tsWorker(new URL(script));
w.once("message", (m) => {
  if (!m.error) throw new Error("the worker was expected to answer with an error");
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 }));
  void w.terminate();
});
w.postMessage({ id: 0, task: { pred: "/nonexistent/a.nii.gz", gt: "/nonexistent/a.nii.gz", table: {}, extra: false } });
`);

type Variant = "tsx" | "dist";
interface Time { wall: number; cpu: number }
const gnuTime = existsSync("/usr/bin/time") ? "/usr/bin/time" : null;
const timeFile = join(tmp, "time.txt");
const url = (p: string) => pathToFileURL(join(root, p)).href;
const cases: { name: string; run: (v: Variant) => Time }[] = [
  { name: "lsmseg --help", run: (v) => timeCommand(v, ["--help"]) },
  { name: "lsmseg evaluate --help", run: (v) => timeCommand(v, ["evaluate", "--help"]) },
  {
    name: "worker's first answer",
    run: (v) => {
      const args = v === "tsx" ? ["--import", "tsx", workerScript, url("src/util/workers.ts"), url("src/eval/worker.ts")] : [workerScript, url("dist/util/workers.js"), url("dist/eval/worker.ts")];
      const r = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`worker start (${v}): ${r.stderr}`);
      return JSON.parse(r.stdout.trim()) as Time;
    },
  },
];

/** Wall and CPU seconds of one `node bin/lsmseg.js ARGS` from spawn to exit (CPU NaN without /usr/bin/time). */
function timeCommand(v: Variant, args: string[]): Time {
  const env = { ...process.env, LSMSEG_FROM_SRC: v === "tsx" ? "1" : "0" };
  const cmd = [process.execPath, bin, ...args];
  const t0 = performance.now();
  const r = gnuTime
    ? spawnSync(gnuTime, ["-o", timeFile, "-f", "%U %S", ...cmd], { cwd: root, env, stdio: ["ignore", "ignore", "pipe"] })
    : spawnSync(cmd[0], cmd.slice(1), { cwd: root, env, stdio: ["ignore", "ignore", "pipe"] });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`lsmseg ${args.join(" ")} (${v}): exit ${r.status}: ${r.stderr}`);
  const cpu = gnuTime ? readFileSync(timeFile, "utf8").trim().split(/\s+/).map(Number).reduce((a, b) => a + b, 0) : NaN;
  return { wall, cpu };
}

console.log(`startup: ${runs} runs each, tsx and dist interleaved; ${machine()}, node ${process.version}, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
type Stats = { min: number; median: number; cpuMin: number };
const result: Record<string, Record<Variant, Stats>> = {};
const stats = (ts: Time[]): Stats => ({
  min: Math.min(...ts.map((t) => t.wall)), median: median(ts.map((t) => t.wall)), cpuMin: Math.min(...ts.map((t) => t.cpu)),
});
const f = (x: number) => `${x.toFixed(3)} s`;
for (const c of cases) {
  const times: Record<Variant, Time[]> = { tsx: [], dist: [] };
  for (let i = 0; i < runs; i++) for (const v of ["tsx", "dist"] as const) times[v].push(c.run(v));
  const r = (result[c.name] = { tsx: stats(times.tsx), dist: stats(times.dist) });
  const line = (s: Stats) => `min ${f(s.min)}, median ${f(s.median)}, CPU min ${f(s.cpuMin)}`;
  console.log(`  ${c.name.padEnd(24)} tsx: ${line(r.tsx)}   dist: ${line(r.dist)}   (wall ×${(r.tsx.min / r.dist.min).toFixed(1)})`);
}
rmSync(tmp, { recursive: true, force: true });
console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log(JSON.stringify({ bench: "startup", runs, node: process.version, result }));
