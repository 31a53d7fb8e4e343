// RUN: hybrid-compile %test_configs/bamba.json --emit mlir | FileCheck %s

// The schedule transformers runs for bamba, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and attention module. Attention at attn_layer_indices (9, 18, 27),
// rotating half of each head although the config's partial_rotary_factor is
// 1 (BambaConfig overwrites it); Mamba-2 states of 128 heads x 64 x 128 and a
// conv of (8192 + 2 x 128) x 4.

// CHECK-LABEL: hybrid.schedule @bamba layers = 32
// CHECK-NEXT: hybrid.repeat 9 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 1048576, conv = 33792>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = partial, theta = 10000.0, rotary_dim = 64> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: hybrid.repeat 8 {
// CHECK-NEXT: hybrid.layer mamba
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = partial, theta = 10000.0, rotary_dim = 64>
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.layer mamba
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
