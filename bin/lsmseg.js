#!/usr/bin/env node
// The lsmseg command. An installed package runs the compiled dist/. A checkout runs dist/ too when it is up to
// date with src/ (`npm run build`; `npm run demo` and `npm test` build it), and otherwise the sources through
// tsx, so an edit needs no build step before a run; LSMSEG_FROM_SRC=1 forces the sources.
import { existsSync } from "node:fs";

const root = new URL("../", import.meta.url);
let fromSource = false;
if (existsSync(new URL("src/cli/index.ts", root))) {
  fromSource = process.env.LSMSEG_FROM_SRC === "1" || (await import("../scripts/build.mjs")).distStale();
}
let main;
if (fromSource) {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli/index.ts"));
} else {
  ({ main } = await import("../dist/cli/index.js"));
}
process.exitCode = await main(process.argv.slice(2));
