// RUN: hybrid-opt %s --convert-hybrid-attention-to-cpu | FileCheck %s
// RUN: hybrid-opt %s --convert-hybrid-attention-to-cpu="q-tile=64 k-tile=128" | FileCheck %s --check-prefix=TILES

// A sliding-window GQA kernel (8 query heads over 2 kv heads) with RoPE,
// soft-cap and sinks becomes a flash kernel and two prepare kernels, all with
// the C interface the runtime calls.

// CHECK-LABEL: func.func @sliding(
// CHECK-SAME: %[[Q:[^:]+]]: memref<?x?x8x64xf32>, %[[K:[^:]+]]: memref<?x?x2x64xf32>, %[[V:[^:]+]]: memref<?x?x2x64xf32>, %[[SINKS:[^:]+]]: memref<8xf32>, %[[OUT:[^:]+]]: memref<?x?x8x64xf32>, %[[NUMKEYS:[^:]+]]: index, %[[FIRSTROW:[^:]+]]: index, %[[TILE:[^:]+]]: index, %[[BEGIN:[^:]+]]: index, %[[END:[^:]+]]: index)
// CHECK-SAME: hybrid.k_tile = 64 : i64, hybrid.q_tile = 64 : i64, llvm.emit_c_interface
// Rows (4 query heads x 64 positions: the default 256) live along the lanes:
// QT, ST, OT, each row one vector longer than needed (no power-of-two stride);
// a key tile's keys and values (KT, VT) likewise.
// CHECK-DAG: memref.alloca() {alignment = 64 : i64} : memref<64x272xf32>
// CHECK-DAG: %[[KT:.+]] = memref.alloca() {alignment = 64 : i64} : memref<64x80xf32>
// CHECK-DAG: %[[VT:.+]] = memref.alloca() {alignment = 64 : i64} : memref<64x80xf32>
// The caller's positions per work item, at most the compiled 64.
// CHECK: %[[MAX:.+]] = arith.constant 64 : index
// CHECK-NEXT: arith.minui %[[TILE]], %[[MAX]]
// CHECK: scf.for %[[W:.+]] = %[[BEGIN]] to %[[END]]
// The key loop runs over the mask's range only: window 100 reaches back 99.
// CHECK: arith.subi %{{.+}}, %c99
// Keys may sit in a ring of rows (a decode session's window cache): the
// range is two runs, before the wrap (row = key + first row) and after it
// (row = key + first row - rows).
// CHECK: %[[WRAP:.+]] = arith.subi %[[ROWS:.+]], %[[FIRSTROW]] : index
// CHECK: scf.for %[[PART:.+]] = %{{.+}} to %c2
// CHECK: %[[BEFORE:.+]] = arith.cmpi eq, %[[PART]]
// CHECK: arith.minsi %{{.+}}, %[[WRAP]]
// CHECK: %[[AFTER:.+]] = arith.subi %[[FIRSTROW]], %[[ROWS]]
// CHECK-NEXT: %[[SHIFT:.+]] = arith.select %[[BEFORE]], %[[FIRSTROW]], %[[AFTER]]
// CHECK: scf.for %[[TILEKEY:.+]] = %{{.+}} to %{{.+}} step %c64
// The tile's keys and values, from their rows, into KT and VT once for all
// the work item's row blocks; KT rows up to a whole block of 8 keys zeros.
// CHECK: %[[KEY:.+]] = arith.addi %[[TILEKEY]], %{{.+}}
// CHECK-NEXT: %[[ROW:.+]] = arith.addi %[[KEY]], %[[SHIFT]]
// CHECK: %[[KEYS:.+]] = vector.load %[[K]][%{{.+}}, %[[ROW]], %{{.+}}, %{{.+}}]
// CHECK: vector.store %[[KEYS]], %[[KT]]
// CHECK: %[[VALUES:.+]] = vector.load %[[V]][%{{.+}}, %[[ROW]], %{{.+}}, %{{.+}}]
// CHECK: vector.store %[[VALUES]], %[[VT]]
// CHECK: vector.store %{{.+}}, %[[KT]]
// Blocks of 32 rows, each over the keys its rows see (none: skipped).
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c32
// CHECK: %[[SEEN:.+]] = arith.cmpi slt
// CHECK-NEXT: scf.if %[[SEEN]]
// Scores: broadcast-FMA micro-kernel over the key dim, 8 keys of KT through
// one view (constant offsets).
// CHECK: %[[KEYROWS:.+]] = memref.subview %[[KT]][%{{.+}}, 0] [8, 64] [1, 1]
// CHECK: scf.for {{.+}} iter_args
// CHECK: memref.load %[[KEYROWS]][%c0{{[_0-9]*}}, %{{.+}}]
// CHECK-COUNT-16: vector.fma
// Vectors of rows that see every key skip the per-element mask. The tile's
// max is a compare and select (one vmaxps); probabilities are
// 2^(s log2(e) - max log2(e)): one FMA and math.exp2.
// CHECK: scf.if
// CHECK: math.tanh
// CHECK-NOT: arith.cmpi sge
// CHECK: %[[GT:.+]] = arith.cmpf ogt, %[[ACC:[^,]+]], %[[S:.+]] : vector<16xf32>
// CHECK-NEXT: arith.select %[[GT]], %[[ACC]], %[[S]]
// CHECK: %[[X:.+]] = math.fma
// CHECK-NEXT: math.exp2 %[[X]] : vector<16xf32>
// CHECK: } else {
// CHECK: math.tanh
// CHECK: arith.cmpi sge
// CHECK: math.exp2
// P * V micro-kernel: each key's 8 values of VT through one view, so that
// they are loaded at constant offsets.
// CHECK: %[[VALUEROW:.+]] = memref.subview %[[VT]][%{{.+}}, %{{.+}}] [1, 8] [1, 1]
// CHECK: memref.load %[[VALUEROW]][%c0{{[_0-9]*}}, %c7{{[_0-9]*}}]
// CHECK: vector.fma
// CHECK-LABEL: func.func @sliding_prepare_q(
// CHECK-SAME: llvm.emit_c_interface
// CHECK: math.cos {{.*}} : f64
// CHECK-LABEL: func.func @sliding_prepare_k(
// Decode: up to 8 query positions of a step for all 8 query heads per work
// item (64 scratch rows), vectors along the head dim, partial results per
// key-range split.
// CHECK-LABEL: func.func @sliding_decode(
// CHECK-SAME: %[[DK:[^:]+]]: memref<?x?x2x64xf32>, %[[DV:[^:]+]]: memref<?x?x2x64xf32>
// CHECK-SAME: memref<?x?x?x8x64xf32>, %{{.+}}: memref<?x?x?x8xf32>, %{{.+}}: memref<?x?x?x8xf32>, %[[POS:.+]]: index, %[[SPLITS:.+]]: index, %{{.+}}: index, %{{.+}}: index)
// CHECK-SAME: hybrid.q_tile = 8 : i64
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<64x64xf32>
// The key row of a position: p - (p / capacity) * capacity (a ring wraps).
// CHECK: arith.divui %{{.+}}, %{{.+}} : index
// Scores: keys outside, the 2 kv heads inside, so that each cache row is read
// front to back; each key vector serves its positions' 4 query heads, whose
// lanes are summed together (two levels of shuffles pair them, two fold
// each in place; one extract each). An item of one position (the usual
// step) sees its whole range...
// CHECK: %[[ONE:.+]] = arith.cmpi eq, %{{.+}}, %c1
// CHECK-NEXT: scf.if %[[ONE]]
// CHECK: %[[COUNT:.+]] = arith.minsi %c64
// CHECK: scf.for %[[J:.+]] = %{{.+}} to %[[COUNT]] step
// CHECK-NEXT: %[[ROW:.+]] = arith.addi %{{.+}}, %[[J]]
// CHECK: scf.for %[[H:.+]] = %{{.+}} to %c2 step
// CHECK: vector.load %[[DK]][%{{.+}}, %[[ROW]], %[[H]], %{{.+}}]
// With GQA the scores pass prefetches the row's values into L2, 64 bytes
// at a time, for the accumulate pass...
// CHECK-COUNT-4: memref.prefetch %[[DV]][%{{.+}}, %[[ROW]], %[[H]], %{{.+}}], read, locality<2>, data
// CHECK-NOT: arith.cmpi sle
// CHECK: vector.shuffle %{{.+}}, %{{.+}} [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]
// CHECK: vector.shuffle %{{.+}}, %{{.+}} [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]
// CHECK: vector.shuffle %[[HALVES:.+]], %[[HALVES]] [2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15]
// CHECK: %[[S0:.+]] = vector.extract %{{.+}}[0]
// CHECK: vector.extract %{{.+}}[12]
// CHECK-NEXT: memref.store %[[S0]]
// The accumulate pass runs through 8 keys at a time, kv head by kv head,
// a kv head's 4 rows times its 4 value chunks of accumulators carried in
// registers through the run's keys...
// CHECK: scf.for %[[FROM:.+]] = %{{.+}} to %{{.+}} step %c8
// CHECK: %[[UNTIL:.+]] = arith.minui
// CHECK: scf.for %[[AH:.+]] = %{{.+}} to %c2 step
// CHECK: %{{.+}}:16 = scf.for %[[AJ:.+]] = %[[FROM]] to %[[UNTIL]] step %{{.+}} iter_args({{.+}}) -> (vector<16xf32>, {{.+}}) {
// CHECK: %[[AROW:.+]] = arith.addi %{{.+}}, %[[AJ]]
// CHECK: vector.load %[[DV]][%{{.+}}, %[[AROW]], %[[AH]], %{{.+}}]
// ... and prefetches the next tile's keys (64 rows on, at most the cache's
// last row).
// CHECK: %[[NEXT:.+]] = arith.minui
// CHECK: memref.prefetch %[[DK]][%{{.+}}, %[[NEXT]], %[[AH]], %{{.+}}], read, locality<2>, data
// CHECK-COUNT-16: vector.fma
// CHECK-NEXT: scf.yield
// ... several loop over their positions, and a score is -inf unless its
// position sees the key (key <= query, key >= query - 99).
// CHECK: } else {
// CHECK: scf.for %[[H2:.+]] = %{{.+}} to %c2 step
// CHECK: vector.load %[[DK]][%{{.+}}, %{{.+}}, %[[H2]], %{{.+}}]
// CHECK: scf.for
// CHECK: arith.cmpi sle
// CHECK: arith.subi %{{.+}}, %c99
// CHECK: %[[SGE:.+]] = arith.cmpi sge
// CHECK: %[[SEEN:.+]] = arith.andi %{{.+}}, %[[SGE]]
// CHECK: %[[S:.+]] = vector.extract %{{.+}}[0]
// CHECK: arith.select %[[SEEN]], %[[S]]
// CHECK: vector.reduction <maximumf>
// CHECK: math.tanh
// CHECK: math.exp2
// CHECK-LABEL: func.func @sliding_decode_combine(
// CHECK-SAME: memref<?x?x?x8x64xf32>, %{{.+}}: memref<?x?x?x8xf32>, %{{.+}}: memref<?x?x?x8xf32>, %{{.+}}: memref<?x?x8x64xf32>

// TILES: hybrid.k_tile = 128 : i64, hybrid.q_tile = 16 : i64
// TILES: memref.alloca() {alignment = 64 : i64} : memref<64x80xf32>

func.func @sliding(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x2x64xf32>,
                   %v: tensor<?x?x2x64xf32>, %sinks: tensor<8xf32>,
                   %init: tensor<?x?x8x64xf32>) -> tensor<?x?x8x64xf32> {
  %o = hybrid.attention ins(%q, %k, %v : tensor<?x?x8x64xf32>,
           tensor<?x?x2x64xf32>, tensor<?x?x2x64xf32>)
         sinks(%sinks : tensor<8xf32>) outs(%init : tensor<?x?x8x64xf32>)
         mask <kind = sliding_window, window = 100>
         pos <kind = rope, theta = 10000.0>
         score <scale = 0.125, softcap = 30.0, sinks = true>
         -> tensor<?x?x8x64xf32>
  return %o : tensor<?x?x8x64xf32>
}

// NoPE: no key preparation.
// CHECK-LABEL: func.func @nope(
// CHECK-LABEL: func.func @nope_prepare_q(
// CHECK-NOT: func.func @nope_prepare_k
// CHECK-LABEL: func.func @nope_decode(
// Without GQA, items of one position leave prefetching to the hardware (one
// row's work per cache vector); items of several positions prefetch.
// CHECK: %[[ONE1:.+]] = arith.cmpi eq, %{{.+}}, %c1
// CHECK-NEXT: scf.if %[[ONE1]]
// CHECK-NOT: memref.prefetch
// CHECK: } else {
// CHECK: memref.prefetch
func.func @nope(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x4x32xf32>,
                %v: tensor<?x?x4x32xf32>, %init: tensor<?x?x4x32xf32>)
    -> tensor<?x?x4x32xf32> {
  %o = hybrid.attention ins(%q, %k, %v : tensor<?x?x4x32xf32>,
           tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>)
         outs(%init : tensor<?x?x4x32xf32>)
         mask <kind = full> pos <kind = none> score <scale = 0.17>
         -> tensor<?x?x4x32xf32>
  return %o : tensor<?x?x4x32xf32>
}

// Tile sizes on the op (the tuner's) win over the pass options.
// CHECK-LABEL: func.func @tuned(
// CHECK-SAME: hybrid.k_tile = 32 : i64, hybrid.q_tile = 64 : i64
// TILES-LABEL: func.func @tuned(
// TILES-SAME: hybrid.k_tile = 32 : i64, hybrid.q_tile = 64 : i64
func.func @tuned(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x4x32xf32>,
                 %v: tensor<?x?x4x32xf32>, %init: tensor<?x?x4x32xf32>)
    -> tensor<?x?x4x32xf32> {
  %o = hybrid.attention ins(%q, %k, %v : tensor<?x?x4x32xf32>,
           tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>)
         outs(%init : tensor<?x?x4x32xf32>)
         mask <kind = full> pos <kind = none> score <scale = 0.17>
         {q_tile = 64, k_tile = 32} -> tensor<?x?x4x32xf32>
  return %o : tensor<?x?x4x32xf32>
}

// Bidirectional attention has no decode kernel: decoding extends a causal
// context.
// CHECK-LABEL: func.func @bidirectional(
// CHECK-NOT: func.func @bidirectional_decode
// CHECK-LABEL: func.func @bidirectional_prepare_q(
// CHECK-NOT: func.func @bidirectional_decode
func.func @bidirectional(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x4x32xf32>,
                         %v: tensor<?x?x4x32xf32>, %init: tensor<?x?x4x32xf32>)
    -> tensor<?x?x4x32xf32> {
  %o = hybrid.attention ins(%q, %k, %v : tensor<?x?x4x32xf32>,
           tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>)
         outs(%init : tensor<?x?x4x32xf32>)
         mask <kind = full, causal = false> pos <kind = none> score <scale = 0.17>
         -> tensor<?x?x4x32xf32>
  return %o : tensor<?x?x4x32xf32>
}
