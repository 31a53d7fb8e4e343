//===- HybridOps.h - Hybrid dialect operations -----------------*- C++ -*-===//

#ifndef HYBRID_DIALECT_HYBRID_IR_HYBRIDOPS_H
#define HYBRID_DIALECT_HYBRID_IR_HYBRIDOPS_H

#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.h"
#include "hybrid/Dialect/Hybrid/IR/HybridDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace hybrid {
class LayerOp;

/// The largest q_tile or k_tile a kernel is compiled with (an option or a
/// tuning entry): no tuner gives more, and CPU work items keep their tiles
/// on a thread's stack.
inline constexpr int64_t kMaxTileSize = 1 << 16;

/// Unit attribute hybrid-extract-attention puts on the kernels of K=V layers
/// (and of the layers reading their caches): their caches keep the values
/// only, so their step kernels derive the keys from them.
inline constexpr llvm::StringLiteral kKEqVAttrName = "hybrid.k_eq_v";
/// Unit attribute hybrid-extract-attention puts on the kernels of latent
/// layers (and their readers), then the CPU lowering on each kernel of
/// them: their values are a view of the keys' first dims (a strided
/// operand, whose rows are the keys').
inline constexpr llvm::StringLiteral kLatentAttrName = "hybrid.latent";
} // namespace hybrid

#define GET_OP_CLASSES
#include "hybrid/Dialect/Hybrid/IR/HybridOps.h.inc"

#endif // HYBRID_DIALECT_HYBRID_IR_HYBRIDOPS_H
