//===- HybridDialect.td - Hybrid attention dialect ---------*- tablegen -*-===//
//
// The `hybrid` dialect describes the attention schedule of a long-context
// model: which kind of token mixer each layer has, its mask, positional
// encoding, score modifiers and KV-cache policy, and the tensor-level
// attention op that the code generators tile and lower.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_DIALECT_HYBRID_IR_HYBRIDDIALECT_TD
#define HYBRID_DIALECT_HYBRID_IR_HYBRIDDIALECT_TD

include "mlir/IR/OpBase.td"

def Hybrid_Dialect : Dialect {
  let name = "hybrid";
  let cppNamespace = "::hybrid";
  let summary = "Schedules of hybrid attention models and their attention ops";
  let description = [{
    A `hybrid.schedule` lists the layers of a model in order. Each
    `hybrid.layer` states its mixer kind (full, sliding, chunked attention, a
    linear-attention / Mamba / short-convolution mixer, or none), its
    attention shape, its mask, its positional encoding, its score modifiers
    and its KV-cache policy.
    `hybrid.repeat` writes interleaving patterns compactly; the
    `hybrid-expand-patterns` pass unrolls them.

    `hybrid.attention` is the tensor-level, destination-style attention op a
    target lowers; `hybrid-extract-attention` creates one per distinct layer
    signature.
  }];
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = ["::mlir::func::FuncDialect"];
  let extraClassDeclaration = [{
    void registerAttributes();
  }];
}

class Hybrid_Op<string mnemonic, list<Trait> traits = []>
    : Op<Hybrid_Dialect, mnemonic, traits>;

#endif // HYBRID_DIALECT_HYBRID_IR_HYBRIDDIALECT_TD
