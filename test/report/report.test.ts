// The HTML report in a real browser: Debian's chromium, headless, driven by playwright-core, serving the report
// from a loopback HTTP server. Two runs (their predictions made from the labels by known edits, so no model is
// trained here) are scored by lsmseg evaluate and shown side by side; the page's numbers must equal
// metrics.json, every image must load, the NiiVue canvas must show something, and nothing may be fetched from
// outside. Skipped with a note when chromium is missing (setup installs it in CI, where it never skips).
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import { evaluateFolder, type MetricsJson } from "../../src/eval/evaluate.ts";
import { readVolume, writeVolume } from "../../src/io/index.ts";
import { writeReport } from "../../src/report/report.ts";
import { readRun } from "../../src/report/run.ts";
import { synthDataset } from "../../src/synth/index.ts";

// page.evaluate callbacks run in the browser; the project is typed for node, without the DOM's types
declare const document: any, window: any;
type HTMLCanvasElement = any;

const CHROMIUM = process.env.LSMSEG_CHROMIUM ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--enable-unsafe-swiftshader"];
// In CI a missing browser is a failure (setup installs it there), elsewhere a skip that says how to get it.
const noBrowser = !existsSync(CHROMIUM) && !process.env.CI
  ? `${CHROMIUM} is missing: apt-get install chromium (or node scripts/setup.mjs --with-browser) to run the browser test`
  : false;

let dir = "", data = "";
const runs: Record<string, string> = {};

/** Writes a run folder: predictions made from the labels by `edit`, metrics.json, and a fine-tuning log. */
async function fakeRun(name: string, edit: (label: Uint8Array, nx: number, i: number) => number, losses: number[]): Promise<string> {
  const run = join(dir, name);
  const labels = join(data, "test", "labels");
  for (const f of readdirSync(labels)) {
    const gt = await readVolume(join(labels, f));
    const nx = gt.shape[2];
    const src = Uint8Array.from(gt.data, (v) => (v > 0 ? 1 : 0));
    await writeVolume(join(run, "pred", f), { ...gt, dtype: "uint8", data: Uint8Array.from(src, (_v, i) => edit(src, nx, i)) });
  }
  mkdirSync(join(run, "finetune"), { recursive: true });
  writeFileSync(join(run, "finetune", "plan.json"), JSON.stringify({ patchSize: [32, 32, 32], batchSize: 2, network: { arch: "unet", baseFeatures: 4 } }));
  writeFileSync(join(run, "finetune", "config.json"), JSON.stringify({ epochs: losses.length, stepsPerEpoch: 2, seed: 0 }));
  writeFileSync(join(run, "finetune", "log.jsonl"), losses.map((l, epoch) => JSON.stringify({
    epoch, step: 2 * (epoch + 1), lr: 0.01, trainLoss: l, pseudoDice: { "isolated sparse": 0.2 + 0.1 * epoch, "contiguous dense": 0.3 + 0.1 * epoch },
    pseudoDiceMean: 0.25 + 0.1 * epoch, emaPseudoDice: 0.25 + 0.05 * epoch, dataWaitFraction: 0, secondsPerStep: 1, time: new Date(0).toISOString(),
  })).join("\n") + "\n");
  await evaluateFolder(join(run, "pred"), labels, { out: join(run, "metrics.json"), quiet: true, workers: 1 });
  return run;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "lsmseg-report-"));
  data = join(dir, "data");
  await synthDataset(data, { preset: "tiny", seed: 5, quiet: true });
  // scratch: the truth shifted one voxel along x; ssl: the truth itself with every 7th voxel added
  runs.scratch = await fakeRun("scratch", (m, nx, i) => (i % nx > 0 ? m[i - 1] : 0), [1.2, 0.9, 0.7]);
  runs.ssl = await fakeRun("ssl", (m, _nx, i) => (i % 7 === 0 ? 1 : m[i]), [1.0, 0.6, 0.5]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The value at a "/"-separated path of metrics.json (NaN for null, as the report reads it). */
function at(m: MetricsJson, path: string): number {
  let v: unknown = m;
  for (const k of path.split("/")) v = (v as Record<string, unknown>)[k];
  assert.ok(typeof v === "number" || v === null, `metrics.json has a number at ${path}`);
  return v === null ? NaN : (v as number);
}

/** "0.8123 ± 0.0456 (…)" → [0.8123, 0.0456]; "NaN" stays NaN. */
function shown(text: string): number[] {
  return [...text.matchAll(/NaN|-?\d+\.\d+/g)].map((x) => (x[0] === "NaN" ? NaN : Number(x[0])));
}

function sameAt4(shownValue: number, value: number, what: string): void {
  if (Number.isNaN(value)) assert.ok(Number.isNaN(shownValue), `${what}: NaN shown as ${shownValue}`);
  else assert.ok(Math.abs(shownValue - value) <= 0.5e-4 + 1e-12, `${what}: shown ${shownValue}, metrics.json ${value}`);
}

test("the report is one page with its viewer's files beside it; the volumes there are the case's volumes", async () => {
  const out = await writeReport({ run: runs.scratch, compare: runs.ssl, labels: ["scratch", "ssl"], out: join(dir, "site", "report.html") });
  assert.equal(out, join(dir, "site", "report.html"));
  const html = readFileSync(out, "utf8");
  assert.doesNotMatch(html, /(src|href)="https?:/, "no resource from the network");
  const m = JSON.parse(readFileSync(join(runs.scratch, "metrics.json"), "utf8")) as MetricsJson;
  const first = m.results[0];
  const files = readdirSync(join(dir, "site", "report_files")).sort();
  assert.deepEqual(files, [`${first.case}_image.nii.gz`, `${first.case}_pred-scratch.nii.gz`, `${first.case}_pred-ssl.nii.gz`, `${first.case}_truth.nii.gz`, "niivue.umd.js", "viewer-data.js"].sort());
  const truth = await readVolume(join(dir, "site", "report_files", `${first.case}_truth.nii.gz`));
  const gt = await readVolume(first.groundTruth);
  assert.deepEqual(truth.shape, gt.shape);
  assert.deepEqual([...truth.data], [...gt.data].map((v) => (v > 0 ? 1 : 0)));
  const image = await readVolume(join(dir, "site", "report_files", `${first.case}_image.nii.gz`));
  assert.deepEqual([...image.data], [...(await readVolume(join(data, "test", "images", `${first.case}.mha`))).data]);
  // every test case has its card; held-out types are marked
  for (const r of m.results) assert.ok(html.includes(`id="case-${r.case}"`), `card of ${r.case}`);
  assert.ok(m.results.some((r) => r.role === "heldOut") && html.includes(`<span class="badge">held out</span>`));
});

test("a folder without metrics.json and an unknown viewer case fail with messages that say what to do", async () => {
  mkdirSync(join(dir, "empty"), { recursive: true });
  assert.throws(() => readRun(join(dir, "empty"), "x"), /no metrics\.json .*lsmseg evaluate/);
  await assert.rejects(writeReport({ run: runs.scratch, out: join(dir, "bad.html"), viewerCase: "nope_1" }), /--case nope_1: not a test case .*cases: /);
  assert.ok(!existsSync(join(dir, "bad.html")));
});

/** Serves `root` on 127.0.0.1 (an ephemeral port); paths outside it are 404. */
async function serveStatic(root: string): Promise<{ server: Server; origin: string }> {
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".gz": "application/gzip", ".png": "image/png" };
  const server = createServer((req, res) => {
    const path = normalize(join(root, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)));
    if (!path.startsWith(root + sep) || !existsSync(path) || !statSync(path).isFile()) { res.writeHead(404).end(); return; }
    res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" }).end(readFileSync(path));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  if (!addr || typeof addr === "string") throw new Error("no port");
  return { server, origin: `http://127.0.0.1:${addr.port}` };
}

test("in headless chromium: the tables equal metrics.json, every image loads, the 3D viewer draws, nothing comes from outside", { skip: noBrowser, timeout: 120_000 }, async () => {
  const site = join(dir, "browser");
  const out = await writeReport({ run: runs.scratch, compare: runs.ssl, labels: ["scratch", "ssl"], out: join(site, "report.html") });
  const metrics = [runs.scratch, runs.ssl].map((r) => readRun(r, "").metrics);
  const { chromium } = await import("playwright-core");
  const { server, origin } = await serveStatic(site);
  // playwright gives each launch a new, empty profile (--user-data-dir in a temporary folder of its own)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const requests: string[] = [];
    const errors: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${origin}/report.html`);
    await page.waitForFunction(() => document.body.dataset.viewer !== undefined, null, { timeout: 60_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.viewer), "ready", await page.textContent("#viewer-status") ?? "");
    assert.deepEqual(errors, []);

    // numbers: every cell names its place in metrics.json
    const cells = await page.$$eval("td[data-mean]", (tds) => tds.map((td) => ({ run: Number(td.getAttribute("data-run")), mean: td.getAttribute("data-mean")!, std: td.getAttribute("data-std"), text: td.textContent ?? "" })));
    const m0 = metrics[0];
    const groups = [...Object.values(m0.categories), m0.overall, ...Object.values(m0.structures)];
    const groupCells = groups.reduce((n, g) => n + [g.dice, g.cldice, g.panoptic_quality].filter((s) => s && s.n > 0).length, 0);
    const expected = 2 * (groupCells + 4 * 3 + m0.results.length * 2); // 4 aggregates × (all, seen, held out); Dice + clDice or PQ per case
    assert.equal(cells.length, expected, "a cell per run for every category, structure, aggregate and case metric");
    for (const c of cells) {
      const [mean, std] = shown(c.text);
      sameAt4(mean, at(metrics[c.run], c.mean), `${c.mean} (run ${c.run})`);
      if (c.std) sameAt4(std, at(metrics[c.run], c.std), `${c.std} (run ${c.run})`);
    }
    // the two runs differ, so a swapped column would be caught
    assert.notEqual(at(metrics[0], "overall/dice/mean").toFixed(4), at(metrics[1], "overall/dice/mean").toFixed(4));

    // images: image, truth and one overlay per run for every case, all decoded
    const imgs = await page.$$eval("img", (els) => els.map((e) => ({ ok: e.complete && e.naturalWidth > 0, src: e.src.slice(0, 22) })));
    assert.equal(imgs.length, m0.results.length * 4);
    assert.ok(imgs.every((i) => i.ok && i.src === "data:image/png;base64,"), "every <img> is an inline PNG that loaded");

    // the viewer's canvas shows more than its background
    const colors = await page.evaluate(() => {
      const nv = (window as unknown as { lsmsegViewer: { drawScene(): void; canvas: HTMLCanvasElement } }).lsmsegViewer;
      nv.drawScene(); // read back in the same task as the draw: the WebGL buffer is not kept after compositing
      const c = document.createElement("canvas");
      c.width = nv.canvas.width; c.height = nv.canvas.height;
      const ctx = c.getContext("2d")!;
      ctx.drawImage(nv.canvas, 0, 0);
      const px = ctx.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<number>();
      for (let i = 0; i < px.length; i += 4 * 7) seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
      return seen.size;
    });
    assert.ok(colors > 50, `the viewer canvas shows ${colors} colours`);
    const shot = join(tmpdir(), "lsmseg-report.png");
    await page.screenshot({ path: shot });
    assert.ok(statSync(shot).size > 10_000);
    const outside = requests.filter((u) => !u.startsWith(origin + "/") && !u.startsWith("data:"));
    assert.deepEqual(outside, [], "the report fetches nothing but its own files");

    // opened from disk (double-click), the viewer still loads: its volumes come in a <script>, not fetch()
    const local = await browser.newPage();
    await local.goto(pathToFileURL(out).href);
    await local.waitForFunction(() => document.body.dataset.viewer !== undefined, null, { timeout: 60_000 });
    assert.equal(await local.evaluate(() => document.body.dataset.viewer), "ready");
  } finally {
    await browser.close();
    server.close();
  }
});
