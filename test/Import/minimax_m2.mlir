// RUN: hybrid-compile %test_configs/minimax_m2.json --emit mlir | FileCheck %s

// MiniMax-M2: full attention on every layer; its checkpoints state the
// rotating dims as rotary_dim, which MiniMaxM2Config turns into
// partial_rotary_factor 64 / 128 (the first 64 dims, rotate-half pairs).

// CHECK-LABEL: hybrid.schedule @minimax_m2 layers = 62
// CHECK-NEXT: hybrid.repeat 62 {
// CHECK-NEXT: hybrid.layer full heads 48 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = partial, theta = 5000000.0, rotary_dim = 64> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
