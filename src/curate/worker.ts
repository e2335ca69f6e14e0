// A worker of curation's pool: scans one overview box or processes one run of tiles per message.
import { parentPort } from "node:worker_threads";
import { type OverviewTask, scanOverviewBox } from "./overview.ts";
import { type TileTask, processTiles } from "./tiles.ts";

export type CurateTask = OverviewTask | TileTask;

export function runTask(task: CurateTask): Promise<unknown> {
  return task.kind === "overview" ? scanOverviewBox(task) : processTiles(task);
}

parentPort?.on("message", (msg: { id: number; task: CurateTask }) => {
  runTask(msg.task).then(
    (result) => parentPort?.postMessage({ id: msg.id, result }),
    (err: unknown) => parentPort?.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
