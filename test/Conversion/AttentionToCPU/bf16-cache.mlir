// RUN: hybrid-opt %s --convert-hybrid-attention-to-cpu="cache-type=bf16" | FileCheck %s
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-cpu="cache-type=f64" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: hybrid-opt %s --convert-hybrid-attention-to-cpu="cache-type=f16" | FileCheck %s --check-prefix=F16

// bf16 caches: the decode kernel reads bf16 keys and values and widens each
// vector it loads; prompts keep the f32 flash kernel, and steps of many
// tokens over the cache get its bf16 twin, @K_steps, which widens each key
// tile as it copies it.

// f16 caches take the same path: arith.extf (vcvtph2ps), its prefetches
// stepping 32 elements, and a twin.
// F16-LABEL: func.func @causal_decode(
// F16-SAME: memref<?x?x8x64xf32>, %[[K:[^:]+]]: memref<?x?x2x64xf16>, %{{[^:]+}}: memref<?x?x2x64xf16>,
// F16: %[[KEY:.+]] = vector.load %[[K]][{{.+}}] : memref<?x?x2x64xf16>, vector<16xf16>
// F16-NEXT: arith.extf %[[KEY]] : vector<16xf16> to vector<16xf32>
// F16-LABEL: func.func @causal_steps(
// F16-SAME: memref<?x?x8x64xf32>, %{{[^:]+}}: memref<?x?x2x64xf16>, %{{[^:]+}}: memref<?x?x2x64xf16>,

// The prompt's kernel: f32 keys and values.
// CHECK-LABEL: func.func @causal(
// CHECK-SAME: memref<?x?x8x64xf32>, %{{[^:]+}}: memref<?x?x2x64xf32>, %{{[^:]+}}: memref<?x?x2x64xf32>,
// CHECK-NOT: bf16
// CHECK-LABEL: func.func @causal_decode(
// CHECK-SAME: memref<?x?x8x64xf32>, %[[K:[^:]+]]: memref<?x?x2x64xbf16>, %[[V:[^:]+]]: memref<?x?x2x64xbf16>,
// CHECK: %[[KEY:.+]] = vector.load %[[K]][{{.+}}] : memref<?x?x2x64xbf16>, vector<16xbf16>
// CHECK-NEXT: arith.extf %[[KEY]] : vector<16xbf16> to vector<16xf32>
// Prefetches ask for 64-byte lines: 32 bf16 elements.
// CHECK: memref.prefetch %[[V]][%{{.+}}, %{{.+}}, %{{.+}}, %c0{{(_[0-9]+)?}}]
// CHECK-NOT: memref.prefetch %[[V]]{{.*}}%c16
// CHECK: memref.prefetch %[[V]][%{{.+}}, %{{.+}}, %{{.+}}, %c32{{(_[0-9]+)?}}]
// CHECK-NOT: memref.prefetch %[[V]]{{.*}}%c48
// CHECK: %[[VALUE:.+]] = vector.load %[[V]][{{.+}}] : memref<?x?x2x64xbf16>, vector<16xbf16>
// CHECK-NEXT: arith.extf %[[VALUE]] : vector<16xbf16> to vector<16xf32>
// CHECK-LABEL: func.func @causal_decode_combine(
// CHECK-LABEL: func.func @causal_steps(
// CHECK-SAME: memref<?x?x8x64xf32>, %[[SK:[^:]+]]: memref<?x?x2x64xbf16>, %[[SV:[^:]+]]: memref<?x?x2x64xbf16>, %{{[^:]+}}: memref<?x?x8x64xf32>,
// CHECK: %[[SKEY:.+]] = vector.load %[[SK]][{{.+}}] : memref<?x?x2x64xbf16>, vector<16xbf16>
// CHECK-NEXT: arith.extf %[[SKEY]] : vector<16xbf16> to vector<16xf32>
// CHECK: %[[SVALUE:.+]] = vector.load %[[SV]][{{.+}}] : memref<?x?x2x64xbf16>, vector<16xbf16>
// CHECK-NEXT: arith.extf %[[SVALUE]] : vector<16xbf16> to vector<16xf32>
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

// A K=V cache keeps the values only, from which the runtime derives f32
// keys for steps of many tokens (the prompt's kernel reads them): no twin.
// CHECK-LABEL: func.func @kv_decode(
// CHECK-SAME: memref<?x?x4x32xf32>, %{{[^:]+}}: memref<?x?x1x32xbf16>, %{{[^:]+}}: memref<?x?x1x32xbf16>,
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

// Bidirectional layers have no decode kernel, so no cache and no twin.
// CHECK-LABEL: func.func @bidirectional(
// CHECK-NOT: func.func @bidirectional_steps
func.func @bidirectional(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x4x32xf32>,
                         %v: tensor<?x?x4x32xf32>, %init: tensor<?x?x4x32xf32>)
    -> tensor<?x?x4x32xf32> {
  %o = hybrid.attention ins(%q, %k, %v : tensor<?x?x4x32xf32>,
           tensor<?x?x4x32xf32>, tensor<?x?x4x32xf32>)
         outs(%init : tensor<?x?x4x32xf32>)
         mask <kind = full, causal = false> pos <kind = none>
         score <scale = 0.17>
         -> tensor<?x?x4x32xf32>
  return %o : tensor<?x?x4x32xf32>
}

// BAD: error: cache-type must be f32, bf16, f16 or f8, got 'f64'
