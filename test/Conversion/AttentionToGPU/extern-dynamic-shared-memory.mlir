// RUN: hybrid-opt %s --pass-pipeline="builtin.module(gpu.module(hybrid-extern-dynamic-shared-memory))" | FileCheck %s
// RUN: not hybrid-opt %s --pass-pipeline="builtin.module(gpu.module(hybrid-extern-dynamic-shared-memory{alignment=24}))" 2>&1 | FileCheck %s --check-prefix=ALIGN

// gpu.dynamic_shared_memory's global (as convert-gpu-to-nvvm makes it)
// becomes external, 1024-aligned: NVPTX then declares it
// `.extern .shared .align 1024 .b8 __dynamic_shmem__0[]` instead of
// demoting it to a one-byte static variable. Other globals keep theirs.
gpu.module @kernels {
  // CHECK: llvm.mlir.global external @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 1024 : i64} : !llvm.array<0 x i8>
  llvm.mlir.global internal @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
  // Static shared memory, and a zero-length global array: left alone.
  // CHECK: llvm.mlir.global internal @tile() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<64 x i8>
  llvm.mlir.global internal @tile() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<64 x i8>
  // CHECK: llvm.mlir.global internal @empty() {addr_space = 1 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
  llvm.mlir.global internal @empty() {addr_space = 1 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
}

// ALIGN: error: alignment must be a power of two, got 24
