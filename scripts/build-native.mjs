#!/usr/bin/env node
// Builds the native addon with g++ alone, reading binding.gyp, for machines without node-gyp, make or a network
// (the GPU machine of scripts/gpu-check.sh). binding.gyp stays the one description of the build: this reads its
// variables (`<!(command)` run in a shell), its conditions (`name=='value'` and `name!='value'`), and its
// defines, include_dirs, cflags, cflags_cc and libraries, with node-gyp's own Linux defaults, and writes
// build/Release/<target>.node. LIBTORCH selects the libtorch as for scripts/setup.mjs.
// Usage: node scripts/build-native.mjs [--nodedir DIR] [--jobs N] [--print]
//   --nodedir: where include/node/node_api.h is (default: the running node's own prefix, else /usr);
//   --print:   print the g++ command lines instead of running them.
import { execSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gypEnv, libtorchConfig } from "./libtorch-config.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

// node-gyp's defaults on Linux (addon.gypi and common.gypi, Release): what binding.gyp's "cflags!" lists remove from
const DEFAULT_CFLAGS = ["-fPIC", "-pthread", "-Wall", "-Wextra", "-Wno-unused-parameter", "-m64", "-O3", "-fno-omit-frame-pointer"];
const DEFAULT_CFLAGS_CC = ["-fno-rtti", "-fno-exceptions", "-std=gnu++17"];
const DEFAULT_DEFINES = ["USING_UV_SHARED=1", "USING_V8_SHARED=1", "V8_DEPRECATION_WARNINGS=1", "_FILE_OFFSET_BITS=64", "_LARGEFILE_SOURCE", "__STDC_FORMAT_MACROS", "BUILDING_NODE_EXTENSION"];

/** binding.gyp is a Python literal; ours is JSON apart from whole-line # comments. */
export function readGyp(path) {
  const text = readFileSync(path, "utf8").split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not JSON once its # comment lines are dropped (${e.message}); build-native.mjs reads only that subset of gyp`);
  }
}

/** Expands `<(name)` and, in a list, `<@(name)` (split on whitespace). */
function expand(value, vars) {
  return value.replace(/<\((\w+)\)/g, (_, n) => {
    if (!(n in vars)) throw new Error(`binding.gyp: unknown variable <(${n})`);
    return vars[n];
  });
}
function expandList(list, vars) {
  return list.flatMap((v) => {
    const m = /^<@\((\w+)\)$/.exec(v);
    if (m) return (vars[m[1]] ?? "").split(/\s+/).filter(Boolean);
    return [expand(v, vars)];
  });
}

function evalCondition(cond, vars) {
  const m = /^\s*(\w+)\s*(==|!=)\s*'([^']*)'\s*$/.exec(cond);
  if (!m) throw new Error(`binding.gyp: condition "${cond}" is not of the form name=='value' or name!='value'`);
  const equal = (vars[m[1]] ?? "") === m[3];
  return m[2] === "==" ? equal : !equal;
}

/** A target's settings with its conditions applied (lists concatenated, in the order gyp merges them). */
export function targetSettings(target, vars) {
  const out = {};
  const merge = (dict) => {
    for (const [k, v] of Object.entries(dict)) {
      if (k === "conditions" || k === "target_name" || k === "sources") continue;
      if (Array.isArray(v)) out[k] = [...(out[k] ?? []), ...expandList(v, vars)];
      else out[k] = typeof v === "string" ? expand(v, vars) : v;
    }
    for (const [cond, then, otherwise] of dict.conditions ?? []) {
      const chosen = evalCondition(cond, vars) ? then : otherwise;
      if (chosen) merge(chosen);
    }
  };
  merge(target);
  return out;
}

/** Resolves binding.gyp's variables: `name%` defaults, `<!(command)` run in a shell at the repository root. */
export function gypVariables(gyp, env) {
  const vars = {};
  for (const [k, v] of Object.entries(gyp.variables ?? {})) {
    const name = k.replace(/%$/, "");
    const m = /^<!\((.*)\)$/s.exec(v);
    vars[name] = m ? execSync(m[1], { cwd: root, env, encoding: "utf8" }).trim() : v;
  }
  return vars;
}

const shellCommand = (v) => v.replace(/<!\((.*?)\)$/s, (_, cmd) => execSync(cmd, { cwd: root, encoding: "utf8" }).trim());

/** The g++ command lines that build one target: [compile commands, link command]. */
export function targetCommands(target, vars, { nodeInclude, outDir }) {
  const s = targetSettings(target, vars);
  const remove = new Set([...(s["cflags!"] ?? []), ...(s["cflags_cc!"] ?? [])]);
  const cflags = [...DEFAULT_CFLAGS, ...DEFAULT_CFLAGS_CC].filter((f) => !remove.has(f));
  const includes = [nodeInclude, ...(s.include_dirs ?? []).map(shellCommand)];
  const defines = [`NODE_GYP_MODULE_NAME=${target.target_name}`, ...DEFAULT_DEFINES, ...(s.defines ?? [])];
  const objDir = join(outDir, "obj.target", target.target_name);
  const objects = [];
  const compile = target.sources.map((src) => {
    const obj = join(objDir, src.replace(/\.cc$/, ".o"));
    objects.push(obj);
    return ["g++", ...defines.map((d) => `-D${d}`), ...includes.map((i) => `-I${i}`), ...cflags, ...(s.cflags ?? []), ...(s.cflags_cc ?? []), "-c", join(root, src), "-o", obj];
  });
  const output = join(outDir, `${target.target_name}.node`);
  const link = ["g++", "-shared", "-pthread", "-rdynamic", "-m64", `-Wl,-soname=${target.target_name}.node`, "-o", `${output}.tmp`, ...objects, "-Wl,--start-group", ...(s.libraries ?? []), "-Wl,--end-group"];
  return { compile, link, output };
}

function run(argv) {
  return new Promise((resolvePromise, reject) => {
    mkdirSync(dirname(argv[argv.indexOf("-o") + 1]), { recursive: true });
    const p = spawn(argv[0], argv.slice(1), { stdio: "inherit", cwd: root });
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolvePromise() : reject(new Error(`${argv[0]} exited with ${code} building ${argv[argv.indexOf("-o") + 1]}`))));
  });
}

async function main() {
  const { values } = parseArgs({ options: { nodedir: { type: "string" }, jobs: { type: "string" }, print: { type: "boolean", default: false } } });
  const nodedir = values.nodedir ?? [join(dirname(process.execPath), ".."), "/usr"].find((d) => existsSync(join(d, "include", "node", "node_api.h")));
  if (!nodedir || !existsSync(join(nodedir, "include", "node", "node_api.h"))) {
    console.error(`[build-native] no include/node/node_api.h under ${values.nodedir ?? "this node's prefix or /usr"}; pass --nodedir`);
    process.exit(2);
  }
  const config = process.env.LIBTORCH ? libtorchConfig(process.env.LIBTORCH) : { abi: "", cuda: false, ncclIncludes: [], notes: [] };
  for (const note of config.notes) console.error(`[build-native] ${note}`);
  const env = { ...process.env, ...gypEnv(config) };
  const gyp = readGyp(join(root, "binding.gyp"));
  const vars = gypVariables(gyp, env);
  const outDir = join(root, "build", "Release");
  const jobs = Math.max(1, Number(values.jobs ?? cpus().length));
  for (const target of gyp.targets) {
    const { compile, link, output } = targetCommands(target, vars, { nodeInclude: join(nodedir, "include", "node"), outDir });
    if (values.print) {
      for (const c of [...compile, link]) console.log(c.join(" "));
      continue;
    }
    console.log(`[build-native] ${target.target_name}: ${compile.length} sources, ${jobs} at a time`);
    const queue = [...compile];
    await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
      while (queue.length) await run(queue.shift());
    }));
    await run(link);
    renameSync(`${output}.tmp`, output);
  }
  if (!values.print) console.log(`[build-native] built ${outDir}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`[build-native] ${e.message}`);
    process.exit(1);
  });
}
