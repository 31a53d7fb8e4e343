//===- Passes.h - Hybrid dialect passes --------------------------*- C++ -*-===//

#ifndef HYBRID_DIALECT_HYBRID_TRANSFORMS_PASSES_H
#define HYBRID_DIALECT_HYBRID_TRANSFORMS_PASSES_H

#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace hybrid {

#define GEN_PASS_DECL
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h.inc"

} // namespace hybrid

#endif // HYBRID_DIALECT_HYBRID_TRANSFORMS_PASSES_H
