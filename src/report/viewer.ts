// The report's 3D viewer: NiiVue (@niivue/niivue, its self-contained browser build) showing one case's image
// with the true and predicted masks as overlays. The volumes are written beside the report as .nii.gz (for
// other tools too) and, base64 in a script file, as the viewer reads them: a page opened from file:// may not
// fetch() its neighbours, but it may load their <script>s, so the report works offline by double-click.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Vec3, type Volume, makeVolume, readVolume, writeVolume } from "../io/index.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { escapeHtml } from "./html.ts";

/** Volumes larger than this along an axis are subsampled for the viewer (WebGL textures, report size). */
const VIEWER_MAX_SIDE = 256;

export interface ViewerLayer {
  label: string;
  path: string;
  kind: "image" | "mask";
  /** A NiiVue colour map: "gray", "green", "red", "blue", … */
  colormap: string;
}

/** The NiiVue browser build shipped in the npm package (a UMD script that defines `window.niivue`). */
export function niivueBrowserBuild(): { path: string; version: string } {
  const main = fileURLToPath(import.meta.resolve("@niivue/niivue"));
  let dir = dirname(main);
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  const path = join(dir, "dist", "niivue.umd.js");
  if (!existsSync(path)) throw new Error(`${path}: the NiiVue browser build is missing; reinstall @niivue/niivue (npm ci)`);
  const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string };
  return { path, version };
}

/** Every `step`-th voxel along each axis. */
function subsample(vol: Volume, step: number): Volume {
  const [nz, ny, nx] = vol.shape;
  const shape: Vec3 = [Math.ceil(nz / step), Math.ceil(ny / step), Math.ceil(nx / step)];
  const out = makeVolume(vol.dtype, shape, vol.spacingUm.map((s) => s * step) as Vec3);
  let i = 0;
  for (let z = 0; z < nz; z += step) {
    for (let y = 0; y < ny; y += step) for (let x = 0; x < nx; x += step) out.data[i++] = vol.data[(z * ny + y) * nx + x];
  }
  return { ...vol, shape, spacingUm: out.spacingUm, data: out.data };
}

/** The file name a layer gets beside the report. */
function layerFile(caseName: string, label: string): string {
  return `${caseName}_${label.replace(/[^A-Za-z0-9_.-]+/g, "-")}.nii.gz`;
}

/**
 * Writes the viewer's files into `assetsDir` (niivue.umd.js, one .nii.gz per layer, viewer-data.js) and
 * returns the HTML of the viewer section; `assetsHref` is the folder as the page links it.
 */
export async function writeViewer(assetsDir: string, assetsHref: string, caseName: string, layers: ViewerLayer[]): Promise<string> {
  mkdirSync(assetsDir, { recursive: true });
  const nv = niivueBrowserBuild();
  copyFileSync(nv.path, join(assetsDir, "niivue.umd.js"));
  const entries: string[] = [];
  const links: string[] = [];
  let note = "";
  for (const layer of layers) {
    let vol = await readVolume(layer.path);
    const step = Math.ceil(Math.max(...vol.shape) / VIEWER_MAX_SIDE);
    if (step > 1) {
      vol = subsample(vol, step);
      note = ` (every ${step}th voxel along each axis)`;
    }
    if (layer.kind === "mask") vol = { ...vol, dtype: "uint8", data: Uint8Array.from(vol.data, (v) => (v > 0 ? 1 : 0)) };
    const file = layerFile(caseName, layer.label);
    await writeVolume(join(assetsDir, file), vol);
    const data = readFileSync(join(assetsDir, file)).toString("base64");
    entries.push(JSON.stringify({ file, label: layer.label, colormap: layer.colormap, opacity: layer.kind === "mask" ? 0.6 : 1, data }));
    links.push(`<a href="${escapeHtml(`${assetsHref}/${file}`)}">${escapeHtml(file)}</a>`);
  }
  writeFileAtomic(join(assetsDir, "viewer-data.js"), Buffer.from(`window.LSMSEG_VOLUMES = [\n${entries.join(",\n")}\n];\n`));
  const toggles = layers.map((l, i) => (i === 0 ? "" : `<label><input type="checkbox" data-layer="${i}" checked> <span class="swatch" style="background:${l.colormap}"></span>${escapeHtml(l.label)}</label>`)).join(" ");
  return `<div class="viewer-bar">
  <button data-view="multiplanar">slices + 3D</button> <button data-view="render">3D</button> <button data-view="axial">axial</button>
  <span class="toggles">${toggles}</span> <span id="viewer-status">loading the viewer…</span>
</div>
<div class="viewer-box"><canvas id="viewer"></canvas></div>
<p class="note">Case ${escapeHtml(caseName)}${escapeHtml(note)}. Drag to rotate the 3D view, scroll to move through slices, click to move the crosshair. Volumes: ${links.join(", ")} (NiiVue ${escapeHtml(nv.version)}).</p>
<script src="${escapeHtml(assetsHref)}/niivue.umd.js"></script>
<script src="${escapeHtml(assetsHref)}/viewer-data.js"></script>
<script>${VIEWER_SCRIPT}</script>`;
}

// Runs in the page. Sets body[data-viewer] to "ready" or "error" (the browser test waits for it) and keeps
// the Niivue instance in window.lsmsegViewer.
const VIEWER_SCRIPT = `
(async () => {
  const status = document.getElementById("viewer-status");
  try {
    if (!window.niivue || !window.LSMSEG_VOLUMES) throw new Error("the viewer's files beside the report are missing");
    const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
    const nv = new niivue.Niivue({ backColor: [0.07, 0.07, 0.09, 1], show3Dcrosshair: true, crosshairColor: [1, 1, 1, 0.6], crosshairWidth: 1, isColorbar: false, multiplanarShowRender: niivue.SHOW_RENDER.ALWAYS, multiplanarLayout: 2 /* 2×2 grid */ });
    await nv.attachToCanvas(document.getElementById("viewer"));
    for (const v of window.LSMSEG_VOLUMES) {
      nv.addVolume(await niivue.NVImage.loadFromUrl({ url: v.file, name: v.file, buffer: bytes(v.data), colormap: v.colormap, opacity: v.opacity }));
    }
    nv.setSliceType(nv.sliceTypeMultiplanar);
    nv.setRenderAzimuthElevation(120, 20);
    const views = { multiplanar: nv.sliceTypeMultiplanar, render: nv.sliceTypeRender, axial: nv.sliceTypeAxial };
    for (const b of document.querySelectorAll("[data-view]")) b.addEventListener("click", () => nv.setSliceType(views[b.dataset.view]));
    for (const c of document.querySelectorAll("[data-layer]")) {
      c.addEventListener("change", () => nv.setOpacity(Number(c.dataset.layer), c.checked ? window.LSMSEG_VOLUMES[Number(c.dataset.layer)].opacity : 0));
    }
    window.lsmsegViewer = nv;
    status.textContent = "";
    document.body.dataset.viewer = "ready";
  } catch (err) {
    status.textContent = "viewer error: " + (err && err.message ? err.message : err);
    document.body.dataset.viewer = "error";
  }
})();`;
