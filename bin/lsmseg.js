#!/usr/bin/env node
// The lsmseg command. TypeScript sources run through tsx, so no build step stands between an edit and a run.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/index.ts");
process.exitCode = await main(process.argv.slice(2));
