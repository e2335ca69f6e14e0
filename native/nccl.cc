// NCCL for data parallelism on GPUs. Compiled in only when scripts/setup.mjs found a CUDA libtorch together
// with the CUDA runtime and NCCL headers (it then defines LSMSEG_NCCL); otherwise makeNcclGroup says "none"
// and the JS side explains how to get it.
#include "dist.h"
#ifdef LSMSEG_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL  // ProcessGroupNCCL.hpp declares nothing without it
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace lsm {

c10::intrusive_ptr<GroupBase> makeNcclGroup(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                            std::chrono::milliseconds timeout) {
#ifdef LSMSEG_NCCL
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, opts);
#else
  (void)store; (void)rank; (void)world; (void)timeout;
  return {};
#endif
}

bool hasNccl() {
#ifdef LSMSEG_NCCL
  return true;
#else
  return false;
#endif
}

}  // namespace lsm
