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

// -----

// Tile sizes from a tuning database or the options are bounded: a work
// item's scratch sits on a runtime thread's stack.
func.func @huge_q_tile(%q: tensor<?x?x4x64xf32>, %init: tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32> {
  // expected-error @+1 {{q-tile must be 0 to 65536, got 2147483647}}
  %o = hybrid.attention ins(%q, %q, %q : tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>)
         outs(%init : tensor<?x?x4x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.1>
         {q_tile = 2147483647 : i64} -> tensor<?x?x4x64xf32>
  return %o : tensor<?x?x4x64xf32>
}

// -----

func.func @huge_k_tile(%q: tensor<?x?x4x64xf32>, %init: tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32> {
  // expected-error @+1 {{k-tile must be a positive multiple of 8, at most 65536, got 1048576}}
  %o = hybrid.attention ins(%q, %q, %q : tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>)
         outs(%init : tensor<?x?x4x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.1>
         {k_tile = 1048576 : i64} -> tensor<?x?x4x64xf32>
  return %o : tensor<?x?x4x64xf32>
}

// -----

func.func @scratch_past_the_stack(%q: tensor<?x?x4x64xf32>, %init: tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32> {
  // expected-error @+1 {{q-tile 8192 and k-tile 4096 need 138152 KiB of stack per work item, more than the 4096 KiB the CPU kernels take: choose smaller tiles}}
  %o = hybrid.attention ins(%q, %q, %q : tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>)
         outs(%init : tensor<?x?x4x64xf32>) mask <kind = full> pos <kind = none> score <scale = 0.1>
         {q_tile = 8192 : i64, k_tile = 4096 : i64} -> tensor<?x?x4x64xf32>
  return %o : tensor<?x?x4x64xf32>
}
