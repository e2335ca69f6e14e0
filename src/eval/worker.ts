// A worker of evaluateFolder's pool: evaluates one case per message.
import { parentPort } from "node:worker_threads";
import { evaluateCase, type CaseTask } from "./evaluate.ts";

parentPort?.on("message", (msg: { id: number; task: CaseTask }) => {
  evaluateCase(msg.task.pred, msg.task.gt, { table: msg.task.table, extra: msg.task.extra, labelMap: msg.task.labelMap }).then(
    (result) => parentPort?.postMessage({ id: msg.id, result }),
    (err: unknown) => parentPort?.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
