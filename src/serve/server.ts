// Grand Challenge's "invoke" contract for the SELMA3D algorithm container: GET /health is 200 once the model is
// loaded (503 while it loads); POST /invoke predicts the one case in <input>/images/light-sheet-3d-microscopy/
// and writes <output>/images/isolated-biological-structure/output.mha (int8 {0,1}, compressed, the input's
// shape and geometry), answering 201. The model lives in a worker thread, loaded once; this thread only speaks
// HTTP, so it answers /health and a second invoke ("busy", 409) while a case runs. Every answer is JSON.
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from "node:fs";
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import { isAbsolute, join, relative, resolve } from "node:path";
import type { Worker } from "node:worker_threads";
import { fsError } from "../util/fserror.ts";
import { tsWorker } from "../util/workers.ts";
import type { WorkerReply, WorkerRequest } from "./worker.ts";

/** Where the platform puts the input image and expects the output mask, relative to /input and /output. */
export const INPUT_FOLDER = join("images", "light-sheet-3d-microscopy");
export const OUTPUT_FILE = join("images", "isolated-biological-structure", "output.mha");
const INPUT_EXTENSIONS = [".mha", ".tif", ".tiff"];

export interface ServeOptions {
  /** A fine-tuning run folder or checkpoint (in the container: /opt/ml/model). */
  model: string;
  input: string;
  output: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Mirror averaging (test-time augmentation); default true. */
  mirror?: boolean;
  precision?: "bf16" | "fp32";
  /** One line per request and state change (default: none). */
  log?: (line: string) => void;
  /** Awaited after an invoke has claimed the server and before its case is read (tests hold a case "running" with it). */
  holdInvoke?: () => Promise<void>;
}

export interface InvokeServer {
  url: string;
  port: number;
  /** Resolves when the model is loaded; rejects when it fails to load. */
  ready: Promise<void>;
  close(): Promise<void>;
}

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

/** A failure with the HTTP status it is answered with. */
class InvokeError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * `path` (absolute, or relative to `root`) after resolving every symbolic link, refused (400) unless it lies
 * inside `root`: every input the server reads goes through here, so an input cannot make it read any file it
 * can reach. (A MetaImage's data file is held to its header's folder by the reader, io/metaimage.ts.)
 */
function resolveInside(root: string, path: string): string {
  let realRoot: string, real: string;
  try {
    realRoot = realpathSync(root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvokeError(400, code === "ENOENT" ? `the input folder ${root} does not exist` : `the input folder ${fsError(root, err).message}`);
  }
  try {
    real = realpathSync(resolve(root, path));
  } catch (err) {
    throw new InvokeError(400, fsError(resolve(root, path), err, "not found").message);
  }
  const rel = relative(realRoot, real);
  if (rel === ".." || rel.startsWith(`..${"/"}`) || isAbsolute(rel)) throw new InvokeError(400, `${resolve(root, path)}: resolves to ${real}, outside the input folder ${root}`);
  return real;
}

/** The single input image of an invocation, and the interfaces inputs.json lists (when it is there). */
export function findInput(inputRoot: string): { image: string; interfaces: string[] } {
  let interfaces: string[] = [];
  const inputsJson = join(inputRoot, "inputs.json");
  if (existsSync(inputsJson)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(inputsJson, "utf8"));
    } catch (err) {
      throw new InvokeError(400, `${inputsJson}: not JSON (${(err as Error).message})`);
    }
    if (!Array.isArray(parsed)) throw new InvokeError(400, `${inputsJson}: expected a list of inputs, got ${typeof parsed}`);
    interfaces = parsed.map((e: { interface?: { slug?: string; relative_path?: string } }) => e?.interface?.slug ?? e?.interface?.relative_path ?? "?");
  }
  const folder = join(inputRoot, INPUT_FOLDER);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new InvokeError(400, `no input image: ${folder} does not exist`);
  const images = readdirSync(folder).filter((f) => !f.startsWith(".") && INPUT_EXTENSIONS.some((e) => f.toLowerCase().endsWith(e))).sort();
  if (images.length === 0) throw new InvokeError(400, `no input image in ${folder} (expected one ${INPUT_EXTENSIONS.join(", ")} file)`);
  if (images.length > 1) throw new InvokeError(400, `${images.length} images in ${folder} (${images.join(", ")}): expected exactly one`);
  const image = resolveInside(inputRoot, join(INPUT_FOLDER, images[0]));
  if (!statSync(image).isFile()) throw new InvokeError(400, `${join(folder, images[0])}: not a file`);
  return { image, interfaces };
}

const LISTEN_PROBLEMS: Record<string, string> = {
  EADDRINUSE: "the port is already in use (another server? choose another --port)",
  EADDRNOTAVAIL: "the address is not one of this machine's (--host)",
  ENOTFOUND: "the host name cannot be resolved (--host)",
  EAI_AGAIN: "the host name cannot be resolved (--host)",
  EACCES: "permission denied (ports below 1024 need privileges)",
  EINVAL: "not a valid address (--host)",
};

function send(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + "\n";
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers }).end(text);
}

/** Starts the server (listening at once) and the model thread (loading in the background). */
export async function startServer(o: ServeOptions): Promise<InvokeServer> {
  const log = o.log ?? (() => {});
  const input = resolve(o.input), output = resolve(o.output);
  const outputFile = join(output, OUTPUT_FILE);
  let state: "loading" | "ready" | "failed" = "loading";
  let loadError = "";
  let model: Record<string, unknown> = {};
  let busy: { since: string; image: string } | null = null;

  let nextId = 0;
  const pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: InvokeError) => void }>();
  const request = (msg: WithoutId<WorkerRequest>) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    worker.postMessage({ ...msg, id });
  });
  const workerDied = (why: string) => {
    state = "failed";
    loadError = loadError || why;
    for (const p of pending.values()) p.reject(new InvokeError(500, why));
    pending.clear();
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume(); // the body, if any, carries nothing the contract needs
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const route = `${req.method} ${path}`;
    if (route === "GET /health") {
      if (state === "ready") send(res, 200, { status: "ready", busy: busy !== null, ...model });
      else if (state === "loading") send(res, 503, { status: "loading", message: "the model is loading" }, { "retry-after": "2" });
      else send(res, 500, { status: "failed", error: loadError });
      return;
    }
    if (route === "POST /invoke") {
      void invoke(res);
      return;
    }
    if (path === "/health" || path === "/invoke") send(res, 405, { error: `${req.method} ${path}: use ${path === "/health" ? "GET" : "POST"}` });
    else send(res, 404, { error: `${path}: not found (GET /health, POST /invoke)` });
  });

  async function invoke(res: ServerResponse): Promise<void> {
    if (state !== "ready") {
      send(res, state === "loading" ? 503 : 500, { error: state === "loading" ? "the model is still loading; retry when GET /health answers 200" : `the model failed to load: ${loadError}` });
      return;
    }
    if (busy) {
      send(res, 409, { error: `busy: ${busy.image} is being predicted (since ${busy.since}); one case at a time, retry when it is done` }, { "retry-after": "5" });
      return;
    }
    busy = { since: new Date().toISOString(), image: "?" };
    try {
      const { image, interfaces } = findInput(input);
      busy.image = image;
      log(`invoke: ${image}`);
      await o.holdInvoke?.();
      const result = await request({ type: "predict", input: image, output: outputFile, outputRoot: output, mirror: o.mirror ?? true, precision: o.precision });
      log(`invoke: wrote ${outputFile} in ${(result.seconds as number).toFixed(1)} s`);
      send(res, 201, { status: "done", input: image, output: outputFile, ...(interfaces.length ? { interfaces } : {}), ...result });
    } catch (err) {
      const status = err instanceof InvokeError ? err.status : 500;
      log(`invoke: ${status} ${(err as Error).message}`);
      send(res, status, { error: (err as Error).message });
    } finally {
      busy = null;
    }
  }

  const where = `${o.host ?? "127.0.0.1"}:${o.port ?? 8080}`;
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${where}: ${LISTEN_PROBLEMS[err.code ?? ""] ?? err.message}`, { cause: err })));
    server.listen(o.port ?? 8080, o.host ?? "127.0.0.1", () => resolveListen());
  });
  // the model thread starts once the port is ours: a server that cannot listen must exit, not wait on it
  const worker: Worker = tsWorker(new URL("./worker.ts", import.meta.url));
  worker.on("message", (reply: WorkerReply) => {
    const p = pending.get(reply.id);
    pending.delete(reply.id);
    if (reply.ok) p?.resolve(reply.result);
    else p?.reject(new InvokeError(reply.status, reply.error));
  });
  worker.on("error", (err) => workerDied(`the model thread failed: ${err.message}`));
  worker.on("exit", (code) => workerDied(`the model thread exited (code ${code})`));
  const addr = server.address();
  if (!addr || typeof addr === "string") throw new Error("the server has no TCP address");
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  log(`listening on http://${host}:${addr.port} (GET /health, POST /invoke); loading ${o.model}`);

  const ready = request({ type: "load", model: o.model }).then(
    (info) => {
      model = { model: info.checkpoint, step: info.step };
      state = "ready";
      log(`ready: ${String(info.checkpoint)} (step ${String(info.step)})`);
    },
    (err: Error) => {
      state = "failed";
      loadError = err.message;
      log(`the model failed to load: ${err.message}`);
      throw err;
    },
  );
  ready.catch(() => {}); // the caller decides what a failed load means; /health reports it

  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    ready,
    async close() {
      worker.removeAllListeners("exit");
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections(); // keep-alive connections would hold close() open
      await Promise.all([closed, worker.terminate()]);
    },
  };
}
