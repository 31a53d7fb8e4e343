// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu | FileCheck %s

// A K=V layer's kernels (hybrid.k_eq_v): its cache keeps values only. The
// decode kernel takes the key scale after its inputs and derives each key
// from the value row it loads: per tile, each rotated pair's angle at the
// tile's first position modulo 2 pi in f64 (into shared memory), then per
// key and pair one cos.approx and one sin.approx. Partial rotary (24 of 32
// dims: pairs (i, i + 12) straddle the 16-byte chunks) exercises the pairs
// whose partner is in another chunk.

// The fused step kernel stores the step's values into the cache, no keys
// (its key cache argument is the value cache).
// CHECK-LABEL: gpu.func @kv_prepare_step(
// CHECK-SAME: %{{[^:]+}}: memref<?x?x1x32xf32>, %[[NEWV:[^:]+]]: memref<?x?x1x32xf32>, %[[KEYS:[^:]+]]: memref<?x?x1x32xbf16>, %[[VCACHE:[^:]+]]: memref<?x?x1x32xbf16>
// CHECK-NOT: memref.store %{{.+}}, %[[KEYS]][
// CHECK: memref.store %{{.+}}, %[[VCACHE]][
// CHECK-NOT: memref.store %{{.+}}, %[[KEYS]][
// CHECK: gpu.return

// CHECK: memref.global "private" constant @kv_decode_inv_freq : memref<12xf64>
// CHECK-LABEL: gpu.func @kv_decode(
// CHECK-SAME: %[[VALUES:[^:]+]]: memref<?x?x1x32xbf16>, %{{[^:]+}}: memref<?x?x1x32xbf16>, %[[SCALE:[^:]+]]: memref<?xf32>, %{{[^:]+}}: memref<?x?x?x2x32xf32>
// CHECK-SAME: %[[SSCALE:[^ ]+]] : memref<32xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[SPHASE:[^ ]+]] : memref<12xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK: memref.get_global @kv_decode_inv_freq
// The key scale, into shared memory once.
// CHECK: memref.load %[[SCALE]]
// CHECK: memref.store %{{.+}}, %[[SSCALE]]
// Per tile: the angles at its first position, modulo 2 pi.
// CHECK: scf.for
// CHECK: arith.mulf %{{.+}}, %cst{{.*}} : f64
// CHECK: arith.fptoui %{{.+}} : f64 to i64
// CHECK: %[[PHASE:.+]] = arith.truncf %{{.+}} : f64 to f32
// CHECK: memref.store %[[PHASE]], %[[SPHASE]]
// CHECK: gpu.barrier
// The thread's key: four value chunks, scaled, 12 pairs rotated.
// CHECK-COUNT-4: vector.load %[[VALUES]]
// CHECK: vector.load %[[SSCALE]]
// CHECK-COUNT-12: llvm.call_intrinsic "llvm.nvvm.sin.approx.ftz.f"
// CHECK-NOT: approx
// CHECK: vector.reduction <add>
// CHECK: gpu.return

// Flash steps read a range's keys derived and values gathered, in position
// order, from the ring rows of their positions.
// CHECK-LABEL: gpu.func @kv_derive_kv(
// CHECK-SAME: %[[CACHE:[^:]+]]: memref<?x?x1x32xbf16>, %[[DK:[^:]+]]: memref<?x?x1x32xbf16>, %[[DV:[^:]+]]: memref<?x?x1x32xbf16>, %{{[^:]+}}: memref<?xf32>, %[[FIRST:[^:]+]]: index, %[[RING:[^:]+]]: index)
// CHECK: %[[POS:.+]] = arith.addi %[[FIRST]], %[[T:.+]] : index
// CHECK: %[[ROW:.+]] = arith.remui %[[POS]], %[[RING]]
// CHECK: memref.store %{{.+}}, %[[DK]][%{{.+}}, %[[T]],
// CHECK: memref.load %[[CACHE]][%{{.+}}, %[[ROW]],
// CHECK: memref.store %{{.+}}, %[[DV]][%{{.+}}, %[[T]],
func.func @kv(%q: tensor<?x?x2x32xf32>, %k: tensor<?x?x1x32xf32>, %init: tensor<?x?x2x32xf32>) -> tensor<?x?x2x32xf32> attributes {hybrid.k_eq_v} {
  %o = hybrid.attention ins(%q, %k, %k : tensor<?x?x2x32xf32>, tensor<?x?x1x32xf32>, tensor<?x?x1x32xf32>)
         outs(%init : tensor<?x?x2x32xf32>) mask <kind = full, causal = true>
         pos <kind = partial, theta = 10000.0, rotary_dim = 24> score <scale = 0.1>
         -> tensor<?x?x2x32xf32>
  return %o : tensor<?x?x2x32xf32>
}
