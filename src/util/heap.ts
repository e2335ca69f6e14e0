// glibc's heap settings for volume-sized ArrayBuffers, from the small torch-free addon (native/malloc.cc; the
// libtorch addon applies the same when it loads). Without them every large array is a fresh mmap whose pages
// fault in one by one, and code that allocates a few volume-sized arrays per case (evaluation) spends a
// quarter of its time there. Process-wide, so once is enough.
import { createRequire } from "node:module";

let tuned: boolean | null = null;

/** Applies the settings (once per process); false when LSMSEG_MALLOC=default or the addon is not built. */
export function tuneHeap(): boolean {
  if (tuned === null) {
    try {
      tuned = (createRequire(import.meta.url)("../../build/Release/lsmseg_tuned_malloc.node") as { tuned: boolean }).tuned;
    } catch {
      tuned = false;
    }
  }
  return tuned;
}
