// Reading the transformer parity fixtures of fixtures/nn/make_transformer_parity.py: the weights are not
// stored but defined by a formula that the script used in PyTorch and that this file reproduces bit for
// bit; the metadata lists MONAI's state-dict keys (with shapes, and which are buffers).
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import type { Module } from "../../src/nn/index.ts";

export interface FixtureKey { key: string; shape: number[]; dtype: string; buffer?: boolean; base?: number; scale?: number }

export interface TransformerFixture {
  tensors: Map<string, T.Tensor>;
  config: Record<string, unknown>;
  keys: FixtureKey[];
}

export function loadFixture(name: string): TransformerFixture {
  const f = T.loadSafetensors(new URL(`../../fixtures/nn/${name}`, import.meta.url).pathname);
  return { tensors: f.tensors, config: JSON.parse(f.metadata.config), keys: JSON.parse(f.metadata.keys) as FixtureKey[] };
}

/** float32(base + scale · (((i · 7919 + j · 104729) mod 2001) − 1000) / 1000), as the fixture script's formula(). */
export function formula(shape: number[], j: number, base: number, scale: number): T.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const m = (((i * 7919 + j * 104729) % 2001) + 2001) % 2001;
    v[i] = base + scale * (m - 1000) / 1000;
  }
  return T.tensor(v, shape);
}

/** Checks that `net`'s state-dict keys, order and shapes are MONAI's, then loads the formula weights (buffers stay as built). */
export function loadFormulaWeights(net: Module, keys: FixtureKey[]): void {
  const own = [...net.stateDict()];
  assert.deepEqual(own.map(([k]) => k), keys.map((k) => k.key), "state-dict keys (and their order) equal MONAI's");
  for (const [i, [k, t]] of own.entries()) assert.deepEqual(t.shape, keys[i].shape, `shape of ${k}`);
  const sd = new Map<string, T.Tensor>();
  keys.forEach((k, j) => { if (!k.buffer) sd.set(k.key, formula(k.shape, j, k.base!, k.scale!)); });
  const res = net.loadStateDict(sd, { strict: false });
  assert.equal(res.loaded.length, sd.size);
  for (const t of sd.values()) t.dispose();
}

/** max |a − b| and max |b|. */
export function maxErr(a: T.Tensor, b: T.Tensor): { abs: number; ref: number } {
  return T.tidy(() => ({ abs: a.sub(b).abs().max().item(), ref: b.abs().max().item() }));
}
