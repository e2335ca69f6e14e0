// The GPU check's parts that run on a CPU (scripts/gpu-check.sh, scripts/gpu-check-prepare.sh and
// scripts/build-native.mjs): the carried-size check, the steps a dry run plans, and the g++ build that replaces
// node-gyp there, checked against the Makefile node-gyp generated for this worktree's own build.
// The full `gpu-check.sh --cpu` (build and tests in a copy of the tree) takes minutes: CI runs it (.ci/run).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
// @ts-expect-error: a plain .mjs build script without type declarations
import { gypVariables, readGyp, targetCommands } from "../../scripts/build-native.mjs";

const root = resolve(import.meta.dirname, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "lsmseg-gpu-check-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function sh(script: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync("bash", [join(root, "scripts", script), ...args], { cwd: root, encoding: "utf8", env: { ...process.env, ...env } });
}

test("gpu-check-prepare --check: the working tree plus the pack must stay under the carry limit", () => {
  const pack = join(dir, "pack");
  mkdirSync(pack);
  writeFileSync(join(pack, "node.tar.xz"), Buffer.alloc(1000));
  const roomy = sh("gpu-check-prepare.sh", ["--check"], { LSMSEG_GPU_PACK: pack, LSMSEG_CARRY_LIMIT_BYTES: String(2 ** 40) });
  assert.equal(roomy.status, 0, roomy.stdout + roomy.stderr);
  const m = /working tree (\d+) B \+ \S+ (\d+) B = (\d+) B/.exec(roomy.stdout);
  assert.ok(m, roomy.stdout);
  const [tree, packed, total] = m.slice(1).map(Number);
  assert.equal(packed, 1000);
  assert.equal(total, tree + 1000);
  assert.ok(tree > 100_000, `the tracked tree is ${tree} B`);
  const exact = sh("gpu-check-prepare.sh", ["--check"], { LSMSEG_GPU_PACK: pack, LSMSEG_CARRY_LIMIT_BYTES: String(total) });
  assert.equal(exact.status, 0, exact.stdout);
  const tight = sh("gpu-check-prepare.sh", ["--check"], { LSMSEG_GPU_PACK: pack, LSMSEG_CARRY_LIMIT_BYTES: String(total - 1) });
  assert.equal(tight.status, 1);
  assert.match(tight.stdout, /over the limit by 1 B/);
});

function dryRun(args: string[], env: Record<string, string> = {}) {
  const out = join(dir, `out-${args.join("")}-${Object.keys(env).length}`);
  const r = sh("gpu-check.sh", [...args, "--dry-run", out], env);
  const lines = existsSync(join(out, "results.jsonl")) ? readFileSync(join(out, "results.jsonl"), "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
  return { r, lines };
}

test("gpu-check --cpu --dry-run plans build, tests and the tiny end-to-end run, and no benchmarks", () => {
  const { r, lines } = dryRun(["--cpu"]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.deepEqual(lines.map((l) => l.step), ["env", "build", "info", "tests", "e2e-tiny", "total"]);
  assert.match(lines[1].command, /scripts\/build-native\.mjs --nodedir /);
  assert.match(lines[3].command, /test\/seg\/device\.test\.ts/);
  assert.equal(lines[4].command, "e2e_run tiny 1 4 8");
  assert.deepEqual([lines.at(-1).mode, lines.at(-1).device], ["cpu", "cpu"]);
});

test("gpu-check without a pack says how to make one; bad arguments are usage errors", () => {
  const empty = join(dir, "empty-pack");
  mkdirSync(empty);
  const { r } = dryRun([], { LSMSEG_GPU_PACK: empty });
  assert.equal(r.status, 1);
  assert.match(r.stdout, /gpu-check-prepare\.sh/);
  assert.equal(sh("gpu-check.sh", ["--bogus", join(dir, "x")]).status, 2);
  assert.equal(sh("gpu-check.sh", []).status, 2);
});

test("build-native.mjs: binding.gyp read as node-gyp reads it (CPU, CUDA and NCCL conditions)", () => {
  const gyp = readGyp(join(root, "binding.gyp"));
  const native = gyp.targets.find((t: { target_name: string }) => t.target_name === "lsmseg_native");
  const cmds = (vars: Record<string, string>) => targetCommands(native, vars, { nodeInclude: "/node/include/node", outDir: join(dir, "o") });
  const debian = cmds({ libtorch: "", torch_abi: "", torch_cuda: "", nccl_includes: "" });
  assert.equal(debian.compile.length, native.sources.length);
  assert.ok(debian.compile[0].includes("-I/usr/include/torch/csrc/api/include"));
  assert.deepEqual(debian.link.slice(debian.link.indexOf("-Wl,--start-group") + 1, -1), ["-ltorch", "-ltorch_cpu", "-lc10"]);
  const pip = cmds({ libtorch: "/site/torch", torch_abi: "1", torch_cuda: "1", nccl_includes: "/site/nvidia/nccl/include /cuda/include" });
  const c = pip.compile[0];
  for (const f of ["-I/site/torch/include", "-I/site/torch/include/torch/csrc/api/include", "-D_GLIBCXX_USE_CXX11_ABI=1", "-DLSMSEG_NCCL", "-I/site/nvidia/nccl/include", "-I/cuda/include"]) assert.ok(c.includes(f), f);
  assert.ok(!c.includes("-I/usr/include/torch/csrc/api/include"));
  const libs = pip.link.join(" ");
  assert.match(libs, /-L\/site\/torch\/lib -Wl,-rpath,\/site\/torch\/lib -ltorch -ltorch_cpu -lc10 -Wl,--push-state,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--pop-state/);
  // -fno-exceptions and -fno-rtti (node-gyp's defaults) are removed by binding.gyp's "cflags_cc!"
  assert.ok(!c.includes("-fno-exceptions") && !c.includes("-fno-rtti") && c.includes("-frtti"));
});

const makefile = join(root, "build", "lsmseg_native.target.mk");
test("build-native.mjs gives g++ the defines, flags and libraries of node-gyp's own Makefile", { skip: existsSync(makefile) ? false : "no build/lsmseg_native.target.mk (the addon was not built with node-gyp here)" }, () => {
  const mk = readFileSync(makefile, "utf8");
  const block = (name: string) => (new RegExp(`^${name} := \\\\\\n((?:\\t.*\\n)+)`, "m").exec(mk)?.[1] ?? "").split("\n").map((l) => l.trim().replace(/ \\$/, "").replace(/^'|'$/g, "")).filter(Boolean);
  const gyp = readGyp(join(root, "binding.gyp"));
  const native = gyp.targets.find((t: { target_name: string }) => t.target_name === "lsmseg_native");
  const ours = targetCommands(native, gypVariables(gyp, { ...process.env, LIBTORCH: "" }), { nodeInclude: "/usr/include/node", outDir: join(dir, "o") });
  const args: string[] = ours.compile[0];
  // node's own build config adds OpenSSL defines and the ABI define to every addon; they change nothing here
  const theirDefs = block("DEFS_Release").filter((d) => !/^-D(OPENSSL_|_GLIBCXX_USE_CXX11_ABI)/.test(d));
  assert.deepEqual(args.filter((a) => a.startsWith("-D")).sort(), theirDefs.sort());
  const theirIncs = block("INCS_Release").filter((i) => !/^-I\/usr\/(src|deps)/.test(i)).map((i) => i.replace("$(srcdir)/", ""));
  assert.deepEqual(args.filter((a) => a.startsWith("-I")), theirIncs);
  const flags = [...block("CFLAGS_Release"), ...block("CFLAGS_CC_Release")];
  assert.deepEqual(args.filter((a) => /^-([fOWm]|pthread|std=)/.test(a)), flags);
  assert.deepEqual(ours.link.slice(ours.link.indexOf("-Wl,--start-group") + 1, -1), block("LIBS"));
});
