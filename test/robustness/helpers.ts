// Helpers for the failure-path tests: the CLI in this process (main(), output captured) or as a child process
// (through ONE function, so that a change of how bin/lsmseg.js runs lands in one place), tiny volumes, a tiny
// untrained model on disk, and a search for leftover temporary files.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "../../src/cli/index.ts";
import { type DType, type Vec3, makeVolume, writeVolume } from "../../src/io/index.ts";
import { buildNetwork } from "../../src/nn/networks.ts";
import { makePlan } from "../../src/seg/plan.ts";
import { saveCheckpoint } from "../../src/torch/index.ts";

export const BIN = fileURLToPath(new URL("../../bin/lsmseg.js", import.meta.url));
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `lsmseg ARGS` in this process (main(), the dispatcher bin/lsmseg.js calls), capturing what it prints. */
export async function cli(args: string[]): Promise<CliResult> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error, write = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => { out.push(a.map(String).join(" ")); };
  console.error = (...a: unknown[]) => { err.push(a.map(String).join(" ")); };
  process.stderr.write = ((chunk: string | Uint8Array) => { err.push(String(chunk)); return true; }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = write;
  }
}

/** The command line that runs the lsmseg command as a child process (the one place that knows how). */
export function cliCommand(args: string[]): [string, string[]] {
  return [process.execPath, [BIN, ...args]];
}

/**
 * Runs `lsmseg ARGS` as a child process to its end (for what only a process shows: its exit, hangs);
 * `fileSizeBlocks` limits the size of the files it writes (ulimit -f, 512-byte blocks: EFBIG).
 */
export function spawnCli(args: string[], o: { timeoutMs?: number; fileSizeBlocks?: number } = {}): CliResult & { signal: NodeJS.Signals | null } {
  let [cmd, argv] = cliCommand(args);
  if (o.fileSizeBlocks !== undefined) [cmd, argv] = ["/bin/sh", ["-c", `ulimit -f ${o.fileSizeBlocks}; exec "$0" "$@"`, cmd, ...argv]];
  const timeoutMs = o.timeoutMs ?? 60_000;
  const r = spawnSync(cmd, argv, { cwd: ROOT, encoding: "utf8", timeout: timeoutMs, env: { ...process.env, LSMSEG_THREADS: "1" } });
  return { code: r.status ?? -1, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `lsmseg ARGS` as a child process and returns it (for serve). */
export function startCli(args: string[]): ChildProcess {
  const [cmd, argv] = cliCommand(args);
  return spawn(cmd, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LSMSEG_THREADS: "1" } });
}

/** A small volume with a ramp of values (0, 1, 2, … modulo 200). */
export async function writeRamp(path: string, shape: Vec3 = [4, 8, 8], dtype: DType = "uint16"): Promise<void> {
  const vol = makeVolume(dtype, shape, [1, 1, 1]);
  for (let i = 0; i < vol.data.length; i++) vol.data[i] = i % 200;
  await writeVolume(path, vol);
}

/** An untrained 2-class model of a few hundred parameters, saved as a fine-tuning checkpoint (with its plan). */
export function tinyModel(path: string, patch: Vec3 = [8, 8, 8]): string {
  const plan = makePlan([[...patch]], [[1, 1, 1]], { baseFeatures: 2, patchSize: patch, batchSize: 1, deepSupervision: false });
  const net = buildNetwork(plan.network);
  saveCheckpoint(path, { step: 0, model: net.stateDict(), network: plan.network as unknown as Record<string, unknown>, extra: { plan }, rng: false });
  return path;
}

/** The temporary files and folders (`.lsmseg-tmp-…`) anywhere under `dir`. */
export function leftovers(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).filter((p) => p.split("/").some((part) => part.startsWith(".lsmseg-tmp-"))).map((p) => join(dir, p));
}
