// Seeded random streams for the data pipeline. One generator (src/synth's sfc32 seeded by a string hash) and
// one rule: every random decision is drawn from a stream named by what it decides, e.g. "seed 3 / batch 17 /
// sample 1", never from a generator shared across samples. So batch k's content depends only on (seed, k):
// not on the number of workers, on which worker ran a sample, on timing, or on where a resumed run started.
import { Rng } from "../synth/rng.ts";

export { Rng };

/** An independent generator for the stream named by `seed` and `path` (numbers or names). */
export function stream(seed: number, ...path: (string | number)[]): Rng {
  return new Rng(`lsmseg/data/${seed}/${path.join("/")}`);
}

/** A child generator of `rng` named `name`: draws one word of `rng`, so forks made in order differ. */
export function fork(rng: Rng, name: string): Rng {
  return new Rng(`fork/${rng.nextU32()}/${name}`);
}
