// RUN: hybrid-compile %test_configs/cohere2.json --emit mlir | FileCheck %s

// The schedule transformers runs for cohere2, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @cohere2 layers = 32
// CHECK-NEXT: hybrid.repeat 8 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer sliding heads 32 kv_heads 8 head_dim 128 mask <kind = sliding_window, window = 4096> pos <kind = rope, theta = 50000.0, interleaved = true> score <scale = 0.08838834764831843> cache <policy = ring, window = 4096>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
