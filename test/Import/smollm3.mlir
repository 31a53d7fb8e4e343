// RUN: hybrid-compile %test_configs/smollm3.json --emit mlir | FileCheck %s

// The schedule transformers runs for smollm3, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and attention module (which layers rotate, and by what).
// no_rope_layers: 1 rotates, 0 is NoPE; no window (use_sliding_window false).

// CHECK-LABEL: hybrid.schedule @smollm3 layers = 8
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer full heads 16 kv_heads 4 head_dim 128 mask <kind = full> pos <kind = rope, theta = 5000000.0> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 16 kv_heads 4 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
