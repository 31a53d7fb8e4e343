//===- Passes.td - Conversions out of the hybrid dialect ---*- tablegen -*-===//

#ifndef HYBRID_CONVERSION_PASSES_TD
#define HYBRID_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertHybridAttentionToCPU
    : Pass<"convert-hybrid-attention-to-cpu", "::mlir::ModuleOp"> {
  let summary = "Lower hybrid.attention kernels to fused flash loops for CPUs";
  let description = [{
    Rewrites every function that `hybrid-extract-attention` created (one
    `hybrid.attention` on tensors) into CPU kernels on memrefs, with the C
    interface the runtime calls (`llvm.emit_c_interface`):

    - `@K_prepare_q(q, q_out, first_position, work_begin, work_end)`: rotates
      query rows (RoPE of any kind), multiplies them by the score scale and
      the Llama 4 temperature; one work item per (batch, position).
    - `@K_prepare_k(k, k_out, first_position, work_begin, work_end)`: rotates
      key rows; only for rotary encodings.
    - `@K(q, k, v, [sinks,] out, work_begin, work_end)`: flash attention over
      prepared queries and keys. One work item is a tile of `q-tile` query
      positions for all query heads of one kv head (GQA: each key tile is
      packed once for the whole group). The key tiles a work item visits are
      the mask's range for its first and last query (sliding window: O(W),
      chunked: O(C)); only boundary tiles evaluate the mask per element.
      Scores and `P * V` are register-blocked FMA micro-kernels on
      `vector<16xf32>`; softmax is online (running max and sum per row).

    Queries sit at positions `Skv - Sq + i`, keys at `0 .. Skv-1`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect",
    "::mlir::LLVM::LLVMDialect"
  ];
  let options = [
    Option<"qTile", "q-tile", "int64_t", /*default=*/"32",
           "Query positions per work item (a multiple of 8)">,
    Option<"kTile", "k-tile", "int64_t", /*default=*/"64",
           "Keys per tile (a multiple of 32)">
  ];
}

def HybridApproximateMath : Pass<"hybrid-approximate-math"> {
  let summary = "Replace f32 math (exp, tanh, ...) by polynomial approximations";
  let description = [{
    Vector `math.exp` and `math.tanh` would otherwise become one libm call per
    lane. Upstream's polynomial approximations keep them in vector registers
    (relative error about 1e-7). f64 math (RoPE angles) is left to libm.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::x86vector::X86VectorDialect"];
}

#endif // HYBRID_CONVERSION_PASSES_TD
