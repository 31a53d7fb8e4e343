// RUN: hybrid-compile %test_configs/ernie4_5.json --emit mlir | FileCheck %s

// ERNIE 4.5: full attention on every layer, RoPE over the whole head in
// interleaved pairs (dims 2i and 2i + 1, as Ernie4_5's rotate_half).

// CHECK-LABEL: hybrid.schedule @ernie4_5 layers = 18
// CHECK-NEXT: hybrid.repeat 18 {
// CHECK-NEXT: hybrid.layer full heads 16 kv_heads 2 head_dim 128 mask <kind = full> pos <kind = rope, theta = 500000.0, interleaved = true> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
