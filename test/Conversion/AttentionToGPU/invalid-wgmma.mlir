// RUN: hybrid-opt %s -split-input-file -verify-diagnostics --convert-hybrid-attention-to-gpu="tensor-cores=wgmma"

func.func @dim_80(%q: tensor<?x?x4x80xf32>, %init: tensor<?x?x4x80xf32>) -> tensor<?x?x4x80xf32> {
  // expected-error @+1 {{tensor-cores=wgmma needs head dims that are multiples of 64 (128-byte swizzled tiles), got 80 and 80; use mma.sync}}
  %o = hybrid.attention ins(%q, %q, %q : tensor<?x?x4x80xf32>, tensor<?x?x4x80xf32>, tensor<?x?x4x80xf32>)
         outs(%init : tensor<?x?x4x80xf32>) mask <kind = full> pos <kind = none> score <scale = 0.1>
         -> tensor<?x?x4x80xf32>
  return %o : tensor<?x?x4x80xf32>
}

// -----

func.func @k_tile(%q: tensor<?x?x4x64xf32>, %init: tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32> {
  // expected-error @+1 {{tensor-cores=wgmma takes k-tile up to 256 (wgmma's largest N), got 512}}
  %o = hybrid.attention ins(%q, %q, %q : tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>)
         outs(%init : tensor<?x?x4x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.1> {k_tile = 512 : i64}
         -> tensor<?x?x4x64xf32>
  return %o : tensor<?x?x4x64xf32>
}
