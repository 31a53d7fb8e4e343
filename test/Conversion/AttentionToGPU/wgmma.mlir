// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma" | FileCheck %s
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma warp-rows=32" 2>&1 | FileCheck %s --check-prefix=ROWS
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wmma" 2>&1 | FileCheck %s --check-prefix=KIND
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma tma=1" | FileCheck %s --check-prefix=TMA
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tma=1" 2>&1 | FileCheck %s --check-prefix=TMAMMA

// tensor-cores=wgmma: the flash kernel's four warps are one warpgroup; both
// products are wgmma.mma_async with A (queries, probabilities) in registers
// and B (K, V tiles) in 128-byte-swizzled shared memory.

func.func @causal(%q: tensor<?x?x8x128xf32>, %k: tensor<?x?x2x128xf32>, %init: tensor<?x?x8x128xf32>) -> tensor<?x?x8x128xf32> {
  %o = hybrid.attention ins(%q, %k, %k : tensor<?x?x8x128xf32>, tensor<?x?x2x128xf32>, tensor<?x?x2x128xf32>)
         outs(%init : tensor<?x?x8x128xf32>) mask <kind = full, causal = true> pos <kind = none> score <scale = 0.088>
         -> tensor<?x?x8x128xf32>
  return %o : tensor<?x?x8x128xf32>
}

// Tiles are [64-dim block][key][64], aligned to the 1024-byte swizzle atom.
// CHECK-LABEL: gpu.func @causal(
// CHECK-SAME: workgroup(%[[SK:.+]] : memref<2x64x64xbf16, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64}, %[[SV:.+]] : memref<2x64x64xbf16, #gpu.address_space<workgroup>> {llvm.align = 1024 : i64})
// cp.async puts 16-byte chunk c of key row r at chunk c ^ (r % 8).
// CHECK: arith.xori
// CHECK: nvgpu.device_async_copy {{.+}}, %[[SK]][{{.+}}], 8 {bypassL1}
// CHECK: scf.for
// Landed copies are fenced for the async proxy wgmma reads through.
// CHECK: nvgpu.device_async_wait %{{.+}} {numGroups = 0 : i32}
// CHECK-NEXT: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// CHECK-NEXT: gpu.barrier
// S = Q K^T: K-major B, SBO 1024 bytes (8 key rows), 128-byte swizzle;
// 8 steps of 16 head dims, 64 keys each.
// CHECK: memref.extract_aligned_pointer_as_index %[[SK]]
// CHECK: arith.constant 4611686293305360384 : i64
// CHECK: llvm.inline_asm has_side_effects asm_dialect = att "wgmma.fence.sync.aligned;\0A
// CHECK-SAME: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {$0, {{.+}}, $31}, {$64, $65, $66, $67}, $68, $104, 1, 1, 0;
// CHECK-SAME: {$99, $100, $101, $102}, $103, $104, 1, 1, 0;\0Awgmma.commit_group.sync.aligned;\0Awgmma.wait_group.sync.aligned 0;"
// CHECK-SAME: "=f,{{.+}},0,1,{{.+}},31,r,r,r,r,l,{{.+}},b"
// P V: N-major B (value dims contiguous), LBO 8192 bytes between 64-dim
// blocks; 4 steps of 16 keys into 128 value dims.
// CHECK: nvgpu.device_async_wait %{{.+}} {numGroups = 1 : i32}
// CHECK: nvvm.fence.proxy
// CHECK-NEXT: gpu.barrier
// CHECK: memref.extract_aligned_pointer_as_index %[[SV]]
// CHECK: arith.constant 4611686293338849280 : i64
// CHECK: llvm.inline_asm {{.+}}wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{.+}}, 1, 1, 1;
// CHECK-NOT: nvvm.mma.sync
// CHECK-LABEL: gpu.func @causal_prepare_q(

// ROWS: tensor-cores=wgmma takes warp-rows 16 (the four warps are one 64-row warpgroup), got 32
// KIND: tensor-cores must be mma.sync or wgmma, got 'wmma'

// tma=1: the K and V tensor maps arrive as pointers; thread 0 initialises
// one mbarrier per tile kind, expects 64 keys x 128 dims x 2 bytes per tile
// and issues one 64-column box per 64 head dims; every thread spins on the
// tile's phase parity.
// TMA-LABEL: gpu.func @causal(
// TMA-SAME: %[[KMAP:[a-z0-9]+]]: !llvm.ptr, %[[VMAP:[a-z0-9]+]]: !llvm.ptr) workgroup(
// TMA-SAME: memref<2xi64, #gpu.address_space<workgroup>>)
// TMA-SAME: hybrid.tma
// TMA: nvvm.mbarrier.init %[[KBAR:.+]], %{{.+}} : !llvm.ptr<3>, i32
// TMA-NEXT: nvvm.fence.mbarrier.init
// TMA: nvvm.mbarrier.init %[[VBAR:.+]], %{{.+}} : !llvm.ptr<3>, i32
// The maps the host wrote become visible to the tensormap proxy.
// TMA: nvvm.fence.proxy.acquire <gpu> %[[KMAP]], %{{.+}}
// TMA: nvvm.fence.proxy.acquire <gpu> %[[VMAP]], %{{.+}}
// TMA: gpu.barrier
// TMA: nvvm.mbarrier.arrive.expect_tx %[[KBAR]], %c16384_i32
// TMA-COUNT-2: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.+}}, %[[KMAP]], %[[KBAR]], box[
// TMA: scf.for
// TMA: nvvm.mbarrier.arrive.expect_tx %[[VBAR]], %c16384_i32
// TMA-COUNT-2: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.+}}, %[[VMAP]], %[[VBAR]], box[
// TMA: scf.while
// TMA: llvm.inline_asm has_side_effects asm_dialect = att "mbarrier.try_wait.parity.shared::cta.b64 $0, [$1], $2;", "=b,l,r" %[[KBAR]]
// TMA: wgmma.mma_async.sync.aligned.m64n64k16
// TMA: "mbarrier.try_wait.parity.shared::cta.b64 $0, [$1], $2;", "=b,l,r" %[[VBAR]]
// TMA: wgmma.mma_async.sync.aligned.m64n128k16
// TMA-NOT: nvgpu.device_async_copy
// TMA-LABEL: gpu.func @causal_prepare_q(
// TMAMMA: tma: TMA writes the swizzled tiles only the wgmma kernels read; use it with tensor-cores=wgmma
