// RUN: hybrid-opt %s | hybrid-opt | FileCheck %s
// RUN: hybrid-opt %s --mlir-print-op-generic | hybrid-opt | FileCheck %s

// Every layer kind, mask, positional encoding, score modifier and cache
// policy, written compactly with nested repeats.

// CHECK-LABEL: hybrid.schedule @every_option layers = 19
hybrid.schedule @every_option layers = 19 attributes {
    hidden_size = 2048 : i64, max_position = 131072 : i64, model_type = "spec"} {
  // CHECK: hybrid.repeat 2 {
  // CHECK-NEXT: hybrid.repeat 2 {
  // CHECK-NEXT: hybrid.layer sliding heads 8 kv_heads 2 head_dim 128 mask <kind = sliding_window, window = 1024> pos <kind = rope, theta = 10000.0> score <scale = 0.08838834764831845, softcap = 50.0>
  hybrid.repeat 2 {
    hybrid.repeat 2 {
      hybrid.layer sliding heads 8 kv_heads 2 head_dim 128
        mask <kind = sliding_window, window = 1024>
        pos <kind = rope, theta = 10000.0>
        score <scale = 0.08838834764831845, softcap = 50.0>
    }
    // CHECK: hybrid.layer full heads 8 kv_heads 2 head_dim 128 mask <kind = full> pos <kind = none> score <scale = 0.0884, temperature = <floor_scale = 8192.0, attn_scale = 0.1>>
    hybrid.layer full heads 8 kv_heads 2 head_dim 128 mask <kind = full>
      pos <kind = none>
      score <scale = 0.0884, temperature = #hybrid.temperature_tuning<floor_scale = 8192, attn_scale = 0.1>>
  }
  // Llama 4: interleaved pairs (complex RoPE).
  // CHECK: hybrid.layer chunked heads 40 kv_heads 8 head_dim 128 mask <kind = chunked, chunk = 8192> pos <kind = rope, theta = 500000.0, scaling = <kind = llama3, factor = 8.0, original_max_position = 8192, low_freq_factor = 1.0, high_freq_factor = 4.0>, interleaved = true> score <scale = 0.0884> cache <policy = chunk, chunk = 8192>
  hybrid.layer chunked heads 40 kv_heads 8 head_dim 128
    mask <kind = chunked, chunk = 8192>
    pos <kind = rope, theta = 500000.0, scaling = #hybrid.rope_scaling<kind = llama3,
         factor = 8.0, original_max_position = 8192, low_freq_factor = 1.0, high_freq_factor = 4.0>,
         interleaved = true>
    score <scale = 0.0884> cache <policy = chunk, chunk = 8192>
  // CHECK: hybrid.layer sliding heads 64 kv_heads 8 head_dim 64 mask <kind = sliding_window, window = 128> pos <kind = rope, theta = 150000.0, scaling = <kind = yarn, factor = 32.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, truncate = false>> score <scale = 0.125, sinks = true> cache <policy = ring, window = 128>
  hybrid.layer sliding heads 64 kv_heads 8 head_dim 64
    mask <kind = sliding_window, window = 128>
    pos <kind = rope, theta = 150000.0, scaling = #hybrid.rope_scaling<kind = yarn,
         factor = 32.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, truncate = false>>
    score <scale = 0.125, sinks = true> cache <policy = ring, window = 128>
  // CHECK: hybrid.layer full heads 8 kv_heads 2 head_dim 256 mask <kind = full> pos <kind = partial, theta = 10000000.0, rotary_dim = 64> score <scale = 0.0625>
  hybrid.layer full heads 8 kv_heads 2 head_dim 256 mask <kind = full>
    pos <kind = partial, theta = 10000000.0, rotary_dim = 64> score <scale = 0.0625>
  // CHECK: hybrid.layer full heads 8 kv_heads 2 head_dim 512 mask <kind = full> pos <kind = proportional, theta = 1000000.0, fraction = 0.25> score <scale = 1.0> cache <policy = full, k_eq_v = true>
  hybrid.layer full heads 8 kv_heads 2 head_dim 512 mask <kind = full>
    pos <kind = proportional, theta = 1000000.0, fraction = 0.25> score <scale = 1.0>
    cache <policy = full, k_eq_v = true>
  // CHECK: hybrid.layer full heads 8 kv_heads 2 head_dim 512 mask <kind = full> pos <kind = proportional, theta = 1000000.0, fraction = 0.25> score <scale = 1.0> cache <policy = shared, source_layer = 9, k_eq_v = true>
  hybrid.layer full heads 8 kv_heads 2 head_dim 512 mask <kind = full>
    pos <kind = proportional, theta = 1000000.0, fraction = 0.25> score <scale = 1.0>
    cache <policy = shared, source_layer = 9, k_eq_v = true>
  // CHECK: hybrid.layer full heads 4 kv_heads 4 head_dim 64 mask <kind = full, causal = false> pos <kind = rope, theta = 10000.0, scaling = <kind = linear, factor = 8.0>> score <scale = 0.125>
  hybrid.layer full heads 4 kv_heads 4 head_dim 64 mask <kind = full, causal = false>
    pos <kind = rope, theta = 10000.0, scaling = <kind = linear, factor = 8.0>>
    score <scale = 0.125>
  // CHECK: hybrid.layer linear heads 32 kv_heads 16 head_dim 128 cache <policy = none> state <recurrent = 524288, conv = 24576>
  hybrid.layer linear heads 32 kv_heads 16 head_dim 128 cache <policy = none>
    state <recurrent = 524288, conv = 24576>
  // CHECK: hybrid.layer mamba state <recurrent = 131072, conv = 32768>
  hybrid.layer mamba state <recurrent = 131072, conv = 32768>
  // CHECK: hybrid.layer mlp{{$}}
  hybrid.layer mlp
  // CHECK: hybrid.layer conv state <conv = 6144>
  hybrid.layer conv state <conv = 6144>
  // CHECK: hybrid.layer hybrid heads 8 kv_heads 2 head_dim 128 v_head_dim 64 mask <kind = sliding_window, window = 4, causal = false> pos <kind = rope, theta = 10000.0> score <scale = 0.0884> state <recurrent = 8192>
  hybrid.layer hybrid heads 8 kv_heads 2 head_dim 128 v_head_dim 64
    mask <kind = sliding_window, window = 4, causal = false>
    pos <kind = rope, theta = 10000.0> score <scale = 0.0884> state <recurrent = 8192>
  // CHECK: hybrid.layer full heads 16 kv_heads 16 head_dim 192 v_head_dim 128 mask <kind = full> pos <kind = partial, theta = 10000.0, rotary_dim = 64, interleaved = true, rotary_offset = 128> score <scale = 0.0722>
  hybrid.layer full heads 16 kv_heads 16 head_dim 192 v_head_dim 128 mask <kind = full>
    pos <kind = partial, theta = 10000.0, rotary_dim = 64, rotary_offset = 128, interleaved = true> score <scale = 0.0722>
  // CHECK: hybrid.layer full heads 128 kv_heads 1 head_dim 576 v_head_dim 512 mask <kind = full> pos <kind = partial, theta = 10000.0, rotary_dim = 64, interleaved = true, rotary_offset = 512> score <scale = 0.1352> cache <policy = full, latent = true>
  hybrid.layer full heads 128 kv_heads 1 head_dim 576 v_head_dim 512 mask <kind = full>
    pos <kind = partial, theta = 10000.0, rotary_dim = 64, rotary_offset = 512, interleaved = true>
    score <scale = 0.1352> cache <policy = full, latent = true>
}

// CHECK-LABEL: func.func @attention
func.func @attention(%q: tensor<2x?x8x128xf32>, %k: tensor<2x?x2x128xf32>,
                     %v: tensor<2x?x2x128xf32>, %init: tensor<2x?x8x128xf32>)
    -> tensor<2x?x8x128xf32> {
  // CHECK: %[[OUT:.+]] = hybrid.attention ins(%{{.+}}, %{{.+}}, %{{.+}} : tensor<2x?x8x128xf32>, tensor<2x?x2x128xf32>, tensor<2x?x2x128xf32>) outs(%{{.+}} : tensor<2x?x8x128xf32>) mask <kind = sliding_window, window = 1024> pos <kind = rope, theta = 10000.0> score <scale = 0.0884> -> tensor<2x?x8x128xf32>
  %o = hybrid.attention ins(%q, %k, %v : tensor<2x?x8x128xf32>,
           tensor<2x?x2x128xf32>, tensor<2x?x2x128xf32>)
         outs(%init : tensor<2x?x8x128xf32>)
         mask <kind = sliding_window, window = 1024>
         pos <kind = rope, theta = 10000.0> score <scale = 0.0884>
         -> tensor<2x?x8x128xf32>
  // CHECK: return %[[OUT]]
  return %o : tensor<2x?x8x128xf32>
}

// CHECK-LABEL: func.func @attention_with_sinks
func.func @attention_with_sinks(%q: tensor<1x16x64x64xbf16>,
    %k: tensor<1x16x8x64xbf16>, %v: tensor<1x16x8x64xbf16>,
    %sinks: tensor<64xbf16>, %init: tensor<1x16x64x64xbf16>)
    -> tensor<1x16x64x64xbf16> {
  // CHECK: hybrid.attention ins(%{{.+}}, %{{.+}}, %{{.+}} : {{.+}}) sinks(%[[SINKS:.+]] : tensor<64xbf16>) outs(%{{.+}} : tensor<1x16x64x64xbf16>) mask <kind = full> pos <kind = none> score <scale = 0.125, sinks = true>
  %o = hybrid.attention ins(%q, %k, %v : tensor<1x16x64x64xbf16>,
           tensor<1x16x8x64xbf16>, tensor<1x16x8x64xbf16>)
         sinks(%sinks : tensor<64xbf16>)
         outs(%init : tensor<1x16x64x64xbf16>)
         mask <kind = full> pos <kind = none> score <scale = 0.125, sinks = true>
         -> tensor<1x16x64x64xbf16>
  return %o : tensor<1x16x64x64xbf16>
}

// A kernel variant of its own (hybrid-tune's): parameters at their defaults
// are left out when printed.
// CHECK-LABEL: func.func @attention_with_variant
func.func @attention_with_variant(%q: tensor<1x?x8x128xf32>,
    %k: tensor<1x?x2x128xf32>, %init: tensor<1x?x8x128xf32>)
    -> tensor<1x?x8x128xf32> {
  // CHECK: score <scale = 0.0884> {gpu_kernel = #hybrid.gpu_kernel<tensor_cores = wgmma, tma = true, warps = 8, stages = 2, softmax_overlap = true, warp_specialized = true, ping_pong = true, rescale_threshold = 4.0, value_slice = 128>, k_tile = 128 : i64}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x?x8x128xf32>,
           tensor<1x?x2x128xf32>, tensor<1x?x2x128xf32>)
         outs(%init : tensor<1x?x8x128xf32>)
         mask <kind = full> pos <kind = none> score <scale = 0.0884>
         {k_tile = 128, gpu_kernel = #hybrid.gpu_kernel<tensor_cores = wgmma,
          warps = 8, tma = true, stages = 2, softmax_overlap = true,
          warp_specialized = true, ping_pong = true, warp_rows = 16, rescale_threshold = 4,
          min_ctas_per_sm = 0, value_slice = 128>}
         -> tensor<1x?x8x128xf32>
  return %o : tensor<1x?x8x128xf32>
}

// Mistral 3's query scaling: every layer, positions not shifted (offset 0).
// CHECK-LABEL: hybrid.schedule @temperature_offset layers = 1
// CHECK: hybrid.layer full heads 8 kv_heads 2 head_dim 128 mask <kind = full> pos <kind = rope, theta = 1000000.0> score <scale = 0.0884, temperature = <floor_scale = 16384.0, attn_scale = 0.1, offset = 0>>
hybrid.schedule @temperature_offset layers = 1 {
  hybrid.layer full heads 8 kv_heads 2 head_dim 128 mask <kind = full>
    pos <kind = rope, theta = 1000000.0>
    score <scale = 0.0884, temperature = #hybrid.temperature_tuning<floor_scale = 16384, attn_scale = 0.1, offset = 0>>
}
