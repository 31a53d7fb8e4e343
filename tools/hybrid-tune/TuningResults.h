//===- TuningResults.h - What hybrid-tune measured, and its report -*- C++
//-*-===//

#ifndef HYBRID_TOOLS_HYBRID_TUNE_TUNINGRESULTS_H
#define HYBRID_TOOLS_HYBRID_TUNE_TUNINGRESULTS_H

#include <cstdint>
#include <string>
#include <vector>

namespace hybrid::tune {

struct Candidate {
  int64_t qTile, kTile; // what the compiler is asked for
};

/// One candidate's result for one kernel.
struct Trial {
  Candidate candidate;
  int64_t qTile = 0, kTile = 0; // what the kernel got (manifest)
  double ms = 0, error = 0;
  bool passed = false;
  std::string status; // "", "pruned", "failed numerics", ...
};

struct KernelResult {
  std::string symbol, signature;
  int64_t layer = 0, headDim = 0, vHeadDim = 0;
  std::vector<float> reference; // the default candidate's output
  std::vector<Trial> trials;
};

/// The fastest trial that passed the numerics check, or null.
const Trial *getBest(const KernelResult &kernel);

/// DIR/tuning-report.md (every candidate) and DIR/tuning-report.svg (bars per
/// candidate, the winner dark, rejected ones red); false after reporting why
/// on stderr.
bool writeReport(const std::string &dir, const std::string &target,
                 int64_t seqLen, int repeat,
                 const std::vector<KernelResult> &kernels);

} // namespace hybrid::tune

#endif // HYBRID_TOOLS_HYBRID_TUNE_TUNINGRESULTS_H
