// The process-group type shared by dist.cc and nccl.cc. libtorch 1.13's ProcessGroupGloo and ProcessGroupNCCL
// derive from c10d::ProcessGroup; from 2.0 on they are c10d::Backend, which ProcessGroup wraps.
#pragma once
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <chrono>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

namespace lsm {

#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;
#else
using GroupBase = c10d::ProcessGroup;
#endif

// An NCCL process group (nccl.cc), or nullptr when this build has no NCCL (a CPU libtorch, or the CUDA and
// NCCL headers were not found when it was built).
c10::intrusive_ptr<GroupBase> makeNcclGroup(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                            std::chrono::milliseconds timeout);
bool hasNccl();

}  // namespace lsm
