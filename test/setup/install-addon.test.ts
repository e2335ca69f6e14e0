// Where the install step finds libtorch (scripts/install-addon.mjs): LIBTORCH, else the PyTorch python3
// imports, else Debian's libtorch-dev; and what it says when there is none. Fake folders stand in for each.
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
// @ts-expect-error: a plain .mjs install script without type declarations
import { findLibtorch, noLibtorchMessage } from "../../scripts/install-addon.mjs";

const tmp = mkdtempSync(join(tmpdir(), "lsmseg-install-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A folder laid out like a libtorch (include/…/torch.h, lib/libc10.so), with empty files. */
function fakeLibtorch(dir: string): string {
  mkdirSync(join(dir, "include", "torch", "csrc", "api", "include", "torch"), { recursive: true });
  writeFileSync(join(dir, "include", "torch", "csrc", "api", "include", "torch", "torch.h"), "");
  mkdirSync(join(dir, "lib"), { recursive: true });
  writeFileSync(join(dir, "lib", "libc10.so"), "");
  return dir;
}

/** A python3 stand-in that prints `torchDir` as find_spec's folder. */
function fakePython(name: string, torchDir: string): string {
  const p = join(tmp, name);
  writeFileSync(p, `#!/bin/sh\necho '${torchDir}'\n`);
  chmodSync(p, 0o755);
  return p;
}

const nowhere = { usr: join(tmp, "no-usr"), python: join(tmp, "no-python3") };

test("LIBTORCH wins, and one without headers is an error naming it", () => {
  const lt = fakeLibtorch(join(tmp, "libtorch"));
  assert.deepEqual(findLibtorch({ LIBTORCH: lt }, nowhere), { kind: "LIBTORCH", path: lt });
  assert.throws(() => findLibtorch({ LIBTORCH: join(tmp, "empty") }, nowhere), /LIBTORCH=.*empty has no include\/torch\/csrc\/api\/include\/torch\/torch.h/);
});

test("next, the torch/ folder of the PyTorch python3 finds, when it holds headers and libraries", () => {
  const torch = fakeLibtorch(join(tmp, "site-packages", "torch"));
  assert.deepEqual(findLibtorch({}, { ...nowhere, python: fakePython("py-torch", torch) }), { kind: "python", path: torch });
  // a torch/ without headers (a wheel stripped of them) is passed over
  mkdirSync(join(tmp, "bare", "torch"), { recursive: true });
  assert.equal(findLibtorch({}, { ...nowhere, python: fakePython("py-bare", join(tmp, "bare", "torch")) }), null);
});

test("then Debian's libtorch-dev with libgloo-dev under /usr; nothing found is null", () => {
  const usr = fakeLibtorch(join(tmp, "usr"));
  assert.equal(findLibtorch({}, { ...nowhere, usr }), null, "no gloo headers yet");
  mkdirSync(join(usr, "include", "gloo"), { recursive: true });
  writeFileSync(join(usr, "include", "gloo", "algorithm.h"), "");
  assert.deepEqual(findLibtorch({}, { ...nowhere, usr }), { kind: "debian", path: null });
  assert.equal(findLibtorch({}, nowhere), null);
});

test("without libtorch the message names each way to get one, with the command that follows", () => {
  const m = noLibtorchMessage("npm rebuild lsmseg");
  assert.match(m, /LIBTORCH=\/path\/to\/libtorch npm rebuild lsmseg/);
  assert.match(m, /pip install torch && npm rebuild lsmseg/);
  assert.match(m, /apt-get install libtorch-dev libgloo-dev .*&& npm rebuild lsmseg/);
  assert.doesNotMatch(m, /sudo/);
});
