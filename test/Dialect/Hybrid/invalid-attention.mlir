// RUN: hybrid-opt %s -split-input-file -verify-diagnostics

func.func @rank(%q: tensor<4x8x64xf32>, %k: tensor<1x4x1x64xf32>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{query must have rank 4 [batch, seq, heads, dim]}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<4x8x64xf32>, tensor<1x4x1x64xf32>, tensor<1x4x1x64xf32>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x4x8x64xf32>
  return
}

// -----

func.func @int_elements(%q: tensor<1x4x8x64xi32>, %k: tensor<1x4x1x64xi32>, %init: tensor<1x4x8x64xi32>) {
  // expected-error @+1 {{query must have a float element type}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xi32>, tensor<1x4x1x64xi32>, tensor<1x4x1x64xi32>)
    outs(%init : tensor<1x4x8x64xi32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x4x8x64xi32>
  return
}

// -----

func.func @mixed_elements(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x64xf16>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{key element type differs from the query's}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<1x4x1x64xf16>, tensor<1x4x1x64xf16>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x4x8x64xf32>
  return
}

// -----

func.func @result(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x64xf32>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{result type must match the init operand's type}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<1x4x1x64xf32>, tensor<1x4x1x64xf32>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x?x8x64xf32>
  return
}

// -----

func.func @batch(%q: tensor<1x4x8x64xf32>, %k: tensor<2x4x1x64xf32>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{key batch differs from the query's}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<2x4x1x64xf32>, tensor<2x4x1x64xf32>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x4x8x64xf32>
  return
}

// -----

func.func @kv_seq(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x64xf32>, %v: tensor<1x5x1x64xf32>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{key and value sequence lengths differ}}
  %o = hybrid.attention ins(%q, %k, %v : tensor<1x4x8x64xf32>, tensor<1x4x1x64xf32>, tensor<1x5x1x64xf32>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x4x8x64xf32>
  return
}

// -----

func.func @kv_heads(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x64xf32>, %v: tensor<1x4x2x64xf32>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{key and value head counts differ}}
  %o = hybrid.attention ins(%q, %k, %v : tensor<1x4x8x64xf32>, tensor<1x4x1x64xf32>, tensor<1x4x2x64xf32>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x4x8x64xf32>
  return
}

// -----

func.func @qk_dims(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x32xf32>, %init: tensor<1x4x8x32xf32>) {
  // expected-error @+1 {{query and key head dims differ}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<1x4x1x32xf32>, tensor<1x4x1x32xf32>)
    outs(%init : tensor<1x4x8x32xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x4x8x32xf32>
  return
}

// -----

func.func @init_shape(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x64xf32>, %init: tensor<1x4x4x64xf32>) {
  // expected-error @+1 {{init must be [batch, query seq, query heads, value head dim]}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<1x4x1x64xf32>, tensor<1x4x1x64xf32>)
    outs(%init : tensor<1x4x4x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x4x4x64xf32>
  return
}

// -----

func.func @gqa(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x3x64xf32>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{query heads (8) must be a multiple of key heads (3)}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<1x4x3x64xf32>, tensor<1x4x3x64xf32>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x4x8x64xf32>
  return
}

// -----

func.func @missing_sinks(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x64xf32>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{score has sinks but no sinks operand}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<1x4x1x64xf32>, tensor<1x4x1x64xf32>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125, sinks = true> -> tensor<1x4x8x64xf32>
  return
}

// -----

func.func @extra_sinks(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x64xf32>, %s: tensor<8xf32>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{sinks operand given but score has no sinks}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<1x4x1x64xf32>, tensor<1x4x1x64xf32>)
    sinks(%s : tensor<8xf32>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> -> tensor<1x4x8x64xf32>
  return
}

// -----

func.func @sinks_shape(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x64xf32>, %s: tensor<4xf32>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{sinks must be a 1-D tensor with one logit per query head}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<1x4x1x64xf32>, tensor<1x4x1x64xf32>)
    sinks(%s : tensor<4xf32>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125, sinks = true> -> tensor<1x4x8x64xf32>
  return
}

// -----

func.func @sinks_type(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x64xf32>, %s: tensor<8xf16>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{sinks element type differs from the query's}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<1x4x1x64xf32>, tensor<1x4x1x64xf32>)
    sinks(%s : tensor<8xf16>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125, sinks = true> -> tensor<1x4x8x64xf32>
  return
}

// -----

func.func @odd_rope(%q: tensor<1x4x8x63xf32>, %k: tensor<1x4x1x63xf32>, %init: tensor<1x4x8x63xf32>) {
  // expected-error @+1 {{rotary encoding needs an even head dim, got 63}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x63xf32>, tensor<1x4x1x63xf32>, tensor<1x4x1x63xf32>)
    outs(%init : tensor<1x4x8x63xf32>) mask <kind = full> pos <kind = rope, theta = 10000> score <scale = 0.125> -> tensor<1x4x8x63xf32>
  return
}

// -----

func.func @zero_tile(%q: tensor<1x4x8x64xf32>, %k: tensor<1x4x1x64xf32>, %init: tensor<1x4x8x64xf32>) {
  // expected-error @+2 {{attribute 'q_tile' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<1x4x8x64xf32>, tensor<1x4x1x64xf32>, tensor<1x4x1x64xf32>)
    outs(%init : tensor<1x4x8x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.125> {q_tile = 0} -> tensor<1x4x8x64xf32>
  return
}
