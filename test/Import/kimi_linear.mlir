// RUN: hybrid-compile %test_configs/kimi_linear.json --emit mlir | FileCheck %s

// Kimi-Linear-48B-A3B (shaped like the hub config): linear_attn_config lists
// its layers 1-indexed, so the MLA layers are 3, 7, ..., 23 and 26. They have
// no positional encoding (transformers' KimiMLAAttention rotates nothing) and
// are decompressed per head: queries and keys of 128 + 64 dims, values of
// 128, scale 192^-0.5; the hub's head_dim (72) and mla_use_nope change
// nothing. KDA layers keep a 128 x 128 state per head (32 heads) and the short
// convolution's 4 columns over q, k and v (3 * 32 * 128 channels). The
// context length is model_max_length.

// CHECK-LABEL: hybrid.schedule @kimi_linear layers = 27
// CHECK-SAME: max_position = 1048576
// CHECK-NEXT: hybrid.repeat 6 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer linear heads 32 kv_heads 32 head_dim 128 cache <policy = none> state <recurrent = 524288, conv = 49152>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 32 head_dim 192 v_head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.07216878364870323> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer linear
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 32 head_dim 192 v_head_dim 128
