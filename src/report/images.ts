// Per-case pictures for the report: maximum-intensity projections along z of the image, the ground truth
// over the image, and each prediction against the truth (PNG, RGB).
import { type Volume, readVolume } from "../io/index.ts";
import { encodePngGray, encodePngRgb, mipZ, toGray } from "../io/png.ts";

/** Overlay colours: what both masks mark, what only the prediction marks, what only the truth marks. */
export const OVERLAY_COLORS = { both: [255, 214, 0], predictionOnly: [230, 0, 230], truthOnly: [0, 200, 70] } as const;
const ALPHA = 0.6;

export interface CasePictures {
  width: number;
  height: number;
  /** The image's MIP (grey). */
  image: Buffer;
  /** The ground truth's projection in green over the image. */
  truth: Buffer;
  /** Per prediction: yellow where prediction and truth agree, magenta where only the prediction, green where only the truth. */
  overlays: Buffer[];
}

/** Where a mask has any foreground along z: [y, x] as 0/1. */
function maskMip(vol: Volume): Uint8Array {
  const mip = mipZ(vol);
  return Uint8Array.from(mip, (v) => (v > 0 ? 1 : 0));
}

function blend(gray: Uint8Array, colorAt: (i: number) => readonly number[] | null): Uint8Array {
  const rgb = new Uint8Array(gray.length * 3);
  for (let i = 0; i < gray.length; i++) {
    const c = colorAt(i);
    for (let k = 0; k < 3; k++) rgb[3 * i + k] = c ? Math.round(gray[i] * (1 - ALPHA) + c[k] * ALPHA) : gray[i];
  }
  return rgb;
}

/** The pictures of one case; every volume must have the ground truth's shape. */
export async function casePictures(files: { image: string | null; truth: string; predictions: string[] }): Promise<CasePictures> {
  const truthVol = await readVolume(files.truth);
  const [, ny, nx] = truthVol.shape;
  const check = (vol: Volume, path: string) => {
    if (vol.shape.some((v, i) => v !== truthVol.shape[i])) throw new Error(`${path}: shape ${vol.shape.join("×")} does not match the ground truth ${files.truth}, ${truthVol.shape.join("×")}`);
    return vol;
  };
  const gray = files.image ? toGray(mipZ(check(await readVolume(files.image), files.image))) : new Uint8Array(ny * nx);
  const truth = maskMip(truthVol);
  const overlays: Buffer[] = [];
  for (const p of files.predictions) {
    const pred = maskMip(check(await readVolume(p), p));
    const color = (i: number) => {
      return pred[i] && truth[i] ? OVERLAY_COLORS.both : pred[i] ? OVERLAY_COLORS.predictionOnly : truth[i] ? OVERLAY_COLORS.truthOnly : null;
    };
    overlays.push(encodePngRgb(blend(gray, color), nx, ny));
  }
  return {
    width: nx, height: ny,
    image: encodePngGray(gray, nx, ny),
    truth: encodePngRgb(blend(gray, (i) => (truth[i] ? OVERLAY_COLORS.truthOnly : null)), nx, ny),
    overlays,
  };
}
