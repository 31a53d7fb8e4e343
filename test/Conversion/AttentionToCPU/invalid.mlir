// RUN: hybrid-opt %s -split-input-file -verify-diagnostics --convert-hybrid-attention-to-cpu

func.func @odd_dim(%q: tensor<?x?x4x40xf32>, %init: tensor<?x?x4x40xf32>) -> tensor<?x?x4x40xf32> {
  // expected-error @+1 {{head dims must be multiples of 16 (keys) and 8 (values) for the CPU kernels, got 40 and 40}}
  %o = hybrid.attention ins(%q, %q, %q : tensor<?x?x4x40xf32>, tensor<?x?x4x40xf32>, tensor<?x?x4x40xf32>)
         outs(%init : tensor<?x?x4x40xf32>) mask <kind = full> pos <kind = none> score <scale = 0.1>
         -> tensor<?x?x4x40xf32>
  return %o : tensor<?x?x4x40xf32>
}

// -----

func.func @bf16(%q: tensor<?x?x4x64xbf16>, %init: tensor<?x?x4x64xbf16>) -> tensor<?x?x4x64xbf16> {
  // expected-error @+1 {{CPU kernels compute in f32; other element types are not supported yet}}
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
