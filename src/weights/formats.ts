// Weights in and out of lsmseg in other frameworks' layouts. A format is one entry of FORMATS: how to open its
// files (the architecture and preprocessing they imply, and their tensors under the format's own key names),
// the key map between an lsmseg network and those names, and how export wraps the state dict. Adding a format
// (MONAI's networks, say) is adding one entry: an `open` that builds the lsmseg network config and a `keyMap`.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { type NetworkConfig } from "../nn/networks.ts";
import { type SwinUNETRConfig, swinUnetrConfig } from "../nn/swin_unetr.ts";
import { unetrConfig } from "../nn/unetr.ts";
import { RESENC_PRESETS } from "../nn/resenc_unet.ts";
import type { Plan } from "../seg/plan.ts";
import { type Tensor, loadSafetensors } from "../torch/index.ts";
import { PyDict, PyTuple, type PyValue, TensorRef } from "../torch/pickle.ts";
import { readPth, stateDictOf } from "../torch/pth.ts";
import { type KeyEntry, dnaKeys } from "./keymap.ts";
import { networkFromNnUNetKwargs, planFromNnUNet } from "./nnunet.ts";
import { checkExists, fsError } from "../util/fserror.ts";

/** A source state dict under its own key names, read lazily (a .pth's tensors are decoded when loaded). */
export interface SourceTensors {
  keys(): string[];
  shape(key: string): number[];
  /** Whether two keys hold the same values without reading them (shared storage), or null when unknown. */
  sameStorage(a: string, b: string): boolean | null;
  load(key: string): Tensor;
  dispose(): void;
}

export interface OpenedWeights {
  /** The file the tensors came from. */
  file: string;
  /** The full plan (architecture + preprocessing) when the source says enough for prediction; else null (an encoder init). */
  plan: Plan | null;
  network: NetworkConfig;
  tensors: SourceTensors;
  /** Source keys are renamed by this before the key map applies (nnssl's encoder-only files lack "encoder."). */
  rename?: (key: string) => string;
  /** lsmseg tensors may stay at their initialisation (an encoder-only checkpoint). */
  partial: boolean;
  /** Source keys without a place in the lsmseg network are reported rather than refused. */
  allowUnmapped: boolean;
  /** lsmseg keys that may lack a source and stay at their initialisation (old MONAI UNETRs lack the cross-attention weights). */
  optional?: (lsmsegKey: string) => boolean;
  /** Where the architecture came from, and anything else the report should say. */
  notes: string[];
  /** Carried into the model folder (trainer, epoch, recommended patch size, ...). */
  info: Record<string, unknown>;
}

export interface OpenOptions {
  fold?: string;
  configuration?: string;
  checkpointName?: string;
  plansFile?: string;
  datasetFile?: string;
  arch?: NetworkConfig["arch"];
  keyMapFile?: string;
  /** monai: what MONAI's constructor took (what the tensors' shapes do not say); the rest is inferred. */
  monai?: MonaiOptions;
}

export interface MonaiOptions {
  imgSize?: [number, number, number];
  featureSize?: number;
  hiddenSize?: number;
  mlpDim?: number;
  numHeads?: number[];
  inChannels?: number;
  outChannels?: number;
  windowSize?: [number, number, number];
  depths?: number[];
}

export interface WeightFormat {
  describe: string;
  open(input: string, o: OpenOptions): OpenedWeights;
  /** Target key ↔ lsmseg key, in the target's state-dict order. */
  keyMap(network: NetworkConfig, o: OpenOptions): KeyEntry[];
  /** Whether export-weights writes this format. */
  exportable: boolean;
  /** The object export pickles around the state dict (default: the state dict itself); `imported`: what import-weights recorded. */
  wrap?(stateDict: PyDict, imported: Record<string, unknown> | undefined): PyDict;
}

// ---------------------------------------------------------------------------------------------------------
// sources

function pthSource(file: string, pickPath: (root: PyValue) => PyValue | undefined, what: string): { tensors: SourceTensors; root: PyDict | null } {
  const pth = readPth(file);
  const sd = stateDictOf(pickPath(pth.root), `${basename(file)}: ${what}`);
  const tensors: SourceTensors = {
    keys: () => [...sd.keys()],
    shape: (k) => sd.get(k)!.shape,
    sameStorage: (a, b) => {
      const x = sd.get(a)!, y = sd.get(b)!;
      const same = x.storage.key === y.storage.key && x.storageOffset === y.storageOffset
        && x.stride.join() === y.stride.join() && x.shape.join() === y.shape.join();
      return same ? true : null;
    },
    load: (k) => pth.tensor(sd.get(k)!),
    dispose: () => {},
  };
  return { tensors, root: pth.root instanceof PyDict ? pth.root : null };
}

function safetensorsSource(file: string): { tensors: SourceTensors; metadata: Record<string, string> } {
  const st = loadSafetensors(file);
  return {
    metadata: st.metadata,
    tensors: {
      keys: () => [...st.tensors.keys()],
      shape: (k) => st.tensors.get(k)!.shape,
      sameStorage: () => null,
      load: (k) => st.tensors.get(k)!.clone(),
      dispose: () => { for (const t of st.tensors.values()) t.dispose(); },
    },
  };
}

/** A state dict from a file: .safetensors, or a .pth holding a state dict or {network_weights | state_dict | model: …}. */
function openStateDict(file: string, key?: string): { tensors: SourceTensors; root: PyDict | null; metadata: Record<string, string> } {
  checkExists(file, "no such file");
  if (extname(file) === ".safetensors") return { ...safetensorsSource(file), root: null };
  const src = pthSource(file, (root) => {
    if (!(root instanceof PyDict)) return root;
    for (const k of key ? [key] : ["network_weights", "state_dict", "model"]) if (root.get(k) instanceof PyDict) return root.get(k);
    return root;
  }, key ?? "the state dict");
  return { ...src, metadata: {} };
}

const readJson = (path: string): unknown => {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code ? fsError(path, err) : new Error(`${path}: ${(err as Error).message}`);
  }
};

/** Python values from a checkpoint's init_args as JSON (tuples as lists, dicts as objects). */
function toJson(v: PyValue | undefined): unknown {
  if (v instanceof PyDict) return Object.fromEntries([...v.map].map(([k, x]) => [String(k), toJson(x)]));
  if (Array.isArray(v)) return v.map(toJson);
  if (v && typeof v === "object" && "items" in v) return (v.items as PyValue[]).map(toJson);
  if (typeof v === "bigint") return Number(v);
  if (v instanceof TensorRef) return null;
  return v ?? null;
}

// ---------------------------------------------------------------------------------------------------------
// nnU-Net

/** The files of an nnU-Net trained-model folder (plans.json, dataset.json, fold_K/checkpoint_final.pth). */
function nnunetFolder(dir: string, o: OpenOptions): { checkpoint: string; plans: string; dataset: string } {
  const plans = join(dir, "plans.json"), dataset = join(dir, "dataset.json");
  for (const f of [plans, dataset]) if (!existsSync(f)) throw new Error(`${dir}: not an nnU-Net trained-model folder (no ${basename(f)})`);
  const folds = readdirSync(dir).filter((d) => /^fold_(\d+|all)$/.test(d)).sort();
  const fold = o.fold !== undefined ? `fold_${o.fold}` : folds[0];
  if (!fold || !existsSync(join(dir, fold))) throw new Error(`${dir}: no ${o.fold !== undefined ? `fold_${o.fold}` : "fold_K"} folder (there are: ${folds.join(", ") || "none"})`);
  const names = o.checkpointName ? [o.checkpointName] : ["checkpoint_final.pth", "checkpoint_best.pth"];
  const checkpoint = names.map((n) => join(dir, fold, n)).find((p) => existsSync(p));
  if (!checkpoint) throw new Error(`${join(dir, fold)}: no ${names.join(" / ")}`);
  return { checkpoint, plans, dataset };
}

const nnunet: WeightFormat = {
  describe: "nnU-Net v2: a trained-model folder (plans.json, dataset.json, fold_K/checkpoint_final.pth) or one checkpoint (its init_args carry the plans)",
  open(input, o) {
    const configName = o.configuration ?? "3d_fullres";
    let file = input, plansRaw: unknown, datasetRaw: unknown;
    const notes: string[] = [];
    if (statSync(input).isDirectory()) {
      const f = nnunetFolder(input, o);
      file = f.checkpoint;
      plansRaw = readJson(o.plansFile ?? f.plans);
      datasetRaw = readJson(o.datasetFile ?? f.dataset);
      notes.push(`architecture, patch size and normalisation from ${o.plansFile ?? f.plans} (configuration ${configName})`);
    }
    const { tensors, root } = openStateDict(file, extname(file) === ".safetensors" ? undefined : "network_weights");
    const init = root?.get("init_args");
    if (plansRaw === undefined) {
      if (o.plansFile) plansRaw = readJson(o.plansFile);
      else if (init instanceof PyDict && init.get("plans")) plansRaw = toJson(init.get("plans"));
      else throw new Error(`${file}: no plans: pass the trained-model folder, or --plans plans.json --dataset-json dataset.json`);
      if (o.datasetFile) datasetRaw = readJson(o.datasetFile);
      else if (init instanceof PyDict && init.get("dataset_json")) datasetRaw = toJson(init.get("dataset_json"));
      else throw new Error(`${file}: no dataset.json: pass --dataset-json`);
      notes.push(`architecture, patch size and normalisation from ${o.plansFile ? o.plansFile : "the checkpoint's init_args.plans"} (configuration ${configName})`);
    }
    const cfgName = o.configuration ?? (init instanceof PyDict && typeof init.get("configuration") === "string" ? init.get("configuration") as string : configName);
    const plan = planFromNnUNet(plansRaw, datasetRaw, cfgName, basename(file));
    const info: Record<string, unknown> = { configuration: cfgName };
    for (const k of ["trainer_name", "current_epoch", "_best_ema", "inference_allowed_mirroring_axes"]) if (root?.has(k)) info[k] = toJson(root.get(k));
    return { file, plan, network: plan.network, tensors, partial: false, allowUnmapped: false, notes, info };
  },
  keyMap: (net) => dnaKeys(net, "nnunet"),
  exportable: true,
  // what nnUNetPredictor reads from a fold's checkpoint besides the weights, so the file can stand in for fold_K/checkpoint_final.pth
  wrap: (sd, imported) => new PyDict(false, [
    ["network_weights", sd],
    ["trainer_name", typeof imported?.trainer_name === "string" ? imported.trainer_name : "nnUNetTrainer"],
    ["init_args", new PyDict(false, [["configuration", typeof imported?.configuration === "string" ? imported.configuration : "3d_fullres"]])],
    ["inference_allowed_mirroring_axes", new PyTuple((Array.isArray(imported?.inference_allowed_mirroring_axes) ? imported.inference_allowed_mirroring_axes as number[] : [0, 1, 2]))],
  ]),
};

// ---------------------------------------------------------------------------------------------------------
// nnssl

const nnssl: WeightFormat = {
  describe: "nnssl: a pretrained checkpoint with its nnssl_adaptation_plan (ResEncL, ResidualEncoderUNet or PlainConvUNet; the whole network or the encoder alone); an encoder init for finetune --init",
  open(input) {
    const { tensors, root } = openStateDict(input, "network_weights");
    const where = basename(input);
    const adapt = root?.get("nnssl_adaptation_plan");
    if (!(adapt instanceof PyDict)) throw new Error(`${where}: no nnssl_adaptation_plan (is it an nnssl checkpoint? an nnU-Net one imports with --format nnunet)`);
    const a = toJson(adapt) as Record<string, unknown>;
    const ap = (a.architecture_plans ?? {}) as Record<string, unknown>;
    const cls = String(ap.arch_class_name);
    const inChannels = Number(a.pretrain_num_input_channels ?? 1);
    const keyToEncoder = String(a.key_to_encoder ?? "encoder.stages");
    const encoderOnly = !keyToEncoder.startsWith("encoder.");
    const rename = encoderOnly ? (k: string) => `encoder.${k}` : undefined;
    const keys = tensors.keys().map((k) => rename?.(k) ?? k);
    // the head's class count where the checkpoint has the decoder (MAE reconstructs 1 channel); else 1
    const head = keys.filter((k) => /^decoder\.seg_layers\.\d+\.weight$/.test(k)).sort((x, y) => Number(x.split(".")[2]) - Number(y.split(".")[2])).pop();
    const numClasses = head ? tensors.shape(encoderOnly ? head.slice(8) : head)[0] : 1;
    let network: NetworkConfig;
    if (cls === "ResEncL") network = { ...RESENC_PRESETS.L.network, inChannels, numClasses, deepSupervision: true };
    else if (cls === "ResidualEncoderUNet" || cls === "PlainConvUNet") {
      network = networkFromNnUNetKwargs(`dynamic_network_architectures.architectures.unet.${cls}`, (ap.arch_kwargs ?? {}) as Record<string, unknown>, inChannels, numClasses, `${where}: nnssl_adaptation_plan.architecture_plans`);
    } else throw new Error(`${where}: architecture '${cls}' has no lsmseg counterpart (ResEncL, ResidualEncoderUNet and PlainConvUNet have; Primus is a transformer)`);
    const info = { trainer_name: toJson(root?.get("trainer_name")), current_epoch: toJson(root?.get("current_epoch")), recommended_downstream_patchsize: a.recommended_downstream_patchsize, arch_class_name: cls, encoder_only: encoderOnly };
    return {
      file: input, plan: null, network, tensors, rename, partial: true, allowUnmapped: true, info,
      notes: [`architecture ${cls} from nnssl_adaptation_plan${encoderOnly ? "; the checkpoint holds the encoder alone" : ""}; use the folder as finetune --init (it has no plan for predict)`],
    };
  },
  keyMap: (net) => dnaKeys(net, "nnssl"),
  exportable: false,
};

// ---------------------------------------------------------------------------------------------------------
// any PyTorch state dict, with a key map file

/**
 * --key-map FILE.json: {"network": {...lsmseg config}, "patchSize": [z,y,x], "stateDictKey": "...", "keys": {"src": "lsmseg"},
 * "rules": [["regex", "replacement"]]}
 */
export interface KeyMapFile {
  network?: Partial<NetworkConfig>;
  plan?: Plan;
  patchSize?: [number, number, number];
  stateDictKey?: string;
  keys?: Record<string, string>;
  rules?: [string, string][];
}

function readKeyMap(path: string | undefined): KeyMapFile {
  if (!path) return {};
  const k = readJson(path) as KeyMapFile;
  if (!k || typeof k !== "object") throw new Error(`${path}: a key map is a JSON object`);
  for (const [i, r] of (k.rules ?? []).entries()) {
    if (!Array.isArray(r) || r.length !== 2) throw new Error(`${path}: rules[${i}] should be ["regex", "replacement"]`);
    try {
      new RegExp(r[0]);
    } catch (err) {
      throw new Error(`${path}: rules[${i}]: ${(err as Error).message}`);
    }
  }
  return k;
}

/** A source key's lsmseg name under a key map file: an exact entry, else the first rule that matches, else itself. */
function renameByKeyMap(k: KeyMapFile): (key: string) => string {
  const rules = (k.rules ?? []).map(([re, to]) => [new RegExp(re), to] as const);
  return (key) => {
    if (k.keys && key in k.keys) return k.keys[key];
    for (const [re, to] of rules) if (re.test(key)) return key.replace(re, to);
    return key;
  };
}

const pytorch: WeightFormat = {
  describe: "a PyTorch state dict (.pth/.pt or .safetensors) under lsmseg's own key names, or renamed by --key-map FILE.json",
  open(input, o) {
    const km = readKeyMap(o.keyMapFile);
    const { tensors, metadata } = openStateDict(input, km.stateDictKey);
    const beside = `${input}.plan.json`;
    const carried = metadata.lsmseg_plan ? (JSON.parse(metadata.lsmseg_plan) as Plan) : existsSync(beside) ? (readJson(beside) as Plan) : undefined;
    const plan = km.plan ?? carried;
    const arch = o.arch ?? km.network?.arch ?? plan?.network.arch;
    if (!arch) throw new Error(`${input}: which network? pass --arch unet|resenc and a --key-map with a "network" section`);
    const network = { ...(plan?.network ?? {}), ...(km.network ?? {}), arch } as NetworkConfig;
    if (!network.features) throw new Error(`${input}: the network's features/strides/kernelSizes are unknown: give them in the --key-map file's "network" section`);
    const full = plan ? { ...plan, network, ...(km.patchSize ? { patchSize: km.patchSize } : {}) } : null;
    return {
      file: input, plan: full, network, tensors, rename: renameByKeyMap(km), partial: false, allowUnmapped: false, info: {},
      notes: [`network ${arch} from ${km.network ? o.keyMapFile : carried ? (metadata.lsmseg_plan ? "the file's lsmseg_plan metadata" : beside) : "--arch"}`],
    };
  },
  // lsmseg's own names: the identity map over the network's state dict (the caller supplies the keys)
  keyMap: () => [],
  exportable: true,
};

// ---------------------------------------------------------------------------------------------------------
// MONAI: UNETR and SwinUNETR, whose lsmseg parameter names are MONAI's state-dict keys (the identity map)

/** The state dict of a MONAI checkpoint: a bare state dict, or under state_dict / model / net (bundles, tutorials). */
function openMonai(file: string): SourceTensors {
  checkExists(file, "no such file");
  if (extname(file) === ".safetensors") return safetensorsSource(file).tensors;
  return pthSource(file, (root) => {
    if (!(root instanceof PyDict)) return root;
    for (const k of ["state_dict", "model", "net", "network"]) if (root.get(k) instanceof PyDict) return root.get(k);
    return root;
  }, "the state dict").tensors;
}

const cubeRoot = (n: number): number | null => {
  const r = Math.round(Math.cbrt(n));
  return r ** 3 === n ? r : null;
};

/** The UNETR config: the flags, else what the tensors' shapes say (hidden size, input channels, feature size, classes, MLP, projection, qkv bias). */
function monaiUnetr(where: string, shape: (k: string) => number[] | undefined, m: MonaiOptions, notes: string[]): NetworkConfig {
  const pos = shape("vit.patch_embedding.position_embeddings");
  if (!pos) throw new Error(`${where}: no vit.patch_embedding.position_embeddings: not a MONAI UNETR state dict (is it a SwinUNETR? pass --arch swinunetr)`);
  const conv = shape("vit.patch_embedding.patch_embeddings.weight"), perc = shape("vit.patch_embedding.patch_embeddings.1.weight");
  const projType = conv ? "conv" : "perceptron";
  const inferred: string[] = [];
  const pick = <V>(flag: V | undefined, value: V | undefined, name: string, fallback: V): V => {
    if (flag !== undefined) return flag;
    if (value !== undefined) {
      inferred.push(`${name} ${Array.isArray(value) ? value.join("×") : value}`);
      return value;
    }
    return fallback;
  };
  const hiddenSize = pick(m.hiddenSize, pos[2], "hidden", 768);
  const inChannels = pick(m.inChannels, conv ? conv[1] : perc ? perc[1] / 16 ** 3 : undefined, "in channels", 1);
  const g = cubeRoot(pos[1]);
  if (!m.imgSize && g === null) throw new Error(`${where}: ${pos[1]} position embeddings are not a cube of patches: pass --img-size Z,Y,X (the img_size MONAI's UNETR was built with)`);
  const imgSize = pick(m.imgSize, g === null ? undefined : [16 * g, 16 * g, 16 * g] as [number, number, number], "img size", [128, 128, 128] as [number, number, number]);
  const cfg = unetrConfig({
    inChannels, imgSize, hiddenSize, projType,
    featureSize: pick(m.featureSize, shape("encoder1.layer.conv1.conv.weight")?.[0], "feature size", 16),
    numClasses: pick(m.outChannels, shape("out.conv.conv.weight")?.[0], "out channels", 2),
    mlpDim: pick(m.mlpDim, shape("vit.blocks.0.mlp.linear1.weight")?.[0], "mlp dim", 3072),
    numHeads: m.numHeads?.[0] ?? 12,
    qkvBias: shape("vit.blocks.0.attn.qkv.bias") !== undefined,
  });
  notes.push(`MONAI UNETR (proj_type ${projType}, ${cfg.numHeads} heads${m.numHeads ? "" : " (the default; --heads N)"}); from the tensors' shapes: ${inferred.join(", ") || "nothing (all given)"}`);
  return cfg;
}

/**
 * The SwinUNETR config: the flags, else the shapes (feature size, input channels, classes, depths, heads from the
 * bias tables, window, MLP ratio, v2).
 */
function monaiSwin(
  where: string, keys: string[], shape: (k: string) => number[] | undefined, m: MonaiOptions, notes: string[], prefix: string,
): SwinUNETRConfig {
  const pe = shape(`${prefix}patch_embed.proj.weight`);
  if (!pe) throw new Error(`${where}: no ${prefix}patch_embed.proj.weight: not a MONAI SwinUNETR state dict (is it a UNETR? pass --arch unetr)`);
  const depths = [1, 2, 3, 4].map((s) => {
    const re = new RegExp(`^${prefix.replace(".", "\\.")}layers${s}\\.0\\.blocks\\.(\\d+)\\.`);
    return keys.reduce((n, k) => Math.max(n, Number(re.exec(k)?.[1] ?? -1) + 1), 0);
  });
  const heads = [1, 2, 3, 4].map((s) => shape(`${prefix}layers${s}.0.blocks.0.attn.relative_position_bias_table`)?.[1]);
  const table = shape(`${prefix}layers1.0.blocks.0.attn.relative_position_bias_table`)?.[0];
  const w = table === undefined ? null : cubeRoot(table);
  if (!m.windowSize && (w === null || w % 2 === 0)) throw new Error(`${where}: the relative position tables (${table ?? "none"} rows) are not of a cubic window: pass --window-size Z,Y,X`);
  const windowSize = m.windowSize ?? ([(w! + 1) / 2, (w! + 1) / 2, (w! + 1) / 2] as [number, number, number]);
  const f = m.featureSize ?? pe[0];
  const mlp = shape(`${prefix}layers1.0.blocks.0.mlp.linear1.weight`);
  const cfg = swinUnetrConfig({
    featureSize: f, inChannels: m.inChannels ?? pe[1], numClasses: m.outChannels ?? shape("out.conv.conv.weight")?.[0] ?? 2,
    depths: (m.depths ?? (depths.every((d) => d > 0) ? depths : [2, 2, 2, 2])) as SwinUNETRConfig["depths"],
    numHeads: (m.numHeads ?? (heads.every((h) => h !== undefined) ? heads : [3, 6, 12, 24])) as SwinUNETRConfig["numHeads"],
    windowSize, mlpRatio: mlp ? mlp[0] / f : 4, qkvBias: shape(`${prefix}layers1.0.blocks.0.attn.qkv.bias`) !== undefined,
    useV2: keys.some((k) => k.startsWith(`${prefix}layers1c.`)),
  });
  notes.push(`MONAI SwinUNETR: feature size ${cfg.featureSize}, depths ${cfg.depths.join("/")}, heads ${cfg.numHeads.join("/")}, window ${cfg.windowSize.join("×")}, mlp ratio ${cfg.mlpRatio}, ${cfg.useV2 ? "v2" : "v1"}, ${cfg.numClasses} classes (from the flags, else the tensors' shapes; normalize and downsample "merging" as MONAI's defaults)`);
  return cfg;
}

const monai: WeightFormat = {
  describe: "MONAI UNETR / SwinUNETR (--arch unetr|swinunetr): a state dict (.pth/.pt, bare or under state_dict / model / net; or .safetensors); also the SwinUNETR self-supervised model_swinvit.pt as an encoder init",
  open(input, o) {
    const m = o.monai ?? {};
    const where = basename(input);
    const tensors = openMonai(input);
    const clean = new Map(tensors.keys().map((k) => [k.replace(/^(module\.|_orig_mod\.)+/, ""), k]));
    const keys = [...clean.keys()];
    const shape = (k: string) => (clean.has(k) ? tensors.shape(clean.get(k)!) : undefined);
    const arch = o.arch ?? (clean.has("vit.patch_embedding.position_embeddings") ? "unetr" : keys.some((k) => k.startsWith("swinViT.") || k.startsWith("layers1.")) ? "swinunetr" : undefined);
    if (arch !== "unetr" && arch !== "swinunetr") throw new Error(`${where}: which MONAI network? pass --arch unetr or --arch swinunetr`);
    const notes: string[] = [];
    const plan = (network: NetworkConfig, patchSize: [number, number, number]): Plan => ({
      version: 1, patchSize, batchSize: 2, spacingUm: [1, 1, 1], normalization: { scheme: "percentile-zscore", percentiles: [0.5, 99.5] }, network,
      fingerprint: { cases: 0, medianShape: patchSize, minShape: patchSize, maxVoxelsPerPatch: patchSize[0] * patchSize[1] * patchSize[2] },
    });
    const base = { file: input, tensors, partial: false, allowUnmapped: false, info: { arch } };
    if (arch === "unetr") {
      const network = monaiUnetr(where, shape, m, notes);
      const patch = (network as { imgSize: [number, number, number] }).imgSize;
      notes.push(`patch ${patch.join("×")} (the img_size), lsmseg's percentile z-score normalisation (0.5/99.5)`);
      // MONAI < 1.4's TransformerBlock had no cross-attention: its checkpoints lack these (unused) weights
      return { ...base, network, plan: plan(network, patch), notes, optional: (k) => /^vit\.blocks\.\d+\.(norm_cross_attn|cross_attn)\./.test(k) };
    }
    // the self-supervised Swin encoder (research-contributions' model_swinvit.pt): module.patch_embed / layersN / norm
    // → swinViT.*, as MONAI's load_from
    // (its blocks' MLP is mlp.fc1 / fc2 where MONAI's SwinUNETR has mlp.linear1 / linear2)
    if (!keys.some((k) => k.startsWith("swinViT.")) && keys.some((k) => k.startsWith("patch_embed."))) {
      const rename = (k: string) => (/^(patch_embed|layers\d)\./.test(k) ? `swinViT.${k.replace(/\.mlp\.fc([12])\./, ".mlp.linear$1.")}` : k);
      const renamed = new Map(keys.map((k) => [rename(k), k]));
      const network = monaiSwin(where, [...renamed.keys()], (k) => (renamed.has(k) ? shape(renamed.get(k)!) : undefined), m, notes, "swinViT.");
      notes.push("the self-supervised Swin encoder alone (module.patch_embed / layersN.* → swinViT.*, mlp.fc1/fc2 → mlp.linear1/linear2, as MONAI's SwinUNETR.load_from); use the folder as finetune --init (it has no plan for predict)");
      return { ...base, network, plan: null, notes, partial: true, allowUnmapped: true, rename, info: { arch, encoder_only: true } };
    }
    const network = monaiSwin(where, keys, shape, m, notes, "swinViT.");
    const patch = m.imgSize ?? [96, 96, 96];
    if (patch.some((v) => v % 32 !== 0)) throw new Error(`--img-size ${patch.join(",")}: SwinUNETR's patch must be a multiple of 32 on every axis`);
    notes.push(`patch ${patch.join("×")} (${m.imgSize ? "--img-size" : "the default; --img-size Z,Y,X"}), lsmseg's percentile z-score normalisation (0.5/99.5)`);
    return { ...base, network, plan: plan(network, patch), notes };
  },
  keyMap: (net) => {
    if (net.arch !== "unetr" && net.arch !== "swinunetr") throw new Error(`--format monai: architecture '${net.arch}' is not a MONAI network here (unetr and swinunetr are)`);
    return []; // the identity: lsmseg's UNETR / SwinUNETR state dicts are MONAI's, keys and order
  },
  exportable: true,
};

export const FORMATS: Record<string, WeightFormat> = { nnunet, nnssl, monai, pytorch };

export function formatByName(name: string | undefined, flag = "--format"): WeightFormat {
  const f = name ? FORMATS[name] : undefined;
  if (!f) throw new Error(`${flag}: expected one of ${Object.keys(FORMATS).join(", ")}, got '${name ?? ""}'`);
  return f;
}
