// RUN: hybrid-compile %test_configs/exaone4.json --emit mlir | FileCheck %s

// The schedule transformers runs for exaone4, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and attention module (which layers rotate, and by what).
// Global layers are NoPE in a model with a sliding window.

// CHECK-LABEL: hybrid.schedule @exaone4 layers = 8
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer sliding heads 40 kv_heads 8 head_dim 128 mask <kind = sliding_window, window = 4096> pos <kind = rope, theta = 1000000.0, scaling = <kind = llama3, factor = 16.0, original_max_position = 8192, low_freq_factor = 1.0, high_freq_factor = 4.0>> score <scale = 0.08838834764831843> cache <policy = ring, window = 4096>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 40 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
