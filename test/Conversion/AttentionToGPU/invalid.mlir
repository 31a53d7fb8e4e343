// RUN: hybrid-opt %s -split-input-file -verify-diagnostics --convert-hybrid-attention-to-gpu

func.func @odd_dim(%q: tensor<?x?x4x40xf32>, %init: tensor<?x?x4x40xf32>) -> tensor<?x?x4x40xf32> {
  // expected-error @+1 {{head dims must be multiples of 16 up to 512 for the GPU kernels (mma.sync m16n8k16), got 40 and 40}}
  %o = hybrid.attention ins(%q, %q, %q : tensor<?x?x4x40xf32>, tensor<?x?x4x40xf32>, tensor<?x?x4x40xf32>)
         outs(%init : tensor<?x?x4x40xf32>) mask <kind = full> pos <kind = none> score <scale = 0.1>
         -> tensor<?x?x4x40xf32>
  return %o : tensor<?x?x4x40xf32>
}

// -----

func.func @too_wide(%q: tensor<?x?x4x1024xf32>, %init: tensor<?x?x4x1024xf32>) -> tensor<?x?x4x1024xf32> {
  // expected-error @+1 {{head dims must be multiples of 16 up to 512 for the GPU kernels (mma.sync m16n8k16), got 1024 and 1024}}
  %o = hybrid.attention ins(%q, %q, %q : tensor<?x?x4x1024xf32>, tensor<?x?x4x1024xf32>, tensor<?x?x4x1024xf32>)
         outs(%init : tensor<?x?x4x1024xf32>) mask <kind = full> pos <kind = none> score <scale = 0.1>
         -> tensor<?x?x4x1024xf32>
  return %o : tensor<?x?x4x1024xf32>
}

// -----

func.func @bf16(%q: tensor<?x?x4x64xbf16>, %init: tensor<?x?x4x64xbf16>) -> tensor<?x?x4x64xbf16> {
  // expected-error @+1 {{GPU kernels take f32 rows (computing in bf16); other element types are not supported yet}}
  %o = hybrid.attention ins(%q, %q, %q : tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>)
         outs(%init : tensor<?x?x4x64xbf16>) mask <kind = full> pos <kind = none> score <scale = 0.1>
         -> tensor<?x?x4x64xbf16>
  return %o : tensor<?x?x4x64xbf16>
}

// -----

// expected-error @+1 {{expected exactly one hybrid.attention per kernel function (run hybrid-extract-attention)}}
func.func @two(%q: tensor<?x?x4x64xf32>, %init: tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32> {
  %a = hybrid.attention ins(%q, %q, %q : tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>)
         outs(%init : tensor<?x?x4x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.1>
         -> tensor<?x?x4x64xf32>
  %b = hybrid.attention ins(%a, %q, %q : tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>)
         outs(%init : tensor<?x?x4x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.1>
         -> tensor<?x?x4x64xf32>
  return %b : tensor<?x?x4x64xf32>
}

// -----

// 128 query heads on one kv head do not fit a flash CTA's 64 rows.
func.func @huge_group(%q: tensor<?x?x128x64xf32>, %k: tensor<?x?x1x64xf32>, %init: tensor<?x?x128x64xf32>) -> tensor<?x?x128x64xf32> {
  // expected-error @+1 {{the GPU kernels take at most 64 query heads per kv head (the rows of a flash CTA), got 128}}
  %o = hybrid.attention ins(%q, %k, %k : tensor<?x?x128x64xf32>, tensor<?x?x1x64xf32>, tensor<?x?x1x64xf32>)
         outs(%init : tensor<?x?x128x64xf32>) mask <kind = full, causal = false> pos <kind = none> score <scale = 0.1>
         -> tensor<?x?x128x64xf32>
  return %o : tensor<?x?x128x64xf32>
}
