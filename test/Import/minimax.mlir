// RUN: hybrid-compile %test_configs/minimax.json --emit mlir | FileCheck %s

// The schedule transformers runs for minimax, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @minimax layers = 80
// CHECK-NEXT: hybrid.repeat 10 {
// CHECK-NEXT: hybrid.repeat 7 {
// CHECK-NEXT: hybrid.layer linear heads 64 kv_heads 64 head_dim 128 cache <policy = none> state <recurrent = 1048576>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 64 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = partial, theta = 10000000.0, rotary_dim = 64> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
