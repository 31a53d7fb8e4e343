// RUN: hybrid-compile %test_configs/gpt_oss.json --emit mlir | FileCheck %s

// The schedule transformers runs for gpt_oss, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @gpt_oss layers = 24
// CHECK-NEXT: hybrid.repeat 12 {
// CHECK-NEXT: hybrid.layer sliding heads 64 kv_heads 8 head_dim 64 mask <kind = sliding_window, window = 128> pos <kind = rope, theta = 150000.0, scaling = <kind = yarn, factor = 32.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, truncate = false>> score <scale = 0.125, sinks = true> cache <policy = ring, window = 128>
// CHECK-NEXT: hybrid.layer full heads 64 kv_heads 8 head_dim 64 mask <kind = full> pos <kind = rope, theta = 150000.0, scaling = <kind = yarn, factor = 32.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, truncate = false>> score <scale = 0.125, sinks = true> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
