// RUN: hybrid-compile %test_configs/nemotron_h.json --emit mlir | FileCheck %s

// The schedule transformers runs for nemotron_h, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and blocks. hybrid_override_pattern gives one block per character:
// Mamba-2 (M), NoPE attention (*) and MLPs (-) that mix no tokens, kept as
// `mlp` layers so that layer indices stay the model's. Mamba-2 states of
// 128 heads x 80 x 128 and a conv of (10240 + 2 x 8 x 128) x 4.

// CHECK-LABEL: hybrid.schedule @nemotron_h layers = 56
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 1310720, conv = 49152>
// CHECK-NEXT: hybrid.layer mlp cache <policy = none>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 1310720, conv = 49152>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer full heads 40 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer mlp cache <policy = none>
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 1310720, conv = 49152>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer mlp cache <policy = none>
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 1310720, conv = 49152>
// CHECK-NEXT: hybrid.layer full heads 40 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.layer mlp cache <policy = none>
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 1310720, conv = 49152>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 40 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer mlp cache <policy = none>
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 1310720, conv = 49152>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 6 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 1310720, conv = 49152>
// CHECK-NEXT: hybrid.layer mlp cache <policy = none>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
