// RUN: hybrid-compile %configs/mistral-7b-v0.1.json --emit mlir | FileCheck %s

// The schedule transformers runs for mistral-7b-v0.1, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @mistral layers = 32
// CHECK-NEXT: hybrid.repeat 32 {
// CHECK-NEXT: hybrid.layer sliding heads 32 kv_heads 8 head_dim 128 mask <kind = sliding_window, window = 4096> pos <kind = rope, theta = 10000.0> score <scale = 0.08838834764831843> cache <policy = ring, window = 4096>
// CHECK-NEXT: {{^ *}}}{{$}}
