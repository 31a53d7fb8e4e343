// RUN: hybrid-compile %test_configs/llama.json --emit mlir | FileCheck %s

// The schedule transformers runs for llama, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @llama layers = 32
// CHECK-NEXT: hybrid.repeat 32 {
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 8 head_dim 128 mask <kind = full> pos <kind = rope, theta = 500000.0, scaling = <kind = llama3, factor = 8.0, original_max_position = 8192, low_freq_factor = 1.0, high_freq_factor = 4.0>> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
