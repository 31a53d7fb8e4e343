// RUN: hybrid-compile %test_configs/ministral3.json --emit mlir | FileCheck %s

// The schedule transformers runs for ministral3 (a mistral3 config's text_config),
// checked against transformers 5.25's config class and attention module:
// Ministral3Config's yarn default (its mscale pair: attention factor 1) and
// every layer's queries times 1 + 0.1 ln(1 + floor(p / 16384)) (offset 0).

// CHECK-LABEL: hybrid.schedule @mistral3 layers = 4
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = rope, theta = 1000000.0, scaling = <kind = yarn, factor = 16.0, original_max_position = 16384, beta_fast = 32.0, beta_slow = 1.0, attention_factor = 1.0>> score <scale = 0.08838834764831843, temperature = <floor_scale = 16384.0, attn_scale = 0.1, offset = 0>> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
