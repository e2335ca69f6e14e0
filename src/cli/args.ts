// Flag parsing shared by the commands: node's parseArgs with a usage text and clear errors.
import { fileURLToPath } from "node:url";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { OptionError } from "../util/option_error.ts";

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

/** A flag's accepted range: `min` and `max` inclusive. */
export interface FlagRange {
  min?: number;
  max?: number;
  /** An exclusive lower bound. */
  above?: number;
}

function rangeText(r: FlagRange): string {
  if (r.above !== undefined) return r.max !== undefined ? `above ${r.above} and at most ${r.max}` : `above ${r.above}`;
  if (r.min !== undefined && r.max !== undefined) return `from ${r.min} to ${r.max}`;
  if (r.min !== undefined) return `at least ${r.min}`;
  return r.max !== undefined ? `at most ${r.max}` : "";
}

function checkRange(name: string, value: string, n: number, r: FlagRange, what: string): number {
  if ((r.min !== undefined && n < r.min) || (r.max !== undefined && n > r.max) || (r.above !== undefined && n <= r.above)) {
    throw new UsageError(`--${name} must be ${what} ${rangeText(r)}, got '${value}'`);
  }
  return n;
}

/** --hidden N / --heads N: UNETR's transformer width and heads (MONAI's ViT-B: 768 and 12), for the plan. */
export function transformerFlags(v: { hidden?: string; heads?: string }): { hiddenSize?: number; numHeads?: number } | undefined {
  if (v.hidden === undefined && v.heads === undefined) return undefined;
  const hiddenSize = v.hidden === undefined ? undefined : intFlag("hidden", v.hidden, 768, { min: 1 });
  const numHeads = v.heads === undefined ? undefined : intFlag("heads", v.heads, 12, { min: 1 });
  if ((hiddenSize ?? 768) % (numHeads ?? 12) !== 0) throw new UsageError(`--hidden ${hiddenSize ?? 768} must be divisible by --heads ${numHeads ?? 12}`);
  return { hiddenSize, numHeads };
}

/** An integer flag (within `range` when given), or a usage error naming the flag. */
export function intFlag(name: string, value: string | undefined, fallback: number, range: FlagRange = {}): number {
  if (value === undefined) return fallback;
  const n = value.trim() === "" ? NaN : Number(value);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} must be an integer${rangeText(range) ? ` ${rangeText(range)}` : ""}, got '${value}'`);
  return checkRange(name, value, n, range, "an integer");
}

/** A number flag (within `range` when given), or a usage error naming the flag. */
export function numFlag(name: string, value: string | undefined, fallback: number, range: FlagRange = {}): number {
  if (value === undefined) return fallback;
  const n = value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number${rangeText(range) ? ` ${rangeText(range)}` : ""}, got '${value}'`);
  return checkRange(name, value, n, range, "a number");
}

/** intFlag for an optional flag: undefined when not given (the library chooses). */
export function optInt(name: string, value: string | undefined, range: FlagRange = {}): number | undefined {
  return value === undefined ? undefined : intFlag(name, value, 0, range);
}

/** numFlag for an optional flag: undefined when not given (the library chooses). */
export function optNum(name: string, value: string | undefined, range: FlagRange = {}): number | undefined {
  return value === undefined ? undefined : numFlag(name, value, 0, range);
}

/**
 * Runs `fn`, rewriting a library OptionError's option names into this command's flags: `flags` maps an option
 * to its flag where they differ (taskBytes → --task-mb); any other option becomes --kebab-case (patch → --patch).
 * The error keeps its exit code (1: the library found the problem, not the parser).
 */
export async function withFlags<T>(flags: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof OptionError)) throw err;
    throw new Error(err.messageWith(flagNamer(flags)), { cause: err });
  }
}

/** Option name → flag: `flags`' entry, else the option in kebab case (`patchSize` → `--patch-size`). */
export function flagNamer(flags: Record<string, string>): (option: string) => string {
  return (o) => flags[o] ?? `--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The flags of the planning options that src/seg/plan.ts's messages name (finetune and pretrain). */
export const PLAN_FLAGS: Record<string, string> = { patchSize: "--patch", batchSize: "--batch" };

/** The exit code for an error: 2 for a usage error (the command line is at fault), 1 for failed work. */
export function exitCodeOf(err: unknown): number {
  // an output refused before any work (src/util/output.ts) carries exitCode 2 too
  return err instanceof UsageError || (err as { exitCode?: unknown })?.exitCode === 2 ? 2 : 1;
}

export const OVERWRITE_HELP = `  --overwrite           replace an existing output (only lsmseg's own files in a folder: others stay)`;

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
  const nproc = intFlag("nproc", v.nproc, 1, { min: 1 });
  const nnodes = intFlag("nnodes", v.nnodes, 1, { min: 1 });
  if ((nproc === 1 && nnodes === 1) || process.env.WORLD_SIZE) return null;
  const { launch, stripLaunchFlags } = await import("../dist/launch.ts");
  const bin = fileURLToPath(new URL("../../bin/lsmseg.js", import.meta.url));
  return launch(bin, [command, ...stripLaunchFlags(argv)], { nproc, nnodes, nodeRank: intFlag("node-rank", v["node-rank"], 0, { min: 0, max: nnodes - 1 }), master: v.master });
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
