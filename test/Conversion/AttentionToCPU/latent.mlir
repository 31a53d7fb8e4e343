// RUN: hybrid-opt %s --convert-hybrid-attention-to-cpu="cache-type=bf16" | FileCheck %s

// A latent kernel (MLA absorbed, `hybrid.latent`): the values are the first
// 64 dims of each 96-dim key row, so every kernel takes them as a strided
// view of the key rows (the runtime passes the keys' descriptor, sizes cut
// to 64) and reads nothing past dim 64. Both kernels are marked for the
// manifest.

// CHECK-LABEL: func.func @mla(
// CHECK-SAME: %{{[^:]+}}: memref<?x?x8x96xf32>, %{{[^:]+}}: memref<?x?x1x96xf32>, %{{[^:]+}}: memref<?x?x1x64xf32, strided<[?, 96, 96, 1]>>,
// CHECK-SAME: hybrid.latent
// CHECK-LABEL: func.func @mla_decode(
// CHECK-SAME: %{{[^:]+}}: memref<?x?x8x96xf32>, %{{[^:]+}}: memref<?x?x1x96xbf16>, %{{[^:]+}}: memref<?x?x1x64xbf16, strided<[?, 96, 96, 1]>>,
// CHECK-SAME: hybrid.latent
// CHECK-LABEL: func.func @mla_steps(
// CHECK-SAME: %{{[^:]+}}: memref<?x?x1x64xbf16, strided<[?, 96, 96, 1]>>
func.func @mla(%q: tensor<?x?x8x96xf32>, %k: tensor<?x?x1x96xf32>,
               %v: tensor<?x?x1x64xf32>, %init: tensor<?x?x8x64xf32>)
    -> tensor<?x?x8x64xf32> attributes {hybrid.latent} {
  %o = hybrid.attention ins(%q, %k, %v : tensor<?x?x8x96xf32>,
           tensor<?x?x1x96xf32>, tensor<?x?x1x64xf32>)
         outs(%init : tensor<?x?x8x64xf32>)
         mask <kind = full>
         pos <kind = partial, theta = 10000.0, rotary_dim = 32, interleaved = true, rotary_offset = 64>
         score <scale = 0.125>
         -> tensor<?x?x8x64xf32>
  return %o : tensor<?x?x8x64xf32>
}
