{
  "variables": {
    "libtorch%": "<!(node -p \"process.env.LIBTORCH || ''\")",
    "torch_abi%": "<!(node -p \"process.env.LSMSEG_TORCH_ABI || ''\")",
    "torch_cuda%": "<!(node -p \"process.env.LSMSEG_TORCH_CUDA || ''\")",
    "nccl_includes%": "<!(node -p \"process.env.LSMSEG_NCCL_INCLUDES || ''\")"
  },
  "targets": [{
    # The small torch-free addon (glibc heap settings). Its name sorts after lsmseg_native's on purpose:
    # node-gyp-build loads the first .node file of build/Release (file names in byte order).
    "target_name": "lsmseg_tuned_malloc",
    "sources": ["native/malloc.cc"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions"],
    "cflags_cc": ["-fexceptions", "-O2"]
  }, {
    "target_name": "lsmseg_native",
    "sources": ["native/addon.cc", "native/tensor.cc", "native/ops.cc", "native/autograd.cc", "native/optim.cc", "native/dist.cc", "native/nccl.cc", "native/profiler.cc"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "USE_C10D_GLOO", "USE_DISTRIBUTED"],
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
    "conditions": [
      ["libtorch==''", {
        "include_dirs": ["/usr/include/torch/csrc/api/include"],
        "libraries": ["-ltorch", "-ltorch_cpu", "-lc10"]
      }, {
        "include_dirs": ["<(libtorch)/include", "<(libtorch)/include/torch/csrc/api/include"],
        "libraries": ["-L<(libtorch)/lib", "-Wl,-rpath,<(libtorch)/lib", "-ltorch", "-ltorch_cpu", "-lc10"]
      }],
      ["torch_abi!=''", { "defines": ["_GLIBCXX_USE_CXX11_ABI=<(torch_abi)"] }],
      # A CUDA libtorch registers its CUDA kernels from libtorch_cuda.so, which nothing references by name:
      # keep it (and c10_cuda) even where the linker drops unreferenced libraries (--as-needed).
      ["torch_cuda=='1'", { "libraries": ["-Wl,--push-state,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--pop-state"] }],
      ["nccl_includes!=''", { "defines": ["LSMSEG_NCCL"], "include_dirs": ["<@(nccl_includes)"] }]
    ]
  }]
}
