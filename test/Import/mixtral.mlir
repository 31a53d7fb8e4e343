// RUN: hybrid-compile %test_configs/mixtral.json --emit mlir | FileCheck %s

// The schedule transformers runs for mixtral, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @mixtral layers = 32
// CHECK-NEXT: hybrid.repeat 32 {
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = rope, theta = 1000000.0> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
