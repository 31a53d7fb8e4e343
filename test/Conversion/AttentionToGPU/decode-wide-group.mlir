// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu | FileCheck %s

// 64 query heads on one kv head (multi-query attention): the decode kernel
// serves them 8 at a time (a thread's state is 8 floats a head: 64 would
// not fit its registers, nor the queries its shared memory), in a loop over
// the 8 slices, each over the CTA's whole key range.

// CHECK-LABEL: gpu.func @wide_group_decode(
// CHECK-SAME: workgroup(%[[SQ:.+]] : memref<8x128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.+}} : memref<8x128xf32, #gpu.address_space<workgroup>>
// CHECK: %[[KVHEAD:.+]] = arith.remui %{{.+}}, %c1
// CHECK: %[[FIRST:.+]] = arith.muli %[[KVHEAD]], %c64
// CHECK: scf.for %[[SLICE:.+]] = %{{.+}} to %c8{{.*}} step %c1
// CHECK: %[[OFFSET:.+]] = arith.muli %[[SLICE]], %c8
// CHECK: %[[HEAD:.+]] = arith.addi %[[FIRST]], %[[OFFSET]]
// The slice's 8 queries, into shared memory.
// CHECK: scf.for %{{.+}} = %thread_id_x to %c1024 step %c128
// CHECK: arith.addi %[[HEAD]]
// CHECK: memref.store %{{.+}}, %[[SQ]]
// Then its tiles, carrying 8 maxima, 8 sums and 8 accumulators.
// CHECK: scf.for {{.+}} -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK: gpu.return
func.func @wide_group(%q: tensor<?x?x64x128xf32>, %k: tensor<?x?x1x128xf32>, %init: tensor<?x?x64x128xf32>) -> tensor<?x?x64x128xf32> {
  %o = hybrid.attention ins(%q, %k, %k : tensor<?x?x64x128xf32>, tensor<?x?x1x128xf32>, tensor<?x?x1x128xf32>)
         outs(%init : tensor<?x?x64x128xf32>) mask <kind = full, causal = true> pos <kind = none> score <scale = 0.1>
         -> tensor<?x?x64x128xf32>
  return %o : tensor<?x?x64x128xf32>
}
