// RUN: hybrid-compile %configs/phi-3-mini-4k-instruct.json --emit mlir | FileCheck %s

// The schedule transformers runs for phi-3-mini-4k-instruct, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @phi3 layers = 32
// CHECK-NEXT: hybrid.repeat 32 {
// CHECK-NEXT: hybrid.layer sliding heads 32 kv_heads 32 head_dim 96 mask <kind = sliding_window, window = 2047> pos <kind = rope, theta = 10000.0> score <scale = 0.10206207261596577> cache <policy = ring, window = 2047>
// CHECK-NEXT: {{^ *}}}{{$}}
