#!/usr/bin/env node
// Compiles src/ to dist/ (tsc -p tsconfig.build.json) and stamps it; `--if-stale` builds only when a file
// under src/ (or a tsconfig) is newer than the stamp. bin/lsmseg.js asks distStale() to choose between
// dist/ and the sources.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const STAMP = join(root, "dist", ".build-stamp");

function newestMtimeMs(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtimeMs(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Whether dist/ is missing or older than src/ or the tsconfigs (a checkout only: a package has no src/). */
export function distStale(dir = root) {
  const stamp = join(dir, "dist", ".build-stamp");
  if (!existsSync(stamp)) return true;
  const built = statSync(stamp).mtimeMs;
  const configs = ["tsconfig.json", "tsconfig.build.json"].map((f) => join(dir, f)).filter((f) => existsSync(f));
  return Math.max(newestMtimeMs(join(dir, "src")), ...configs.map((f) => statSync(f).mtimeMs)) > built;
}

/** Builds dist/ (from scratch: files removed from src/ must not linger there); true when tsc succeeded. */
export function buildDist({ quiet = false } = {}) {
  rmSync(join(root, "dist"), { recursive: true, force: true });
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { cwd: root, stdio: quiet ? ["ignore", "pipe", "inherit"] : "inherit" });
  if (r.status !== 0) {
    if (quiet && r.stdout) process.stderr.write(r.stdout);
    return false;
  }
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  return true;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const ifStale = process.argv.includes("--if-stale");
  if (ifStale && !distStale()) process.exit(0);
  process.exit(buildDist({ quiet: process.argv.includes("--quiet") }) ? 0 : 1);
}
