#!/usr/bin/env node
// npm's install step for the lsmseg package: builds the native addon from source against the libtorch it
// finds (LIBTORCH, the PyTorch python3 imports, or Debian's libtorch-dev: scripts/install-addon.mjs).
// It never installs system packages and never fails the install: without libtorch, or when the build fails,
// it says what to do and exits 0, and lsmseg works without the addon for everything that needs no libtorch
// (the commands that need it say so). npm shows this output only with --foreground-scripts, or in its log.
// A prebuilt addon (prebuilds/<platform>-<arch>/, as node-gyp-build finds it) needs no build at all.
// LSMSEG_SKIP_ADDON=1 skips the step.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { addonLoadError, addonPlan, buildAddon, findLibtorch, noLibtorchMessage } from "./install-addon.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const say = (msg) => console.log(`[lsmseg] ${msg}`);
const REBUILD = "npm rebuild lsmseg";

function main() {
  if (process.env.LSMSEG_SKIP_ADDON === "1") return say("LSMSEG_SKIP_ADDON=1: the native addon is not built");
  if (existsSync(join(root, "prebuilds", `${process.platform}-${process.arch}`))) return say("a prebuilt native addon is here: nothing to build");
  let torch;
  try {
    torch = findLibtorch();
  } catch (e) {
    console.error(`[lsmseg] ${e.message}`);
    return;
  }
  if (!torch) return console.error(noLibtorchMessage(REBUILD));
  if (!addonPlan(root, torch).stale) return say("the native addon is built and up to date");
  say(`building the native addon against ${torch.path ?? "Debian's libtorch-dev (/usr)"} (a few minutes)`);
  if (!buildAddon(root, torch, { quiet: false, say })) {
    console.error(`[lsmseg] the native addon's build failed (messages above): training and prediction will not work until it builds; fix what the messages say, then ${REBUILD}`);
    return;
  }
  const err = addonLoadError(root);
  say(err ? `the native addon was built but does not load: ${err}` : "native addon ready");
}

main();
