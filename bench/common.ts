// Shared by the benchmarks: the machine's description, medians, the PyTorch peer's location.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export function machine(): string {
  const c = cpus();
  return `${c[0]?.model ?? "unknown CPU"}, ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The folder with the PyTorch peer's scripts (../shared/anchors, or LSMSEG_ANCHORS). */
export function anchorsDir(): string | null {
  const dir = process.env.LSMSEG_ANCHORS ?? join(root, "..", "shared", "anchors");
  return existsSync(join(dir, "unet_step.py")) ? dir : null;
}

/** Whether Debian's python3-torch is importable by /usr/bin/python3. */
export function torchAvailable(): boolean {
  const r = spawnSync("/usr/bin/python3", ["-c", "import torch"], { stdio: "ignore" });
  return r.status === 0;
}

/** Runs a peer script and returns its last JSON line, or null with a note. */
export function runPeer(script: string, args: string[]): Record<string, unknown> | null {
  const dir = anchorsDir();
  if (!dir) {
    console.log("  (peer skipped: ../shared/anchors not found; set LSMSEG_ANCHORS)");
    return null;
  }
  if (!torchAvailable()) {
    console.log("  (peer skipped: python3-torch is not installed; apt-get install -y python3-torch)");
    return null;
  }
  const r = spawnSync("/usr/bin/python3", [join(dir, script), ...args], { encoding: "utf8" });
  if (r.status !== 0) {
    console.log(`  (peer failed: ${r.stderr.trim().split("\n").pop()})`);
    return null;
  }
  const line = r.stdout.trim().split("\n").pop() ?? "{}";
  return JSON.parse(line) as Record<string, unknown>;
}

/**
 * Runs bench/gpu_peer.py (the anchors' work on any device, at any channel list) with LSMSEG_PYTHON (default
 * python3: on a GPU machine, the one with the CUDA PyTorch) and returns its last JSON line, or null with a note.
 */
export function runDevicePeer(args: string[]): Record<string, unknown> | null {
  const anchors = anchorsDir();
  if (!anchors) {
    console.log("  (peer skipped: ../shared/anchors not found; set LSMSEG_ANCHORS)");
    return null;
  }
  const python = process.env.LSMSEG_PYTHON ?? "python3";
  const r = spawnSync(python, [join(root, "bench", "gpu_peer.py"), ...args], { encoding: "utf8", env: { ...process.env, LSMSEG_ANCHORS: anchors } });
  if (r.status !== 0) {
    console.log(`  (peer failed: ${(r.stderr ?? String(r.error)).trim().split("\n").pop()})`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Record<string, unknown>;
}

/** --features "32,64,128" as numbers; the anchor U-Net's channels by default. */
export function parseFeatures(s: string | undefined): number[] {
  const f = (s ?? "16,32,64,128").split(",").map(Number);
  if (f.length < 2 || f.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`--features: expected a comma list of channel counts, got "${s}"`);
  return f;
}

export const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
