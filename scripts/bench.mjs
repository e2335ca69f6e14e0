#!/usr/bin/env node
// `npm run bench -- NAME [args]` runs bench/NAME.ts. Each benchmark prints its figures, the peer's
// figures on the same work in the same run, and ends with one JSON line; `npm run bench -- all` runs them all and
// rewrites the README's performance table from that run (bench/all.ts).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const [name, ...rest] = process.argv.slice(2);
// helpers of the benchmarks, not benchmarks themselves
const HELPERS = new Set(["common", "flops", "profile", "raw_volume", "ddp_rank"]);
const available = readdirSync(join(root, "bench")).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3)).filter((n) => !HELPERS.has(n));
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME [args]\nbenchmarks: ${available.join(", ")}`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ["--import", "tsx", join(root, "bench", `${name}.ts`), ...rest], { cwd: root, stdio: "inherit" });
process.exit(r.status ?? 1);
