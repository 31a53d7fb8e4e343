// RUN: hybrid-compile %configs/gemma-4-e4b.json --emit mlir | FileCheck %s

// The schedule transformers runs for gemma-4-e4b, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @gemma4 layers = 42
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.repeat 5 {
// CHECK-NEXT: hybrid.layer sliding heads 8 kv_heads 2 head_dim 256 mask <kind = sliding_window, window = 512> pos <kind = rope, theta = 10000.0> score <scale = 1.0> cache <policy = ring, window = 512>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 8 kv_heads 2 head_dim 512 mask <kind = full> pos <kind = proportional, theta = 1000000.0, fraction = 0.25> score <scale = 1.0> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.repeat 5 {
// CHECK-NEXT: hybrid.layer sliding heads 8 kv_heads 2 head_dim 256 mask <kind = sliding_window, window = 512> pos <kind = rope, theta = 10000.0> score <scale = 1.0> cache <policy = shared, source_layer = 22>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 8 kv_heads 2 head_dim 512 mask <kind = full> pos <kind = proportional, theta = 1000000.0, fraction = 0.25> score <scale = 1.0> cache <policy = shared, source_layer = 23>
// CHECK-NEXT: {{^ *}}}{{$}}
