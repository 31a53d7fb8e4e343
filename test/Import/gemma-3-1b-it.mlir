// RUN: hybrid-compile %configs/gemma-3-1b-it.json --emit mlir | FileCheck %s

// The schedule transformers runs for gemma-3-1b-it, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @gemma3_text layers = 26
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.repeat 5 {
// CHECK-NEXT: hybrid.layer sliding heads 4 kv_heads 1 head_dim 256 mask <kind = sliding_window, window = 512> pos <kind = rope, theta = 10000.0> score <scale = 0.0625> cache <policy = ring, window = 512>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 4 kv_heads 1 head_dim 256 mask <kind = full> pos <kind = rope, theta = 1000000.0> score <scale = 0.0625> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer sliding heads 4 kv_heads 1 head_dim 256 mask <kind = sliding_window, window = 512> pos <kind = rope, theta = 10000.0> score <scale = 0.0625> cache <policy = ring, window = 512>
// CHECK-NEXT: {{^ *}}}{{$}}
