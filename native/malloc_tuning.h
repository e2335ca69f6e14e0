// glibc heap settings shared by the libtorch addon and the small torch-free one (native/malloc.cc).
//
// libtorch's CPU allocator is plain malloc, and so is V8's for ArrayBuffers. With glibc's defaults every
// allocation larger than the mmap threshold (at most 32 MB) is a fresh mmap whose pages fault in one by one
// (about 12 µs a page on the VMs measured here): a training step then page-faults its whole working set
// again (2.3 M minor faults and ~60 % of an fp32 U-Net step), and evaluating a 200³ case re-faults every
// volume-sized array. Serving large blocks from the heap and not trimming it keeps the pages mapped and
// reuses them, which is what PyTorch's own advice (jemalloc/tcmalloc) achieves. LSMSEG_MALLOC=default opts out.
#pragma once
#include <cstdlib>
#include <cstring>
#include <malloc.h>

namespace lsm {

inline bool tuneMalloc() {
  const char* v = std::getenv("LSMSEG_MALLOC");
  if (v && std::strcmp(v, "default") == 0) return false;
#ifdef M_MMAP_MAX
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  return true;
#else
  return false;
#endif
}

}  // namespace lsm
