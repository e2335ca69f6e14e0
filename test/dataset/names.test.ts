// One table of file names → (volume extension, stem, case name, nnU-Net case name, format, volume entry) for every
// extension lsmseg reads: the dataset folder's names (src/dataset/names.ts) and io's dispatch agree on each row.
import assert from "node:assert/strict";
import { test } from "node:test";
import { caseNameOf, stemOf, VOLUME_EXTENSIONS, volumeExtensionOf } from "../../src/dataset/index.ts";
import { formatOf, isVolumeEntry } from "../../src/io/index.ts";
import { volumeName } from "../../src/curate/index.ts";

// nnunetCase: the case name in nnU-Net's image folders, where a final _ and four digits are the channel (so a
// SELMA3D id of four digits is stripped there too; elsewhere it is kept)
type Row = [name: string, ext: string | null, stem: string | null, caseName: string, nnunetCase: string, format: string | null];
const ROWS: Row[] = [
  ["cell_nuclei_2301.nii.gz", ".nii.gz", "cell_nuclei_2301", "cell_nuclei_2301", "cell_nuclei", "nifti"],
  ["a.NII.GZ", ".NII.GZ", "a", "a", "a", "nifti"],
  ["a.nii", ".nii", "a", "a", "a", "nifti"],
  ["cell_nuclei_2301.mha", ".mha", "cell_nuclei_2301", "cell_nuclei_2301", "cell_nuclei", "metaimage"],
  ["a.mhd", ".mhd", "a", "a", "a", "metaimage"],
  ["a.tif", ".tif", "a", "a", "a", "tiff"],
  ["a.TIFF", ".TIFF", "a", "a", "a", "tiff"],
  ["dir/sub/protein_3.ome.tif", ".ome.tif", "protein_3", "protein_3", "protein_3", "tiff"],
  ["a.ome.tiff", ".ome.tiff", "a", "a", "a", "tiff"],
  ["a.btf", ".btf", "a", "a", "a", "tiff"],
  ["a.TF8", ".TF8", "a", "a", "a", "tiff"],
  ["a.zarr", ".zarr", "a", "a", "a", "zarr"],
  ["raw/volume01_cfos_neuron.ome.zarr", ".ome.zarr", "volume01_cfos_neuron", "volume01_cfos_neuron", "volume01_cfos_neuron", "zarr"],
  ["x.ome.zarr/", null, "x", "x", "x", "zarr"],
  ["imagesTr/blood_vessel_0001_0000.nii.gz", ".nii.gz", "blood_vessel_0001_0000", "blood_vessel_0001_0000", "blood_vessel_0001", "nifti"],
  ["case_0001.ome.tif", ".ome.tif", "case_0001", "case_0001", "case", "tiff"],
  ["raw/volume02_blood_vessel", null, null, "volume02_blood_vessel", "volume02_blood_vessel", null],
  ["notes.txt", null, null, "notes.txt", "notes.txt", null],
  ["a.gz", null, null, "a.gz", "a.gz", null],
  ["a.nii.gz.txt", null, null, "a.nii.gz.txt", "a.nii.gz.txt", null],
];

test("every volume extension has a row", () => {
  for (const e of VOLUME_EXTENSIONS) assert.ok(ROWS.some(([n]) => n.toLowerCase().replace(/\/+$/, "").endsWith(e)), e);
});

for (const [name, ext, stem, caseName, nnunetCase, format] of ROWS) {
  test(`names: ${name}`, () => {
    assert.equal(volumeExtensionOf(name), ext);
    assert.equal(stemOf(name), stem);
    assert.equal(caseNameOf(name), caseName);
    assert.equal(caseNameOf(name, true), nnunetCase);
    assert.equal(volumeName(name), caseName); // curate's volume names are the case names
    if (format !== null) assert.equal(formatOf(name), format);
    else if (/\.[a-z]+$/.test(name)) assert.throws(() => formatOf(name), /unknown volume format/);
    // a file is a volume entry when its extension names a file format; a .zarr is one only as a folder
    assert.equal(isVolumeEntry(name, false), format !== null && format !== "zarr");
    if (format === "zarr") assert.equal(isVolumeEntry(name, true), true);
  });
}
