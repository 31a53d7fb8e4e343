// RUN: hybrid-compile %test_configs/zamba2.json --emit mlir | FileCheck %s

// The schedule transformers runs for zamba2, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @zamba2 layers = 54
// CHECK-NEXT: hybrid.repeat 6 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 327680, conv = 20992>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 6 {
// CHECK-NEXT: hybrid.layer hybrid heads 32 kv_heads 32 head_dim 160 mask <kind = full> pos <kind = rope, theta = 10000.0> score <scale = 0.11180339887498948> cache <policy = full> state <recurrent = 327680, conv = 20992>
// CHECK-NEXT: hybrid.repeat 5 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 327680, conv = 20992>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer hybrid heads 32 kv_heads 32 head_dim 160 mask <kind = full> pos <kind = rope, theta = 10000.0> score <scale = 0.11180339887498948> cache <policy = full> state <recurrent = 327680, conv = 20992>
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 327680, conv = 20992>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer hybrid heads 32 kv_heads 32 head_dim 160 mask <kind = full> pos <kind = rope, theta = 10000.0> score <scale = 0.11180339887498948> cache <policy = full> state <recurrent = 327680, conv = 20992>
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 327680, conv = 20992>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer hybrid heads 32 kv_heads 32 head_dim 160 mask <kind = full> pos <kind = rope, theta = 10000.0> score <scale = 0.11180339887498948> cache <policy = full> state <recurrent = 327680, conv = 20992>
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 327680, conv = 20992>
// CHECK-NEXT: {{^ *}}}{{$}}
