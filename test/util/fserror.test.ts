// File-system errors in the user's words: not-found says not found (in the caller's word), anything else says what
// happened — the checks of predict, inspect, evaluate and the Zarr reader no longer call every failure "not found".
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { evaluateFolder } from "../../src/eval/evaluate.ts";
import { openVolume } from "../../src/io/index.ts";
import { checkExists, fsProblem } from "../../src/util/fserror.ts";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-fserror-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, "plain.txt");
writeFileSync(file, "not a folder");

test("checkExists: ENOENT in the caller's word, ENOTDIR as what it is, an existing path passes", () => {
  assert.throws(() => checkExists(join(dir, "nowhere"), "no such file or folder"), { message: `${join(dir, "nowhere")}: no such file or folder` });
  assert.throws(() => checkExists(join(file, "x")), { message: `${join(file, "x")}: a part of the path is a file, not a folder` });
  checkExists(file);
  assert.equal(fsProblem(Object.assign(new Error("x"), { code: "EMFILE" })), "too many open files (raise the limit with 'ulimit -n')");
  assert.equal(fsProblem(new Error("something else")), "something else");
});

test("evaluate and the Zarr reader say ENOTDIR, not 'does not exist'", async () => {
  await assert.rejects(evaluateFolder(join(file, "pred"), dir, { quiet: true }), /pred: a part of the path is a file, not a folder/);
  await assert.rejects(openVolume(join(file, "image.zarr")), /a part of the path is a file, not a folder/);
});
