// RUN: hybrid-compile %test_configs/granite_swa.json --emit mlir | FileCheck %s

// The schedule transformers runs for granite_swa, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and attention module (which layers rotate, and by what).
// layer_rope_theta gives each layer its base (0: NoPE), over rope_theta.

// CHECK-LABEL: hybrid.schedule @granite_swa layers = 8
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer full heads 20 kv_heads 4 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.0078125, sinks = true> cache <policy = full>
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer sliding heads 20 kv_heads 4 head_dim 128 mask <kind = sliding_window, window = 128> pos <kind = rope, theta = 10000.0> score <scale = 0.0078125, sinks = true> cache <policy = ring, window = 128>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
