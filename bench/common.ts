// The method every benchmark shares, made for machines whose neighbours come and go:
// - one warm-up run of each side, not timed;
// - then `reps` repetitions (at least 5) with the sides interleaved (ours, peer, fair peer, ours, …), so that a
//   neighbour's burst lands on every side alike rather than on whichever ran at that moment;
// - the minimum (the best the machine allowed: the least disturbed figure) and the median of each side, the ratio
//   of the minima and the ratio of the medians, and the load average before and after;
// - the PyTorch peer runs twice: as shipped, and "fair", with the glibc heap settings that the lsmseg addon applies
//   to itself (native/malloc_tuning.h) given through GLIBC_TUNABLES, since that setting is worth more than any engine
//   difference and PyTorch users can copy it. `ratio` is the fair ratio of minima.
// The peer is one long-lived Python process per variant (bench/peer.py) that runs one repetition per request, so its
// start-up (importing torch) is outside the timings and both sides are timed by their own clocks around the same work.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The heap settings of native/malloc_tuning.h as glibc tunables: no mmap for large blocks, no trimming. */
export const FAIR_GLIBC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184";

export function machine(): string {
  const c = cpus();
  return `${c[0]?.model ?? "unknown CPU"}, ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;

/** The 1-, 5- and 15-minute load averages, rounded. */
export function load(): number[] {
  return loadavg().map((x) => round(x, 2));
}

/**
 * Parses a benchmark's flags, with the shared `--reps N` (default `reps`, at least 5 unless the caller asks for
 * fewer on purpose with a smaller default) added; a bad flag is a usage error (exit 2).
 */
export function benchArgs<O extends Record<string, { type: "string" | "boolean"; default?: string | boolean }>>(name: string, options: O, reps = 5): {
  values: { [K in keyof O]: O[K]["type"] extends "boolean" ? boolean : string };
  positionals: string[];
  reps: number;
} {
  try {
    const parsed = parseArgs({ options: { ...options, reps: { type: "string", default: String(reps) } } as ParseArgsConfig["options"], allowPositionals: true });
    const values = parsed.values as Record<string, string | boolean | undefined>;
    const n = Number(values.reps);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--reps: expected a whole number ≥ 1, got '${String(values.reps)}'`);
    return { values: values as { [K in keyof O]: O[K]["type"] extends "boolean" ? boolean : string }, positionals: parsed.positionals, reps: n };
  } catch (err) {
    console.error(`bench ${name}: ${(err as Error).message}`);
    process.exit(2);
  }
}

/** The folder with the PyTorch peer's anchor scripts (../shared/anchors, or LSMSEG_ANCHORS). */
export function anchorsDir(): string | null {
  const dir = process.env.LSMSEG_ANCHORS ?? join(root, "..", "shared", "anchors");
  return existsSync(join(dir, "unet_step.py")) ? dir : null;
}

/** The peer's interpreter: LSMSEG_PYTHON (on a GPU machine, the python3 with CUDA PyTorch), else Debian's /usr/bin/python3. */
export function peerPython(): string {
  return process.env.LSMSEG_PYTHON || "/usr/bin/python3";
}

/** Whether torch (and the given extra modules) import in the peer's interpreter (peerPython()). */
export function pythonHas(modules: string[]): boolean {
  const r = spawnSync(peerPython(), ["-c", modules.map((m) => `import ${m}`).join("; ")], { stdio: "ignore" });
  return r.status === 0;
}

/** One operator's totals in a profile (lsmseg's native/profiler.cc and torch's autograd profiler alike). */
export interface OpStat { name: string; calls: number; totalUs: number; selfUs: number }

/** One repetition's answer from the peer: its own time in seconds, and whatever else the work reports. */
export type PeerAnswer = { s: number } & Record<string, unknown>;

/**
 * A long-lived peer process (bench/peer.py WORK ...): writes `run [TASK]` and reads one JSON line per repetition.
 * `fair` starts it with the lsmseg heap settings.
 */
export class Peer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly queue: ((line: string | null) => void)[] = [];
  private stderr = "";
  /** The latest repetition's answer. */
  last: PeerAnswer | null = null;

  private constructor(readonly label: string, work: string, args: string[], fair: boolean) {
    const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1" };
    if (fair) env.GLIBC_TUNABLES = FAIR_GLIBC_TUNABLES;
    else delete env.GLIBC_TUNABLES;
    const anchors = anchorsDir();
    if (anchors) env.LSMSEG_ANCHORS = anchors;
    this.proc = spawn(peerPython(), [join(root, "bench", "peer.py"), work, ...args], { env });
    this.proc.stderr.on("data", (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4000); });
    this.lines = createInterface({ input: this.proc.stdout });
    this.lines.on("line", (l) => this.queue.shift()?.(l));
    this.lines.on("close", () => { for (const f of this.queue.splice(0)) f(null); });
  }

  /**
   * Starts a peer for WORK and waits for its "ready" line; null (with a note saying why) when python3, torch or
   * the anchors are missing, or the peer fails to start.
   */
  static async start(
    label: string, work: string, args: string[], opts: { fair?: boolean; needs?: string[]; anchors?: boolean } = {},
  ): Promise<Peer | null> {
    if (opts.anchors !== false && !anchorsDir()) {
      console.log(`  (${label} skipped: ../shared/anchors not found; set LSMSEG_ANCHORS)`);
      return null;
    }
    const needs = opts.needs ?? ["torch"];
    if (!pythonHas(needs)) {
      console.log(`  (${label} skipped: ${peerPython()} cannot import ${needs.join(", ")}; apt-get install -y ${needs.map((m) => `python3-${m}`).join(" ")})`);
      return null;
    }
    const peer = new Peer(label, work, args, opts.fair ?? false);
    try {
      await peer.read();
      return peer;
    } catch (err) {
      console.log(`  (${label} failed to start: ${(err as Error).message})`);
      peer.close();
      return null;
    }
  }

  private read(): Promise<PeerAnswer> {
    return new Promise((resolveLine, reject) => {
      this.queue.push((line) => {
        if (line === null) { reject(new Error(this.stderr.trim().split("\n").pop() ?? "the peer exited")); return; }
        try { resolveLine(JSON.parse(line) as PeerAnswer); } catch { reject(new Error(`the peer printed '${line.slice(0, 200)}', not JSON`)); }
      });
    });
  }

  /** Runs one repetition of TASK (the work's default when omitted) and returns the peer's answer. */
  async run(task = ""): Promise<PeerAnswer> {
    const answer = this.read();
    this.proc.stdin.write(`run ${task}\n`);
    this.last = await answer;
    return this.last;
  }

  /** One repetition under torch's autograd profiler: its per-operator totals. */
  async profile(): Promise<{ s: number; ops: OpStat[] }> {
    const answer = this.read();
    this.proc.stdin.write("profile\n");
    return (await answer) as unknown as { s: number; ops: OpStat[] };
  }

  close(): void {
    if (this.proc.exitCode === null) this.proc.stdin.end("quit\n");
  }
}

/** Summary of one side's repetitions. */
export interface SideTimes { min: number; median: number; reps: number[] }

function summarise(xs: number[]): SideTimes {
  return { min: round(Math.min(...xs)), median: round(median(xs)), reps: xs.map((x) => round(x)) };
}

/** One side of a comparison: a label and one repetition of its work, returning seconds. */
export interface Side { label: string; rep: () => number | Promise<number> }

/**
 * The shared method: one warm-up run of every side, then `reps` rounds in which every side runs once, in turn.
 * Returns each side's minimum, median and the repetitions themselves, and the load average before and after.
 */
export async function interleave(
  sides: Side[], reps: number, opts: { warmup?: boolean; quiet?: boolean } = {},
): Promise<{ times: Record<string, SideTimes>; load: { before: number[]; after: number[] } }> {
  const before = load();
  if (opts.warmup !== false) for (const s of sides) await s.rep();
  const xs: Record<string, number[]> = Object.fromEntries(sides.map((s) => [s.label, []]));
  for (let r = 0; r < reps; r++) {
    for (const s of sides) xs[s.label].push(await s.rep());
    if (!opts.quiet) console.log(`    rep ${r + 1}/${reps}: ${sides.map((s) => `${s.label} ${xs[s.label][r].toFixed(3)} s`).join(", ")}; load ${load()[0]}`);
  }
  const times = Object.fromEntries(Object.entries(xs).map(([k, v]) => [k, summarise(v)]));
  return { times, load: { before, after: load() } };
}

/** Times `fn` in seconds. */
export async function seconds(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** The shared `--device` and `--features` flags of the benchmarks that run the anchor U-Net. */
export const DEVICE_OPTIONS = {
  device: { type: "string", default: "cpu" }, features: { type: "string", default: "16,32,64,128" },
} as const;

/**
 * Reads `--device cpu|cuda|cuda:N` and `--features C1,C2,...` (at least two stages); a bad value is a usage error
 * (exit 2). `type` is the device's type for autocast; `peerArgs` passes both on to bench/peer.py.
 */
export function deviceArgs(name: string, values: { device: string; features: string }): {
  device: string; type: "cpu" | "cuda"; features: number[]; peerArgs: string[];
  /** anchorUNetConfig's overrides for these channels (stride 1 then 2, 3³ kernels, as the anchors' UNet(ch)). */
  unet: { features: number[]; strides: number[]; kernelSizes: number[] };
  /** The network's name in the benchmarks' first line. */
  net: string;
} {
  const device = values.device;
  const features = values.features.split(",").map(Number);
  let problem: string | null = null;
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) problem = `--device: expected cpu, cuda or cuda:N, got '${device}'`;
  else if (features.length < 2 || features.some((c) => !Number.isInteger(c) || c < 1)) problem = `--features: expected a comma list of at least two channel counts, got '${values.features}'`;
  if (problem) {
    console.error(`bench ${name}: ${problem}`);
    process.exit(2);
  }
  return {
    device, type: device === "cpu" ? "cpu" : "cuda", features, peerArgs: ["--device", device, "--features", features.join(",")],
    unet: { features, strides: features.map((_, i) => (i === 0 ? 1 : 2)), kernelSizes: features.map(() => 3) },
    net: features.join(",") === "16,32,64,128" ? "anchor U-Net" : `U-Net ${features.join("/")}`,
  };
}

/** Times `fn` in seconds, waiting for the GPU's queue before and after when `device` is not the CPU. */
export async function deviceSeconds(T: typeof import("../src/torch/index.ts"), device: string, fn: () => unknown): Promise<number> {
  if (device === "cpu") return seconds(fn);
  T.cudaSynchronize();
  return seconds(() => { fn(); T.cudaSynchronize(); });
}

/** The figures of one comparison of lsmseg with its peer, as the JSON lines carry them. */
export interface Comparison {
  lsmseg: SideTimes;
  peer: SideTimes | null;
  peer_fair: SideTimes | null;
  /** lsmseg / fair peer, minima: the headline ratio. */
  ratio: number | null;
  ratio_median: number | null;
  ratio_shipped: number | null;
  ratio_shipped_median: number | null;
  load: { before: number[]; after: number[] };
  /** Further sides of lsmseg's (other settings of the same work), when asked for. */
  others?: Record<string, SideTimes>;
}

/**
 * Runs lsmseg's side against the peer as shipped and the fair peer (either may be null: missing Python), with
 * the shared method, and prints one summary line.
 */
export async function compare(
  label: string, ours: () => number | Promise<number>, peer: Peer | null, fair: Peer | null, reps: number,
  opts: { task?: string; others?: Side[] } = {},
): Promise<Comparison> {
  const task = opts.task ?? "";
  const sides: Side[] = [{ label: "lsmseg", rep: ours }, ...(opts.others ?? [])];
  if (peer) sides.push({ label: "peer", rep: async () => (await peer.run(task)).s });
  if (fair) sides.push({ label: "peer_fair", rep: async () => (await fair.run(task)).s });
  console.log(`  ${label}: warm-up, then ${reps} interleaved repetitions (${sides.map((s) => s.label).join(", ")})`);
  const { times, load: l } = await interleave(sides, reps);
  const ratioOf = (a: SideTimes, b: SideTimes | undefined, key: "min" | "median") => (b ? round(a[key] / b[key], 3) : null);
  const c: Comparison = {
    lsmseg: times.lsmseg, peer: times.peer ?? null, peer_fair: times.peer_fair ?? null,
    ratio: ratioOf(times.lsmseg, times.peer_fair, "min"), ratio_median: ratioOf(times.lsmseg, times.peer_fair, "median"),
    ratio_shipped: ratioOf(times.lsmseg, times.peer, "min"), ratio_shipped_median: ratioOf(times.lsmseg, times.peer, "median"),
    load: l,
  };
  if (opts.others?.length) c.others = Object.fromEntries(opts.others.map((o) => [o.label, times[o.label]]));
  const fmt = (t: SideTimes | null) => (t ? `${t.min.toFixed(3)} / ${t.median.toFixed(3)} s` : "—");
  const r = (x: number | null) => x?.toFixed(3) ?? "—";
  console.log(`  ${label} (min / median): lsmseg ${fmt(c.lsmseg)}, peer as shipped ${fmt(c.peer)}, fair ${fmt(c.peer_fair)}`);
  console.log(`  ${label} ratio lsmseg/peer: fair ${r(c.ratio)} (minima) ${r(c.ratio_median)} (medians); as shipped ${r(c.ratio_shipped)} / ${r(c.ratio_shipped_median)}; load ${l.before[0]} → ${l.after[0]}`);
  return c;
}

/**
 * The machine's bf16 (and fp32) matrix-product rate in GFLOP/s, measured here: the best of several 2048² products
 * in `threads` threads (or on `device`), the ceiling against which a step's GFLOP/s is read.
 */
export async function matmulRate(T: typeof import("../src/torch/index.ts"), dtype: "bfloat16" | "float32", n = 2048, reps = 7, device = "cpu"): Promise<number> {
  const on = (t: import("../src/torch/index.ts").Tensor) => (device === "cpu" ? t : t.to(device));
  const a = on(T.randn([n, n]).to(dtype)), b = on(T.randn([n, n]).to(dtype));
  let best = Infinity;
  for (let i = 0; i <= reps; i++) {
    const s = await deviceSeconds(T, device, () => T.matmul(a, b).dispose());
    if (i > 0) best = Math.min(best, s);
  }
  a.dispose();
  b.dispose();
  return round((2 * n ** 3) / best / 1e9, 1);
}
