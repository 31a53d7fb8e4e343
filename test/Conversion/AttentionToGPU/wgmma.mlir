// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma" | FileCheck %s
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma warp-rows=32" 2>&1 | FileCheck %s --check-prefix=ROWS
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wmma" 2>&1 | FileCheck %s --check-prefix=KIND
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma tma=1" | FileCheck %s --check-prefix=TMA
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tma=1" 2>&1 | FileCheck %s --check-prefix=TMAMMA
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma tma=1 warps=8" | FileCheck %s --check-prefix=WARPS8
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma warps=6" 2>&1 | FileCheck %s --check-prefix=BADWARPS
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma tma=1 stages=2 shared-memory=232448" | FileCheck %s --check-prefix=STAGES
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma stages=2" 2>&1 | FileCheck %s --check-prefix=STAGESTMA
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma tma=1 stages=5" 2>&1 | FileCheck %s --check-prefix=BADSTAGES
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma tma=1 stages=2 softmax-overlap=1 shared-memory=232448" | FileCheck %s --check-prefix=OVERLAP
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma tma=1 softmax-overlap=1" 2>&1 | FileCheck %s --check-prefix=OVERLAPSTAGES
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma tma=1 stages=2 softmax-overlap=1 warp-specialized=1 warps=8 shared-memory=232448" | FileCheck %s --check-prefix=WS
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma tma=1 warp-specialized=1" 2>&1 | FileCheck %s --check-prefix=WSSTAGES
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="tensor-cores=wgmma tma=1 stages=2 softmax-overlap=1 warp-specialized=1 ping-pong=1 warps=8 shared-memory=232448" | FileCheck %s --check-prefix=PP

// tensor-cores=wgmma: the flash kernel's four warps are one warpgroup; both
// products are wgmma.mma_async with A (queries, probabilities) in registers
// and B (K, V tiles) in 128-byte-swizzled shared memory.

func.func @causal(%q: tensor<?x?x8x128xf32>, %k: tensor<?x?x2x128xf32>, %init: tensor<?x?x8x128xf32>) -> tensor<?x?x8x128xf32> {
  %o = hybrid.attention ins(%q, %k, %k : tensor<?x?x8x128xf32>, tensor<?x?x2x128xf32>, tensor<?x?x2x128xf32>)
         outs(%init : tensor<?x?x8x128xf32>) mask <kind = full, causal = true> pos <kind = none> score <scale = 0.088>
         -> tensor<?x?x8x128xf32>
  return %o : tensor<?x?x8x128xf32>
}

// Tiles are [64-dim block][key][64] in dynamic shared memory, each starting
// on a 1024-byte swizzle atom.
// CHECK-LABEL: gpu.func @causal(
// CHECK-SAME: hybrid.shared_bytes = 32768 : i64
// CHECK: %[[SHARED:.+]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// CHECK: %[[SK:.+]] = memref.view %[[SHARED]][%c0{{(_[0-9]+)?}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<2x64x64xbf16, #gpu.address_space<workgroup>>
// CHECK: %[[SV:.+]] = memref.view %[[SHARED]][%c16384][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<2x64x64xbf16, #gpu.address_space<workgroup>>
// cp.async puts 16-byte chunk c of key row r at chunk c ^ (r % 8).
// CHECK: arith.xori
// CHECK: nvgpu.device_async_copy {{.+}}, %[[SK]][{{.+}}], 8 {bypassL1}
// CHECK: scf.for
// Landed copies are fenced for the async proxy wgmma reads through.
// CHECK: nvgpu.device_async_wait %{{.+}} {numGroups = 0 : i32}
// CHECK-NEXT: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// CHECK-NEXT: gpu.barrier
// S = Q K^T: K-major B, SBO 1024 bytes (8 key rows), 128-byte swizzle;
// 8 steps of 16 head dims, 64 keys each. The scores start from nothing:
// no tied accumulator inputs, and the first step's scale-d ($73) is false
// (D = A B), the others' ($72) true.
// CHECK: memref.extract_aligned_pointer_as_index %[[SK]]
// CHECK: arith.constant 4611686293305360384 : i64
// CHECK: %[[TRUE:.+]] = arith.constant true
// CHECK-NEXT: %[[FALSE:.+]] = arith.constant false
// CHECK-NEXT: llvm.inline_asm has_side_effects asm_dialect = att "wgmma.fence.sync.aligned;\0A
// CHECK-SAME: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {$0, {{.+}}, $31}, {$32, $33, $34, $35}, $36, $73, 1, 1, 0;
// CHECK-SAME: {$67, $68, $69, $70}, $71, $72, 1, 1, 0;\0Awgmma.commit_group.sync.aligned;\0Awgmma.wait_group.sync.aligned 0;"
// CHECK-SAME: "=f,{{(=f,)+}}r,r,r,r,l,{{.+}},l,b,b" {{.+}}, %[[TRUE]], %[[FALSE]] :
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

// ROWS: error: tensor_cores = wgmma takes warp_rows 16 (each four warps are one 64-row warpgroup), got 32
// KIND: tensor-cores must be mma.sync or wgmma, got 'wmma'

// tma=1: the K and V tensor maps arrive as pointers; thread 0 initialises
// one mbarrier per tile kind, expects 64 keys x 128 dims x 2 bytes per tile
// and issues one 64-column box per 64 head dims; every thread spins on the
// tile's phase parity.
// TMA-LABEL: gpu.func @causal(
// TMA-SAME: %[[KMAP:[a-z0-9]+]]: !llvm.ptr, %[[VMAP:[a-z0-9]+]]: !llvm.ptr) kernel
// TMA-SAME: hybrid.shared_bytes = 32784 : i64, hybrid.tensor_map_args = 2 : i64, hybrid.tma
// TMA: memref.view %{{.+}}[%c32768][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<2xi64, #gpu.address_space<workgroup>>
// TMA: nvvm.mbarrier.init %[[KBAR:.+]], %{{.+}} : !llvm.ptr<3>, i32
// TMA-NEXT: nvvm.fence.mbarrier.init
// TMA: nvvm.mbarrier.init %[[VBAR:.+]], %{{.+}} : !llvm.ptr<3>, i32
// The maps are kernel parameters (hybrid-tensor-map-params makes them
// grid-constant after convert-gpu-to-nvvm): the issuer prefetches them,
// and no proxy fence is needed.
// TMA-NOT: nvvm.fence.proxy.acquire
// TMA: nvvm.prefetch tensormap in_param_space, %[[KMAP]] : !llvm.ptr
// TMA: nvvm.prefetch tensormap in_param_space, %[[VMAP]] : !llvm.ptr
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
// TMAMMA: error: tma: TMA writes the swizzled tiles only the wgmma kernels read; needs tensor_cores = wgmma

// warps=8: two warpgroups of 64 rows (128 rows: 32 positions x 4 heads)
// share each K and V tile; the copies and waits are the CTA's, the
// wgmma instructions each warpgroup's own.
// WARPS8-LABEL: gpu.func @causal(
// WARPS8-SAME: hybrid.q_tile = 32 : i64
// WARPS8-SAME: known_block_size = array<i32: 256, 1, 1>
// WARPS8: nvvm.mbarrier.arrive.expect_tx %{{.+}}, %c16384_i32
// WARPS8: wgmma.mma_async.sync.aligned.m64n64k16
// WARPS8: wgmma.mma_async.sync.aligned.m64n128k16
// WARPS8-LABEL: gpu.func @causal_prepare_q(
// WARPS8-SAME: known_block_size = array<i32: 128, 1, 1>
// BADWARPS: error: warps must be 4 or 8 (warps per flash CTA), got 6

// stages=2: two K and two V tiles (K0, K1 at 0 and 16384, V0, V1 at
// 32768 and 49152), one mbarrier per tile and stage after them; tile j
// uses stage j % 2 while tile j + 1 loads into the other, so the only CTA
// barrier in the loop is the one closing each tile.
// STAGES-LABEL: gpu.func @causal(
// STAGES-SAME: hybrid.shared_bytes = 65568 : i64
// STAGES-COUNT-4: nvvm.mbarrier.init
// STAGES: gpu.barrier
// STAGES: scf.for
// The phase parity (j / 2) % 2, then stage j % 2, whose K tile sits 16384
// bytes per stage further.
// STAGES: arith.remui %{{.+}}, %c2{{.*}} : index
// STAGES: %[[STAGE:.+]] = arith.remui %{{.+}}, %c2{{.*}} : index
// STAGES: arith.muli %[[STAGE]], %c16384{{.*}} : index
// STAGES: memref.view %{{.+}} : memref<?xi8, #gpu.address_space<workgroup>> to memref<2x64x64xbf16, #gpu.address_space<workgroup>>
// STAGES: scf.if
// STAGES: arith.remui %{{.+}}, %c2{{.*}} : index
// STAGES: nvvm.cp.async.bulk.tensor.shared.cluster.global
// STAGES: mbarrier.try_wait.parity
// STAGES: wgmma.mma_async.sync.aligned.m64n64k16
// STAGES-NOT: gpu.barrier
// STAGES: wgmma.mma_async.sync.aligned.m64n128k16
// STAGES: gpu.barrier
// STAGES-NEXT: scf.yield
// STAGESTMA: error: stages = 2: tiles ahead of the current one are loaded by TMA; needs tma
// BADSTAGES: error: stages must be 1 to 4, got 5

// softmax-overlap=1: tile 0's scores are waited for at once; then per tile
// j the warpgroup issues S(j) = Q K(j)^T and O += P(j - 1) V(j - 1) (each
// its own committed group, no wait), waits for S(j) alone (wait_group 1:
// its 32 accumulators tied through, the 32 Q registers it reads kept
// live), computes tile j's softmax while P V runs, then waits for O
// (wait_group 0: 64 accumulators, the 16 P registers) in each branch of
// the rescale (scaled only if the warp moved its maxima): a wait below the
// exponentials' block, which ptxas cannot hoist above them. The last
// tile's P V follows the loop.
// OVERLAP-LABEL: gpu.func @causal(
// OVERLAP-SAME: hybrid.shared_bytes = 65568 : i64
// OVERLAP: wgmma.mma_async.sync.aligned.m64n64k16{{.+}}wgmma.commit_group.sync.aligned;\0Awgmma.wait_group.sync.aligned 0;"
// OVERLAP: nvvm.vote.sync any
// OVERLAP: gpu.barrier
// OVERLAP: scf.for
// OVERLAP: mbarrier.try_wait.parity
// OVERLAP: "wgmma.fence.sync.aligned;\0Awgmma.mma_async.sync.aligned.m64n64k16{{.+}}wgmma.commit_group.sync.aligned;"
// OVERLAP: mbarrier.try_wait.parity
// OVERLAP: "wgmma.fence.sync.aligned;\0Awgmma.mma_async.sync.aligned.m64n128k16{{.+}}wgmma.commit_group.sync.aligned;"
// OVERLAP: "wgmma.wait_group.sync.aligned 1;", "=f,{{(=f,)+}}0,1,{{([0-9]+,)+}}31,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r"
// OVERLAP: nvvm.vote.sync any
// Two rescale factors and the tile's 32 probabilities before O lands.
// OVERLAP-COUNT-34: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// OVERLAP-NOT: wgmma.wait_group
// OVERLAP: "wgmma.wait_group.sync.aligned 0; // moved", "=f,{{(=f,)+}}0,1,{{([0-9]+,)+}}63,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r"
// OVERLAP: arith.mulf
// OVERLAP: } else {
// OVERLAP-NEXT: "wgmma.wait_group.sync.aligned 0; // kept", "=f,{{(=f,)+}}0,1,{{([0-9]+,)+}}63,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r"
// P is packed into A operands only after the wait (the registers of the
// P that was in flight are free then).
// OVERLAP: gpu.barrier
// OVERLAP-NEXT: arith.truncf
// OVERLAP: scf.yield
// OVERLAP: mbarrier.try_wait.parity
// OVERLAP: wgmma.mma_async.sync.aligned.m64n128k16{{.+}}wgmma.wait_group.sync.aligned 0;"
// OVERLAP-LABEL: gpu.func @causal_prepare_q(
// OVERLAPSTAGES: error: softmax_overlap: the tiles of two key tiles are in use at once; needs tma and stages >= 2

// Warp-specialized, 8 compute warps: a producer warpgroup (384 threads in
// all) initialises the stages' full and empty barriers (the empty ones
// expect the 256 compute threads), hands registers over and loads every
// tile in its own loop, waiting on the empty barriers; the compute warps
// take the registers and free stages by arriving, with no CTA barrier.
// WS-LABEL: gpu.func @causal(
// WS-SAME: known_block_size = array<i32: 384, 1, 1>
// WS: nvvm.mbarrier.init %{{.+}}, %c256_i32
// WS: gpu.barrier
// WS: nvvm.setmaxregister  decrease 40
// WS: scf.for
// WS: mbarrier.try_wait.parity
// WS: nvvm.mbarrier.arrive.expect_tx
// WS: nvvm.cp.async.bulk.tensor
// WS: nvvm.setmaxregister  increase 232
// WS: nvvm.mbarrier.arrive %
// WS-NOT: gpu.barrier
// WS-LABEL: gpu.func @causal_out_bf16(
// WSSTAGES: error: warp_specialized: the producer warp loads tiles ahead into stages the compute warps free; needs tma and stages >= 2

// Ping-pong: warpgroup 1 arrives on named barrier 1 to let warpgroup 0 go
// first; each turn waits on the warpgroup's own barrier (1 + g, 256
// threads), issues its products and arrives on the other's.
// PP-LABEL: gpu.func @causal(
// PP: nvvm.setmaxregister  increase 232
// PP: "bar.arrive $0, $1;", "r,r"
// PP: nvvm.barrier id = %{{.+}} number_of_threads = %{{.+}}
// PP: wgmma.mma_async
// PP: "bar.arrive $0, $1;", "r,r"
// PP: scf.for
// PP: nvvm.barrier id = %{{.+}} number_of_threads = %{{.+}}
// PP: wgmma.mma_async
// PP: wgmma.mma_async
// PP: "bar.arrive $0, $1;", "r,r"
// PP: wgmma.wait_group.sync.aligned 1;
// PP-LABEL: gpu.func @causal_out_bf16(
