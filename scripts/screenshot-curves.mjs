#!/usr/bin/env node
// A PNG of an experiment's curves.html (its charts, as headless Chromium draws them), for docs:
//   node scripts/screenshot-curves.mjs RESULTS/curves.html docs/img/curves.png
// Uses Debian's chromium through playwright-core, as test/report does (LSMSEG_CHROMIUM overrides the path).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const [html, png] = process.argv.slice(2);
if (!html || !png) {
  console.error("usage: node scripts/screenshot-curves.mjs CURVES.html OUT.png");
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: process.env.LSMSEG_CHROMIUM ?? "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
  await page.goto(pathToFileURL(resolve(html)).href);
  const charts = page.locator(".charts");
  if ((await charts.count()) === 0) throw new Error(`${html}: no .charts element (no finished runs?)`);
  await page.locator("body").screenshot({ path: png });
  console.log(png);
} finally {
  await browser.close();
}
