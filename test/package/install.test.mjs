// The package as users get it: `npm pack`, installed into an empty project, then the command through npx,
// a script importing `lsmseg` and `lsmseg/io`, and a TypeScript consumer's type check. Run by .ci/run (and
// `node --test test/package/install.test.mjs`), not by scripts/test.mjs: npm pack rebuilds dist/, which the
// suite's command-line tests may be running at the time. The install builds the native addon when a libtorch
// is found (a few minutes); LSMSEG_PACKAGE_TARBALL=FILE tests that tarball instead of packing one.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
const tmp = mkdtempSync(join(tmpdir(), "lsmseg-package-"));
const project = join(tmp, "project");
const installed = join(project, "node_modules", "lsmseg");
let tarball = process.env.LSMSEG_PACKAGE_TARBALL ?? "";
let addon = false;

/** Runs a command in the temporary project (npm and npx of the node running this test). */
function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: project, encoding: "utf8", env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, ...opts.env }, timeout: 900_000 });
  if (opts.expect !== undefined && r.status !== opts.expect) {
    assert.fail(`${cmd} ${args.join(" ")}: exit ${r.status ?? r.signal}, expected ${opts.expect}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

before(() => {
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }, null, 2));
  if (!tarball) {
    // prepack compiles dist/ from scratch, as `npm publish` would
    const r = spawnSync("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: root, encoding: "utf8", timeout: 600_000 });
    assert.equal(r.status, 0, `npm pack: ${r.stderr}`);
    const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf("[")));
    tarball = join(tmp, info.filename);
    const files = info.files.map((f) => f.path);
    console.log(`tarball ${info.filename}: ${(info.size / 1024).toFixed(0)} KiB packed, ${(info.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${files.length} files`);
    const unwanted = files.filter((f) => /^(test|fixtures|bench|examples|src)\//.test(f) || /^docs\/(?!\w[\w-]*\.md$)/.test(f) ||
      /\.(png|jpe?g|gif|tsbuildinfo)$/.test(f) || f.endsWith(".ts") && !f.endsWith(".d.ts"));
    assert.deepEqual(unwanted, [], "the tarball holds no tests, fixtures, sources or images, and of docs/ only its pages");
    // the README's links into docs/ resolve inside the installed package (its images stay in the repository)
    const linked = [...readFileSync(join(root, "README.md"), "utf8").matchAll(/\]\((docs\/[\w-]+\.md)(?:#[^)]*)?\)/g)].map((m) => m[1]);
    assert.ok(linked.length > 10, `the README links ${linked.length} docs pages`);
    for (const f of new Set(linked)) assert.ok(files.includes(f), `the tarball holds ${f}, which the README links`);
    for (const f of ["dist/index.js", "dist/index.d.ts", "dist/io/index.js", "bin/lsmseg.js", "binding.gyp", "native/addon.cc", "scripts/install.mjs", "LICENSE", "README.md"]) {
      assert.ok(files.includes(f), `the tarball holds ${f}`);
    }
  }
  console.log(`tarball size: ${statSync(tarball).size} bytes`);
  // the dependencies come from npm's cache when they are there (the checkout's npm ci put them there)
  sh("npm", ["install", tarball, "--prefer-offline", "--no-audit", "--no-fund", "--foreground-scripts"], { expect: 0 });
  addon = existsSync(join(installed, "build", "Release", "lsmseg_native.node"));
  console.log(addon ? "the install step built the native addon" : "no native addon (no libtorch found): the torch-free parts are tested");
});

after(() => rmSync(tmp, { recursive: true, force: true }));

test("npx lsmseg --version and -V print the package's version", () => {
  assert.equal(sh("npx", ["--no-install", "lsmseg", "--version"], { expect: 0 }).stdout.trim(), version);
  assert.equal(sh("npx", ["--no-install", "lsmseg", "-V"], { expect: 0 }).stdout.trim(), version);
});

test("a usage error exits 2", () => {
  const r = sh("npx", ["--no-install", "lsmseg", "no-such-command"], { expect: 2 });
  assert.match(r.stderr, /unknown command 'no-such-command'/);
});

test("synth --preset tiny, then evaluate of its labels against themselves scores Dice 1", () => {
  sh("npx", ["--no-install", "lsmseg", "synth", "--preset", "tiny", "--out", "synth", "--quiet"], { expect: 0 });
  const labels = join(project, "synth", "test", "labels");
  // two workers: the compiled worker threads are exercised too
  sh("npx", ["--no-install", "lsmseg", "evaluate", "--pred", labels, "--gt", labels, "--out", "metrics.json", "--workers", "2"], { expect: 0 });
  const metrics = JSON.parse(readFileSync(join(project, "metrics.json"), "utf8"));
  assert.equal(metrics.workers, 2);
  assert.ok(metrics.results.length >= 1);
  for (const c of metrics.results) assert.equal(c.dice, 1, `${c.case}: Dice of a mask with itself`);
});

test("without the addon the torch-free commands work and one that needs it says so in one line", () => {
  // node-gyp-build looks for lsmseg's build where LSMSEG_PREBUILD says: nowhere
  const env = { LSMSEG_PREBUILD: join(tmp, "nowhere") };
  const v = sh("npx", ["--no-install", "lsmseg", "inspect", join(project, "synth", "test")], { env });
  assert.equal(v.status, 0, v.stderr);
  const r = sh("npx", ["--no-install", "lsmseg", "pretrain", "--data", join(project, "synth"), "--method", "mae", "--out", "run", "--steps", "1", "--quiet"], { env });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /native addon \(libtorch\) is not built/);
});

test("a script imports lsmseg and lsmseg/io, reads a volume and, with the addon, runs a small U-Net", () => {
  const image = join(project, "synth", "test", "images", "blood_vessel_2004.mha");
  writeFileSync(join(project, "use.mjs"), `
import * as lsmseg from "lsmseg";
import { readVolume } from "lsmseg/io";
const v = await readVolume(${JSON.stringify(image)});
const out = { shape: v.shape, voxels: v.data.length, api: typeof lsmseg.evaluateFolder };
if (process.argv[2] === "forward") {
  const { UNet, tensor, noGrad } = lsmseg;
  const net = new UNet({ features: [4, 8], strides: [1, 2], kernelSizes: [3, 3] });
  const x = tensor(Float32Array.from(v.data.subarray(0, 16 * 16 * 16)), [1, 1, 16, 16, 16]);
  out.logits = noGrad(() => net.forward(x)).shape;
}
console.log(JSON.stringify(out));
`);
  const r = sh(process.execPath, ["use.mjs", ...(addon ? ["forward"] : [])], { expect: 0 });
  const out = JSON.parse(r.stdout);
  assert.equal(out.voxels, out.shape[0] * out.shape[1] * out.shape[2]);
  assert.equal(out.api, "function");
  if (addon) assert.deepEqual(out.logits, [1, 2, 16, 16, 16]);
});

test("a TypeScript consumer's imports type-check (moduleResolution node16 and bundler)", () => {
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  writeFileSync(join(project, "use.ts"), `
import { type Volume, readVolume } from "lsmseg/io";
import { dice } from "lsmseg/eval";
import { UNet } from "lsmseg/nn";
import { evaluateFolder, synthDataset } from "lsmseg";
const v: Volume = await readVolume("x.nii.gz");
const d: number = dice(v.data, v.data);
export { d, evaluateFolder, synthDataset, UNet };
`);
  for (const [module, resolution] of [["node16", "node16"], ["esnext", "bundler"]]) {
    const r = sh(process.execPath, [tsc, "--noEmit", "--strict", "--target", "es2022", "--module", module, "--moduleResolution", resolution, "--types", "node", "--typeRoots", join(root, "node_modules", "@types"), "--skipLibCheck", "use.ts"]);
    assert.equal(r.status, 0, `tsc --moduleResolution ${resolution}: ${r.stdout}${r.stderr}`);
  }
});
