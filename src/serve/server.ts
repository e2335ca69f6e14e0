// Grand Challenge's "invoke" contract for the SELMA3D algorithm container: GET /health is 200 once the model is
// loaded (503 while it loads); POST /invoke predicts the one case in <input>/images/light-sheet-3d-microscopy/
// and writes <output>/images/isolated-biological-structure/output.mha (int8 {0,1}, compressed, the input's
// shape and geometry), answering 201. The model lives in a worker thread, loaded once; this thread only speaks
// HTTP, so it answers /health and a second invoke ("busy", 409) while a case runs. Every answer is JSON.
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
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

/** What the HTTP side knows of the model thread and the case it runs. */
interface ServerState {
  state: "loading" | "ready" | "failed";
  loadError: string;
  model: Record<string, unknown>;
  busy: { since: string; image: string } | null;
}

/** The model thread: requests answered by id; when the thread dies, `onDied` hears why and every pending request fails. */
class ModelThread {
  readonly worker: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: InvokeError) => void }>();

  constructor(private readonly onDied: (why: string) => void) {
    this.worker = tsWorker(new URL("./worker.ts", import.meta.url));
    this.worker.on("message", (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.ok) p?.resolve(reply.result);
      else p?.reject(new InvokeError(reply.status, reply.error));
    });
    this.worker.on("error", (err) => this.died(`the model thread failed: ${err.message}`));
    this.worker.on("exit", (code) => this.died(`the model thread exited (code ${code})`));
  }

  request(msg: WithoutId<WorkerRequest>): Promise<Record<string, unknown>> {
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }

  private died(why: string): void {
    this.onDied(why);
    for (const p of this.pending.values()) p.reject(new InvokeError(500, why));
    this.pending.clear();
  }
}

/** An invocation's surroundings: the options, the folders, the state, and (once the port is ours) the model thread. */
interface InvokeContext {
  o: ServeOptions;
  log: (line: string) => void;
  input: string;
  output: string;
  outputFile: string;
  s: ServerState;
  thread?: ModelThread;
}

/** GET /health, POST /invoke, and a 405 or 404 for anything else. */
function route(c: InvokeContext, req: IncomingMessage, res: ServerResponse): void {
  const { s } = c;
  req.resume(); // the body, if any, carries nothing the contract needs
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  const request = `${req.method} ${path}`;
  if (request === "GET /health") {
    if (s.state === "ready") send(res, 200, { status: "ready", busy: s.busy !== null, ...s.model });
    else if (s.state === "loading") send(res, 503, { status: "loading", message: "the model is loading" }, { "retry-after": "2" });
    else send(res, 500, { status: "failed", error: s.loadError });
    return;
  }
  if (request === "POST /invoke") {
    void invoke(c, res);
    return;
  }
  if (path === "/health" || path === "/invoke") send(res, 405, { error: `${req.method} ${path}: use ${path === "/health" ? "GET" : "POST"}` });
  else send(res, 404, { error: `${path}: not found (GET /health, POST /invoke)` });
}

/** POST /invoke: one case at a time, predicted by the model thread. */
async function invoke(c: InvokeContext, res: ServerResponse): Promise<void> {
  const { s, o, log, outputFile } = c;
  if (s.state !== "ready") {
    const error = s.state === "loading" ? "the model is still loading; retry when GET /health answers 200" : `the model failed to load: ${s.loadError}`;
    send(res, s.state === "loading" ? 503 : 500, { error });
    return;
  }
  if (s.busy) {
    send(res, 409, { error: `busy: ${s.busy.image} is being predicted (since ${s.busy.since}); one case at a time, retry when it is done` }, { "retry-after": "5" });
    return;
  }
  s.busy = { since: new Date().toISOString(), image: "?" };
  try {
    const { image, interfaces } = findInput(c.input);
    s.busy.image = image;
    log(`invoke: ${image}`);
    await o.holdInvoke?.();
    const request = { type: "predict" as const, input: image, output: outputFile, outputRoot: c.output, mirror: o.mirror ?? true, precision: o.precision };
    const result = await c.thread!.request(request);
    log(`invoke: wrote ${outputFile} in ${(result.seconds as number).toFixed(1)} s`);
    send(res, 201, { status: "done", input: image, output: outputFile, ...(interfaces.length ? { interfaces } : {}), ...result });
  } catch (err) {
    const status = err instanceof InvokeError ? err.status : 500;
    log(`invoke: ${status} ${(err as Error).message}`);
    send(res, status, { error: (err as Error).message });
  } finally {
    s.busy = null;
  }
}

/** Listens on the options' host and port; a port in use or a bad address is an Error in words. */
async function listen(server: Server, o: ServeOptions): Promise<void> {
  const where = `${o.host ?? "127.0.0.1"}:${o.port ?? 8080}`;
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${where}: ${LISTEN_PROBLEMS[err.code ?? ""] ?? err.message}`, { cause: err })));
    server.listen(o.port ?? 8080, o.host ?? "127.0.0.1", () => resolveListen());
  });
}

/** Starts the server (listening at once) and the model thread (loading in the background). */
export async function startServer(o: ServeOptions): Promise<InvokeServer> {
  const log = o.log ?? (() => {});
  const input = resolve(o.input), output = resolve(o.output);
  const s: ServerState = { state: "loading", loadError: "", model: {}, busy: null };
  const c: InvokeContext = { o, log, input, output, outputFile: join(output, OUTPUT_FILE), s };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => route(c, req, res));
  await listen(server, o);
  // the model thread starts once the port is ours: a server that cannot listen must exit, not wait on it
  const thread = new ModelThread((why) => {
    s.state = "failed";
    s.loadError = s.loadError || why;
  });
  c.thread = thread;
  const addr = server.address();
  if (!addr || typeof addr === "string") throw new Error("the server has no TCP address");
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  log(`listening on http://${host}:${addr.port} (GET /health, POST /invoke); loading ${o.model}`);

  const ready = thread.request({ type: "load", model: o.model }).then(
    (info) => {
      s.model = { model: info.checkpoint, step: info.step };
      s.state = "ready";
      log(`ready: ${String(info.checkpoint)} (step ${String(info.step)})`);
    },
    (err: Error) => {
      s.state = "failed";
      s.loadError = err.message;
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
      thread.worker.removeAllListeners("exit");
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections(); // keep-alive connections would hold close() open
      await Promise.all([closed, thread.worker.terminate()]);
    },
  };
}
