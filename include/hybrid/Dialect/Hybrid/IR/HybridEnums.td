//===- HybridEnums.td - Closed sets of the hybrid dialect --*- tablegen -*-===//
//
// Every closed set of choices is an enum, never a string.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_DIALECT_HYBRID_IR_HYBRIDENUMS_TD
#define HYBRID_DIALECT_HYBRID_IR_HYBRIDENUMS_TD

include "hybrid/Dialect/Hybrid/IR/HybridDialect.td"
include "mlir/IR/EnumAttr.td"

def Hybrid_LayerKind : I32EnumAttr<"LayerKind", "token mixer of a layer", [
    I32EnumAttrCase<"full", 0>,
    I32EnumAttrCase<"sliding", 1>,
    I32EnumAttrCase<"chunked", 2>,
    I32EnumAttrCase<"linear", 3>,
    I32EnumAttrCase<"mamba", 4>,
    // Attention and a Mamba mixer in parallel in the same layer (Falcon-H1).
    I32EnumAttrCase<"hybrid", 5>,
    // No token mixer: an MLP or MoE block on its own (Nemotron-H).
    I32EnumAttrCase<"mlp", 6>,
    // A gated short convolution over the last few tokens (LFM2): a conv
    // state only.
    I32EnumAttrCase<"conv", 7>
  ]> {
  let cppNamespace = "::hybrid";
  let genSpecializedAttr = 0;
}
def Hybrid_LayerKindAttr
    : EnumAttr<Hybrid_Dialect, Hybrid_LayerKind, "layer_kind"> {
  let assemblyFormat = "`<` $value `>`";
}

def Hybrid_MaskKind : I32EnumAttr<"MaskKind", "shape of an attention mask", [
    I32EnumAttrCase<"full", 0>,
    I32EnumAttrCase<"sliding_window", 1>,
    I32EnumAttrCase<"chunked", 2>
  ]> {
  let cppNamespace = "::hybrid";
  let genSpecializedAttr = 0;
}

def Hybrid_PositionalKind : I32EnumAttr<"PositionalKind",
    "positional encoding applied to queries and keys", [
    I32EnumAttrCase<"none", 0>,
    I32EnumAttrCase<"rope", 1>,
    I32EnumAttrCase<"partial", 2>,
    I32EnumAttrCase<"proportional", 3>
  ]> {
  let cppNamespace = "::hybrid";
  let genSpecializedAttr = 0;
}

def Hybrid_RopeScalingKind : I32EnumAttr<"RopeScalingKind",
    "RoPE frequency scaling as transformers defines it", [
    I32EnumAttrCase<"linear", 0>,
    I32EnumAttrCase<"llama3", 1>,
    I32EnumAttrCase<"yarn", 2>
  ]> {
  let cppNamespace = "::hybrid";
  let genSpecializedAttr = 0;
}

def Hybrid_CachePolicy : I32EnumAttr<"CachePolicy",
    "what decode keeps of a layer's keys and values", [
    I32EnumAttrCase<"full", 0>,
    I32EnumAttrCase<"ring", 1>,
    I32EnumAttrCase<"chunk", 2>,
    I32EnumAttrCase<"shared", 3>,
    // No KV cache: non-attention mixers keep a fixed recurrent state instead.
    I32EnumAttrCase<"none", 4>
  ]> {
  let cppNamespace = "::hybrid";
  let genSpecializedAttr = 0;
}

def Hybrid_TensorCores : I32EnumAttr<"TensorCores",
    "tensor-core instructions of a GPU flash kernel", [
    // mma.sync m16n8k16 fed by ldmatrix (sm_80 and later).
    I32EnumAttrCase<"MmaSync", 0, "mma_sync">,
    // sm_90a's wgmma.mma_async: each four warps one warpgroup, B operands
    // (K, V) read from 128-byte swizzled shared memory.
    I32EnumAttrCase<"Wgmma", 1, "wgmma">
  ]> {
  let cppNamespace = "::hybrid";
  let genSpecializedAttr = 0;
}

def Hybrid_StorageType : I32EnumAttr<"StorageType",
    "element type of stored caches and states", [
    I32EnumAttrCase<"f32", 0>,
    I32EnumAttrCase<"f16", 1>,
    I32EnumAttrCase<"bf16", 2>,
    I32EnumAttrCase<"f8", 3>
  ]> {
  let cppNamespace = "::hybrid";
  let genSpecializedAttr = 0;
}

#endif // HYBRID_DIALECT_HYBRID_IR_HYBRIDENUMS_TD
