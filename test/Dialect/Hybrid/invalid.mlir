// RUN: hybrid-opt %s -split-input-file -verify-diagnostics

// expected-error @+1 {{declares 3 layers but its body unrolls to 4}}
hybrid.schedule @pattern_does_not_tile layers = 3 {
  hybrid.repeat 2 {
    hybrid.layer mamba state <recurrent = 1>
    hybrid.layer mamba state <recurrent = 1>
  }
}

// -----

hybrid.schedule @foreign_op layers = 0 {
  // expected-error @+1 {{is not allowed in a schedule}}
  %c = "tensor.empty"() : () -> tensor<4xf32>
}

// -----

hybrid.schedule @empty_repeat layers = 0 {
  // expected-error @+1 {{must hold at least one layer}}
  hybrid.repeat 3 {
  }
}

// -----

hybrid.schedule @zero_repeat layers = 0 {
  // expected-error @+1 {{whose value is positive}}
  hybrid.repeat 0 {
    hybrid.layer mamba state <recurrent = 1>
  }
}

// -----

hybrid.schedule @shared_later layers = 2 {
  // expected-error @+1 {{(layer 0) shares the cache of layer 1, which does not come before it}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = shared, source_layer = 1>
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125>
}

// -----

hybrid.schedule @shared_other_kind layers = 2 {
  hybrid.layer sliding heads 4 kv_heads 1 head_dim 64
    mask <kind = sliding_window, window = 16> pos <kind = none> score <scale = 0.125>
  // expected-error @+1 {{(layer 1) shares the cache of layer 0 of kind 'sliding', expected kind 'full'}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = shared, source_layer = 0>
}

// -----

hybrid.schedule @shared_other_shape layers = 2 {
  hybrid.layer full heads 4 kv_heads 2 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125>
  // expected-error @+1 {{(layer 1) shares the cache of layer 0 whose kv heads or head dims differ}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = shared, source_layer = 0>
}

// -----

// The source's ring keeps its window of 16 keys, not the 64 this layer shows.
hybrid.schedule @shared_other_mask layers = 2 {
  hybrid.layer sliding heads 4 kv_heads 1 head_dim 64
    mask <kind = sliding_window, window = 16> pos <kind = none> score <scale = 0.125>
  // expected-error @+1 {{(layer 1) shares the cache of layer 0 whose mask differs}}
  hybrid.layer sliding heads 4 kv_heads 1 head_dim 64
    mask <kind = sliding_window, window = 64> pos <kind = none> score <scale = 0.125>
    cache <policy = shared, source_layer = 0>
}

// -----

// Keys are cached rotated by the source's RoPE.
hybrid.schedule @shared_other_positional layers = 2 {
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = rope, theta = 10000.0> score <scale = 0.125>
  // expected-error @+1 {{(layer 1) shares the cache of layer 0 whose positional encoding differs}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = shared, source_layer = 0>
}

// -----

hybrid.schedule @shared_other_k_eq_v layers = 2 {
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = full, k_eq_v = true>
  // expected-error @+1 {{(layer 1) shares the cache of layer 0 whose k_eq_v differs}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = shared, source_layer = 0>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'linear' needs its recurrent 'state'}}
  hybrid.layer linear
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'full' has no recurrent state}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> state <recurrent = 4>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'mlp' has no heads: no heads, kv_heads, head_dim or v_head_dim}}
  hybrid.layer mlp heads 4
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'conv' keeps a convolution state only: recurrent 0, conv positive}}
  hybrid.layer conv state <recurrent = 4, conv = 8>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'conv' needs its recurrent 'state'}}
  hybrid.layer conv
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'mlp' has no recurrent state}}
  hybrid.layer mlp state <recurrent = 4>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'mlp' keeps no KV cache, expected policy none}}
  hybrid.layer mlp cache <policy = full>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'mamba' does not attend: no mask, pos or score}}
  hybrid.layer mamba mask <kind = full> state <recurrent = 4>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'mamba' keeps no KV cache, expected policy none}}
  hybrid.layer mamba cache <policy = full> state <recurrent = 4>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'mamba' has no kernel}}
  hybrid.layer mamba state <recurrent = 4> {kernel = @k}
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'full' needs heads, kv_heads and head_dim}}
  hybrid.layer full heads 4 mask <kind = full> pos <kind = none> score <scale = 0.125>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'full' needs a mask, a pos and a score}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full> score <scale = 0.125>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{heads (8) must be a multiple of kv_heads (3)}}
  hybrid.layer full heads 8 kv_heads 3 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{whose value is positive}}
  hybrid.layer full heads 0 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'sliding' needs a 'sliding_window' mask, got 'full'}}
  hybrid.layer sliding heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{rotary encoding needs an even head dim, got 63}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 63 mask <kind = full>
    pos <kind = rope, theta = 10000> score <scale = 0.125>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{partial rotary_dim (64) must be smaller than the head dim (64)}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = partial, theta = 10000, rotary_dim = 64> score <scale = 0.125>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{of kind 'full' attends and needs a KV cache, got policy none}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = none>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{k_eq_v needs equal key and value head dims, got 128 and 64}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 128 v_head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = full, k_eq_v = true>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{k_eq_v with interleaved RoPE is not supported}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 128 mask <kind = full>
    pos <kind = rope, theta = 10000.0, interleaved = true> score <scale = 0.125>
    cache <policy = full, k_eq_v = true>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{k_eq_v with a rotary_offset is not supported}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 128 mask <kind = full>
    pos <kind = partial, theta = 10000.0, rotary_dim = 32, rotary_offset = 64>
    score <scale = 0.125> cache <policy = full, k_eq_v = true>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{partial rotary_offset + rotary_dim (130 + 64) exceeds the head dim (192)}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 192 mask <kind = full>
    pos <kind = partial, theta = 10000.0, rotary_dim = 64, rotary_offset = 130>
    score <scale = 0.125>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{unknown layer kind 'global'}}
  hybrid.layer global heads 4 kv_heads 1 head_dim 64
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{latent needs the rotating dims after the values (partial RoPE with rotary_offset >= v_head_dim 64) or none}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 96 v_head_dim 64 mask <kind = full>
    pos <kind = partial, theta = 10000.0, rotary_dim = 32, rotary_offset = 32>
    score <scale = 0.125> cache <policy = full, latent = true>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{latent needs the rotating dims after the values (partial RoPE with rotary_offset >= v_head_dim 64) or none}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 96 v_head_dim 64 mask <kind = full>
    pos <kind = rope, theta = 10000.0> score <scale = 0.125>
    cache <policy = full, latent = true>
}

// -----

hybrid.schedule @s layers = 1 {
  // expected-error @+1 {{latent needs v_head_dim at most head_dim (64), got 96}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 v_head_dim 96 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = full, latent = true>
}

// -----

hybrid.schedule @s layers = 2 {
  hybrid.layer full heads 4 kv_heads 1 head_dim 96 v_head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = full, latent = true>
  // expected-error @+1 {{(layer 1) shares the cache of layer 0 whose latent differs}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 96 v_head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = shared, source_layer = 0>
}
