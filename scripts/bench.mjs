#!/usr/bin/env node
// `npm run bench -- NAME [args]` runs bench/NAME.ts. Each benchmark prints its figures, the peer's
// figures on the same work in the same run, and ends with one JSON line.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const [name, ...rest] = process.argv.slice(2);
const available = readdirSync(join(root, "bench")).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3));
if (!name || !existsSync(join(root, "bench", `${name}.ts`))) {
  console.error(`usage: npm run bench -- NAME [args]\nbenchmarks: ${available.join(", ")}`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ["--import", "tsx", join(root, "bench", `${name}.ts`), ...rest], { cwd: root, stdio: "inherit" });
process.exit(r.status ?? 1);
