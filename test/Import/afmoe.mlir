// RUN: hybrid-compile %test_configs/afmoe.json --emit mlir | FileCheck %s

// The schedule transformers runs for afmoe, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and attention module (which layers rotate, and by what).
// Global layers (every global_attn_every_n_layers-th) are NoPE.

// CHECK-LABEL: hybrid.schedule @afmoe layers = 8
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer sliding heads 32 kv_heads 4 head_dim 128 mask <kind = sliding_window, window = 2048> pos <kind = rope, theta = 10000.0> score <scale = 0.08838834764831843> cache <policy = ring, window = 2048>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 4 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
