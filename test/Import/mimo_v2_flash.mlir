// RUN: hybrid-compile %test_configs/mimo_v2_flash.json --emit mlir | FileCheck %s

// The schedule transformers runs for mimo_v2_flash, written as its interleaving
// pattern; each layer line was checked against transformers 5.25's config
// class and attention module (which layers rotate, and by what).
// sliding_window_size + 1 keys; MiMoV2FlashConfig's RoPE per layer type
// (the top-level rope_theta and partial_rotary_factor are not read); the
// sliding layers have twice the KV heads, and sinks.

// CHECK-LABEL: hybrid.schedule @mimo_v2_flash layers = 12
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer full heads 64 kv_heads 4 head_dim 192 v_head_dim 128 mask <kind = full> pos <kind = partial, theta = 5000000.0, rotary_dim = 64> score <scale = 0.07216878364870323> cache <policy = full>
// CHECK-NEXT: hybrid.repeat 4 {
// CHECK-NEXT: hybrid.layer sliding heads 64 kv_heads 8 head_dim 192 v_head_dim 128 mask <kind = sliding_window, window = 129> pos <kind = partial, theta = 10000.0, rotary_dim = 64> score <scale = 0.07216878364870323, sinks = true> cache <policy = ring, window = 129>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer sliding heads 64 kv_heads 8 head_dim 192 v_head_dim 128 mask <kind = sliding_window, window = 129> pos <kind = partial, theta = 10000.0, rotary_dim = 64> score <scale = 0.07216878364870323, sinks = true> cache <policy = ring, window = 129>
// CHECK-NEXT: hybrid.layer full heads 64 kv_heads 4 head_dim 192 v_head_dim 128 mask <kind = full> pos <kind = partial, theta = 5000000.0, rotary_dim = 64> score <scale = 0.07216878364870323> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
