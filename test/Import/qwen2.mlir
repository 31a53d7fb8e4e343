// RUN: hybrid-compile %test_configs/qwen2.json --emit mlir | FileCheck %s

// The schedule transformers runs for qwen2, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @qwen2 layers = 28
// CHECK-NEXT: hybrid.repeat 21 {
// CHECK-NEXT: hybrid.layer full heads 12 kv_heads 2 head_dim 128 mask <kind = full> pos <kind = rope, theta = 1000000.0> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 7 {
// CHECK-NEXT: hybrid.layer sliding heads 12 kv_heads 2 head_dim 128 mask <kind = sliding_window, window = 32768> pos <kind = rope, theta = 1000000.0> score <scale = 0.08838834764831843> cache <policy = ring, window = 32768>
// CHECK-NEXT: {{^ *}}}{{$}}
