// RUN: hybrid-compile %test_configs/lfm2.json --emit mlir | FileCheck %s

// The schedule transformers runs for lfm2, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and modules. Attention at full_attn_idxs with RoPE of base 1e6;
// gated short convolutions elsewhere, each keeping its last conv_L_cache
// (3) inputs of width 2048.

// CHECK-LABEL: hybrid.schedule @lfm2 layers = 16
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer conv cache <policy = none> state <conv = 6144>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 8 head_dim 64 mask <kind = full> pos <kind = rope, theta = 1000000.0> score <scale = 0.125> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer conv cache <policy = none> state <conv = 6144>
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 8 head_dim 64 mask <kind = full> pos <kind = rope, theta = 1000000.0> score <scale = 0.125> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer conv cache <policy = none> state <conv = 6144>
// CHECK-NEXT: {{^ *}}}{{$}}
