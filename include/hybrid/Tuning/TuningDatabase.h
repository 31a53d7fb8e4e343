//===- TuningDatabase.h - Tile sizes that hybrid-tune measured --*- C++ -*-===//
//
// A versioned JSON file of entries keyed by target (CPU model or GPU arch),
// kernel signature (getKernelSignature) and sequence-length bucket (the next
// power of two, at least 256). hybrid-tune writes it; hybrid-compile
// --tuning-db reads it and sets each hybrid.attention's q_tile and k_tile
// (and, for GPU targets, its #hybrid.gpu_kernel).
// Schema: docs/Tuning.md.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_TUNING_TUNINGDATABASE_H
#define HYBRID_TUNING_TUNINGDATABASE_H

#include "hybrid/Tuning/GPUKernelVariant.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hybrid {

struct TuningEntry {
  std::string target; // e.g. "cpu:znver5", "cuda:sm_90a"
  std::string kernel; // getKernelSignature
  int64_t seqBucket = 0;
  int64_t qTile = 0, kTile = 0; // what the compiler is asked for
  double ms = 0, defaultMs = 0; // measured median, tuned and default
  /// cuda targets: the flash kernel's variant, and the GPU it was measured
  /// on (for the record).
  std::optional<GPUKernelVariant> gpu;
  std::string device;
};

class TuningDatabase {
public:
  static constexpr int64_t kVersion = 1;

  /// Reads `path`; false with a one-line `error` naming the field if the
  /// file is unreadable, malformed or of another version.
  bool load(llvm::StringRef path, std::string &error);
  bool save(llvm::StringRef path, std::string &error) const;

  /// Adds `entry`, replacing one with the same key.
  void add(const TuningEntry &entry);
  const std::vector<TuningEntry> &getEntries() const { return entries; }

  /// The entry for (target, kernel) whose bucket is nearest `seqLen`'s (the
  /// same bucket first, then the smallest distance in powers of two, the
  /// larger bucket on a tie); null when the kernel has none.
  const TuningEntry *lookup(llvm::StringRef target, llvm::StringRef kernel,
                            int64_t seqLen) const;

  /// The next power of two at or above `seqLen`, at least 256.
  static int64_t getBucket(int64_t seqLen);

private:
  std::vector<TuningEntry> entries;
};

/// The tuning target of this machine: "cpu:" and the host CPU's name.
std::string getHostTuningTarget();

/// The tuning target kernels compiled for `target` (hybrid-compile's
/// --target) are looked up under: this machine's CPU for "cpu", else the
/// target itself ("cuda:sm_90a": a GPU architecture, whatever its model).
std::string getTuningTarget(llvm::StringRef target);

} // namespace hybrid

#endif // HYBRID_TUNING_TUNINGDATABASE_H
