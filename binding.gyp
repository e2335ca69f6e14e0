{
  "variables": {
    "libtorch%": "<!(node -p \"process.env.LIBTORCH || ''\")"
  },
  "targets": [{
    "target_name": "lsmseg_native",
    "sources": ["native/addon.cc", "native/tensor.cc", "native/ops.cc", "native/autograd.cc", "native/optim.cc", "native/dist.cc"],
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
      }]
    ]
  }]
}
