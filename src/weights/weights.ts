// import-weights and export-weights: a format's tensors through its key map into an lsmseg network (strict
// shapes, aliases checked equal, every key without a place reported), written as a model folder that predict,
// finetune --init, serve and export-container read (checkpoint_final.safetensors carrying the plan, plan.json,
// import_report.json); and back out under the format's names as .pth (torch.save's layout) or .safetensors.
import { existsSync, mkdirSync } from "node:fs";
import { basename, extname, join } from "node:path";
import type { StateDict } from "../nn/module.ts";
import { buildNetwork, type NetworkConfig } from "../nn/networks.ts";
import { CHECKPOINT_NAMES, disposeCheckpoint, resolveCheckpoint } from "../seg/model.ts";
import type { Plan } from "../seg/plan.ts";
import { type Tensor, loadCheckpoint, noGrad, saveCheckpoint, saveSafetensors, zeros } from "../torch/index.ts";
import { PthWriter } from "../torch/pth.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { checkExists } from "../util/fserror.ts";
import { FORMATS, type OpenOptions, type OpenedWeights, formatByName } from "./formats.ts";
import type { KeyEntry } from "./keymap.ts";

export interface ImportReport {
  format: string;
  source: string;
  network: NetworkConfig;
  /** lsmseg tensors that received a source tensor. */
  loaded: number;
  /** Alias keys (the same tensor under a second name) found equal to their primary. */
  aliasesChecked: number;
  /** Source keys with no place in the lsmseg network. */
  unmapped: string[];
  /** lsmseg keys that received nothing (left at their initialisation). */
  untouched: string[];
  /** Source tensors converted to float32 (the source stored them in another float type). */
  converted: string[];
  notes: string[];
}

/** The key map of `format` for `net`, or the identity over lsmseg's own names. */
function keyMapFor(format: string, network: NetworkConfig, own: string[], o: OpenOptions): KeyEntry[] {
  const entries = formatByName(format).keyMap(network, o);
  return entries.length ? entries : own.map((k) => ({ target: k, lsmseg: k, alias: false }));
}

/** The source's keys as lsmseg's key map names them (renamed, without DataParallel's prefixes) → as stored. */
function sourceKeyNames(src: OpenedWeights): Map<string, string> {
  const sourceKeys = new Map<string, string>(); // renamed → as stored
  for (const k of src.tensors.keys()) {
    // DataParallel's "module." and torch.compile's "_orig_mod." prefixes are not part of the network
    const clean = k.replace(/^(module\.|_orig_mod\.)+/, "");
    sourceKeys.set(src.rename ? src.rename(clean) : clean, k);
  }
  return sourceKeys;
}

/**
 * Every lsmseg key with its source keys, the primary first, then the aliases; refuses source tensors with no
 * place in the network (unless the format allows them) and shapes that differ. Returns the unmapped keys too.
 */
function matchKeys(
  src: OpenedWeights, own: StateDict, entries: KeyEntry[], sourceKeys: Map<string, string>, where: string,
): { candidates: Map<string, string[]>; unmapped: string[] } {
  const byTarget = new Map(entries.map((e) => [e.target, e]));
  const unmapped = [...sourceKeys.keys()].filter((k) => !byTarget.has(k)).map((k) => sourceKeys.get(k)!);
  if (unmapped.length && !src.allowUnmapped) {
    const listed = `${unmapped.slice(0, 12).join(", ")}${unmapped.length > 12 ? ", …" : ""}`;
    throw new Error(`${where}: ${unmapped.length} tensors have no place in the ${src.network.arch} network the plans describe: ${listed}`);
  }
  const candidates = new Map<string, string[]>();
  for (const e of entries) {
    if (!own.has(e.lsmseg)) throw new Error(`key map: '${e.lsmseg}' (for ${e.target}) is not a key of lsmseg's ${src.network.arch} network`);
    const list = candidates.get(e.lsmseg) ?? [];
    if (e.alias) list.push(e.target);
    else list.unshift(e.target);
    candidates.set(e.lsmseg, list);
  }
  const mismatched: string[] = [];
  for (const [ls, targets] of candidates) {
    const want = own.get(ls)!.shape;
    for (const t of targets) {
      const sk = sourceKeys.get(t);
      if (sk === undefined) continue;
      const got = src.tensors.shape(sk);
      if (got.length !== want.length || got.some((d, i) => d !== want[i])) mismatched.push(`${sk} is [${got}], lsmseg's ${ls} is [${want}]`);
    }
  }
  if (mismatched.length) {
    throw new Error(`${where}: shapes do not match the network the plans describe: ${mismatched.slice(0, 8).join("; ")}${mismatched.length > 8 ? "; …" : ""}`);
  }
  return { candidates, unmapped };
}

/** Copies each lsmseg key's primary source tensor into the network, checking that its aliases hold the same values. */
function copyTensors(
  src: OpenedWeights, own: StateDict, candidates: Map<string, string[]>, sourceKeys: Map<string, string>, report: ImportReport, where: string,
): void {
  noGrad(() => {
    for (const [ls, targets] of candidates) {
      const present = targets.filter((t) => sourceKeys.has(t));
      if (!present.length) {
        report.untouched.push(ls);
        continue;
      }
      const primaryKey = sourceKeys.get(present[0])!;
      const t = src.tensors.load(primaryKey);
      try {
        for (const alias of present.slice(1)) {
          const ak = sourceKeys.get(alias)!;
          if (src.tensors.sameStorage(primaryKey, ak) !== true) {
            const a = src.tensors.load(ak);
            const same = a.dtype === t.dtype && Buffer.from(a.bytes()).equals(Buffer.from(t.bytes()));
            a.dispose();
            if (!same) throw new Error(`${where}: ${ak} should hold the same tensor as ${primaryKey} (the same module under two names) but differs`);
          }
          report.aliasesChecked++;
        }
        const dst = own.get(ls)!;
        if (t.dtype !== dst.dtype) report.converted.push(`${primaryKey} (${t.dtype})`);
        dst.copy_(t);
        report.loaded++;
      } finally {
        t.dispose();
      }
    }
  });
}

/** Refuses lsmseg tensors left without a source, unless the format says they may be (then a note says so). */
function checkUntouched(src: OpenedWeights, report: ImportReport, where: string): void {
  const missing = report.untouched.filter((k) => !src.optional?.(k));
  if (missing.length && !src.partial) {
    throw new Error(`${where}: ${missing.length} tensors of lsmseg's network have no source: ${missing.slice(0, 12).join(", ")}${missing.length > 12 ? ", …" : ""}`);
  }
  const optional = report.untouched.filter((k) => src.optional?.(k));
  if (optional.length && !src.partial) {
    const note = `${optional.length} tensors absent from the source, left at lsmseg's initialisation (unused cross-attention weights MONAI < 1.4 did not create; listed in untouched)`;
    report.notes = [...report.notes, note];
  }
}

/** Reads IN in `format` and writes the model folder OUT. */
export function importWeights(input: string, format: string, out: string, o: OpenOptions = {}): ImportReport {
  checkExists(input, "no such file or folder");
  const target = join(out, CHECKPOINT_NAMES.final);
  if (existsSync(target)) throw new Error(`${out}: already holds ${CHECKPOINT_NAMES.final} (a checkpoint is never overwritten; choose another --out)`);
  const fmt = formatByName(format);
  const src = fmt.open(input, o);
  const where = basename(src.file);
  const net = buildNetwork(src.network);
  try {
    const own = net.stateDict();
    const entries = keyMapFor(format, src.network, [...own.keys()], o);
    const sourceKeys = sourceKeyNames(src);
    const { candidates, unmapped } = matchKeys(src, own, entries, sourceKeys, where);
    const report: ImportReport = {
      format, source: src.file, network: src.network, loaded: 0, aliasesChecked: 0, unmapped, untouched: [], converted: [], notes: src.notes,
    };
    copyTensors(src, own, candidates, sourceKeys, report, where);
    checkUntouched(src, report, where);
    mkdirSync(out, { recursive: true });
    const extra: Record<string, unknown> = { imported: { format, source: src.file, ...src.info } };
    if (src.plan) extra.plan = src.plan;
    saveCheckpoint(target, { step: 0, model: own, network: src.network as unknown as Record<string, unknown>, extra, rng: false });
    if (src.plan) writeFileAtomic(join(out, "plan.json"), Buffer.from(JSON.stringify(src.plan, null, 2) + "\n"));
    writeFileAtomic(join(out, "import_report.json"), Buffer.from(JSON.stringify(report, null, 2) + "\n"));
    return report;
  } finally {
    src.tensors.dispose();
    net.dispose();
  }
}

export interface ExportResult {
  out: string;
  tensors: number;
  /** Target keys written with zeros because the lsmseg model lacks them (deep-supervision heads it was not built with). */
  zeroFilled: string[];
}

/** Writes RUN's weights under `format`'s key names to OUT (.pth as torch.save writes, or .safetensors). */
export function exportWeights(run: string, format: string, out: string, o: OpenOptions = {}): ExportResult {
  const ext = extname(out);
  if (ext !== ".pth" && ext !== ".pt" && ext !== ".safetensors") throw new Error(`--out ${out}: expected a .pth, .pt or .safetensors file`);
  const fmt = formatByName(format);
  if (!fmt.exportable) throw new Error(`--format ${format}: import only (export-weights writes ${Object.entries(FORMATS).filter(([, f]) => f.exportable).map(([k]) => k).join(", ")})`);
  const file = resolveCheckpoint(run);
  const ckpt = loadCheckpoint(file);
  const created: Tensor[] = [];
  try {
    const network = ckpt.meta.network as unknown as NetworkConfig | undefined;
    if (!network) throw new Error(`${file}: the checkpoint carries no network config`);
    const plan = ckpt.meta.extra?.plan as Plan | undefined;
    const entries = keyMapFor(format, network, [...ckpt.model.keys()], o);
    const zeroFilled: string[] = [];
    const tensors: [string, Tensor][] = [];
    const mapped = new Set(entries.map((e) => e.lsmseg));
    const leftOut = [...ckpt.model.keys()].filter((k) => !mapped.has(k));
    if (leftOut.length) throw new Error(`${file}: ${leftOut.length} tensors have no key in the ${format} layout: ${leftOut.slice(0, 8).join(", ")}`);
    for (const e of entries) {
      const t = ckpt.model.get(e.lsmseg);
      if (!t) throw new Error(`${file}: no tensor '${e.lsmseg}' (for ${e.target})`);
      tensors.push([e.target, t]);
    }
    // nnU-Net builds a seg layer for every decoder stage; a model trained without deep supervision lacks them
    if (format === "nnunet" && !network.deepSupervision) {
      for (let j = 0; j < network.features.length - 2; j++) {
        const cin = network.features[network.features.length - 2 - j];
        for (const [n, shape] of [["weight", [network.numClasses, cin, 1, 1, 1]], ["bias", [network.numClasses]]] as const) {
          const z = zeros([...shape]);
          created.push(z);
          tensors.push([`decoder.seg_layers.${j}.${n}`, z]);
          zeroFilled.push(`decoder.seg_layers.${j}.${n}`);
        }
      }
      const order = new Map(tensors.map(([k], i) => [k, k.startsWith("decoder.seg_layers.") ? 1e9 + Number(k.split(".")[2]) * 2 + (k.endsWith("bias") ? 1 : 0) : i]));
      tensors.sort((a, b) => order.get(a[0])! - order.get(b[0])!);
    }
    if (ext === ".safetensors") {
      const meta: Record<string, string> = { format: `lsmseg-export/${format}` };
      if (plan) meta.lsmseg_plan = JSON.stringify(plan);
      else meta.lsmseg_network = JSON.stringify(network);
      saveSafetensors(out, new Map(tensors), meta);
    } else {
      const w = new PthWriter();
      const sd = w.stateDict(tensors);
      w.save(out, fmt.wrap ? fmt.wrap(sd, ckpt.meta.extra?.imported as Record<string, unknown> | undefined) : sd);
    }
    // a plain state dict says nothing of the network: its plan goes beside it (import-weights --format pytorch reads it)
    if (plan && format === "pytorch" && ext !== ".safetensors") writeFileAtomic(`${out}.plan.json`, Buffer.from(JSON.stringify(plan, null, 2) + "\n"));
    return { out, tensors: tensors.length, zeroFilled };
  } finally {
    for (const t of created) t.dispose();
    disposeCheckpoint(ckpt.model, ckpt.optimizer?.params, ckpt.rng);
  }
}
