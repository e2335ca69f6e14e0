#!/usr/bin/env node
// A PNG of an experiment's label-efficiency curves, as headless Chromium draws them, for docs:
//   node scripts/screenshot-curves.mjs RESULTS/curves.html OUT.png    the page as the experiment wrote it
//   node scripts/screenshot-curves.mjs RESULTS/results.json OUT.png   the page drawn afresh from the table by
//                                                                     this checkout's src/report/curves.ts
// Uses Debian's chromium through playwright-core, as test/report does (LSMSEG_CHROMIUM overrides the path).
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { register } from "tsx/esm/api";

const [input, png] = process.argv.slice(2);
if (!input || !png) {
  console.error("usage: node scripts/screenshot-curves.mjs CURVES.html|RESULTS.json OUT.png");
  process.exit(2);
}
let html = resolve(input);
if (input.endsWith(".json")) {
  register();
  const { curvesPage } = await import("../src/report/curves.ts");
  const { GROUPS } = await import("../src/ssl/experiment.ts");
  const results = JSON.parse(readFileSync(input, "utf8"));
  const o = JSON.parse(readFileSync(join(dirname(input), "experiment.json"), "utf8"));
  const steps = (o.finetuneEpochs ?? 2) * (o.finetuneStepsPerEpoch ?? 30);
  html = join(tmpdir(), `lsmseg-curves-${process.pid}.html`);
  writeFileSync(html, curvesPage(results.table, {
    title: "lsmseg experiment ssl: label efficiency", groups: GROUPS,
    fractionOf: o.fractionOf === "voxels" ? "labelled z-planes of each training volume" : "annotated cases per structure type, at least one",
    notes: [`Budget: ${o.pretrainSteps ?? 200} pretraining steps per pretrained row, ${steps} fine-tuning steps per run, every row alike; ${results.runs.length} runs${results.partial ? " (partial)" : ""}.`],
  }));
}
const browser = await chromium.launch({ executablePath: process.env.LSMSEG_CHROMIUM ?? "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 940, height: 900 }, deviceScaleFactor: 1 });
  await page.goto(pathToFileURL(html).href);
  if ((await page.locator(".charts figure").count()) === 0) throw new Error(`${input}: no charts (no finished runs?)`);
  await page.locator("body").screenshot({ path: png });
  console.log(png);
} finally {
  await browser.close();
}
