// RUN: hybrid-compile %test_configs/glm4_moe.json --emit mlir | FileCheck %s

// GLM-4.5: full attention on every layer (first_k_dense_replace changes only
// the MLP), and half of each head rotating (partial_rotary_factor 0.5, the
// first 64 dims in rotate-half pairs, as Glm4MoeAttention does).

// CHECK-LABEL: hybrid.schedule @glm4_moe layers = 46
// CHECK-NEXT: hybrid.repeat 46 {
// CHECK-NEXT: hybrid.layer full heads 96 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = partial, theta = 1000000.0, rotary_dim = 64> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
