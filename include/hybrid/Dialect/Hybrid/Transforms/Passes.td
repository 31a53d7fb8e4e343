//===- Passes.td - Hybrid dialect passes -------------------*- tablegen -*-===//

#ifndef HYBRID_DIALECT_HYBRID_TRANSFORMS_PASSES_TD
#define HYBRID_DIALECT_HYBRID_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def HybridExpandPatterns : Pass<"hybrid-expand-patterns", "::hybrid::ScheduleOp"> {
  let summary = "Unroll `hybrid.repeat` interleaving patterns into layers";
  let description = [{
    Replaces every `hybrid.repeat` by `count` copies of its body, innermost
    first, so that the schedule lists its layers one by one in order.
  }];
}

def HybridVerifySchedule : Pass<"hybrid-verify-schedule", "::hybrid::ScheduleOp"> {
  let summary = "Check a schedule as a whole before planning and lowering";
  let description = [{
    The op verifiers check each layer and the links between layers. This pass
    adds the checks that need the model's context and that would otherwise
    make a later stage compute something else silently:
    - a window or chunk larger than the schedule's `max_position`;
    - a cache policy that drops keys the mask still shows (a ring smaller than
      the window, a ring or chunk cache on a layer whose mask is not
      windowed/chunked accordingly);
    - a shared cache whose source layer stores no cache of its own;
    - a schedule without any layer.
  }];
}

def HybridPlanCaches : Pass<"hybrid-plan-caches", "::hybrid::ScheduleOp"> {
  let summary = "Choose each layer's cache policy and size its caches";
  let description = [{
    Layers without a `cache` get the policy their kind implies (sliding: ring
    of the window, chunked: chunk, full: full, linear/mamba/conv/mlp: none).
    Every layer is annotated with a `#hybrid.cache_plan` (bytes per token,
    tokens held at `max-seq`, fixed state bytes, total), and the schedule with
    a `#hybrid.cache_summary` comparing the total with a baseline where every
    attention layer keeps its own full K and V.
  }];
  let options = [
    Option<"maxSeq", "max-seq", "int64_t", /*default=*/"0",
           "Context length to plan for (0: the schedule's max_position)">,
    Option<"storage", "storage", "::hybrid::StorageType", /*default=*/"::hybrid::StorageType::bf16",
           "Element type of caches and states",
           [{::llvm::cl::values(
               clEnumValN(::hybrid::StorageType::f32, "f32", "4 bytes"),
               clEnumValN(::hybrid::StorageType::f16, "f16", "2 bytes"),
               clEnumValN(::hybrid::StorageType::bf16, "bf16", "2 bytes"),
               clEnumValN(::hybrid::StorageType::f8, "f8", "1 byte"))}]>
  ];
}

def HybridExtractAttention
    : Pass<"hybrid-extract-attention", "::mlir::ModuleOp"> {
  let summary = "Create one `hybrid.attention` kernel per distinct layer";
  let description = [{
    For every attention layer of every schedule in the module, creates (once
    per distinct signature: heads, dims, mask, positional encoding, score) a
    public `func.func` whose body is one `hybrid.attention` on tensors with
    dynamic batch and sequence lengths, and records the kernel symbol on the
    layer as `kernel = @...`. Layers with the same signature share a kernel.
    Kernels of K=V layers (and of layers reading their caches) are apart and
    marked `hybrid.k_eq_v`: their caches keep the values only, from which
    the lowerings' step kernels derive the keys.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"elementType", "element-type", "StorageType",
           /*default=*/"::hybrid::StorageType::f32", "Element type of the kernels' tensors",
           [{::llvm::cl::values(
               clEnumValN(::hybrid::StorageType::f32, "f32", "float32"),
               clEnumValN(::hybrid::StorageType::f16, "f16", "float16"),
               clEnumValN(::hybrid::StorageType::bf16, "bf16", "bfloat16"))}]>
  ];
}

#endif // HYBRID_DIALECT_HYBRID_TRANSFORMS_PASSES_TD
