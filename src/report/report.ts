// lsmseg report: one HTML page about one run, or two side by side (scratch vs SSL): the challenge's metrics per
// category and per structure type (held-out types marked), training curves, per-case projections with
// overlays, a 3D viewer of one case, and the run's plan, configuration and versions. Everything but the
// viewer's volumes and script is inline (CSS, SVG, PNG as data: URIs); those sit in <name>_files/ beside it.
// Reading a run needs no libtorch (metrics.json, plan.json, config.json, log.jsonl and the volumes).
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { CaseResult } from "../eval/evaluate.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { aggregatesTable, caseTable, categoryTable, escapeHtml, jsonBlock, page, structureTable } from "./html.ts";
import { OVERLAY_COLORS, casePictures } from "./images.ts";
import { type Series, lineChart } from "./plots.ts";
import { type RunFiles, caseFiles, readRun } from "./run.ts";
import { type ViewerLayer, niivueBrowserBuild, writeViewer } from "./viewer.ts";

export interface ReportOptions {
  /** A run folder: metrics.json with finetune/ (the demo's layout), or a fine-tuning folder with metrics.json. */
  run: string;
  /** The report's path (.html); a folder gets report.html inside. */
  out: string;
  /** A second run shown beside the first (e.g. fine-tuned from an SSL checkpoint). */
  compare?: string;
  /** Names of the runs in the report (default: their folder names). */
  labels?: string[];
  /** The case the 3D viewer shows (default: the first test case). */
  viewerCase?: string;
  /** Folder of the test images (default: images/ beside the ground truth's folder). */
  images?: string;
  title?: string;
}

const RUN_COLORS = ["#2f6fdb", "#e4572e"];
const CATEGORY_COLORS: Record<string, string> = { "isolated sparse": "#e4572e", "isolated dense": "#f3a712", "contiguous sparse": "#29a36a", "contiguous dense": "#2f6fdb" };
const PRED_COLORMAPS = ["red", "blue"];

const dataUri = (png: Buffer) => `data:image/png;base64,${png.toString("base64")}`;
const rgb = (c: readonly number[]) => `rgb(${c.join(",")})`;

/** The report's path for `out` (a .html file, or report.html in a folder). */
function reportPath(out: string): string {
  return out.toLowerCase().endsWith(".html") || out.toLowerCase().endsWith(".htm") ? resolve(out) : resolve(out, "report.html");
}

/** Writes the report and returns its absolute path. */
export async function writeReport(o: ReportOptions): Promise<string> {
  const dirs = o.compare ? [o.run, o.compare] : [o.run];
  const labels = dirs.map((d, i) => o.labels?.[i] ?? basename(resolve(d)));
  if (labels.length === 2 && labels[0] === labels[1]) labels.splice(0, 2, `${labels[0]} (1)`, `${labels[1]} (2)`);
  const runs = dirs.map((d, i) => readRun(d, labels[i]));
  const out = reportPath(o.out);
  const assetsDir = reportAssetsDir(out);
  const assetsHref = encodeURIComponent(basename(assetsDir));
  const results = runs[0].metrics.results;
  if (results.length === 0) throw new Error(`${runs[0].metricsPath}: no cases were scored`);

  const viewerCase = o.viewerCase ?? results[0].case;
  const viewerResult = results.find((r) => r.case === viewerCase);
  if (!viewerResult) throw new Error(`--case ${viewerCase}: not a test case of ${runs[0].metricsPath} (cases: ${results.map((r) => r.case).join(", ")})`);
  const viewer = await writeViewer(assetsDir, assetsHref, viewerCase, viewerLayers(runs, viewerResult, o.images));

  const title = o.title ?? `lsmseg report: ${labels.join(" vs ")}`;
  const body = [
    `<header><h1>${escapeHtml(title)}</h1>`,
    `<p class="sub">${results.length} test cases · ${runs.map((r) => `<b>${escapeHtml(r.label)}</b>: ${escapeHtml(r.dir)}`).join(" · ")} · written ${escapeHtml(new Date().toISOString().replace("T", " ").slice(0, 16))} UTC</p>`,
    `<nav><a href="#results">results</a><a href="#curves">training curves</a><a href="#viewer-section">3D viewer</a><a href="#cases">cases</a><a href="#runs">plan, configuration, versions</a></nav></header>`,
    `<section id="results"><h2>Results</h2>`,
    `<p class="note">SELMA3D metrics as the challenge computes them (lsmseg evaluate): mean ± sample standard deviation over test cases. clDice is reported for contiguous structures, panoptic quality (PQ) for isolated ones. <span class="badge">held out</span> types were never seen in training.</p>`,
    `<h3>Per category</h3>${categoryTable(runs)}`,
    `<h3>Challenge aggregates</h3>${aggregatesTable(runs)}`,
    `<h3>Per structure type</h3>${structureTable(runs)}`,
    `</section>`,
    `<section id="curves"><h2>Training curves</h2>${curves(runs)}</section>`,
    `<section id="viewer-section"><h2>3D viewer</h2>${viewer}</section>`,
    `<section id="cases"><h2>Test cases</h2>${await caseCards(runs, o.images)}</section>`,
    `<section id="runs"><h2>Plan, configuration and versions</h2>${await runDetails(runs)}</section>`,
  ].join("\n");
  writeFileAtomic(out, Buffer.from(page(title, body)));
  return out;
}

function viewerLayers(runs: RunFiles[], r: CaseResult, images?: string): ViewerLayer[] {
  const files = caseFiles(runs[0], r, images);
  const layers: ViewerLayer[] = [];
  if (files.image) layers.push({ label: "image", path: files.image, kind: "image", colormap: "gray" });
  layers.push({ label: "truth", path: files.truth, kind: "mask", colormap: "green" });
  runs.forEach((run, i) => {
    const res = run.metrics.results.find((x) => x.case === r.case);
    if (res) layers.push({ label: `pred-${run.label}`, path: caseFiles(run, res, images).prediction, kind: "mask", colormap: PRED_COLORMAPS[i] });
  });
  return layers;
}

function curves(runs: RunFiles[]): string {
  const withLog = runs.filter((r) => r.log.length > 0);
  if (withLog.length === 0) return `<p class="note">No log.jsonl in ${runs.map((r) => escapeHtml(r.dir)).join(" or ")}: no curves.</p>`;
  const dash = (i: number) => (i === 0 ? "" : "6 3");
  const loss: Series[] = runs.map((r, i) => ({
    name: r.label, color: RUN_COLORS[i], points: r.log.map((e) => [e.epoch + 1, e.trainLoss] as [number, number]),
  }));
  const mean: Series[] = runs.flatMap((r, i) => [
    { name: `${r.label}: mean`, color: RUN_COLORS[i], points: r.log.map((e) => [e.epoch + 1, e.pseudoDiceMean] as [number, number]) },
    { name: `${r.label}: EMA`, color: RUN_COLORS[i], dash: "2 3", points: r.log.map((e) => [e.epoch + 1, e.emaPseudoDice] as [number, number]) },
  ]);
  const categories = [...new Set(runs.flatMap((r) => r.log.flatMap((e) => Object.keys(e.pseudoDice ?? {}))))].sort();
  const perCategory: Series[] = runs.flatMap((r, i) => categories.map((c) => ({
    name: runs.length > 1 ? `${c} (${r.label})` : c, color: CATEGORY_COLORS[c] ?? "#777", dash: dash(i),
    points: r.log.map((e) => [e.epoch + 1, e.pseudoDice?.[c] ?? NaN] as [number, number]),
  })));
  return `<div class="charts">${[
    lineChart(loss, { title: "Training loss (Dice + CE)", xLabel: "epoch", yLabel: "loss", width: 360 }),
    lineChart(mean, { title: "Validation pseudo-Dice", xLabel: "epoch", yLabel: "pseudo-Dice", yRange: [0, 1], width: 360 }),
    lineChart(perCategory, { title: "Validation pseudo-Dice per category", xLabel: "epoch", yLabel: "pseudo-Dice", yRange: [0, 1], width: 360 }),
  ].join("")}</div><p class="note">Pseudo-Dice: Dice of the validation fold's patches pooled per category after each epoch (nnU-Net's online estimate, not the test metrics above); its exponential moving average (EMA, dotted) picks the best checkpoint.${runs.length > 1 ? " Dashed: " + escapeHtml(runs[1].label) + "." : ""}</p>`;
}

async function caseCards(runs: RunFiles[], images?: string): Promise<string> {
  const legend = `<p class="legend-row note">Maximum-intensity projections along z.<span style="background:${rgb(OVERLAY_COLORS.both)}"></span>prediction and truth`
    + `<span style="background:${rgb(OVERLAY_COLORS.predictionOnly)}"></span>prediction only (false positive)<span style="background:${rgb(OVERLAY_COLORS.truthOnly)}"></span>truth only (missed)</p>`;
  const cards: string[] = [];
  for (const r of runs[0].metrics.results) {
    const files = caseFiles(runs[0], r, images);
    const preds = runs.map((run) => {
      const res = run.metrics.results.find((x) => x.case === r.case);
      return res ? { label: run.label, path: caseFiles(run, res, images).prediction } : null;
    }).filter((p) => p !== null);
    const pics = await casePictures({ image: files.image, truth: files.truth, predictions: preds.map((p) => p.path) });
    const fig = (png: Buffer, caption: string) => `<figure><img src="${dataUri(png)}" width="${pics.width}" height="${pics.height}" alt="${escapeHtml(`${r.case}: ${caption}`)}"><figcaption>${escapeHtml(caption)}</figcaption></figure>`;
    const heldOut = r.role === "heldOut";
    cards.push(`<div class="case-card" id="case-${escapeHtml(r.case)}"><h3>${escapeHtml(r.case)} <span class="sub">${escapeHtml(r.structure)}, ${r.category} ${r.density}, ${r.shape.join("×")}</span>${heldOut ? ` <span class="badge">held out</span>` : ""}</h3>`
      + `<div class="mips">${files.image ? fig(pics.image, "image") : ""}${fig(pics.truth, "ground truth")}${pics.overlays.map((png, i) => fig(png, runs.length > 1 ? `${preds[i].label}: prediction` : "prediction")).join("")}</div>`
      + caseTable(runs, r.case) + `</div>`);
  }
  return legend + `<div class="cases">${cards.join("")}</div>`;
}

/** lsmseg's, node's, NiiVue's and (when it loads) libtorch's versions at report time. */
async function versions(): Promise<Record<string, string>> {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  const v: Record<string, string> = { lsmseg: pkg.version, node: process.version, niivue: niivueBrowserBuild().version };
  try {
    const { buildInfo } = await import("../torch/runtime.ts");
    const b = buildInfo();
    v.libtorch = `${b.torchVersion}${b.cuda ? " (CUDA)" : " (CPU)"}`;
  } catch (err) {
    v.libtorch = `not loaded (${(err as Error).message.split("\n")[0]})`;
  }
  return v;
}

async function runDetails(runs: RunFiles[]): Promise<string> {
  const parts: string[] = [];
  for (const r of runs) {
    const ckpt = r.train ? ["checkpoint_final.safetensors", "checkpoint_best.safetensors", "checkpoint_latest.safetensors"].filter((f) => existsSync(join(r.train!, f))) : [];
    const size = ckpt.length ? ` (${(statSync(join(r.train!, ckpt[0])).size / 1e6).toFixed(1)} MB)` : "";
    parts.push(`<h3>${escapeHtml(r.label)}</h3><table class="kv">`
      + `<tr><th>run folder</th><td>${escapeHtml(r.dir)}</td></tr><tr><th>metrics</th><td>${escapeHtml(r.metricsPath)}</td></tr>`
      + `<tr><th>predictions / ground truth</th><td>${escapeHtml(r.metrics.pred)} / ${escapeHtml(r.metrics.gt)}</td></tr>`
      + `<tr><th>fine-tuning</th><td>${r.train ? escapeHtml(r.train) : "–"}${r.log.length ? `, ${r.log.length} epochs logged, last step ${r.log[r.log.length - 1].step}` : ""}</td></tr>`
      + `<tr><th>checkpoints</th><td>${ckpt.length ? escapeHtml(ckpt.join(", ")) + size : "–"}</td></tr></table>`
      + (r.plan ? jsonBlock("plan.json", r.plan) : "") + (r.config ? jsonBlock("config.json", r.config) : "")
      + (r.config && typeof r.config.versions === "object" ? jsonBlock("versions the run was trained with", r.config.versions) : ""));
  }
  const v = await versions();
  parts.push(`<h3>Versions (writing this report)</h3><table class="kv">${Object.entries(v).map(([k, x]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(x)}</td></tr>`).join("")}</table>`);
  return parts.join("\n");
}

/** The report folder's files besides the page (for callers that copy or list them). */
function reportAssetsDir(out: string): string {
  const page = reportPath(out);
  return join(dirname(page), basename(page).replace(/\.html?$/i, "") + "_files");
}
