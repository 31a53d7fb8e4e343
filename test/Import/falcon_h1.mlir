// RUN: hybrid-compile %test_configs/falcon_h1.json --emit mlir | FileCheck %s

// The schedule transformers runs for falcon_h1, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @falcon_h1 layers = 24
// CHECK-NEXT: hybrid.repeat 24 {
// CHECK-NEXT: hybrid.layer hybrid heads 8 kv_heads 2 head_dim 128 mask <kind = full> pos <kind = rope, theta = 100000000000.0> score <scale = 0.08838834764831843> cache <policy = full> state <recurrent = 786432, conv = 14336>
// CHECK-NEXT: {{^ *}}}{{$}}
