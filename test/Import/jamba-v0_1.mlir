// RUN: hybrid-compile %configs/jamba-v0.1.json --emit mlir | FileCheck %s

// The schedule transformers runs for jamba-v0.1, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @jamba layers = 32
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 131072, conv = 32768>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 131072, conv = 32768>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
