// RUN: hybrid-compile %test_configs/cohere2_moe.json --emit mlir | FileCheck %s

// The schedule transformers runs for cohere2_moe, written as its
// interleaving pattern; each layer line was checked against transformers
// 5.25's config class and attention module. Two dense-MLP layers first,
// full and rotating (force_rope); then every fourth layer full and NoPE;
// interleaved RoPE of base rope_theta (its rope_scaling is unused).

// CHECK-LABEL: hybrid.schedule @cohere2_moe layers = 12
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer full heads 64 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = rope, theta = 50000.0, interleaved = true> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer sliding heads 64 kv_heads 8 head_dim 128 mask <kind = sliding_window, window = 4096> pos <kind = rope, theta = 50000.0, interleaved = true> score <scale = 0.08838834764831843> cache <policy = ring, window = 4096>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 64 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer sliding heads 64 kv_heads 8 head_dim 128 mask <kind = sliding_window, window = 4096> pos <kind = rope, theta = 50000.0, interleaved = true>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
