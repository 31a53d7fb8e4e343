// RUN: hybrid-compile %configs/gemma-3-27b-it.json --emit mlir | FileCheck %s

// The schedule transformers runs for gemma-3-27b-it, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @gemma3 layers = 62
// CHECK-NEXT: hybrid.repeat 10 {
// CHECK-NEXT: hybrid.repeat 5 {
// CHECK-NEXT: hybrid.layer sliding heads 32 kv_heads 16 head_dim 128 mask <kind = sliding_window, window = 1024> pos <kind = rope, theta = 10000.0> score <scale = 0.07715167498104596> cache <policy = ring, window = 1024>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 16 head_dim 128 mask <kind = full> pos <kind = rope, theta = 1000000.0, scaling = <kind = linear, factor = 8.0>> score <scale = 0.07715167498104596> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer sliding heads 32 kv_heads 16 head_dim 128 mask <kind = sliding_window, window = 1024> pos <kind = rope, theta = 10000.0> score <scale = 0.07715167498104596> cache <policy = ring, window = 1024>
// CHECK-NEXT: {{^ *}}}{{$}}
