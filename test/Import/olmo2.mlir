// RUN: hybrid-compile %test_configs/olmo2.json --emit mlir | FileCheck %s

// OLMo 2: Llama's attention (its q/k norms run before RoPE, outside the
// kernels), 32 kv heads: no GQA.

// CHECK-LABEL: hybrid.schedule @olmo2 layers = 32
// CHECK-NEXT: hybrid.repeat 32 {
// CHECK-NEXT: hybrid.layer full heads 32 kv_heads 32 head_dim 128 mask <kind = full> pos <kind = rope, theta = 500000.0> score <scale = 0.08838834764831843> cache <policy = full>
// CHECK-NEXT: {{^ *}}}{{$}}
