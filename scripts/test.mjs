#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner (TypeScript through tsx), prints the spec
// report, then one closing line of counts: "N passed, N failed, N skipped".
// Arguments filter the files by substring: `node scripts/test.mjs test/torch nifti`.
// Two test files run at once, so libtorch gets one thread each (LSMSEG_THREADS=1): two files with two
// OpenMP threads each on two cores spin against each other and run ~10x slower.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith(".test.ts")) files.push(relative(root, p));
  }
})(join(root, "test"));
const chosen = filters.length ? files.filter((f) => filters.some((s) => f.includes(s))) : files;
if (chosen.length === 0) {
  console.error(`no test files match ${filters.join(" ")}`);
  process.exit(1);
}
const tmp = mkdtempSync(join(tmpdir(), "lsmseg-test-"));
const tap = join(tmp, "report.tap");
const r = spawnSync(process.execPath, [
  "--import", "tsx", "--test", "--test-concurrency=2",
  "--test-reporter=spec", "--test-reporter-destination=stdout",
  "--test-reporter=tap", `--test-reporter-destination=${tap}`,
  ...chosen,
], { cwd: root, stdio: "inherit", env: { LSMSEG_THREADS: "1", ...process.env, LSMSEG_TEST: "1" } });
const report = readFileSync(tap, "utf8");
const count = (key) => Number(new RegExp(`^# ${key} (\\d+)$`, "m").exec(report)?.[1] ?? 0);
const passed = count("pass"), failed = count("fail"), skipped = count("skipped") + count("todo"), cancelled = count("cancelled");
rmSync(tmp, { recursive: true, force: true });
console.log(`\n${passed} passed, ${failed + cancelled} failed, ${skipped} skipped`);
process.exit(r.status === 0 && failed + cancelled === 0 ? 0 : 1);
