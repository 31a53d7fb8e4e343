// RUN: hybrid-compile %test_configs/qwen3_5.json --emit mlir | FileCheck %s

// The schedule transformers runs for qwen3_5, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and attention module (which layers rotate, and by what).
// The text_config's model_type (qwen3_5_text) picks Qwen3-Next's rules.

// CHECK-LABEL: hybrid.schedule @qwen3_5 layers = 8
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer linear heads 32 kv_heads 16 head_dim 128 cache <policy = none> state <recurrent = 524288, conv = 32768>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 16 kv_heads 4 head_dim 256 mask <kind = full> pos <kind = partial, theta = 10000000.0, rotary_dim = 64> score <scale = 0.0625> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
