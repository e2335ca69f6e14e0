// Finding libtorch and building the native addon against it: shared by scripts/install.mjs (npm's install
// step of the package: never apt-get, never sudo) and scripts/setup.mjs (a checkout's `npm test` and
// `npm run demo`, which also install Debian's libtorch-dev when nothing is found).
//
// Where libtorch comes from, first found wins:
//   1. LIBTORCH=/path/to/libtorch (a pytorch.org libtorch archive, or any folder with include/ and lib/);
//   2. the PyTorch that `python3` imports (pip or conda): its torch/ folder holds the headers and libraries
//      (the install step only: a checkout's setup keeps to LIBTORCH or Debian's, as the README says);
//   3. Debian's libtorch-dev under /usr (with libgloo-dev, whose headers c10d includes).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gypEnv, libtorchConfig } from "./libtorch-config.mjs";

const TORCH_H = join("include", "torch", "csrc", "api", "include", "torch", "torch.h");
export const DEBIAN_HINT = "apt-get install libtorch-dev libgloo-dev libopenblas0-pthread (Debian 12 or later, Ubuntu 23.04 or later)";

/**
 * The libtorch to build against: { kind: "LIBTORCH" | "python" | "debian", path } (path null for Debian's,
 * which binding.gyp finds under /usr), or null when there is none. A LIBTORCH without headers is an error.
 * `python`: the python3 to ask, null to ask none; `usr` is for tests.
 */
export function findLibtorch(env = process.env, { usr = "/usr", python = "python3" } = {}) {
  if (env.LIBTORCH) {
    if (!existsSync(join(env.LIBTORCH, TORCH_H))) throw new Error(`LIBTORCH=${env.LIBTORCH} has no ${TORCH_H}; point it at a libtorch folder (with include/ and lib/) or unset it`);
    return { kind: "LIBTORCH", path: env.LIBTORCH };
  }
  const torch = python ? pythonTorch(python) : null;
  // Debian's python3-torch links its headers to /usr/include: that is Debian's libtorch, built as such
  if (torch && existsSync(join(torch, TORCH_H)) && existsSync(join(torch, "lib", "libc10.so")) && !realpathSync(join(torch, TORCH_H)).startsWith("/usr/include/")) {
    return { kind: "python", path: torch };
  }
  if (existsSync(join(usr, TORCH_H)) && existsSync(join(usr, "include", "gloo", "algorithm.h"))) return { kind: "debian", path: null };
  return null;
}

/** The torch/ folder of the PyTorch that python3 would import, found without importing it (that takes seconds). */
function pythonTorch(python) {
  try {
    const out = execFileSync(python, ["-c", "import importlib.util as u; s = u.find_spec('torch'); print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 });
    return out.trim() || null;
  } catch {
    return null;
  }
}

/** What to tell someone who has no libtorch: the ways lsmseg finds one, each as a command to run. */
export function noLibtorchMessage(rebuild) {
  return [
    "lsmseg: no libtorch found, so the native addon was not built. Reading, writing, converting, synthesising,",
    "curating, evaluating and reporting work without it; training and prediction need it. Any one of:",
    `  LIBTORCH=/path/to/libtorch ${rebuild}      (a libtorch archive from pytorch.org, unpacked)`,
    `  pip install torch && ${rebuild}            (the PyTorch that python3 imports)`,
    `  ${DEBIAN_HINT} && ${rebuild}`,
  ].join("\n");
}

const addonPath = (root) => join(root, "build", "Release", "lsmseg_native.node");
const mallocPath = (root) => join(root, "build", "Release", "lsmseg_tuned_malloc.node");
const stampPath = (root) => join(root, "build", "lsmseg-build.json");

/**
 * What a build against `libtorch` would be, and whether the one in build/ is that and newer than its sources.
 * No Node version in it: the addon uses Node-API only, whose ABI is the same across Node releases.
 */
export function addonPlan(root, libtorch, env = process.env) {
  const config = libtorch.path ? libtorchConfig(libtorch.path, env) : { abi: "", cuda: false, ncclIncludes: [], notes: [] };
  const wanted = JSON.stringify({ libtorch: libtorch.path ?? "debian", ...gypEnv(config) });
  const newestSource = Math.max(
    ...readdirSync(join(root, "native")).map((f) => statSync(join(root, "native", f)).mtimeMs),
    statSync(join(root, "binding.gyp")).mtimeMs,
  );
  const stale = !existsSync(addonPath(root)) || !existsSync(mallocPath(root)) || !existsSync(stampPath(root))
    || readFileSync(stampPath(root), "utf8") !== wanted || statSync(addonPath(root)).mtimeMs < newestSource;
  return { config, wanted, stale };
}

/** node-gyp: npm's own (npm_config_node_gyp in npm scripts, or beside this node), else through npx. */
function nodeGyp(env) {
  const candidates = [env.npm_config_node_gyp, join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js")];
  const found = candidates.find((p) => p && existsSync(p));
  return found ? [process.execPath, found] : ["npx", "--yes", "node-gyp"];
}

/** The Node headers to build with, so node-gyp downloads none: this node's own, else Debian's under /usr. */
function nodeDir() {
  const own = join(dirname(process.execPath), "..");
  if (existsSync(join(own, "include", "node", "node_api.h"))) return [`--nodedir=${own}`];
  return existsSync("/usr/include/node/node_api.h") ? ["--nodedir=/usr"] : [];
}

/**
 * Builds the addon against `libtorch` (node-gyp rebuild), with NCCL when a CUDA libtorch has its headers and
 * without it when that build fails; writes the stamp. Returns false when the build failed (messages printed).
 */
export function buildAddon(root, libtorch, { quiet = false, say = console.log, env = process.env } = {}) {
  const { config, wanted } = addonPlan(root, libtorch, env);
  const gyp = nodeGyp(env);
  const buildEnv = { ...env, ...(libtorch.path ? { LIBTORCH: libtorch.path } : {}) };
  for (const note of config.notes) console.error(`[lsmseg] ${note}`);
  const build = (cfg) => {
    const args = [...gyp.slice(1), "rebuild", "-j", "max", ...nodeDir(), ...(quiet ? ["--silent"] : [])];
    say(`$ ${gyp[0]} ${args.join(" ")}`);
    const r = spawnSync(gyp[0], args, { cwd: root, stdio: quiet ? ["ignore", "ignore", "inherit"] : "inherit", env: { ...buildEnv, ...gypEnv(cfg) } });
    return r.status === 0;
  };
  if (config.ncclIncludes.length) say(`a CUDA libtorch with the NCCL headers: building with NCCL (${config.ncclIncludes.join(", ")})`);
  let ok = build(config);
  if (!ok && config.ncclIncludes.length) {
    // NCCL's headers vary with CUDA and PyTorch versions; without NCCL, CUDA ranks still talk through Gloo
    console.error("[lsmseg] the build with NCCL failed (messages above); building without NCCL: CUDA ranks will use Gloo");
    ok = build({ ...config, ncclIncludes: [] });
  }
  if (ok) writeFileSync(stampPath(root), wanted);
  return ok;
}

/** null when the built addon loads in a fresh process, else the reason it does not. */
export function addonLoadError(root) {
  try {
    execFileSync(process.execPath, ["-e", `require(${JSON.stringify(addonPath(root))})`], { stdio: "pipe" });
    return null;
  } catch (e) {
    return e.stderr?.toString() || String(e);
  }
}
