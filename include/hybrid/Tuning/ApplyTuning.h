//===- ApplyTuning.h - A tuning database's tiles onto kernels ---*- C++ -*-===//

#ifndef HYBRID_TUNING_APPLYTUNING_H
#define HYBRID_TUNING_APPLYTUNING_H

#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"
#include "hybrid/Tuning/TuningDatabase.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace hybrid {

/// What decides a kernel's best tiles: heads, kv heads, head dims, the mask
/// and whether scores are soft-capped (not the positional encoding, which
/// the prepare kernels apply, nor sinks or the scale), e.g.
/// "h8.kv2.d64.dv64.sliding_window.w1024.causal.softcap".
std::string getKernelSignature(AttentionOp op);

/// How one kernel got its tiles.
struct TuningDecision {
  std::string kernel, signature;
  const TuningEntry *entry = nullptr; // null: no entry, pass defaults
};

/// Sets q_tile/k_tile (and, for entries with a GPU variant, k_tile and
/// gpu_kernel) on every hybrid.attention of `module` (after
/// hybrid-extract-attention) that `database` has an entry for. Fails, after
/// reporting it at the op, on a GPU variant #hybrid.gpu_kernel rejects.
mlir::FailureOr<std::vector<TuningDecision>>
applyTuning(mlir::ModuleOp module, const TuningDatabase &database,
            llvm::StringRef target, int64_t seqLen);

} // namespace hybrid

#endif // HYBRID_TUNING_APPLYTUNING_H
