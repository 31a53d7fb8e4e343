//===- TuningResults.h - What hybrid-tune measured, its report --*- C++ -*-===//

#ifndef HYBRID_TOOLS_HYBRID_TUNE_TUNINGRESULTS_H
#define HYBRID_TOOLS_HYBRID_TUNE_TUNINGRESULTS_H

#include "hybrid/Tuning/TuningDatabase.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hybrid::tune {

/// What the compiler is asked for: CPU tiles, or a GPU kernel variant and
/// its key tile.
struct Candidate {
  int64_t qTile = 0, kTile = 0;
  std::optional<GPUKernelVariant> gpu;

  /// "32/64" (q-tile/k-tile; "auto/64": the compiler's q-tile) on CPUs,
  /// "wgmma.tma.s2.w8.k128" on GPUs.
  std::string getName() const;
};

/// One candidate's result for one kernel.
struct Trial {
  Candidate candidate;
  int64_t qTile = 0, kTile = 0; // what the kernel got (manifest)
  int64_t valueSlices = 1;      // GPU targets: flash CTAs per head
  double ms = 0, error = 0;
  bool passed = false;
  std::string status; // "", "pruned", "failed numerics", ...
  /// GPU targets with a cubin: the flash kernel's registers per thread,
  /// spill stores (bytes) and "Potential Performance Loss" notes, as ptxas
  /// reported them; -1: unknown.
  int64_t registers = -1, spillBytes = -1, performanceLosses = 0;
};

struct KernelResult {
  std::string symbol, signature;
  int64_t layer = 0, headDim = 0, vHeadDim = 0;
  int64_t groupSize = 1;        // query heads per kv head
  std::vector<float> reference; // the default candidate's output
  std::vector<double> exact;    // GPUs: the float64 reference's last rows
  std::vector<Trial> trials;
};

/// The fastest trial that passed the numerics check, or null.
const Trial *getBest(const KernelResult &kernel);

/// How a tuning run checked and timed its candidates, for the report.
struct TuningSetup {
  bool gpu = false;
  std::string target, device; // device: the GPU's name
  int64_t seqLen = 0;
  int repeat = 0;
  std::string check; // a sentence: what each output was compared with
};

/// DIR/tuning-report.md (every candidate) and DIR/tuning-report.svg (bars per
/// candidate, the winner dark, rejected ones red); false after reporting why
/// on stderr.
bool writeReport(const std::string &dir, const TuningSetup &setup,
                 const std::vector<KernelResult> &kernels);

} // namespace hybrid::tune

#endif // HYBRID_TOOLS_HYBRID_TUNE_TUNINGRESULTS_H
