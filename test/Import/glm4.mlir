// RUN: hybrid-compile %test_configs/glm4.json --emit mlir | FileCheck %s

// GLM-4: without a stated factor, GlmConfig's 0.5 rotates the first 64 dims
// of each head, in interleaved pairs (dims 2i and 2i + 1, their cos and sin
// repeat_interleave'd), the rest untouched.

// CHECK-LABEL: hybrid.schedule @glm4 layers = 40
// CHECK-NEXT: hybrid.repeat 40 {
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 2 head_dim 128 mask <kind = full> pos <kind = partial, theta = 10000.0, rotary_dim = 64, interleaved = true> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
