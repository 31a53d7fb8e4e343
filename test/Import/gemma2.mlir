// RUN: hybrid-compile %test_configs/gemma2.json --emit mlir | FileCheck %s

// The schedule transformers runs for gemma2, written as its interleaving
// pattern; each layer line was checked against the family rules.

// CHECK-LABEL: hybrid.schedule @gemma2 layers = 42
// CHECK-NEXT: hybrid.repeat 21 {
// CHECK-NEXT: hybrid.layer sliding heads 16 kv_heads 8 head_dim 256 mask <kind = sliding_window, window = 4096> pos <kind = rope, theta = 10000.0> score <scale = 0.0625, softcap = 50.0> cache <policy = ring, window = 4096>
// CHECK-NEXT: hybrid.layer full heads 16 kv_heads 8 head_dim 256 mask <kind = full> pos <kind = rope, theta = 10000.0> score <scale = 0.0625, softcap = 50.0> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
