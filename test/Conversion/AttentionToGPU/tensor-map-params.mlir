// RUN: hybrid-opt %s --split-input-file --verify-diagnostics --pass-pipeline="builtin.module(gpu.module(hybrid-tensor-map-params))" | FileCheck %s

// A kernel marked hybrid.tensor_map_args = 2 (as convert-gpu-to-nvvm leaves
// the flash kernels) takes its last two arguments by value, 128 bytes,
// 64-byte aligned, grid-constant; the mark goes, other arguments and
// unmarked functions keep theirs.
gpu.module @kernels {
  // CHECK-LABEL: llvm.func @flash(
  // CHECK-SAME: %{{[a-z0-9]+}}: !llvm.ptr {llvm.noalias},
  // CHECK-SAME: %{{[a-z0-9]+}}: i64,
  // CHECK-SAME: %{{[a-z0-9]+}}: !llvm.ptr {llvm.align = 64 : i64, llvm.byval = !llvm.array<128 x i8>, nvvm.grid_constant},
  // CHECK-SAME: %{{[a-z0-9]+}}: !llvm.ptr {llvm.align = 64 : i64, llvm.byval = !llvm.array<128 x i8>, nvvm.grid_constant})
  // CHECK-NOT: hybrid.tensor_map_args
  // CHECK-SAME: attributes {nvvm.kernel}
  llvm.func @flash(%q: !llvm.ptr {llvm.noalias}, %n: i64, %k: !llvm.ptr, %v: !llvm.ptr) attributes {hybrid.tensor_map_args = 2 : i64, nvvm.kernel} {
    llvm.return
  }
  // CHECK-LABEL: llvm.func @plain(
  // CHECK-SAME: %{{[a-z0-9]+}}: !llvm.ptr)
  llvm.func @plain(%p: !llvm.ptr) attributes {nvvm.kernel} {
    llvm.return
  }
}

// -----

gpu.module @kernels {
  // expected-error @below {{argument 1 is a tensor map (hybrid.tensor_map_args), so it must be a generic !llvm.ptr, not 'i64'}}
  llvm.func @scalar(%k: !llvm.ptr, %n: i64) attributes {hybrid.tensor_map_args = 1 : i64, nvvm.kernel} {
    llvm.return
  }
}

// -----

gpu.module @kernels {
  // expected-error @below {{argument 0 is a tensor map (hybrid.tensor_map_args), so it must be a generic !llvm.ptr, not '!llvm.ptr<1>'}}
  llvm.func @global(%k: !llvm.ptr<1>) attributes {hybrid.tensor_map_args = 1 : i64, nvvm.kernel} {
    llvm.return
  }
}

// -----

gpu.module @kernels {
  // expected-error @below {{hybrid.tensor_map_args = 3 with 2 arguments}}
  llvm.func @few(%k: !llvm.ptr, %v: !llvm.ptr) attributes {hybrid.tensor_map_args = 3 : i64, nvvm.kernel} {
    llvm.return
  }
}

// -----

gpu.module @kernels {
  // expected-error @below {{hybrid.tensor_map_args on a function that is no kernel}}
  llvm.func @device(%k: !llvm.ptr) attributes {hybrid.tensor_map_args = 1 : i64} {
    llvm.return
  }
}
