// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu | FileCheck %s
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="k-tile=32" | FileCheck %s --check-prefix=TILE
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="k-tile=24" 2>&1 | FileCheck %s --check-prefix=BADTILE
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="warp-rows=32" | FileCheck %s --check-prefix=ROWS32
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="warp-rows=24" 2>&1 | FileCheck %s --check-prefix=BADROWS
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="k-tile=256 shared-memory=232448" | FileCheck %s --check-prefix=BIGTILE
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="shared-memory=1024" 2>&1 | FileCheck %s --check-prefix=NOROOM
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="rescale-threshold=0" | FileCheck %s --check-prefix=LAZY0
// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu="value-slice=128" | FileCheck %s --check-prefix=SLICE128
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="value-slice=100" 2>&1 | FileCheck %s --check-prefix=BADSLICE
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="rescale-threshold=33" 2>&1 | FileCheck %s --check-prefix=BADLAZY

// A sliding-window GQA layer (4 query heads over 2 kv heads) with RoPE,
// soft-cap and sinks becomes a tensor-core flash kernel and three prepare
// kernels in one gpu.module.

// CHECK: module attributes {gpu.container_module}
// CHECK: gpu.module @kernels attributes {hybrid.cache_kernels = {advance_length = "hybrid_advance_length", store_rows = "hybrid_store_cache_rows"}
// Every layer's cache stores a step's rows from their sequence's length,
// read from device memory (a CUDA graph's replays each find the last
// one's; each batch entry names its cache sequence), in row p % ring and,
// for the first rows, the mirror rows past the ring; tokens older than the
// ring reaches are skipped, and so are padding entries (sequence -1, read
// as sequence 0 at position 0).
// CHECK-LABEL: gpu.func @hybrid_store_cache_rows(
// CHECK-SAME: %[[NEWK:.+]]: memref<?x?x?xbf16>, %[[KC:.+]]: memref<?x?x?xbf16>, %{{.+}}: memref<?x?x?xbf16>, %{{.+}}: memref<?x?x?xbf16>, %[[LENS:.+]]: memref<?xi64>, %[[SEQS:.+]]: memref<?xi64>, %[[RING:.+]]: index)
// CHECK: %[[TOKEN:.+]] = gpu.block_id x
// CHECK: %[[ENTRY:.+]] = gpu.block_id y
// CHECK: %[[SEQ:.+]] = memref.load %[[SEQS]][%[[ENTRY]]] : memref<?xi64>
// CHECK: %[[PAD:.+]] = arith.cmpi slt, %[[SEQ]], %c0_i64
// CHECK: %[[REAL:.+]] = arith.select %[[PAD]], %c0_i64, %[[SEQ]]
// CHECK: %[[SEQI:.+]] = arith.index_castui %[[REAL]]
// CHECK: %[[FIRST:.+]] = memref.load %[[LENS]][%[[SEQI]]] : memref<?xi64>
// CHECK: %[[FIRSTL:.+]] = arith.index_castui %[[FIRST]]
// CHECK: %[[FIRSTI:.+]] = arith.select %[[PAD]], %c0, %[[FIRSTL]]
// CHECK: %[[INRING:.+]] = arith.cmpi uge
// CHECK: %[[NOTPAD:.+]] = arith.xori %[[PAD]], %true
// CHECK: %[[KEPT:.+]] = arith.andi %[[INRING]], %[[NOTPAD]]
// CHECK: scf.if %[[KEPT]]
// CHECK: %[[POS:.+]] = arith.addi %[[FIRSTI]], %[[TOKEN]]
// CHECK: %[[ROW:.+]] = arith.remui %[[POS]], %[[RING]]
// CHECK: %[[MIRRORED:.+]] = arith.cmpi ult, %[[ROW]]
// CHECK: %[[MIRRORROW:.+]] = arith.addi %[[ROW]], %[[RING]]
// CHECK: memref.store %{{.+}}, %[[KC]][%[[SEQI]], %[[ROW]], %{{.+}}]
// CHECK: scf.if %[[MIRRORED]]
// CHECK: memref.store %{{.+}}, %[[KC]][%[[SEQI]], %[[MIRRORROW]], %{{.+}}]
// Then the step's last kernel moves each entry's sequence's length past
// them (one thread), padding's excepted.
// CHECK-LABEL: gpu.func @hybrid_advance_length(
// CHECK-SAME: %[[L:.+]]: memref<?xi64>, %[[S:.+]]: memref<?xi64>, %[[N:.+]]: i64)
// CHECK-SAME: known_block_size = array<i32: 1, 1, 1>
// CHECK: scf.for %[[E:.+]] = %c0
// CHECK: %[[SE:.+]] = memref.load %[[S]][%[[E]]]
// CHECK: %[[SPAD:.+]] = arith.cmpi slt, %[[SE]]
// CHECK: %[[SR:.+]] = arith.select %[[SPAD]], %{{.+}}, %[[SE]]
// CHECK: %[[SI:.+]] = arith.index_castui %[[SR]]
// CHECK: %[[SREAL:.+]] = arith.xori %[[SPAD]], %true
// CHECK: scf.if %[[SREAL]]
// CHECK: %[[NOW:.+]] = memref.load %[[L]][%[[SI]]]
// CHECK: %[[NEXT:.+]] = arith.addi %[[NOW]], %[[N]]
// CHECK: memref.store %[[NEXT]], %[[L]][%[[SI]]]
// Keys and values are staged in dynamic shared memory (the launch passes
// its size), rows padded by 8 elements (16 bytes), 16-byte aligned for
// cp.async.
// CHECK-LABEL: gpu.func @sliding(
// CHECK-SAME: memref<?x?x4x32xbf16>, %[[K:.+]]: memref<?x?x2x32xbf16>, %{{.+}}: memref<?x?x2x32xbf16>, %{{.+}}: memref<4xf32>, %{{.+}}: memref<?x?x4x32xf32>,
// Then where the keys are: their count, the first one's row, the ring's
// rows (a prompt: S, 0, S).
// CHECK-SAME: %[[NUMKEYS:.+]]: index, %[[FIRSTROW:.+]]: index, %[[RINGROWS:.+]]: index)
// GQA: a CTA's 64 rows are 32 positions x the 2 query heads of kv head
// block y (row r: head 2 * kv + r % 2, position r / 2).
// CHECK-SAME: kernel attributes {hybrid.gpu_kernel = #hybrid.gpu_kernel<>, hybrid.k_tile = 64 : i64, hybrid.q_tile = 32 : i64, hybrid.shared_bytes = 10240 : i64, hybrid.value_slices = 1 : i64, known_block_size = array<i32: 128, 1, 1>}
// CHECK: %[[SHARED:.+]] = gpu.dynamic_shared_memory
// CHECK: %[[SK:.+]] = memref.view %[[SHARED]][%c0{{(_[0-9]+)?}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<64x40xbf16, #gpu.address_space<workgroup>>
// CHECK: %[[SV:.+]] = memref.view %[[SHARED]][%c5120][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<64x40xbf16, #gpu.address_space<workgroup>>
// CHECK: %[[KV:.+]] = gpu.block_id y
// The queries are the last Sq of the keys.
// CHECK: arith.subi %[[NUMKEYS]], %dim
// CHECK: arith.muli %[[KV]], %c2
// CHECK: arith.remui %{{.+}}, %c2
// CHECK: arith.divui %{{.+}}, %c2
// The key range is the mask's: window 100 reaches back 99.
// CHECK: arith.subi %{{.+}}, %c99
// The first key tile is in flight before the loop: a whole tile is
// consecutive rows from key kt's, firstRow + kt less ringRows past the end.
// CHECK: %[[TILEROW:.+]] = arith.addi %[[FIRSTROW]], %{{.+}}
// CHECK: %[[WRAPS:.+]] = arith.cmpi uge, %[[TILEROW]], %[[RINGROWS]]
// CHECK: %[[BACK:.+]] = arith.subi %[[TILEROW]], %[[RINGROWS]]
// CHECK: %[[FIRST:.+]] = arith.select %[[WRAPS]], %[[BACK]], %[[TILEROW]]
// CHECK: %[[ROW:.+]] = arith.addi %[[FIRST]], %{{.+}}
// CHECK: nvgpu.device_async_copy %[[K]][%{{.+}}, %[[ROW]], %{{.+}}, %{{.+}}], %[[SK]][{{.+}}], 8 {bypassL1}
// The tile across the last key maps and clamps each row.
// CHECK: } else {
// CHECK: %[[KEY:.+]] = arith.minui %{{.+}}, %{{.+}}
// CHECK: %[[LAST:.+]] = arith.addi %[[FIRSTROW]], %[[KEY]]
// CHECK: arith.cmpi uge, %[[LAST]], %[[RINGROWS]]
// CHECK: nvgpu.device_async_create_group
// CHECK: scf.for %[[KT:.+]] = %{{.+}} to %{{.+}} step %c64
// CHECK: nvgpu.device_async_wait %{{.+}} {numGroups = 0 : i32}
// CHECK: gpu.barrier
// V(j) loads during Q K(j)^T.
// CHECK: nvgpu.device_async_copy {{.+}}, %[[SV]]
// S = Q K^T: 8 key blocks x 2 head-dim steps, K operands from ldmatrix.
// CHECK: nvgpu.ldmatrix %[[SK]][{{.+}}] {numTiles = 4 : i32, transpose = false}
// CHECK-COUNT-16: nvvm.mma.sync {{.+}} {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// K(j+1) loads during softmax and P V(j).
// CHECK: scf.if
// CHECK: nvgpu.device_async_copy {{.+}}, %[[SK]]
// CHECK: math.tanh
// Interior tiles skip the per-element mask.
// CHECK: scf.if
// CHECK-NOT: arith.cmpi sge
// CHECK: } else {
// CHECK: arith.cmpi sge
// Row maxima across the 4 threads of a row.
// CHECK: gpu.shuffle xor
// Lazy rescaling: a warp moves its rows' running maxima (and rescales their
// sums and outputs) only when some score passes one by more than 2^8,
// i.e. 8 ln 2 = 5.545 (rescale-threshold=0: by anything).
// CHECK: arith.constant 5.54517746 : f32
// LAZY0-NOT: 5.54517746
// LAZY0: nvvm.vote.sync any
// CHECK: %[[MOVE:.+]] = nvvm.vote.sync any %{{.+}}, %{{.+}} -> i1
// CHECK-NEXT: scf.if %[[MOVE]] -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) {
// Exponentials are ex2.approx.ftz.f32 (no denormal fix-ups around each).
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK-COUNT-9: arith.mulf
// CHECK: } else {
// CHECK-NEXT: scf.yield %arg{{[0-9]+}}, %arg{{[0-9]+}},
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// P V: 4 value blocks x 4 key steps, V operands from transposing ldmatrix.
// CHECK: numGroups = 1
// CHECK: nvgpu.ldmatrix %[[SV]][{{.+}}] {numTiles = 4 : i32, transpose = true}
// CHECK-COUNT-16: nvvm.mma.sync
// CHECK: scf.yield
// The sink joins the final sum.
// CHECK: gpu.shuffle xor
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK: memref.store {{.+}} : memref<?x?x4x32xf32>
// The split-K twin (causal layers) writes partials for the decode combine
// kernel: grid y is (split, kv head), each CTA covers its split of the
// query tile's key tiles (whole tiles from the range's first), only the
// first split starts from the sink, and O, max and sum are written as they
// are.
// CHECK-LABEL: gpu.func @sliding_split(
// CHECK-SAME: memref<4xf32>, %[[PO:.+]]: memref<?x?x?x4x32xf32>, %[[PM:.+]]: memref<?x?x?x4xf32>, %[[PS:.+]]: memref<?x?x?x4xf32>, %{{.+}}: index, %{{.+}}: index, %{{.+}}: index)
// CHECK: %[[Y:.+]] = gpu.block_id y
// CHECK: %[[SPLIT:.+]] = arith.divui %[[Y]], %c2
// CHECK: %[[GY:.+]] = gpu.grid_dim y
// CHECK: arith.divui %[[GY]], %c2
// CHECK: arith.remui %[[Y]], %c2
// CHECK: arith.ceildivui
// CHECK: %[[FIRSTSPLIT:.+]] = arith.cmpi eq, %[[SPLIT]], %c0
// CHECK: arith.select %[[FIRSTSPLIT]]
// CHECK: scf.for {{.+}} step %c64
// CHECK: memref.store %{{.+}}, %[[PO]][%[[SPLIT]],
// CHECK: memref.store %{{.+}}, %[[PM]][%[[SPLIT]],
// CHECK: memref.store %{{.+}}, %[[PS]][%[[SPLIT]],
// CHECK-LABEL: gpu.func @sliding_prepare_q(
// CHECK-SAME: memref<?x?x4x32xf32>, %{{.+}}: memref<?x?x4x32xbf16>, %[[QLENS:.+]]: memref<?xi64>, %[[QSEQS:.+]]: memref<?xi64>)
// CHECK: %[[QSEQ:.+]] = memref.load %[[QSEQS]]
// CHECK: %[[QSEQR:.+]] = arith.select %{{.+}}, %{{.+}}, %[[QSEQ]]
// CHECK: %[[QSEQI:.+]] = arith.index_castui %[[QSEQR]]
// CHECK: memref.load %[[QLENS]][%[[QSEQI]]] : memref<?xi64>
// CHECK: math.cos {{.*}} : f64
// CHECK: arith.truncf {{.+}} : f32 to bf16
// CHECK-LABEL: gpu.func @sliding_prepare_k(
// CHECK-LABEL: gpu.func @sliding_prepare_v(
// Decode: SIMT flash-decoding over the cache, one key per thread per tile of
// 128, split over the key range (grid x), partial results per split, which
// the last split to finish merges into the output rows.
// CHECK-LABEL: gpu.func @sliding_decode(
// CHECK-SAME: %[[PO:[^:]+]]: memref<?x?x?x4x32xf32>, %{{.+}}: memref<?x?x?x4xf32>, %{{.+}}: memref<?x?x?x4xf32>, %[[DOUT:[^:]+]]: memref<?x?x4x32xf32>, %[[COUNTERS:[^:]+]]: memref<?xi32>, %[[DLENS:[^:]+]]: memref<?xi64>, %[[DSEQS:[^:]+]]: memref<?xi64>, %{{.+}}: index)
// CHECK-SAME: workgroup(%{{.+}} : memref<2x32xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.+}} : memref<2x128xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<128xindex, #gpu.address_space<workgroup>>, %{{.+}} : memref<2x4xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.+}} : memref<32x32xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[LAST:[^ ]+]] : memref<1xi32, #gpu.address_space<workgroup>>, %[[STATS:[^ ]+]] : memref<2x2xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[SUMS:[^ ]+]] : memref<8x64xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME: hybrid.q_tile = 1 : i64
// The step's first position is its sequence's length on the device; the
// batch coordinate (grid z) names the entry, whose sequence's cache rows
// the keys and values are.
// CHECK: gpu.grid_dim x
// CHECK: %[[DENTRY:.+]] = gpu.block_id z
// CHECK: %[[DSEQ:.+]] = memref.load %[[DSEQS]][%[[DENTRY]]]
// CHECK: %[[DSEQR:.+]] = arith.select %{{.+}}, %{{.+}}, %[[DSEQ]]
// CHECK: %[[DSEQI:.+]] = arith.index_castui %[[DSEQR]]
// CHECK: memref.load %[[DLENS]][%[[DSEQI]]] : memref<?xi64>
// CHECK: arith.subi %{{.+}}, %c99
// CHECK: scf.for {{.+}} step %c128
// The key at position p is in cache row p % rows.
// CHECK: arith.remui
// CHECK: vector.load %{{.+}}[%[[DSEQI]], {{.+}} {alignment = 16 : i64} : memref<?x?x2x32xbf16>, vector<8xbf16>
// CHECK: vector.fma
// CHECK: math.tanh
// CHECK: gpu.shuffle xor
// CHECK: gpu.barrier
// Values: 16 bytes per lane and key; the key subsets' sums meet in shared
// memory once per split.
// CHECK: vector.load {{.+}} {alignment = 16 : i64} : memref<?x?x2x32xbf16>, vector<8xbf16>
// CHECK: vector.fma
// CHECK: vector.store {{.+}} : memref<32x32xf32, #gpu.address_space<workgroup>>, vector<8xf32>
// Then the split counts itself done (its partials fenced first): thread 0
// adds 1 to its (batch, position, kv head)'s counter; the last split resets
// it and counts its group merged, and the last group advances the lengths
// of the launch's sequences.
// CHECK: llvm.fence syncscope("device") acq_rel
// CHECK: gpu.barrier
// CHECK: memref.atomic_rmw addi %{{.+}}, %[[COUNTERS]][%{{.+}}] : (i32, memref<?xi32>) -> i32
// CHECK: memref.store %{{.+}}, %[[LAST]]
// CHECK: memref.store %c0_i32{{.*}}, %[[COUNTERS]]
// CHECK: memref.atomic_rmw addi %{{.+}}, %[[COUNTERS]]
// CHECK: scf.for
// CHECK: memref.load %[[DSEQS]]
// CHECK: memref.load %[[DLENS]]
// CHECK: memref.store %{{.+}}, %[[DLENS]]
// CHECK: gpu.barrier
// CHECK: memref.load %[[LAST]]
// CHECK: scf.if
// CHECK: llvm.fence syncscope("device") acq_rel
// The merge, over flat views of the partials and output rows (indexed by
// split, item and head: no descriptor strides): per head, the max and
// weighted sum over splits in one pass (lanes, then shuffles; an
// approximate reciprocal, where IEEE division cost 16 registers); per
// 4-dim output chunk (16 here, so 8 subsets of the splits), 4 splits'
// partial rows loaded at a time; the subsets' sums added in shared memory.
// CHECK: %[[FLATO:.+]] = memref.collapse_shape %[[PO]] {{\[\[}}0, 1, 2, 3, 4]] : memref<?x?x?x4x32xf32> into memref<?xf32>
// CHECK: %[[FLATOUT:.+]] = memref.collapse_shape %[[DOUT]] {{\[\[}}0, 1, 2, 3]] : memref<?x?x4x32xf32> into memref<?xf32>
// CHECK: gpu.shuffle xor
// CHECK: llvm.call_intrinsic "llvm.nvvm.rcp.approx.ftz.f"
// CHECK: memref.store %{{.+}}, %[[STATS]]
// CHECK: gpu.barrier
// CHECK-COUNT-4: vector.load %[[FLATO]][%{{.+}}] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: vector.store %{{.+}}, %[[SUMS]]
// CHECK: gpu.barrier
// CHECK-COUNT-8: vector.load %[[SUMS]]
// CHECK: memref.load %[[STATS]]
// CHECK: vector.store %{{.+}}, %[[FLATOUT]][%{{.+}}] : memref<?xf32>, vector<4xf32>
// Its twin writes bf16 rows.
// CHECK-LABEL: gpu.func @sliding_decode_bf16(
// CHECK: arith.truncf %{{.+}} : vector<4xf32> to vector<4xbf16>
// CHECK: vector.store %{{.+}} : memref<?xbf16>, vector<4xbf16>
// The split-K flash kernel's merge: one CTA per (batch and position, kv
// head).
// CHECK-LABEL: gpu.func @sliding_decode_combine(
// CHECK: gpu.block_id x
// CHECK: gpu.block_id y
// CHECK: gpu.shuffle xor
// CHECK-COUNT-4: vector.load {{.+}} : memref<?xf32>, vector<4xf32>
// CHECK-NOT: func.func

// Head dim 512 (Gemma 4's global layers): 16-key tiles fit 48 KiB of
// shared memory, queries are reloaded per tile, and each CTA accumulates
// half the value dims (grid y: heads x 2 slices).
// CHECK-LABEL: gpu.func @wide(
// CHECK-SAME: hybrid.k_tile = 16 : i64, hybrid.q_tile = 64 : i64, hybrid.shared_bytes = 25088 : i64, hybrid.value_slices = 2 : i64
// Value slices up to 128 (the head dim 128 layer keeps its one): four per
// head, whose narrower V tiles leave room for 32 keys.
// SLICE128-LABEL: gpu.func @sliding(
// SLICE128-SAME: hybrid.value_slices = 1 : i64
// SLICE128-LABEL: gpu.func @wide(
// SLICE128-SAME: hybrid.k_tile = 32 : i64, hybrid.q_tile = 64 : i64, hybrid.shared_bytes = 41984 : i64, hybrid.value_slices = 4 : i64
// SLICE128: memref.view %{{.+}}[%c33280][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<32x136xbf16, #gpu.address_space<workgroup>>
// BADSLICE: error: value_slice must be a multiple of 16 from 16 to 256, got 100
// CHECK: memref.view %{{.+}}[%c16640][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<16x264xbf16, #gpu.address_space<workgroup>>
// CHECK: %[[HS:.+]] = gpu.block_id y
// CHECK: arith.remui %[[HS]], %c2
// CHECK: scf.for {{.+}} step %c16
// CHECK: vector.load %arg0{{.+}} {alignment = 4 : i64} : memref<?x?x2x512xbf16>, vector<2xbf16>

// 32 rows per warp: 128 rows per CTA (64 positions x 2 heads), each K
// fragment feeding two mma tiles (32 mma for Q K^T per tile).
// ROWS32-LABEL: gpu.func @sliding(
// ROWS32-SAME: hybrid.q_tile = 64 : i64
// ROWS32: nvgpu.ldmatrix
// ROWS32-COUNT-32: nvvm.mma.sync
// ROWS32: gpu.shuffle xor
// BADROWS: error: warp_rows must be 16 or 32 (one or two mma tiles per warp), got 24

// BADTILE: error: 'hybrid.attention' op k-tile must be a positive multiple of 16 for the GPU kernels, got 24

// A budget past 48 KiB keeps a large tile whole (the 512-dim layer's
// halves to fit); none leaves room for no tile.
// BIGTILE-LABEL: gpu.func @sliding(
// BIGTILE-SAME: hybrid.k_tile = 256 : i64
// BIGTILE-LABEL: gpu.func @wide(
// BIGTILE-SAME: hybrid.k_tile = 128 : i64, hybrid.q_tile = 64 : i64, hybrid.shared_bytes = 200704 : i64
// NOROOM: error: 'hybrid.attention' op the flash kernel's K and V tiles need {{[0-9]+}} bytes of shared memory at 16 keys, over the 1024 available (shared-memory)
// BADLAZY: error: rescale_threshold must be 0 to 32 (powers of two), got 33

// TILE: hybrid.k_tile = 32 : i64
// TILE: scf.for {{.+}} step %c32

func.func @sliding(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x2x32xf32>,
                   %v: tensor<?x?x2x32xf32>, %sinks: tensor<4xf32>,
                   %init: tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32> {
  %o = hybrid.attention ins(%q, %k, %v : tensor<?x?x4x32xf32>,
           tensor<?x?x2x32xf32>, tensor<?x?x2x32xf32>)
         sinks(%sinks : tensor<4xf32>) outs(%init : tensor<?x?x4x32xf32>)
         mask <kind = sliding_window, window = 100>
         pos <kind = rope, theta = 10000.0>
         score <scale = 0.125, softcap = 50.0, sinks = true>
         -> tensor<?x?x4x32xf32>
  return %o : tensor<?x?x4x32xf32>
}

func.func @wide(%q: tensor<?x?x2x512xf32>, %init: tensor<?x?x2x512xf32>) -> tensor<?x?x2x512xf32> {
  %o = hybrid.attention ins(%q, %q, %q : tensor<?x?x2x512xf32>,
           tensor<?x?x2x512xf32>, tensor<?x?x2x512xf32>)
         outs(%init : tensor<?x?x2x512xf32>)
         mask <kind = full> pos <kind = none> score <scale = 1.0>
         -> tensor<?x?x2x512xf32>
  return %o : tensor<?x?x2x512xf32>
}
