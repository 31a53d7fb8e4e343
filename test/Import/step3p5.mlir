// RUN: hybrid-compile %test_configs/step3p5.json --emit mlir | FileCheck %s

// Step 3.5 from a hub-style config (checked against transformers 5.25's
// Step3p7TextConfig): layer_types without its MTP entry; the sliding
// layers' 96 query heads from attention_other_setting; 8 KV heads from
// num_attention_groups; each layer type's RoPE base and rotating fraction
// from the per-layer lists (full: 5e6, half the head; sliding: 1e4, all of
// it), rope_scaling on the full layers only; scale 1 / sqrt(head_dim).

// CHECK-LABEL: hybrid.schedule @step3p5 layers = 8
// CHECK-NEXT: hybrid.repeat 2 {
// CHECK-NEXT: hybrid.layer full heads 64 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = partial, theta = 5000000.0, rotary_dim = 64, scaling = <kind = llama3, factor = 2.0, original_max_position = 131072, low_freq_factor = 1.0, high_freq_factor = 32.0>> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer sliding heads 96 kv_heads 8 head_dim 128 mask <kind = sliding_window, window = 512> pos <kind = rope, theta = 10000.0> score <scale = 0.08838834764831843> cache <policy = ring, window = 512>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: {{^ *}}}{{$}}
