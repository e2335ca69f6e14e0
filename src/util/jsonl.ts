// JSON Lines logs (one record per line, appended whole). A line cut by a kill mid-write can only be the
// last one; unparsable lines are skipped, so a reader never fails on a log that a killed run left behind.
import { existsSync, readFileSync } from "node:fs";

/** The records of a JSONL file, or [] when it does not exist. */
export function readJsonl<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  const out: T[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // a half-written line after a kill: dropped
    }
  }
  return out;
}
