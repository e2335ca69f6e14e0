#!/usr/bin/env node
// Installs whatever lsmseg needs and is missing, then returns quickly when everything is there:
//   1. libtorch (LIBTORCH=/path/to/libtorch, or Debian's libtorch-dev and libgloo-dev through apt-get),
//   2. npm dependencies,
//   3. the native addon (node-gyp), rebuilt when its sources or the chosen libtorch change.
// Used by `npm run demo`, `npm test` and `npm run bench`.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gypEnv, libtorchConfig } from "./libtorch-config.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const quiet = process.argv.includes("--quiet");
const say = (msg) => { if (!quiet) console.log(`[setup] ${msg}`); };

function run(cmd, args, opts = {}, { mayFail = false } = {}) {
  say(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { stdio: quiet ? ["ignore", "ignore", "inherit"] : "inherit", cwd: root, ...opts });
  if (r.status !== 0) {
    if (mayFail) return false;
    console.error(`[setup] failed: ${cmd} ${args.join(" ")} (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
  return true;
}

// 1. libtorch
function libtorchFound() {
  if (process.env.LIBTORCH) {
    const ok = existsSync(join(process.env.LIBTORCH, "include", "torch", "csrc", "api", "include", "torch", "torch.h"));
    if (!ok) {
      console.error(`[setup] LIBTORCH=${process.env.LIBTORCH} has no include/torch/csrc/api/include/torch/torch.h; unset it to use Debian's libtorch-dev`);
      process.exit(1);
    }
    return true;
  }
  // Debian's libtorch-dev plus the Gloo headers that its c10d headers include (data parallelism).
  return existsSync("/usr/include/torch/csrc/api/include/torch/torch.h") && existsSync("/usr/include/gloo/algorithm.h");
}
if (!libtorchFound()) {
  say("libtorch not found: installing Debian's libtorch-dev and libgloo-dev");
  const sudo = process.getuid && process.getuid() !== 0 ? ["sudo"] : [];
  const apt = (args) => sudo.length ? run("sudo", ["apt-get", ...args]) : run("apt-get", args);
  apt(["update"]);
  apt(["install", "-y", "--no-install-recommends", "libtorch-dev", "libgloo-dev"]);
}

// 1b. Debian's chromium for the report's browser test: in CI (where that test must run) or on request
// (--with-browser); elsewhere the test skips with a note saying how to get it.
if ((process.env.CI || process.argv.includes("--with-browser")) && !existsSync("/usr/bin/chromium")) {
  say("installing Debian's chromium for the report's browser test");
  const sudo = process.getuid && process.getuid() !== 0 ? ["sudo"] : [];
  const apt = (args) => sudo.length ? run("sudo", ["apt-get", ...args]) : run("apt-get", args);
  apt(["update"]);
  apt(["install", "-y", "--no-install-recommends", "chromium"]);
}

// 2. npm dependencies
const stamp = join(root, "node_modules", ".package-lock.json");
const needInstall = !existsSync(stamp) || statSync(join(root, "package.json")).mtimeMs > statSync(stamp).mtimeMs;
if (needInstall) {
  const lock = existsSync(join(root, "package-lock.json"));
  run("npm", [lock ? "ci" : "install", "--no-audit", "--no-fund", "--ignore-scripts"]);
}

// 3. the native addon
const addon = join(root, "build", "Release", "lsmseg_native.node");
const mallocAddon = join(root, "build", "Release", "lsmseg_malloc.node");
const buildStamp = join(root, "build", "lsmseg-build.json");
// another libtorch: its C++ ABI, whether it has CUDA, and where the CUDA and NCCL headers are (for NCCL)
const config = process.env.LIBTORCH ? libtorchConfig(process.env.LIBTORCH) : { abi: "", cuda: false, ncclIncludes: [], notes: [] };
const wanted = JSON.stringify({ libtorch: process.env.LIBTORCH ?? "debian", node: process.versions.modules, ...gypEnv(config) });
const newestSource = Math.max(
  ...readdirSync(join(root, "native")).map((f) => statSync(join(root, "native", f)).mtimeMs),
  statSync(join(root, "binding.gyp")).mtimeMs,
);
const stale = !existsSync(addon) || !existsSync(mallocAddon) || !existsSync(buildStamp) || readFileSync(buildStamp, "utf8") !== wanted
  || statSync(addon).mtimeMs < newestSource;
if (stale) {
  say("building the native addon (first build takes a few minutes)");
  const gyp = join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js");
  const gypCmd = existsSync(gyp) ? [process.execPath, gyp] : ["npx", "--yes", "node-gyp"];
  const nodedir = existsSync("/usr/include/node/node_api.h") ? ["--nodedir=/usr"] : [];
  for (const note of config.notes) console.error(`[setup] ${note}`);
  const build = (cfg, mayFail) => run(gypCmd[0], [...gypCmd.slice(1), "rebuild", "-j", "max", ...nodedir, ...(quiet ? ["--silent"] : [])],
    { env: { ...process.env, ...gypEnv(cfg) } }, { mayFail });
  if (config.ncclIncludes.length) say(`a CUDA libtorch with the NCCL headers: building with NCCL (${config.ncclIncludes.join(", ")})`);
  if (!build(config, config.ncclIncludes.length > 0)) {
    // NCCL's headers vary with CUDA and PyTorch versions; without NCCL, CUDA ranks still talk through Gloo
    console.error("[setup] the build with NCCL failed (messages above); building without NCCL: CUDA ranks will use Gloo");
    build({ ...config, ncclIncludes: [] }, false);
  }
  writeFileSync(buildStamp, wanted);
}
try {
  execFileSync(process.execPath, ["-e", `require(${JSON.stringify(addon)})`], { stdio: "pipe" });
} catch (e) {
  console.error(`[setup] the native addon does not load: ${e.stderr?.toString() ?? e}`);
  process.exit(1);
}
say("ready");
