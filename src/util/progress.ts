// Progress for long work: a bar with rate and ETA on a terminal, plain lines (about every 10 s or
// every 10 %) when the output is a file or CI's log.

export interface ProgressOptions {
  /** What is being counted, e.g. "steps", "tiles", "windows". */
  unit?: string;
  /** Where to write; stderr by default so that stdout stays clean for JSON. */
  stream?: NodeJS.WriteStream;
  /** Force plain lines even on a terminal. */
  plain?: boolean;
  /** Print nothing. */
  silent?: boolean;
}

export class Progress {
  private readonly startMs = Date.now();
  private lastPrintMs = 0;
  private lastPlainFraction = -1;
  private done = 0;
  private info = "";
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  /** The count at completion; may be raised or set once it is known. */
  total: number;

  constructor(private readonly label: string, total: number, private readonly opts: ProgressOptions = {}) {
    this.total = total;
    this.stream = opts.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY) && !opts.plain && !process.env.CI;
  }

  /** Advances by `n` and sets the trailing text (e.g. "loss 0.412"). */
  tick(n = 1, info?: string): void {
    this.done += n;
    if (info !== undefined) this.info = info;
    this.render(false);
  }

  /** Sets the absolute count (e.g. after resuming). */
  set(done: number, info?: string): void {
    this.done = done;
    if (info !== undefined) this.info = info;
    this.render(false);
  }

  finish(info?: string): void {
    if (info !== undefined) this.info = info;
    this.render(true);
    if (this.tty && !this.opts.silent) this.stream.write("\n");
  }

  private render(final: boolean): void {
    if (this.opts.silent) return;
    const now = Date.now();
    const elapsedS = (now - this.startMs) / 1000;
    const rate = elapsedS > 0 ? this.done / elapsedS : 0;
    const left = Math.max(0, this.total - this.done);
    const eta = rate > 0 ? formatSeconds(left / rate) : "?";
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const unit = this.opts.unit ?? "it";
    const rateText = rate >= 1 ? `${rate.toFixed(1)} ${unit}/s` : `${rate > 0 ? (1 / rate).toFixed(2) : "?"} s/${unit}`;
    if (this.tty) {
      if (!final && now - this.lastPrintMs < 100) return;
      this.lastPrintMs = now;
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = "█".repeat(filled) + "░".repeat(width - filled);
      this.stream.write(`\r${this.label} ${bar} ${this.done}/${this.total} ${rateText} ETA ${eta} ${this.info}\x1b[K`);
    } else {
      const decile = Math.floor(frac * 10);
      if (!final && now - this.lastPrintMs < 10_000 && decile <= this.lastPlainFraction) return;
      this.lastPrintMs = now;
      this.lastPlainFraction = decile;
      this.stream.write(`${this.label}: ${this.done}/${this.total} (${(frac * 100).toFixed(0)}%) ${rateText} ETA ${eta} ${this.info}\n`);
    }
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
