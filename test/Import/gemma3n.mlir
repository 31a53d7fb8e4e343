// RUN: hybrid-compile %test_configs/gemma3n.json --emit mlir | FileCheck %s

// The schedule transformers runs for gemma3n, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @gemma3n layers = 35
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.layer sliding heads 8 kv_heads 2 head_dim 256 mask <kind = sliding_window, window = 512> pos <kind = rope, theta = 10000.0> score <scale = 1.0> cache <policy = ring, window = 512>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 8 kv_heads 2 head_dim 256 mask <kind = full> pos <kind = rope, theta = 1000000.0> score <scale = 1.0> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.layer sliding heads 8 kv_heads 2 head_dim 256 mask <kind = sliding_window, window = 512> pos <kind = rope, theta = 10000.0> score <scale = 1.0> cache <policy = shared, source_layer = 18>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 8 kv_heads 2 head_dim 256 mask <kind = full> pos <kind = rope, theta = 1000000.0> score <scale = 1.0> cache <policy = shared, source_layer = 19>
// CHECK-NEXT: {{^ *}}}{{$}}
