// lsmseg predict: sliding-window segmentation of volumes of any size with a fine-tuned model.
import { loadModel } from "../seg/model.ts";
import { checkPredictionOutputs, predictPaths } from "../seg/predict.ts";
import { ProcessGroup, defaultPrecision, distOptionsFromEnv } from "../torch/index.ts";
import { Progress } from "../util/progress.ts";
import { DEVICE_HELP, LAUNCH_FLAGS, LAUNCH_HELP, OVERWRITE_HELP, UsageError, deviceFlag, flagNamer, intFlag, launchIfAsked, optNum, parseFlags, withFlags } from "./args.ts";

const HELP = `usage: lsmseg predict --model RUN|CKPT --in FILE|DIR --out FILE|DIR [options]

  --model RUN|CKPT      a fine-tuning run folder (final → best → latest checkpoint) or a checkpoint file
  --in FILE|DIR         a volume (.nii.gz .mha .tif .zarr, a TIFF plane folder) or a folder of volumes
  --out FILE|DIR        the mask (uint8 {0,1}, the input's format, shape and geometry); a folder for many inputs;
                        IMAGE.ome.zarr/labels/NAME puts it into an OME-Zarr image as its image-label NAME
  --no-tta              skip mirror averaging (8 flips; on by default)
  --step F              window step as a fraction of the patch (default 0.5)
  --batch N             windows per batch (default 2)
  --batches-per-forward K
                        run K batches in one forward pass (default: up to 2^21 voxels a forward, e.g. 4 at
                        patch 64, batch 2); the same result as K = 1 where the kernels ignore the batch size
                        (so for the U-Net on CPU, fp32 and bf16)
  --threshold P         foreground when p(foreground) > P instead of argmax
  --probabilities       also write <name>_prob.<ext> (float32 foreground probability)
  --precision bf16|fp32 default bf16 where the CPU has it
${DEVICE_HELP}
  --max-memory-mb N     a volume whose prediction needs more is read and written block by block (resumable:
                        rerun the same command after a kill) with the same result (default 4096; with
                        --nproc, the ranks on a machine share it)
${OVERWRITE_HELP}
  --quiet               no progress output
${LAUNCH_HELP}
                        (a folder's volumes are dealt out to the ranks; one volume is split into z-slabs,
                        the same result bit for bit)`;

/** The flag of each option the library's messages name (OptionError). */
const FLAGS: Record<string, string> = { maxMemoryBytes: "--max-memory-mb", probabilities: "--probabilities", batchSize: "--batch", step: "--step" };
const flagOf = flagNamer(FLAGS);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    model: { type: "string" }, in: { type: "string" }, out: { type: "string" }, "no-tta": { type: "boolean" }, step: { type: "string" },
    batch: { type: "string" }, "batches-per-forward": { type: "string" }, threshold: { type: "string" }, probabilities: { type: "boolean" }, precision: { type: "string" }, device: { type: "string" }, "max-memory-mb": { type: "string" }, quiet: { type: "boolean" }, overwrite: { type: "boolean" },
    ...LAUNCH_FLAGS,
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.model || !v.in || !v.out) throw new UsageError(`--model, --in and --out are required\n\n${HELP}`);
  if (v.precision && v.precision !== "bf16" && v.precision !== "fp32") throw new UsageError(`--precision: expected bf16 or fp32, got '${v.precision}'`);
  // every number is checked before a rank starts or the model loads
  const step = optNum("step", v.step, { above: 0, max: 1 });
  const batchSize = intFlag("batch", v.batch, 2, { min: 1 });
  const batchesPerForward = v["batches-per-forward"] === undefined ? undefined : intFlag("batches-per-forward", v["batches-per-forward"], 1, { min: 1 });
  const threshold = optNum("threshold", v.threshold, { min: 0, max: 1 });
  const maxMemoryMb = intFlag("max-memory-mb", v["max-memory-mb"], 4096, { min: 1 });
  // the outputs are checked once, before the ranks start (a rank would find its peers' masks)
  if (!process.env.WORLD_SIZE) checkPredictionOutputs(v.in, v.out, { overwrite: v.overwrite, probabilities: v.probabilities });
  const launched = await launchIfAsked("predict", argv, v);
  if (launched !== null) return launched;
  const distOpts = distOptionsFromEnv();
  // the ranks only meet at barriers: Gloo's, on the host, whatever the device
  const group = distOpts ? ProcessGroup.init({ ...distOpts, backend: "gloo" }) : null;
  const device = await deviceFlag(v.device);
  const model = loadModel(v.model);
  model.net.to(device);
  let bar: Progress | null = null;
  const input = v.in, out = v.out;
  const opts: Parameters<typeof predictPaths>[3] = {
    onWarning: (w) => console.warn(w.messageWith(flagOf)),
    mirror: !v["no-tta"], step, batchSize, batchesPerForward, threshold, probabilities: v.probabilities,
    precision: (v.precision as "bf16" | "fp32" | undefined) ?? defaultPrecision(), device,
    // the budget is the machine's: the ranks on it share it
    maxMemoryBytes: Math.floor((maxMemoryMb * 2 ** 20) / Math.max(1, Number(process.env.LOCAL_WORLD_SIZE ?? 1))),
    shard: group ? { rank: group.rank, worldSize: group.worldSize, barrier: (ms) => group.barrier(ms) } : undefined,
    onFile: (i, n, path) => { bar?.finish(); bar = new Progress(`predict ${i + 1}/${n} ${path.split("/").pop()}`, 1, { unit: "windows", silent: v.quiet }); },
    onProgress: (done, total) => { if (bar) { bar.total = total; bar.set(done); } },
  };
  const written = await withFlags(FLAGS, () => predictPaths(model, input, out, opts));
  (bar as Progress | null)?.finish();
  group?.destroy();
  if (group && group.rank !== 0) return 0;
  console.log(`wrote ${written.length} mask${written.length === 1 ? "" : "s"}${written.length === 1 ? `: ${written[0]}` : ` to ${v.out}`}`);
  return 0;
}
