// RUN: hybrid-compile %test_configs/cwm.json --emit mlir | FileCheck %s

// The schedule transformers runs for cwm, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and attention module (which layers rotate, and by what).
// Without rope_parameters, CwmConfig's llama3 default (theta 1e6) wins over
// the top-level rope_theta; layers 0, 4, ... are global.

// CHECK-LABEL: hybrid.schedule @cwm layers = 8
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer full heads 48 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = rope, theta = 1000000.0, scaling = <kind = llama3, factor = 16.0, original_max_position = 8192, low_freq_factor = 1.0, high_freq_factor = 4.0>> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer sliding heads 48 kv_heads 8 head_dim 128 mask <kind = sliding_window, window = 8192> pos <kind = rope, theta = 1000000.0, scaling = <kind = llama3, factor = 16.0, original_max_position = 8192, low_freq_factor = 1.0, high_freq_factor = 4.0>> score <scale = 0.08838834764831843> cache <policy = ring, window = 8192>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
