// RUN: hybrid-compile %test_configs/deepseek_v3.json --emit mlir | FileCheck %s

// DeepSeek-V3 (the hub config): multi-head latent attention as transformers
// computes it, decompressed per head. Queries and keys are 128 dims without
// RoPE then 64 rotating ones (interleaved pairs, yarn over those 64), values
// 128; keys and values for all 128 heads. The scale is 192^-0.5 times
// yarn's mscale(40, mscale_all_dim 1)^2, the rotation's attention factor
// mscale / mscale_all_dim = 1. The cache keeps the decompressed keys and
// values: 81920 bytes a token in bf16, where the latent is 1152.

// CHECK-LABEL: hybrid.schedule @deepseek_v3 layers = 61
// CHECK-NEXT: hybrid.repeat 61 {
// CHECK-NEXT: hybrid.layer full heads 128 kv_heads 128 head_dim 192 v_head_dim 128 mask <kind = full> pos <kind = partial, theta = 10000.0, rotary_dim = 64, scaling = <kind = yarn, factor = 40.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, attention_factor = 1.0>, interleaved = true, rotary_offset = 128> score <scale = 0.1352337788608801> cache <policy = full> {cache_plan = #hybrid.cache_plan<bytes_per_token = 81920, tokens = 163840, bytes = 13421772800>}
// CHECK-NEXT: {{^ *}}}{{$}}

// --mla-cache latent: the absorbed form, one KV head of 512 + 64 dims whose
// first 512 are the values (the latent), RoPE on the last 64; the scale is
// the same. The cache keeps the latent alone: 1152 bytes a token.
// RUN: hybrid-compile %test_configs/deepseek_v3.json --mla-cache latent --emit mlir | FileCheck %s --check-prefix=LATENT
// LATENT: hybrid.layer full heads 128 kv_heads 1 head_dim 576 v_head_dim 512 mask <kind = full> pos <kind = partial, theta = 10000.0, rotary_dim = 64, scaling = <kind = yarn, factor = 40.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, attention_factor = 1.0>, interleaved = true, rotary_offset = 512> score <scale = 0.1352337788608801> cache <policy = full, latent = true> {cache_plan = #hybrid.cache_plan<bytes_per_token = 1152, tokens = 163840, bytes = 188743680>}
