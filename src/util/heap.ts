// glibc's heap settings for volume-sized ArrayBuffers, from the small torch-free addon (native/malloc.cc; the
// libtorch addon applies the same when it loads). Without them every large array is a fresh mmap whose pages
// fault in one by one, and code that allocates a few volume-sized arrays per case (evaluation) spends a
// quarter of its time there. Process-wide, so once is enough.
import { createRequire } from "node:module";

interface MallocAddon { tuned: boolean; heapInUse?: () => number | null }
let addon: MallocAddon | null | undefined;

function mallocAddon(): MallocAddon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)("../../build/Release/lsmseg_tuned_malloc.node") as MallocAddon;
    } catch {
      addon = null;
    }
  }
  return addon;
}

/** Applies the settings (once per process); false when LSMSEG_MALLOC=default or the addon is not built. */
export function tuneHeap(): boolean {
  return mallocAddon()?.tuned ?? false;
}

/**
 * Bytes that malloc has handed out and not had back, over all arenas (glibc's mallinfo2): what a native leak
 * grows. Resident memory also counts the free pages the untrimmed heap keeps. null without glibc ≥ 2.33 or the addon.
 */
export function heapBytesInUse(): number | null {
  return mallocAddon()?.heapInUse?.() ?? null;
}
