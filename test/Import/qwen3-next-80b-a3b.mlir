// RUN: hybrid-compile %configs/qwen3-next-80b-a3b.json --emit mlir | FileCheck %s

// The schedule transformers runs for qwen3-next-80b-a3b, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @qwen3_next layers = 48
// CHECK-NEXT: hybrid.repeat 12 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer linear heads 32 kv_heads 16 head_dim 128 cache <policy = none> state <recurrent = 524288, conv = 32768>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 16 kv_heads 2 head_dim 256 mask <kind = full> pos <kind = partial, theta = 10000000.0, rotary_dim = 64> score <scale = 0.0625> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
