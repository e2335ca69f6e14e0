// The serve command's model thread: loads the model once, then predicts one case per message, so that the
// HTTP thread stays free to answer /health and a busy status while a case runs.
import { mkdirSync, realpathSync } from "node:fs";
import { dirname, relative } from "node:path";
import { parentPort } from "node:worker_threads";
import { type Volume, readVolume, writeVolume } from "../io/index.ts";
import { type LoadedModel, loadModel } from "../seg/model.ts";
import { predictVolume } from "../seg/predict.ts";
import { defaultPrecision } from "../torch/index.ts";

export type WorkerRequest =
  | { id: number; type: "load"; model: string }
  | { id: number; type: "predict"; input: string; output: string; outputRoot: string; mirror: boolean; precision?: "bf16" | "fp32" };

export type WorkerReply =
  | { id: number; ok: true; result: Record<string, unknown> }
  | { id: number; ok: false; status: number; error: string };

let model: LoadedModel | null = null;

async function handle(msg: WorkerRequest): Promise<Record<string, unknown>> {
  if (msg.type === "load") {
    model = loadModel(msg.model);
    return { checkpoint: model.checkpoint, step: model.step, patchSize: model.plan.patchSize };
  }
  if (!model) throw Object.assign(new Error("the model is not loaded"), { status: 503 });
  const t0 = performance.now();
  let vol: Volume;
  try {
    vol = await readVolume(msg.input);
  } catch (err) {
    throw Object.assign(new Error(`cannot read ${msg.input}: ${(err as Error).message}`), { status: 422 });
  }
  const precision = msg.precision ?? defaultPrecision();
  const { mask } = predictVolume(model, vol, { mirror: msg.mirror, precision });
  // The mask goes only where it belongs: inside the output folder, even if a link inside it points elsewhere.
  mkdirSync(dirname(msg.output), { recursive: true });
  const rel = relative(realpathSync(msg.outputRoot), realpathSync(dirname(msg.output)));
  if (rel.startsWith("..")) throw new Error(`${dirname(msg.output)} resolves outside the output folder ${msg.outputRoot}; not writing there`);
  const { data: _data, ...header } = vol;
  // int8 {0, 1} with zlib compression, as the organisers' example writes its outputs (temporary name, then rename)
  await writeVolume(msg.output, { ...header, dtype: "int8", data: new Int8Array(mask.buffer, mask.byteOffset, mask.length) }, { compress: true });
  let foreground = 0;
  for (const v of mask) foreground += v;
  const seconds = (performance.now() - t0) / 1000;
  return { shape: vol.shape, spacingUm: vol.spacingUm, foregroundVoxels: foreground, mirror: msg.mirror, precision, seconds };
}

parentPort?.on("message", (msg: WorkerRequest) => {
  handle(msg).then(
    (result) => parentPort?.postMessage({ id: msg.id, ok: true, result } satisfies WorkerReply),
    (err: unknown) => parentPort?.postMessage({
      id: msg.id, ok: false, status: (err as { status?: number }).status ?? 500, error: err instanceof Error ? err.message : String(err),
    } satisfies WorkerReply),
  );
});
