// RUN: hybrid-compile %test_configs/gemma4-heterogeneous.json --emit mlir | FileCheck %s

// A Gemma 4 config as transformers 5 saves it: the global layers' head dim
// and KV heads are per-layer overrides (per_layer_config), with no
// global_head_dim (whose default, 512, must not apply). K=V global layers,
// the last three layers sharing the caches of layers 4 and 5.

// CHECK-LABEL: hybrid.schedule @gemma4_text layers = 9
// CHECK: hybrid.layer sliding heads 4 kv_heads 2 head_dim 16 mask <kind = sliding_window, window = 8>
// CHECK: hybrid.layer full heads 4 kv_heads 1 head_dim 32 mask <kind = full> pos <kind = proportional, theta = 1000000.0, fraction = 0.25> score <scale = 1.0> cache <policy = full, k_eq_v = true>
// CHECK: hybrid.layer sliding heads 4 kv_heads 2 head_dim 16 {{.*}} cache <policy = shared, source_layer = 4>
// CHECK: hybrid.layer full heads 4 kv_heads 1 head_dim 32 {{.*}} cache <policy = shared, source_layer = 5, k_eq_v = true>
