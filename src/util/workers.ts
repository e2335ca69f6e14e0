// Worker threads over lsmseg's own modules. Compiled (dist/, this file is .js), a worker is a plain Worker on the
// compiled .js module beside the one the caller names: no tsx, no hook, so it starts in a few tens of ms.
// From the sources under tsx (tests, a checkout without a fresh dist/), it needs tsx inside the worker: on
// Node 20 a Worker started from a .ts file does not get tsx's loader from the main thread ("Unknown file
// extension .ts"), whichever way the main thread was started, so a small bootstrap registers tsx inside the
// worker and then imports the .ts module. It also gets tsx's --import hook: on Node 20.20 register() alone
// failed in the data loader's workers when the main thread had registered tsx with register(), as
// bin/lsmseg.js does. tsx is named by its resolved URL, so it is found whatever the working directory.
import { Worker, type WorkerOptions } from "node:worker_threads";

const compiled = import.meta.url.endsWith(".js");

/**
 * A Worker running lsmseg's module `script`, named as in the sources (`new URL("./worker.ts", import.meta.url)`):
 * its compiled .js twin when lsmseg runs compiled, the .ts module through tsx otherwise.
 */
export function tsWorker(script: URL, options: WorkerOptions = {}): Worker {
  if (compiled) return new Worker(new URL(script.href.replace(/\.ts$/, ".js")), options);
  const api = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(script.href)}); });`;
  return new Worker(bootstrap, { execArgv: ["--import", import.meta.resolve("tsx")], ...options, eval: true });
}

/**
 * Asks a worker to stop (message {type: "stop"}: it finishes what it is doing and closes its port) and waits
 * for it to exit; terminates it after `timeoutMs`. Node 20 can abort the whole process when a worker is
 * terminated while it sets up a zlib stream (seen once in CI: "close before init"), so workers that may be
 * busy decompressing are stopped this way rather than terminated outright.
 */
export function stopWorker(worker: Worker, timeoutMs = 10_000): Promise<void> {
  if (worker.threadId < 0) return Promise.resolve(); // already exited
  return new Promise((resolve) => {
    const timer = setTimeout(() => { void worker.terminate().then(() => resolve()); }, timeoutMs);
    worker.once("exit", () => { clearTimeout(timer); resolve(); });
    worker.postMessage({ type: "stop" });
  });
}

type Reply<R> = { id: number; result: R } | { id: number; error: string };

/**
 * Runs `tasks` on a pool of `size` workers started from `script` (a module that answers each message
 * {id, task} with {id, result} or {id, error}); results come back in task order. `onResult` is called as
 * each task finishes. The first error stops the pool and rejects.
 */
export async function runPool<T, R>(script: URL, tasks: T[], size: number, onResult?: (index: number, result: R) => void): Promise<R[]> {
  const results = new Array<R>(tasks.length);
  if (tasks.length === 0) return results;
  const workers = Array.from({ length: Math.max(1, Math.min(size, tasks.length)) }, () => tsWorker(script));
  let next = 0, done = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const feed = (w: Worker) => {
        if (next < tasks.length) { w.postMessage({ id: next, task: tasks[next] }); next++; }
      };
      for (const w of workers) {
        w.on("message", (msg: Reply<R>) => {
          if ("error" in msg) { reject(new Error(msg.error)); return; }
          results[msg.id] = msg.result;
          onResult?.(msg.id, msg.result);
          if (++done === tasks.length) resolve();
          else feed(w);
        });
        w.on("error", reject);
        w.on("exit", (code) => { if (done < tasks.length) reject(new Error(`worker exited with code ${code} before finishing`)); });
        feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
