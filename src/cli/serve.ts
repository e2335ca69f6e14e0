// lsmseg serve: the challenge container's "invoke" API (GET /health, POST /invoke) over a fine-tuned model.
import { type InvokeServer, startServer } from "../serve/server.ts";
import { UsageError, intFlag, parseFlags } from "./args.ts";

const HELP = `usage: lsmseg serve --model DIR [--input /input] [--output /output] [--host 127.0.0.1] [--port 8080] [options]

Grand Challenge's "invoke" contract, as the SELMA3D algorithm container runs it: the model is loaded once;
GET /health answers 200 when it is ready (503 while loading); POST /invoke predicts the one image in
<input>/images/light-sheet-3d-microscopy/ (.mha, .tif, .tiff; described by <input>/inputs.json) and writes
<output>/images/isolated-biological-structure/output.mha (int8 {0,1}, compressed, the input's shape),
answering 201 with a JSON summary. A second invoke while one runs gets 409 (busy); a missing, doubled or
unreadable image gets 400/422 with a JSON error and writes nothing. Stops on SIGTERM or SIGINT.
  --model DIR        a fine-tuning run folder or checkpoint (in the container: /opt/ml/model)
  --input DIR        default /input
  --output DIR       default /output
  --host ADDR        default 127.0.0.1 (the container passes 0.0.0.0)
  --port N           default 8080
  --no-tta           skip mirror averaging (on by default: 8 flips, slower, a little better)
  --precision bf16|fp32  default bf16 where the CPU has it`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    model: { type: "string" }, input: { type: "string" }, output: { type: "string" }, host: { type: "string" }, port: { type: "string" },
    "no-tta": { type: "boolean" }, precision: { type: "string" },
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.model) throw new UsageError(`--model DIR is required\n\n${HELP}`);
  if (v.precision && v.precision !== "bf16" && v.precision !== "fp32") throw new UsageError(`--precision: expected bf16 or fp32, got '${v.precision}'`);
  const port = intFlag("port", v.port, 8080, { min: 0, max: 65535 });
  // the signals are ours before the port is: a SIGTERM right after "listening" must stop the server too
  let server: InvokeServer | null = null;
  let stopping = false;
  let stopped!: (code: number) => void;
  const done = new Promise<number>((resolve) => { stopped = resolve; });
  const stop = (signal: string) => {
    console.log(`[serve] ${signal}: stopping`);
    stopping = true;
    // a prediction running in native code cannot be interrupted: exit within a second whatever it does
    setTimeout(() => process.exit(0), 900).unref();
    void server?.close().then(() => stopped(0));
  };
  const onTerm = () => stop("SIGTERM"), onInt = () => stop("SIGINT");
  process.once("SIGTERM", onTerm);
  process.once("SIGINT", onInt);
  try {
    server = await startServer({
      model: v.model, input: v.input ?? "/input", output: v.output ?? "/output", host: v.host ?? "127.0.0.1", port,
      mirror: !v["no-tta"], precision: v.precision as "bf16" | "fp32" | undefined,
      log: (line) => console.log(`[serve] ${line}`),
    });
  } catch (err) {
    process.off("SIGTERM", onTerm);
    process.off("SIGINT", onInt);
    throw err;
  }
  if (stopping) {
    await server.close();
    return 0;
  }
  try {
    await Promise.race([server.ready, done]);
  } catch (err) {
    await server.close();
    throw new Error(`cannot load the model: ${(err as Error).message}`);
  }
  return done;
}
