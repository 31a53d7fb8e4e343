// RUN: hybrid-compile %test_configs/olmo3.json --emit mlir | FileCheck %s

// The schedule transformers runs for olmo3, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and attention module (which layers rotate, and by what).
// Olmo3Config gives the top-level rope_theta and rope_scaling to the full
// layers only: the sliding ones keep its default, 500000, unscaled.

// CHECK-LABEL: hybrid.schedule @olmo3 layers = 8
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer sliding heads 32 kv_heads 32 head_dim 128 mask <kind = sliding_window, window = 4096> pos <kind = rope, theta = 500000.0> score <scale = 0.08838834764831843> cache <policy = ring, window = 4096>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 32 head_dim 128 mask <kind = full> pos <kind = rope, theta = 1000000.0, scaling = <kind = yarn, factor = 8.0, original_max_position = 8192, beta_fast = 32.0, beta_slow = 1.0, attention_factor = 1.2079441541679836>> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
