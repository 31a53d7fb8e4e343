// RUN: hybrid-compile %test_configs/llama4.json --emit mlir | FileCheck %s

// The schedule transformers runs for llama4, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @llama4 layers = 48
// CHECK-NEXT: hybrid.repeat 12 {
// CHECK-NEXT: hybrid.repeat 3 {
// CHECK-NEXT: hybrid.layer chunked heads 40 kv_heads 8 head_dim 128 mask <kind = chunked, chunk = 8192> pos <kind = rope, theta = 500000.0, scaling = <kind = llama3, factor = 8.0, original_max_position = 8192, low_freq_factor = 1.0, high_freq_factor = 4.0>, interleaved = true> score <scale = 0.08838834764831843> cache <policy = chunk, chunk = 8192>
// CHECK-NEXT: {{^ *}}}{{$}}
// CHECK-NEXT: hybrid.layer full heads 40 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.08838834764831843, temperature = <floor_scale = 8192.0, attn_scale = 0.1>> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
