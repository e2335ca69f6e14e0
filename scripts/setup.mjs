#!/usr/bin/env node
// Installs whatever lsmseg needs and is missing, then returns quickly when everything is there:
//   1. libtorch (LIBTORCH=/path/to/libtorch, or Debian's libtorch-dev and libgloo-dev, installed through
//      apt-get when missing: scripts/install-addon.mjs), and for Debian's an optimised BLAS (OpenBLAS),
//   2. npm dependencies,
//   3. the native addon (node-gyp), rebuilt when its sources or the chosen libtorch change,
//   4. dist/ (the compiled TypeScript that bin/lsmseg.js runs), rebuilt when src/ is newer.
// Used by `npm run demo`, `npm test` and `npm run bench`. An installed package's own install step is
// scripts/install.mjs, which never installs system packages.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { addonLoadError, addonPlan, buildAddon, findLibtorch } from "./install-addon.mjs";

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

/** apt-get install of Debian packages (through sudo unless root), the package lists updated once per run. */
let aptUpdated = false;
function aptInstall(packages) {
  const sudo = process.getuid && process.getuid() !== 0 ? ["sudo"] : [];
  const apt = (args) => sudo.length ? run("sudo", ["apt-get", ...args]) : run("apt-get", args);
  if (!aptUpdated) apt(["update"]);
  aptUpdated = true;
  apt(["install", "-y", "--no-install-recommends", ...packages]);
}

// 1. libtorch
function libtorch() {
  try {
    return findLibtorch(process.env, { python: null });
  } catch (e) {
    console.error(`[setup] ${e.message}`);
    process.exit(1);
  }
}
let torch = libtorch();
if (!torch) {
  say("libtorch not found: installing Debian's libtorch-dev and libgloo-dev");
  aptInstall(["libtorch-dev", "libgloo-dev"]);
  torch = libtorch() ?? { kind: "debian", path: null };
}
if (torch.kind !== "debian") say(`libtorch: ${torch.path} (LIBTORCH)`);

// 1a. Debian's libtorch calls BLAS through libblas.so.3, which --no-install-recommends leaves at the reference
// BLAS: a 2048² fp32 matrix product at 6 GFLOP/s instead of ~200, and a bf16 U-Net step 2.4x slower (its
// transposed convolutions and linear layers are BLAS calls; measured 1.41 against 0.58 s). OpenBLAS takes over
// the alternative as soon as it is installed.
if (torch.kind === "debian" && !hasOpenBlas()) {
  say("libblas.so.3 is the reference BLAS: installing Debian's libopenblas0-pthread");
  aptInstall(["libopenblas0-pthread"]);
}

function hasOpenBlas() {
  try {
    return readdirSync("/usr/lib").some((d) => existsSync(join("/usr/lib", d, "openblas-pthread", "libblas.so.3")) ||
      existsSync(join("/usr/lib", d, "openblas-openmp", "libblas.so.3")));
  } catch {
    return true; // not a Debian layout: nothing to do here
  }
}

// 1b. Debian's chromium for the report's browser test: in CI (where that test must run) or on request
// (--with-browser); elsewhere the test skips with a note saying how to get it.
if ((process.env.CI || process.argv.includes("--with-browser")) && !existsSync("/usr/bin/chromium")) {
  say("installing Debian's chromium for the report's browser test");
  aptInstall(["chromium"]);
}

// 2. npm dependencies
const stamp = join(root, "node_modules", ".package-lock.json");
const needInstall = !existsSync(stamp) || statSync(join(root, "package.json")).mtimeMs > statSync(stamp).mtimeMs;
if (needInstall) {
  const lock = existsSync(join(root, "package-lock.json"));
  run("npm", [lock ? "ci" : "install", "--no-audit", "--no-fund", "--ignore-scripts"]);
}

// 3. the native addon
if (addonPlan(root, torch).stale) {
  say("building the native addon (first build takes a few minutes)");
  if (!buildAddon(root, torch, { quiet, say })) {
    console.error("[setup] failed: the native addon's build (messages above)");
    process.exit(1);
  }
}
const loadError = addonLoadError(root);
if (loadError) {
  console.error(`[setup] the native addon does not load: ${loadError}`);
  process.exit(1);
}

// 4. dist/
if (existsSync(join(root, "src"))) run(process.execPath, [join(root, "scripts", "build.mjs"), "--if-stale", ...(quiet ? ["--quiet"] : [])]);
say("ready");
