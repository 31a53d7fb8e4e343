// RUN: hybrid-opt %s -split-input-file -verify-diagnostics --hybrid-verify-schedule | FileCheck %s

// CHECK-LABEL: hybrid.schedule @valid
hybrid.schedule @valid layers = 2 attributes {max_position = 4096 : i64} {
  hybrid.layer sliding heads 4 kv_heads 1 head_dim 64
    mask <kind = sliding_window, window = 1024> pos <kind = none> score <scale = 0.125>
    cache <policy = ring, window = 1024>
  hybrid.layer sliding heads 4 kv_heads 1 head_dim 64
    mask <kind = sliding_window, window = 1024> pos <kind = none> score <scale = 0.125>
    cache <policy = shared, source_layer = 0>
}

// -----

// expected-error @+1 {{has no layers}}
hybrid.schedule @empty layers = 0 {
}

// -----

hybrid.schedule @window_past_context layers = 1 attributes {max_position = 512 : i64} {
  // expected-error @+1 {{(layer 0) mask span of 1024 tokens is larger than the context (max_position = 512)}}
  hybrid.layer sliding heads 4 kv_heads 1 head_dim 64
    mask <kind = sliding_window, window = 1024> pos <kind = none> score <scale = 0.125>
}

// -----

hybrid.schedule @ring_on_full layers = 1 {
  // expected-error @+1 {{(layer 0) ring cache needs a causal sliding_window mask: it would drop keys the mask shows}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = ring, window = 64>
}

// -----

hybrid.schedule @ring_too_small layers = 1 {
  // expected-error @+1 {{(layer 0) ring cache of 64 tokens is smaller than the mask window of 128}}
  hybrid.layer sliding heads 4 kv_heads 1 head_dim 64
    mask <kind = sliding_window, window = 128> pos <kind = none> score <scale = 0.125>
    cache <policy = ring, window = 64>
}

// -----

hybrid.schedule @chunk_on_sliding layers = 1 {
  // expected-error @+1 {{(layer 0) chunk cache needs a causal chunked mask: it would drop keys the mask shows}}
  hybrid.layer sliding heads 4 kv_heads 1 head_dim 64
    mask <kind = sliding_window, window = 128> pos <kind = none> score <scale = 0.125>
    cache <policy = chunk, chunk = 128>
}

// -----

hybrid.schedule @chunk_mismatch layers = 1 {
  // expected-error @+1 {{(layer 0) chunk cache of 64 tokens differs from the mask chunk of 128}}
  hybrid.layer chunked heads 4 kv_heads 1 head_dim 64
    mask <kind = chunked, chunk = 128> pos <kind = none> score <scale = 0.125>
    cache <policy = chunk, chunk = 64>
}

// -----

hybrid.schedule @shared_of_shared layers = 3 {
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125>
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = shared, source_layer = 0>
  // expected-error @+1 {{(layer 2) shares the cache of layer 1, which stores no cache of its own}}
  hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
    pos <kind = none> score <scale = 0.125> cache <policy = shared, source_layer = 1>
}
