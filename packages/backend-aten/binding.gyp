{
  "targets": [
    {
      "target_name": "aten",
      "sources": [
        "native/addon.cc",
        "native/allocator.cc",
        "native/tensor.cc",
        "native/ops_elementwise.cc",
        "native/ops_reduce.cc",
        "native/ops_conv.cc",
        "native/ops_pool.cc",
        "native/ops_matmul.cc",
        "native/ops_norm.cc",
        "native/ops_layout.cc",
        "native/ops_image.cc",
        "native/ops_grad.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "/usr/include/torch/csrc/api/include"
      ],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-fopenmp", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ltorch_cpu", "-lc10"]
    }
  ]
}
