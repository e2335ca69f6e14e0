// The flags that choose one image of a multi-image input (OME-Zarr series, pyramid level, channel, time
// point), shared by the commands that read volumes: convert, inspect, curate.
import { intFlag, UsageError } from "./args.ts";
import type { OpenOptions } from "../io/index.ts";

export const OPEN_HELP = `  --series N          bioformats2raw series of an OME-Zarr input                [0]
  --level L           OME-Zarr pyramid level of the input                       [0]
  --channel C         channel of a multi-channel input (OME-Zarr c axis, OME-TIFF, ImageJ)
  --time T            time point of a multi-time-point input`;

export const OPEN_FLAGS = { series: { type: "string" }, level: { type: "string" }, channel: { type: "string" }, time: { type: "string" } } as const;

/** --series/--level/--channel/--time as reader options (only those given). */
export function openOptions(v: { series?: string; level?: string; channel?: string; time?: string }): OpenOptions {
  const o: OpenOptions = {};
  for (const k of ["series", "level", "channel", "time"] as const) {
    if (v[k] === undefined) continue;
    const n = intFlag(k, v[k], 0);
    if (n < 0) throw new UsageError(`--${k} must be 0 or more, got ${n}`);
    o[k] = n;
  }
  return o;
}
