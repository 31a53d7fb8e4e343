// RUN: hybrid-compile %test_configs/granitemoehybrid.json --emit mlir | FileCheck %s

// The schedule transformers runs for granitemoehybrid (Granite 4.0-H),
// written as its interleaving pattern; each layer line was checked against
// transformers 5.25's config class and attention module. Legacy "mamba" /
// "attention" layer types; attention without positional encoding (only
// position_embedding_type "rope" rotates), scaled by attention_multiplier;
// Mamba-2 states of 48 heads x 64 x 128 and a conv of (3072 + 2 x 128) x 4.

// CHECK-LABEL: hybrid.schedule @granitemoehybrid layers = 40
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.repeat 5 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 393216, conv = 13312>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 12 kv_heads 4 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.0078125> cache <policy = full>
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.layer mamba cache <policy = none> state <recurrent = 393216, conv = 13312>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
