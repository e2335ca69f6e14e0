// Flag parsing shared by the commands: node's parseArgs with a usage text and clear errors.
import { fileURLToPath } from "node:url";
import { parseArgs, type ParseArgsConfig } from "node:util";

export type Options = NonNullable<ParseArgsConfig["options"]>;

export class UsageError extends Error {}

/** What parseFlags returns: named, so the declaration build (tsconfig.build.json) can write it out. */
type ParsedFlags<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O & { help: { type: "boolean"; short: string } }; allowPositionals: boolean; strict: true }>>;

/** Parses `argv` against `options`; prints `help` and returns null for --help. */
export function parseFlags<O extends Options>(argv: string[], options: O, help: string, allowPositionals = false): ParsedFlags<O> | null {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${help}`);
  }
  if ((parsed.values as Record<string, unknown>).help) {
    console.log(help);
    return null;
  }
  return parsed;
}

/** A positive integer flag, or an error naming the flag. */
export function intFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got '${value}'`);
  return n;
}

/** A number flag, or an error naming the flag. */
export function numFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${value}'`);
  return n;
}

/** The launcher's flags, for the commands that run data-parallel (finetune, pretrain, predict). */
export const LAUNCH_FLAGS = {
  nproc: { type: "string" }, nnodes: { type: "string" }, "node-rank": { type: "string" }, master: { type: "string" },
} as const satisfies Options;

export const LAUNCH_HELP = `  --nproc N             N processes on this machine over c10d (Gloo), the cores split between them
  --nnodes M --node-rank R --master ADDR:PORT
                        several machines (also read from WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT)`;

/**
 * With --nproc N > 1 or --nnodes M > 1 (and not already a launched rank), starts the ranks of `command`
 * and resolves to their exit code; otherwise null (run here, as one rank or as a single process).
 */
export async function launchIfAsked(command: string, argv: string[], v: { nproc?: string; nnodes?: string; "node-rank"?: string; master?: string }): Promise<number | null> {
  const nproc = intFlag("nproc", v.nproc, 1);
  const nnodes = intFlag("nnodes", v.nnodes, 1);
  if (nproc < 1 || nnodes < 1) throw new UsageError(`--nproc and --nnodes must be at least 1`);
  if ((nproc === 1 && nnodes === 1) || process.env.WORLD_SIZE) return null;
  const { launch, stripLaunchFlags } = await import("../dist/launch.ts");
  const bin = fileURLToPath(new URL("../../bin/lsmseg.js", import.meta.url));
  return launch(bin, [command, ...stripLaunchFlags(argv)], { nproc, nnodes, nodeRank: intFlag("node-rank", v["node-rank"], 0), master: v.master });
}

export const DEVICE_HELP = `  --device D            cpu (default), cuda or cuda:N: needs a CUDA libtorch (build with LIBTORCH=…);
                        with --nproc, rank r of a node takes cuda:r (CUDA_VISIBLE_DEVICES chooses the GPUs)`;

/** The device a command runs on: cpu, or cuda[:N] when the libtorch has CUDA; a launched rank takes cuda:LOCAL_RANK. */
export async function deviceFlag(value: string | undefined): Promise<string> {
  const v = value ?? "cpu";
  if (!/^(cpu|cuda(:\d+)?)$/.test(v)) throw new UsageError(`--device: expected cpu, cuda or cuda:N, got '${v}'`);
  if (v === "cpu") return v;
  if (v.startsWith("cuda:") && Number(process.env.LOCAL_WORLD_SIZE ?? 1) > 1) {
    throw new UsageError(`--device ${v} with --nproc: every rank would compute on that one GPU; pass --device cuda (rank r takes cuda:r), and CUDA_VISIBLE_DEVICES to choose the GPUs`);
  }
  const { buildInfo } = await import("../torch/index.ts");
  if (!buildInfo().cuda) {
    throw new UsageError(`--device ${v}: this libtorch has no CUDA; build the addon against a CUDA libtorch (LIBTORCH=/path/to/libtorch npm run setup), see the README`);
  }
  return v === "cuda" && process.env.LOCAL_RANK !== undefined ? `cuda:${process.env.LOCAL_RANK}` : v;
}
