// lsmseg export-container: a folder from which `docker build` makes the SELMA3D algorithm container, and the
// model tarball Grand Challenge unpacks into /opt/ml/model. The folder holds a Dockerfile, lsmseg's sources
// (built inside the image against Debian's libtorch), model.tar.gz and a README with the steps.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveCheckpoint } from "../seg/model.ts";
import { readCheckpointMeta } from "../torch/index.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { type TarEntry, writeTarGz } from "../util/tar.ts";
import { INPUT_FOLDER, OUTPUT_FILE } from "./server.ts";

export interface ExportOptions {
  /** A fine-tuning run folder (final → best → latest checkpoint) or a checkpoint file. */
  model: string;
  out: string;
  /** The image's name in the README's commands. */
  tag?: string;
}

export interface ExportResult {
  out: string;
  dockerfile: string;
  modelTarball: string;
  /** The names inside model.tar.gz, in order. */
  modelFiles: string[];
  checkpoint: string;
  sha256: string;
}

/** What of lsmseg the image needs to build and run (no tests, benchmarks or data): the compiled dist/, not src/. */
const SOURCE_PATHS = ["package.json", "package-lock.json", "binding.gyp", "bin", "dist", "native", "scripts"];

/** The checkpoint's name inside the tarball: what `lsmseg serve --model /opt/ml/model` looks for first. */
export const MODEL_CHECKPOINT = "checkpoint_final.safetensors";

const repoRoot = () => fileURLToPath(new URL("../../", import.meta.url));

async function sha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

export function dockerfile(): string {
  return `# The SELMA3D algorithm container (Grand Challenge "invoke" API), written by lsmseg export-container.
# Build from this folder: docker build -t lsmseg-selma3d .
# At run time the platform unpacks model.tar.gz into /opt/ml/model (read-only), puts the case under /input,
# collects /output, and gives no network; only /tmp is writable.
FROM node:20-bookworm-slim

# Debian's libtorch (CPU), gloo, and what node-gyp needs to build lsmseg's native addon against it.
RUN apt-get update \\
 && apt-get install -y --no-install-recommends libtorch-dev libgloo-dev g++ make python3 \\
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/lsmseg
# node-gyp finds the node headers of this image here instead of downloading them
ENV npm_config_nodedir=/usr/local
COPY lsmseg/package.json lsmseg/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts
COPY lsmseg/ ./
# builds the native addon (libtorch is found, npm dependencies are there) and checks that it loads
RUN node scripts/setup.mjs

ENV NODE_ENV=production
EXPOSE 8080
ENTRYPOINT ["node", "/opt/lsmseg/bin/lsmseg.js", "serve", "--model", "/opt/ml/model", "--input", "/input", "--output", "/output", "--host", "0.0.0.0", "--port", "8080"]
`;
}

function readme(r: { tag: string; checkpoint: string; sha256: string; step: number; modelFiles: string[] }): string {
  return `# SELMA3D container for Grand Challenge

Written by \`lsmseg export-container\` from \`${r.checkpoint}\` (step ${r.step}, sha256 \`${r.sha256.slice(0, 16)}…\`).

| file | what |
| --- | --- |
| \`Dockerfile\` | Debian (node:20-bookworm-slim) + Debian's libtorch-dev; builds lsmseg and runs \`lsmseg serve --model /opt/ml/model\` |
| \`lsmseg/\` | lsmseg's sources, built inside the image |
| \`model.tar.gz\` | the model, laid out as the platform unpacks it into \`/opt/ml/model\`: ${r.modelFiles.map((f) => `\`${f}\``).join(", ")} |

## Build

\`\`\`sh
docker build -t ${r.tag} .
\`\`\`

## Test locally

\`\`\`sh
mkdir -p model input/${INPUT_FOLDER} output && tar -xzf model.tar.gz -C model
cp /path/to/case.mha input/${INPUT_FOLDER}/
docker run --rm --network none -p 127.0.0.1:8080:8080 \\
  -v "$PWD/model:/opt/ml/model:ro" -v "$PWD/input:/input:ro" -v "$PWD/output:/output" ${r.tag}
# in another shell:
curl -s localhost:8080/health            # 503 while loading, then 200
curl -s -X POST localhost:8080/invoke    # 201 when output/${OUTPUT_FILE} is written
lsmseg evaluate --pred output/images/isolated-biological-structure --gt /path/to/labels   # name the output like its case first
\`\`\`
\`--network none\` is as on the platform; the port mapping is for your curl and does not reach the network.

## Upload

1. \`docker save ${r.tag} | gzip -c > ${r.tag}.tar.gz\`
2. On the algorithm's page on Grand Challenge: *Containers → Upload a container image* with \`${r.tag}.tar.gz\`
   (it is checked and becomes active when it passes).
3. *Models → Upload a model* with \`model.tar.gz\`; it is unpacked into \`/opt/ml/model\` for every run.
4. Try it on a case from the algorithm's page, then submit to the challenge phase.
`;
}

/** Writes the container folder (replacing what export-container wrote there before) and returns what is in it. */
export async function exportContainer(o: ExportOptions): Promise<ExportResult> {
  const checkpoint = resolve(resolveCheckpoint(o.model));
  const meta = readCheckpointMeta(checkpoint);
  const plan = meta.extra?.plan;
  if (!plan) throw new Error(`${checkpoint}: the checkpoint carries no plan (is it a pretraining checkpoint? fine-tune it first)`);
  const out = resolve(o.out);
  const root = repoRoot();
  if (out === resolve(root) || resolve(root).startsWith(out + "/")) throw new Error(`--out ${o.out}: choose a folder outside lsmseg's own sources`);
  mkdirSync(out, { recursive: true });

  // the model: the checkpoint under the name serve looks for, its plan, and a manifest with the checksum
  const runDir = statSync(resolve(o.model)).isDirectory() ? resolve(o.model) : null;
  const digest = await sha256(checkpoint);
  const staging = join(out, ".model");
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging);
  writeFileAtomic(join(staging, "plan.json"), Buffer.from(JSON.stringify(plan, null, 2) + "\n"));
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  writeFileAtomic(join(staging, "lsmseg-model.json"), Buffer.from(JSON.stringify({
    lsmseg: pkg.version, checkpoint: MODEL_CHECKPOINT, source: checkpoint, step: meta.step, sha256: digest, exportedAt: new Date().toISOString(),
  }, null, 2) + "\n"));
  const entries: TarEntry[] = [{ name: MODEL_CHECKPOINT, path: checkpoint }, { name: "plan.json", path: join(staging, "plan.json") }];
  if (runDir && existsSync(join(runDir, "config.json"))) entries.push({ name: "config.json", path: join(runDir, "config.json") });
  entries.push({ name: "lsmseg-model.json", path: join(staging, "lsmseg-model.json") });
  const modelTarball = join(out, "model.tar.gz");
  try {
    await writeTarGz(modelTarball, entries);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }

  // the sources the image builds from; its `npm ci --omit=dev` has no TypeScript, so it runs dist/, which a
  // checkout builds first when src/ is newer
  if (existsSync(join(root, "src"))) {
    const built = spawnSync(process.execPath, [join(root, "scripts", "build.mjs"), "--if-stale", "--quiet"], { stdio: ["ignore", "inherit", "inherit"] });
    if (built.status !== 0) throw new Error(`${join(root, "dist")}: could not compile src/ (npm run build says why)`);
  }
  const src = join(out, "lsmseg");
  rmSync(src, { recursive: true, force: true });
  for (const p of SOURCE_PATHS) {
    if (existsSync(join(root, p))) cpSync(join(root, p), join(src, p), { recursive: true, filter: (f) => !/[/\\](node_modules|build)([/\\]|$)/.test(f.slice(root.length)) });
  }
  const dockerfilePath = join(out, "Dockerfile");
  writeFileAtomic(dockerfilePath, Buffer.from(dockerfile()));
  writeFileAtomic(join(out, ".dockerignore"), Buffer.from("model.tar.gz\n*.tar.gz\nmodel/\ninput/\noutput/\n"));
  const modelFiles = entries.map((e) => e.name);
  writeFileAtomic(join(out, "README.md"), Buffer.from(readme({ tag: o.tag ?? "lsmseg-selma3d", checkpoint, sha256: digest, step: meta.step, modelFiles })));
  return { out, dockerfile: dockerfilePath, modelTarball, modelFiles, checkpoint, sha256: digest };
}
