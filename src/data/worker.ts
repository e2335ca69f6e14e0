// A PatchLoader worker thread: receives the loader's settings once, then sample tasks; answers each with the
// sample's arrays, transferred (not copied) back to the main thread. Tasks run one at a time, in arrival order.
import { parentPort, workerData } from "node:worker_threads";
import { CaseCache, type ProducerSettings, type SampleTask, produceSample } from "./producer.ts";
import type { NormalizeOptions } from "./normalize.ts";

export interface WorkerInit {
  settings: ProducerSettings;
  cacheBytes: number;
  normalize: NormalizeOptions;
}

export type WorkerRequest = { type: "task"; id: number; task: SampleTask } | { type: "stop" };
export type WorkerReply =
  | { type: "done"; id: number; image: Float32Array; image2: Float32Array | null; label: Uint8Array | null; cacheHits: number; cacheMisses: number }
  | { type: "error"; id: number; message: string };

const init = workerData as WorkerInit;
const cache = new CaseCache(init.cacheBytes, init.normalize);
const port = parentPort!;
let queue: Promise<void> = Promise.resolve();
let stopping = false;

port.on("message", (msg: WorkerRequest) => {
  // stop: drop the tasks still queued, let the one running finish, then close the port so the thread exits
  if (msg.type === "stop") {
    stopping = true;
    queue = queue.then(() => port.close());
    return;
  }
  queue = queue.then(async () => {
    if (stopping) return;
    try {
      const s = await produceSample(init.settings, cache, msg.task);
      const transfer: ArrayBuffer[] = [s.image.buffer as ArrayBuffer];
      if (s.image2) transfer.push(s.image2.buffer as ArrayBuffer);
      if (s.label) transfer.push(s.label.buffer as ArrayBuffer);
      const reply: WorkerReply = { type: "done", id: msg.id, ...s, cacheHits: cache.hits, cacheMisses: cache.misses };
      port.postMessage(reply, transfer);
    } catch (err) {
      const reply: WorkerReply = { type: "error", id: msg.id, message: (err as Error).message };
      port.postMessage(reply);
    }
  });
});
