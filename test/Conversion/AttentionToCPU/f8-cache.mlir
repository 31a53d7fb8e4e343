// RUN: hybrid-opt %s --convert-hybrid-attention-to-cpu="cache-type=f8" | FileCheck %s

// f8 caches (E4M3FN). Each cache vector widens through f16: the byte
// sign-extended, shifted to f16's fields (sign, exponent, the mantissa's top
// bits) and masked, which reads as 2^-8 times its value. The decode kernel
// keeps that scale (its queries enter scratch times 2^8, its outputs leave
// so) and checks each cache row once for NaN codes (S.1111.111, which would
// read as 1.875 * 2^-8), restoring NaNs only in rows that hold one. The
// flash kernel's twin for steps of many tokens, @K_steps, widens key tiles
// fully (times 2^8, NaNs selected) as it copies them.

// CHECK-LABEL: func.func @causal(
// CHECK-SAME: memref<?x?x8x64xf32>, %{{[^:]+}}: memref<?x?x2x64xf32>, %{{[^:]+}}: memref<?x?x2x64xf32>,
// CHECK-NOT: f8E4M3FN
// CHECK-LABEL: func.func @causal_decode(
// CHECK-SAME: %[[Q:[^:]+]]: memref<?x?x8x64xf32>, %[[K:[^:]+]]: memref<?x?x2x64xf8E4M3FN>, %[[V:[^:]+]]: memref<?x?x2x64xf8E4M3FN>,
// CHECK: %[[QUERY:.+]] = vector.load %[[Q]]
// CHECK-NEXT: %[[TWO8:.+]] = arith.constant 2.560000e+02 : f32
// CHECK-NEXT: %[[TWO8S:.+]] = vector.broadcast %[[TWO8]]
// CHECK-NEXT: arith.mulf %[[QUERY]], %[[TWO8S]]
// With GQA 4 the scores pass takes 4 keys at once per kv head: their rows
// checked for NaN codes together, then 4 rows x 4 keys of sums in one
// scf.if (each query chunk loaded once for the 4 keys), their lanes added
// into one vector, a row's 4 scores stored at once.
// CHECK: scf.for %[[J:[^ ]+]] = %{{.+}} to %{{.+}} step %c4 {
// CHECK-COUNT-4: vector.load %[[K]][{{.+}}] : memref<?x?x2x64xf8E4M3FN>, vector<64xf8E4M3FN>
// CHECK: scf.if %{{.+}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>) {
// CHECK-COUNT-4: vector.load %{{.+}} : memref<64x64xf32>, vector<16xf32>
// CHECK: vector.load %[[K]][{{.+}}] : memref<?x?x2x64xf8E4M3FN>, vector<16xf8E4M3FN>
// CHECK-COUNT-16: vector.fma
// CHECK: } else {
// CHECK: vector.extract_strided_slice %{{.+}} {offsets = [0], sizes = [4], strides = [1]} : vector<16xf32> to vector<4xf32>
// CHECK-NEXT: vector.store %{{.+}}, %{{.+}}[%{{.+}}, %[[J]]] : memref<64x64xf32>, vector<4xf32>
// CHECK-COUNT-3: vector.store %{{.+}}, %{{.+}}[%{{.+}}, %[[J]]] : memref<64x64xf32>, vector<4xf32>
// Then the keys left one at a time.
// CHECK: %[[KEY:.+]] = vector.load %[[K]][{{.+}}] : memref<?x?x2x64xf8E4M3FN>, vector<16xf8E4M3FN>
// CHECK-NEXT: %[[BYTES:.+]] = arith.bitcast %[[KEY]] : vector<16xf8E4M3FN> to vector<16xi8>
// CHECK-NEXT: %[[WIDE:.+]] = arith.extsi %[[BYTES]] : vector<16xi8> to vector<16xi16>
// CHECK-NEXT: %[[SEVEN:.+]] = arith.constant dense<7> : vector<16xi16>
// CHECK-NEXT: %[[SHIFTED:.+]] = arith.shli %[[WIDE]], %[[SEVEN]]
// 0xbf80: the sign's copy at bit 14 cleared.
// CHECK-NEXT: %[[MASK:.+]] = arith.constant dense<-16512> : vector<16xi16>
// CHECK-NEXT: %[[BITS:.+]] = arith.andi %[[SHIFTED]], %[[MASK]]
// CHECK-NEXT: %[[HALF:.+]] = arith.bitcast %[[BITS]] : vector<16xi16> to vector<16xf16>
// CHECK-NEXT: %[[FIRST:.+]] = arith.extf %[[HALF]] : vector<16xf16> to vector<16xf32>
// CHECK-NOT: arith.mulf
// CHECK: %[[ROW:.+]] = vector.load %[[K]][{{.+}}] : memref<?x?x2x64xf8E4M3FN>, vector<64xf8E4M3FN>
// CHECK-NEXT: %[[LOW7:.+]] = arith.constant dense<127> : vector<64xi8>
// CHECK-NEXT: %[[ROWBYTES:.+]] = arith.bitcast %[[ROW]] : vector<64xf8E4M3FN> to vector<64xi8>
// CHECK-NEXT: %[[MAGNITUDES:.+]] = arith.andi %[[ROWBYTES]], %[[LOW7]]
// CHECK-NEXT: %[[NANS:.+]] = arith.cmpi eq, %[[MAGNITUDES]], %[[LOW7]]
// CHECK-NEXT: %[[ANY:.+]] = vector.reduction <or>, %[[NANS]] : vector<64xi1> into i1
// CHECK-NEXT: scf.if %[[ANY]] -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK-NEXT: %[[NAN:.+]] = arith.constant dense<0x7FC00000> : vector<16xf32>
// CHECK: %[[KEYBYTES:.+]] = arith.bitcast %[[KEY]] : vector<16xf8E4M3FN> to vector<16xi8>
// CHECK: arith.select %{{.+}}, %[[NAN]], %[[FIRST]] : vector<16xi1>, vector<16xf32>
// CHECK: } else {
// CHECK-NEXT: scf.yield %[[FIRST]],
// Prefetches ask for 64-byte lines: a whole 64-element row.
// CHECK: memref.prefetch %[[V]][%{{.+}}, %{{.+}}, %{{.+}}, %c0{{(_[0-9]+)?}}]
// CHECK-NOT: memref.prefetch %[[V]]{{.*}}%c{{16|32|48}}
// CHECK: vector.load %[[V]][{{.+}}] : memref<?x?x2x64xf8E4M3FN>, vector<16xf8E4M3FN>
// The partial outputs leave times 2^8 (after each row's sum).
// CHECK: memref.store %{{.+}}, %arg5
// CHECK: %[[OUT:.+]] = vector.load %{{.+}} : memref<64x64xf32>, vector<16xf32>
// CHECK-NEXT: arith.constant 2.560000e+02 : f32
// CHECK-NEXT: vector.broadcast
// CHECK-NEXT: %[[SCALED:.+]] = arith.mulf %[[OUT]],
// CHECK-NEXT: arith.constant 0 : index
// CHECK-NEXT: vector.store %[[SCALED]], %arg3
// CHECK-LABEL: func.func @causal_decode_combine(
// CHECK-LABEL: func.func @causal_steps(
// CHECK-SAME: memref<?x?x8x64xf32>, %[[SK:[^:]+]]: memref<?x?x2x64xf8E4M3FN>, %[[SV:[^:]+]]: memref<?x?x2x64xf8E4M3FN>, %{{[^:]+}}: memref<?x?x8x64xf32>,
// CHECK: %[[SKEY:.+]] = vector.load %[[SK]][{{.+}}] : memref<?x?x2x64xf8E4M3FN>, vector<16xf8E4M3FN>
// CHECK: %[[SHALF:.+]] = arith.extf %{{.+}} : vector<16xf16> to vector<16xf32>
// CHECK-NEXT: %[[STWO8:.+]] = arith.constant dense<2.560000e+02> : vector<16xf32>
// CHECK-NEXT: %[[SVALUE:.+]] = arith.mulf %[[SHALF]], %[[STWO8]]
// CHECK-NEXT: %[[SNAN:.+]] = arith.constant dense<0x7FC00000> : vector<16xf32>
// CHECK-NEXT: %[[SLOW7:.+]] = arith.constant dense<127> : vector<16xi8>
// CHECK-NEXT: %[[SBYTES:.+]] = arith.bitcast %[[SKEY]] : vector<16xf8E4M3FN> to vector<16xi8>
// CHECK-NEXT: %[[SMAG:.+]] = arith.andi %[[SBYTES]], %[[SLOW7]]
// CHECK-NEXT: %[[SISNAN:.+]] = arith.cmpi eq, %[[SMAG]], %[[SLOW7]]
// CHECK-NEXT: arith.select %[[SISNAN]], %[[SNAN]], %[[SVALUE]] : vector<16xi1>, vector<16xf32>
// CHECK: vector.load %[[SV]][{{.+}}] : memref<?x?x2x64xf8E4M3FN>, vector<16xf8E4M3FN>
func.func @causal(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x2x64xf32>,
                  %v: tensor<?x?x2x64xf32>, %init: tensor<?x?x8x64xf32>)
    -> tensor<?x?x8x64xf32> {
  %o = hybrid.attention ins(%q, %k, %v : tensor<?x?x8x64xf32>,
           tensor<?x?x2x64xf32>, tensor<?x?x2x64xf32>)
         outs(%init : tensor<?x?x8x64xf32>)
         mask <kind = full> pos <kind = rope, theta = 10000.0>
         score <scale = 0.125>
         -> tensor<?x?x8x64xf32>
  return %o : tensor<?x?x8x64xf32>
}

// K=V: values only, no twin (the runtime widens them for long steps).
// CHECK-LABEL: func.func @kv_decode(
// CHECK-SAME: memref<?x?x4x32xf32>, %{{[^:]+}}: memref<?x?x1x32xf8E4M3FN>, %{{[^:]+}}: memref<?x?x1x32xf8E4M3FN>,
// CHECK-NOT: func.func @kv_steps
func.func @kv(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x1x32xf32>,
              %init: tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
    attributes {hybrid.k_eq_v} {
  %o = hybrid.attention ins(%q, %k, %k : tensor<?x?x4x32xf32>,
           tensor<?x?x1x32xf32>, tensor<?x?x1x32xf32>)
         outs(%init : tensor<?x?x4x32xf32>)
         mask <kind = sliding_window, window = 16> pos <kind = none>
         score <scale = 0.17>
         -> tensor<?x?x4x32xf32>
  return %o : tensor<?x?x4x32xf32>
}
