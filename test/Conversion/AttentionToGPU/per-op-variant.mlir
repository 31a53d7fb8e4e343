// RUN: hybrid-opt %s --split-input-file --convert-hybrid-attention-to-gpu="chip-shared-memory=232448" --verify-diagnostics | FileCheck %s
// RUN: not hybrid-opt %s --split-input-file --convert-hybrid-attention-to-gpu="chip=sm_80 chip-shared-memory=232448" 2>&1 | FileCheck %s --check-prefix=CHIP
// RUN: not hybrid-opt %s --split-input-file --convert-hybrid-attention-to-gpu="chip-shared-memory=1024" 2>&1 | FileCheck %s --check-prefix=NOROOM

// An op's #hybrid.gpu_kernel and k_tile (hybrid-tune's) choose its flash
// kernel over the pass options; the op beside it keeps the options' variant.
// Its own k_tile is halved only until the chip holds it (four stages of 256
// keys at head dim 128 are 512 KiB; of 64, 128 KiB).
func.func @huge(%q: tensor<?x?x8x128xf32>, %k: tensor<?x?x2x128xf32>, %init: tensor<?x?x8x128xf32>) -> tensor<?x?x8x128xf32> {
  %o = hybrid.attention ins(%q, %k, %k : tensor<?x?x8x128xf32>, tensor<?x?x2x128xf32>, tensor<?x?x2x128xf32>)
         outs(%init : tensor<?x?x8x128xf32>) mask <kind = full, causal = true> pos <kind = none> score <scale = 0.088>
         {k_tile = 256, gpu_kernel = #hybrid.gpu_kernel<tensor_cores = wgmma, tma = true, stages = 4>}
         -> tensor<?x?x8x128xf32>
  return %o : tensor<?x?x8x128xf32>
}
// CHECK-LABEL: gpu.func @huge(
// NOROOM: error: 'hybrid.attention' op the flash kernel's K and V tiles need {{[0-9]+}} bytes of shared memory at 16 keys, over the 1024 available (chip-shared-memory)
// CHECK-SAME: hybrid.k_tile = 64 : i64, hybrid.q_tile = 16 : i64, hybrid.shared_bytes = 131136 : i64, hybrid.tensor_map_args = 2 : i64, hybrid.tma

// -----

// Each flash kernel carries the variant it was built as (the manifest's
// gpu_kernel), lazy-rescaling threshold and .minnctapersm included.
func.func @record(%q: tensor<?x?x8x128xf32>, %k: tensor<?x?x2x128xf32>, %init: tensor<?x?x8x128xf32>) -> tensor<?x?x8x128xf32> {
  %o = hybrid.attention ins(%q, %k, %k : tensor<?x?x8x128xf32>, tensor<?x?x2x128xf32>, tensor<?x?x2x128xf32>)
         outs(%init : tensor<?x?x8x128xf32>) mask <kind = full, causal = true> pos <kind = none> score <scale = 0.088>
         {gpu_kernel = #hybrid.gpu_kernel<warps = 8, rescale_threshold = 0.0, min_ctas_per_sm = 2>}
         -> tensor<?x?x8x128xf32>
  return %o : tensor<?x?x8x128xf32>
}
// CHECK-LABEL: gpu.func @record(
// CHECK-SAME: hybrid.gpu_kernel = #hybrid.gpu_kernel<warps = 8, rescale_threshold = 0.0, min_ctas_per_sm = 2>
// CHECK-SAME: nvvm.minctasm = 2 : i32

// -----

// An op's value_slice bounds its CTAs' value dims: head dim 256 in four
// slices of 64 (the options' variant would take one of 256).
func.func @sliced(%q: tensor<?x?x8x128xf32>, %k: tensor<?x?x2x128xf32>, %v: tensor<?x?x2x256xf32>, %init: tensor<?x?x8x256xf32>) -> tensor<?x?x8x256xf32> {
  %o = hybrid.attention ins(%q, %k, %v : tensor<?x?x8x128xf32>, tensor<?x?x2x128xf32>, tensor<?x?x2x256xf32>)
         outs(%init : tensor<?x?x8x256xf32>) mask <kind = full, causal = true> pos <kind = none> score <scale = 0.088>
         {gpu_kernel = #hybrid.gpu_kernel<value_slice = 64>}
         -> tensor<?x?x8x256xf32>
  return %o : tensor<?x?x8x256xf32>
}
// CHECK-LABEL: gpu.func @sliced(
// CHECK-SAME: hybrid.gpu_kernel = #hybrid.gpu_kernel<value_slice = 64>
// CHECK-SAME: hybrid.value_slices = 4 : i64

// -----

// Without a k_tile of its own, an op's stages scale the options' budget per
// stage (48 KiB x 3 within the chip's 227 KiB): three stages of 64 keys at
// head dim 128 fit, unhalved.
func.func @staged(%q: tensor<?x?x8x128xf32>, %k: tensor<?x?x2x128xf32>, %init: tensor<?x?x8x128xf32>) -> tensor<?x?x8x128xf32> {
  %o = hybrid.attention ins(%q, %k, %k : tensor<?x?x8x128xf32>, tensor<?x?x2x128xf32>, tensor<?x?x2x128xf32>)
         outs(%init : tensor<?x?x8x128xf32>) mask <kind = full, causal = true> pos <kind = none> score <scale = 0.088>
         {gpu_kernel = #hybrid.gpu_kernel<tensor_cores = wgmma, tma = true, stages = 3>}
         -> tensor<?x?x8x128xf32>
  return %o : tensor<?x?x8x128xf32>
}
// CHECK-LABEL: gpu.func @staged(
// CHECK-SAME: hybrid.k_tile = 64 : i64

// -----

// wgmma is an sm_90a instruction: an op's own wgmma variant (a .mlir input
// or a database entry) on sm_80 is the op's error, as the flag is the
// driver's.
func.func @wrong_chip(%q: tensor<?x?x8x128xf32>, %k: tensor<?x?x2x128xf32>, %init: tensor<?x?x8x128xf32>) -> tensor<?x?x8x128xf32> {
  // CHIP: error: 'hybrid.attention' op tensor_cores = wgmma is an sm_90a instruction; the kernels are for sm_80; use mma.sync
  %o = hybrid.attention ins(%q, %k, %k : tensor<?x?x8x128xf32>, tensor<?x?x2x128xf32>, tensor<?x?x2x128xf32>)
         outs(%init : tensor<?x?x8x128xf32>) mask <kind = full, causal = true> pos <kind = none> score <scale = 0.088>
         {gpu_kernel = #hybrid.gpu_kernel<tensor_cores = wgmma>}
         -> tensor<?x?x8x128xf32>
  return %o : tensor<?x?x8x128xf32>
}
// CHECK-LABEL: gpu.func @wrong_chip(
