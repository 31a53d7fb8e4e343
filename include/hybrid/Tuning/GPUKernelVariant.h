//===- GPUKernelVariant.h - A GPU flash kernel's variant --------*- C++ -*-===//
//
// #hybrid.gpu_kernel's parameters without an MLIR context: what the GPU flags
// (CompileOptions), tuning databases and manifests hold, read and write as
// JSON in one place, and turn into the attribute (whose verifier has the
// rules) in one place.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_TUNING_GPUKERNELVARIANT_H
#define HYBRID_TUNING_GPUKERNELVARIANT_H

#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace hybrid {

struct GPUKernelVariant {
  TensorCores tensorCores = TensorCores::MmaSync;
  bool tma = false;
  int64_t warps = 4, warpRows = 16, stages = 1;
  bool softmaxOverlap = false;
  bool warpSpecialized = false;
  bool pingPong = false;
  double rescaleThreshold = 8;
  int64_t minCtasPerSM = 0; // 0: none
  int64_t valueSlice = 256; // value dims per flash CTA at most

  static GPUKernelVariant get(GPUKernelAttr attr);
  /// The attribute, or null after reporting through `emitError` (which
  /// starts the diagnostic) why the verifier rejects it.
  GPUKernelAttr
  getAttr(mlir::MLIRContext *context,
          llvm::function_ref<mlir::InFlightDiagnostic()> emitError) const;

  /// "mma.sync.w4", "wgmma.tma.s2.overlap.ws.pp.w8", "mma.sync.w4.t0.m3.v128"
  /// (rescale threshold 0, 3 CTAs per SM, value slices up to 128), ...: its
  /// name in reports.
  std::string getName() const;

  /// {"tensor_cores": "mma.sync", "tma": false, ...}: every field.
  nlohmann::ordered_json toJSON() const;
  /// Reads the fields `object` has (the others keep their defaults); on a
  /// malformed or unknown field, nullopt and an `error` naming `path`.field.
  static std::optional<GPUKernelVariant>
  fromJSON(const nlohmann::ordered_json &object, const std::string &path,
           std::string &error);

  bool operator==(const GPUKernelVariant &other) const;
};

} // namespace hybrid

#endif // HYBRID_TUNING_GPUKERNELVARIANT_H
