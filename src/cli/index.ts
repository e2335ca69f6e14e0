// lsmseg's command dispatcher: one file per command under src/cli/, each exporting
// `run(argv): Promise<number>` (the exit code). Errors become one clear line, never a stack dump.
import { readFileSync } from "node:fs";
import { tuneHeap } from "../util/heap.ts";
import { exitCodeOf } from "./args.ts";

const COMMANDS: Record<string, string> = {
  synth: "generate the synthetic LSM dataset (the embedded default)",
  inspect: "print a dataset's fingerprint, or one volume's format, layout and intensities",
  convert: "convert a volume between NIfTI, MetaImage, TIFF and OME-Zarr",
  "convert-dataset": "convert a dataset folder between SELMA3D's and nnU-Net's layouts",
  curate: "cut raw whole volumes into a curated pretraining set (Task 2)",
  pretrain: "self-supervised pretraining",
  finetune: "supervised fine-tuning on the annotated patches",
  predict: "sliding-window prediction over volumes of any size",
  evaluate: "SELMA3D metrics, per category",
  experiment: "run a named experiment",
  report: "HTML report with a volume viewer",
  serve: "the challenge container's invoke API",
  "export-container": "the challenge container's Dockerfile and model tarball",
  "import-weights": "nnU-Net / nnssl / PyTorch weights into a model folder",
  "export-weights": "a model's weights as nnU-Net / PyTorch .pth or .safetensors",
  demo: "the end-to-end demo on synthetic data",
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, what]) => `  ${name.padEnd(16)} ${what}`);
  return `usage: lsmseg <command> [options]\n\ncommands:\n${lines.join("\n")}\n\n'lsmseg <command> --help' for a command's options; 'lsmseg --version' for the version.`;
}

export async function main(argv: string[]): Promise<number> {
  tuneHeap();
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "-V") {
    // src/cli/ and dist/cli/ are both two levels below package.json
    console.log((JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version);
    return 0;
  }
  if (!(name in COMMANDS)) {
    console.error(`lsmseg: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    const mod = (await import(`./${name}.ts`)) as { run: (argv: string[]) => Promise<number> };
    return await mod.run(rest);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    console.error(`lsmseg ${name}: ${msg}`);
    if (process.env.LSMSEG_DEBUG && err instanceof Error) console.error(err.stack);
    return exitCodeOf(err);
  }
}
