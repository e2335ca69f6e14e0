// Line charts as inline SVG strings: training and validation curves without a plotting library.
import { escapeHtml } from "./html.ts";

export interface Series {
  name: string;
  color: string;
  /** SVG stroke-dasharray ("" for a solid line). */
  dash?: string;
  /** [x, y] pairs; non-finite y values are left out. */
  points: Array<[number, number]>;
  /** Error bars: ± errors[i] around points[i] (e.g. a standard deviation); non-finite ones are not drawn. */
  errors?: number[];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Fixed y range (e.g. [0, 1] for Dice); default: the data's range. */
  yRange?: [number, number];
  /** Fixed x range; default: the data's range. */
  xRange?: [number, number];
  width?: number;
  /** Height of the plotting area; the legend adds a line per two series below it. */
  plotHeight?: number;
}

/** About `count` round tick values covering [lo, hi] (1, 2 or 5 × a power of ten apart). */
function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const fmt = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(3))));

/** A line chart with axes, ticks, point markers and a legend. */
export function lineChart(series: Series[], o: ChartOptions): string {
  const m = { left: 56, right: 12, top: 28, bottom: 44 + Math.ceil(series.length / 2) * 14 };
  const width = o.width ?? 460, ph = o.plotHeight ?? 180, height = m.top + ph + m.bottom;
  const pw = width - m.left - m.right;
  const pts = series.flatMap((s) => s.points.flatMap(([x, y], i): Array<[number, number]> => {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return [];
    const e = s.errors?.[i];
    return e !== undefined && Number.isFinite(e) ? [[x, y - e], [x, y + e]] : [[x, y]];
  }));
  const head = `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(o.title)}">`
    + `<text x="${width / 2}" y="16" text-anchor="middle" class="chart-title">${escapeHtml(o.title)}</text>`;
  if (pts.length === 0) return `${head}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="chart-empty">no data</text></svg>`;
  let [x0, x1] = o.xRange ?? [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = o.yRange ?? [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
  const xs = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const ys = (y: number) => m.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const parts: string[] = [head];
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${ys(t).toFixed(1)}" y2="${ys(t).toFixed(1)}" class="grid"/>`
      + `<text x="${m.left - 6}" y="${(ys(t) + 4).toFixed(1)}" text-anchor="end" class="tick">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1, 6).filter((t) => Number.isInteger(t) || x1 - x0 < 6)) {
    parts.push(`<text x="${xs(t).toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle" class="tick">${fmt(t)}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" class="frame"/>`,
    `<text x="${m.left + pw / 2}" y="${m.top + ph + 32}" text-anchor="middle" class="axis">${escapeHtml(o.xLabel)}</text>`,
    `<text transform="translate(14 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" class="axis">${escapeHtml(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
    if (p.length > 1) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${p.map(([x, y]) => `${xs(x).toFixed(1)},${ys(y).toFixed(1)}`).join(" ")}"/>`);
    s.points.forEach(([x, y], k) => {
      const e = s.errors?.[k];
      if (e === undefined || !Number.isFinite(e) || e <= 0 || !Number.isFinite(x) || !Number.isFinite(y)) return;
      const cx = xs(x).toFixed(1), lo = ys(Math.max(y0, y - e)).toFixed(1), hi = ys(Math.min(y1, y + e)).toFixed(1);
      parts.push(`<path d="M${cx} ${lo}V${hi}M${(xs(x) - 3).toFixed(1)} ${lo}h6M${(xs(x) - 3).toFixed(1)} ${hi}h6" stroke="${s.color}" stroke-width="1.2" fill="none" class="error-bar"/>`);
    });
    for (const [x, y] of p) parts.push(`<circle cx="${xs(x).toFixed(1)}" cy="${ys(y).toFixed(1)}" r="2.5" fill="${s.color}"><title>${escapeHtml(s.name)}: ${fmt(y)} at ${fmt(x)}</title></circle>`);
    // legend: two columns under the plot
    const lx = m.left + (i % 2) * (pw / 2), ly = m.top + ph + 44 + Math.floor(i / 2) * 14;
    parts.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dash}/>`
      + `<text x="${lx + 22}" y="${ly}" class="legend">${escapeHtml(s.name)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("");
}
