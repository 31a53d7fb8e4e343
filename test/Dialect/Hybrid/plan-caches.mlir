// RUN: hybrid-opt %s --hybrid-plan-caches | FileCheck %s
// RUN: hybrid-opt %s --hybrid-plan-caches="max-seq=1024 storage=f32" | FileCheck %s --check-prefix=F32
// RUN: hybrid-opt %s --hybrid-expand-patterns --hybrid-plan-caches | FileCheck %s --check-prefix=EXPANDED
// RUN: not hybrid-opt %s --hybrid-plan-caches=max-seq=8192 2>&1 | FileCheck %s --check-prefix=TOO-LONG

// TOO-LONG: error: 'hybrid.schedule' op cannot plan caches for 8192 tokens: the model's context is 4096 (max_position)

// kv_heads 2, head_dim 128, bf16: a token costs 2 * (128 + 128) * 2 = 1024 B.
// Full layers hold 4096 tokens (4 MiB), ring layers their 512-token window
// (512 KiB), chunk layers one 256-token chunk, a shared layer nothing, a K=V
// layer half as much as a full one (one tensor: its values, from which the
// keys are derived), a mamba layer its state (2 B per element).

// CHECK-LABEL: hybrid.schedule @plan
// CHECK-SAME: cache_summary = #hybrid.cache_summary<max_seq = 4096, storage = bf16, total = 11796608, all_full_baseline = 29360256>
// CHECK: hybrid.layer sliding {{.*}} cache <policy = ring, window = 512> {cache_plan = #hybrid.cache_plan<bytes_per_token = 1024, tokens = 512, bytes = 524288>}
// CHECK: hybrid.layer full {{.*}} cache <policy = full> {cache_plan = #hybrid.cache_plan<bytes_per_token = 1024, tokens = 4096, bytes = 4194304>}
// CHECK: hybrid.layer chunked {{.*}} cache <policy = chunk, chunk = 256> {cache_plan = #hybrid.cache_plan<bytes_per_token = 1024, tokens = 256, bytes = 262144>}
// CHECK: hybrid.layer full {{.*}} cache <policy = shared, source_layer = 3> {cache_plan = #hybrid.cache_plan<>}
// CHECK: hybrid.layer full {{.*}} cache <policy = full, k_eq_v = true> {cache_plan = #hybrid.cache_plan<bytes_per_token = 512, tokens = 4096, bytes = 2097152>}
// CHECK: hybrid.layer mamba cache <policy = none> state <recurrent = 64> {cache_plan = #hybrid.cache_plan<state_bytes = 128, bytes = 128>}

// F32: cache_summary = #hybrid.cache_summary<max_seq = 1024, storage = f32, total = 7864576, all_full_baseline = 14680320>
// F32: #hybrid.cache_plan<bytes_per_token = 2048, tokens = 512, bytes = 1048576>

// The plan of a repeated layer counts once per repetition.
// EXPANDED: cache_summary = #hybrid.cache_summary<max_seq = 4096, storage = bf16, total = 11796608, all_full_baseline = 29360256>
hybrid.schedule @plan layers = 8 attributes {max_position = 4096 : i64} {
  hybrid.repeat 2 {
    hybrid.layer sliding heads 8 kv_heads 2 head_dim 128
      mask <kind = sliding_window, window = 512> pos <kind = rope, theta = 10000.0>
      score <scale = 0.0884>
    hybrid.layer full heads 8 kv_heads 2 head_dim 128 mask <kind = full>
      pos <kind = rope, theta = 10000.0> score <scale = 0.0884>
  }
  hybrid.layer chunked heads 8 kv_heads 2 head_dim 128 mask <kind = chunked, chunk = 256>
    pos <kind = rope, theta = 10000.0> score <scale = 0.0884>
  hybrid.layer full heads 8 kv_heads 2 head_dim 128 mask <kind = full>
    pos <kind = rope, theta = 10000.0> score <scale = 0.0884> cache <policy = shared, source_layer = 3>
  hybrid.layer full heads 8 kv_heads 2 head_dim 128 mask <kind = full>
    pos <kind = none> score <scale = 0.0884> cache <policy = full, k_eq_v = true>
  hybrid.layer mamba state <recurrent = 64>
}
