// RUN: hybrid-compile %test_configs/olmo_hybrid.json --emit mlir | FileCheck %s

// The schedule transformers runs for olmo_hybrid, written as its
// interleaving pattern; each layer line was checked against transformers
// 5.25's config class and attention module. Without layer_types every
// fourth layer is full; gated DeltaNet layers of 30 heads, key dim
// int(0.75 x 3840 / 30) = 96 and value dim 192; rope_theta null: NoPE.

// CHECK-LABEL: hybrid.schedule @olmo_hybrid layers = 32
// CHECK-NEXT: hybrid.repeat 8 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer linear heads 30 kv_heads 30 head_dim 96 v_head_dim 192 cache <policy = none> state <recurrent = 552960, conv = 46080>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 30 kv_heads 30 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
