// The SELMA3D taxonomy has one home (src/dataset/taxonomy.ts): the synthetic generator draws exactly its types, in
// its order, and the challenge's ten test types are the ones selma3d.md lists, in the evaluation's order.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CHALLENGE_STRUCTURES, SELMA3D_TYPES, selma3dType } from "../../src/dataset/index.ts";
import { STRUCTURES } from "../../src/synth/structures.ts";

test("synth draws the taxonomy's types with the taxonomy's category, density and role", () => {
  assert.deepEqual(STRUCTURES.map((s) => [s.name, s.category, s.density, s.role]), SELMA3D_TYPES.map((t) => [t.name, t.category, t.density, t.role]));
});

test("the challenge's ten test types, contiguous first (selma3d.md)", () => {
  assert.deepEqual(Object.entries(CHALLENGE_STRUCTURES).map(([name, s]) => `${name} ${s.category} ${s.density}`), [
    "axonalmarker contiguous sparse", "blood_vessel contiguous dense", "gutnerve contiguous sparse", "lymphatic_vessel contiguous dense",
    "peripheral_nerve contiguous sparse", "AD_plaques isolated sparse", "cell_nuclei isolated dense", "cfos_neuron isolated dense",
    "microglia isolated dense", "protein isolated sparse",
  ]);
  // held out: the test set's types that no annotated training patch has (bold in selma3d.md's table)
  assert.deepEqual(SELMA3D_TYPES.filter((t) => t.role === "heldOut").map((t) => t.name).sort(), ["gutnerve", "lymphatic_vessel", "microglia", "protein"]);
  assert.throws(() => selma3dType("neuron"), /unknown structure type 'neuron' \(known: cfos_neuron, cell_nuclei,/);
});
