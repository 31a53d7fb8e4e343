//===- Manifest.h - What the runtime needs to run compiled kernels -*- C++ -*-===//

#ifndef HYBRID_EXPORT_MANIFEST_H
#define HYBRID_EXPORT_MANIFEST_H

#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <nlohmann/json.hpp>

namespace hybrid {

/// `manifest.json` of runtime/README.md for `schedule`, whose kernels
/// `module` holds after `convert-hybrid-attention-to-cpu`: the summary's
/// layers (each with its kernel symbol or null), and per kernel its entry
/// points, shapes and tile sizes.
nlohmann::ordered_json buildManifest(mlir::ModuleOp module,
                                     ScheduleOp schedule,
                                     llvm::StringRef library,
                                     llvm::StringRef target);

} // namespace hybrid

#endif // HYBRID_EXPORT_MANIFEST_H
