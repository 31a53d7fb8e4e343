// RUN: hybrid-compile %test_configs/granite.json --emit mlir | FileCheck %s

// Granite: Llama's attention with attention_multiplier as the score scale
// (not 1 / sqrt(head_dim)); the embedding, residual and logits multipliers
// do not touch attention.

// CHECK-LABEL: hybrid.schedule @granite layers = 40
// CHECK-NEXT: hybrid.repeat 40 {
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = rope, theta = 10000000.0> score <scale = 0.0078125> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
