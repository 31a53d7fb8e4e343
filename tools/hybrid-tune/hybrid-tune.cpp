//===- hybrid-tune.cpp - Measure tile sizes, remember the best ------------===//
//
// hybrid-tune INPUT [--target cpu] [--seq-len N] [--budget-seconds S]
//             [--repeat R] -o tuning.json [--report DIR]
//
// For each distinct attention kernel of the schedule, tries the tile sizes
// the CPU lowering exposes (query tile x key tile), pruned by a cache-size
// cost model: every candidate is compiled through the same pipeline as
// hybrid-compile, timed with the runtime (warm-up, repeats, median) on the
// kernel's first layer, and checked against the default kernel's output;
// the fastest candidate that passes becomes the kernel's entry in the
// tuning database (merged into -o if it exists). A progress bar shows the
// search; --report writes every candidate as a table and an SVG plot.
//
//===----------------------------------------------------------------------===//

#include "../common/ToolSupport.h"
#include "TuningResults.h"
#include "hybrid-rt/Runtime.h"
#include "hybrid/Tuning/TuningDatabase.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

using namespace llvm;
using namespace hybrid;
using namespace hybrid::tune;

namespace {
cl::OptionCategory toolCategory("hybrid-tune options");
cl::opt<std::string> inputPath(cl::Positional,
                               cl::desc("<config.json | spec.json | .mlir>"),
                               cl::cat(toolCategory));
cl::opt<bool> printTarget("print-target",
                          cl::desc("Print this machine's tuning target and "
                                   "exit"),
                          cl::cat(toolCategory));
cl::opt<std::string> target("target", cl::init("cpu"), cl::desc("cpu"),
                            cl::cat(toolCategory));
cl::opt<int64_t> seqLen("seq-len", cl::init(4096),
                        cl::desc("Prompt length the kernels are timed at"),
                        cl::cat(toolCategory));
cl::opt<double> budget("budget-seconds", cl::init(300),
                       cl::desc("Stop trying candidates after this long"),
                       cl::cat(toolCategory));
cl::opt<int> repeat("repeat", cl::init(3), cl::desc("Timed runs per kernel"),
                    cl::cat(toolCategory));
cl::opt<std::string> outputPath("o",
                                cl::desc("Tuning database to write (merged)"),
                                cl::value_desc("tuning.json"),
                                cl::cat(toolCategory));
// A testing aid: proves that a wrong kernel is rejected, however fast.
cl::opt<std::string> corruptCandidate(
    "debug-corrupt-candidate", cl::Hidden, cl::value_desc("q/k"),
    cl::desc("Scale this candidate's outputs by 1.01 before the check"),
    cl::cat(toolCategory));
cl::opt<std::string> reportDir("report", cl::value_desc("dir"),
                               cl::desc("Write tuning-report.md and .svg"),
                               cl::cat(toolCategory));

int fail(const Twine &message) {
  WithColor::error(errs(), "hybrid-tune") << message << "\n";
  return 1;
}

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Scratch of one work item (queries, scores, accumulator), which the cost
/// model keeps within half a 1 MiB L2 next to the key and value tiles.
bool fitsCache(const KernelResult &k, const Candidate &c) {
  int64_t rows = std::max<int64_t>(c.qTile, 32);
  int64_t bytes = 4 * rows * (k.headDim + k.vHeadDim + c.kTile) +
                  4 * c.kTile * (k.headDim + k.vHeadDim);
  return bytes <= 512 * 1024;
}

void progress(size_t done, size_t total, const Candidate &c, double left) {
  int width = 30, filled = int(width * done / std::max<size_t>(total, 1));
  errs() << "\r[" << std::string(filled, '#')
         << std::string(width - filled, '.') << "] " << done << "/" << total
         << "  q-tile " << c.qTile << " k-tile " << c.kTile
         << format("  %.0f s left   ", left);
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(toolCategory);
  cl::ParseCommandLineOptions(argc, argv,
                              "hybrid-tune: measure kernel tile sizes\n");
  if (printTarget) {
    outs() << getHostTuningTarget() << "\n";
    return 0;
  }
  if (inputPath.empty() || outputPath.empty())
    return fail("needs an INPUT and -o tuning.json");
  if (target != "cpu")
    return fail("--target " + target + ": only cpu kernels can be tuned");
  if (seqLen <= 0 || repeat <= 0 || budget <= 0)
    return fail("--seq-len, --repeat and --budget-seconds must be positive");
  TuningDatabase database;
  std::string error;
  if (sys::fs::exists(outputPath) && !database.load(outputPath, error))
    return fail(error);

  std::vector<Candidate> candidates = {{32, 64}}; // the defaults first
  for (int64_t q : {16, 32, 64, 128})
    for (int64_t k : {32, 64, 128, 256})
      if (!(q == 32 && k == 64))
        candidates.push_back({q, k});

  Clock::time_point start = Clock::now();
  std::vector<KernelResult> kernels;
  for (size_t c = 0; c < candidates.size(); ++c) {
    const Candidate &candidate = candidates[c];
    double left = budget - secondsSince(start);
    progress(c, candidates.size(), candidate, std::max(0.0, left));
    if (c > 0 && left <= 0) {
      for (KernelResult &k : kernels)
        k.trials.push_back({candidate, 0, 0, 0, 0, false, "over budget"});
      continue;
    }
    if (c > 0 && llvm::none_of(kernels, [&](const KernelResult &k) {
          return fitsCache(k, candidate);
        })) {
      for (KernelResult &k : kernels)
        k.trials.push_back({candidate, 0, 0, 0, 0, false, "pruned (cache)"});
      continue;
    }
    CompileOptions options;
    options.maxSeq = seqLen;
    options.qTile = candidate.qTile;
    options.kTile = candidate.kTile;
    tools::Artifacts artifacts;
    rt::Manifest manifest;
    rt::Model model;
    if (!artifacts.prepare(inputPath, options))
      return 1;
    if (!rt::loadManifest(artifacts.dir(), manifest, error))
      return fail(error);
    if (rt::Status s = model.open(artifacts.dir()); !s)
      return fail(s.message);
    if (c == 0) {
      // Kernels and the first layer of each, from the default compile.
      for (const rt::LayerSpec &layer : manifest.layers) {
        if (!layer.hasKernel() ||
            llvm::any_of(kernels, [&](const KernelResult &k) {
              return k.symbol == layer.kernel;
            }))
          continue;
        KernelResult k;
        k.symbol = layer.kernel;
        k.layer = layer.index;
        k.headDim = layer.headDim;
        k.vHeadDim = layer.vHeadDim;
        kernels.push_back(std::move(k));
      }
    }
    tools::InputGenerator inputs(manifest.layers, /*seed=*/0, /*batch=*/1,
                                 seqLen);
    for (KernelResult &k : kernels) {
      const rt::LayerSpec &layer = manifest.layers[k.layer];
      const rt::KernelSpec &spec = manifest.kernels.at(layer.kernel);
      Trial trial{candidate, spec.qTile, spec.kTile, 0, 0, false, ""};
      if (c > 0 && !fitsCache(k, candidate)) {
        trial.status = "pruned (cache)";
        k.trials.push_back(trial);
        continue;
      }
      // The same kernel again (tile sizes round to the same rows): reuse.
      if (auto same = llvm::find_if(k.trials,
                                    [&](const Trial &t) {
                                      return t.qTile == trial.qTile &&
                                             t.kTile == trial.kTile && t.ms > 0;
                                    });
          same != k.trials.end()) {
        trial.ms = same->ms;
        trial.error = same->error;
        trial.passed = same->passed;
        trial.status =
            "same kernel as " +
            formatv("{0}/{1}", same->candidate.qTile, same->candidate.kTile)
                .str();
        k.trials.push_back(trial);
        continue;
      }
      tools::LayerSlice t(layer, inputs.get(layer), 0, seqLen);
      std::vector<double> times;
      for (int run = 0; run < 1 + repeat; ++run) {
        Clock::time_point begin = Clock::now();
        if (rt::Status s =
                model.prefill(layer.index, t.q, t.k, t.v, t.sinksOrNull, t.o);
            !s)
          return fail(s.message);
        if (run > 0)
          times.push_back(secondsSince(begin) * 1e3);
      }
      std::sort(times.begin(), times.end());
      trial.ms = times[times.size() / 2];
      if (corruptCandidate ==
          formatv("{0}/{1}", candidate.qTile, candidate.kTile).str())
        for (float &x : t.out)
          x *= 1.01f;
      if (c == 0)
        k.reference = t.out;
      trial.error = tools::compareOutputs(t.out, k.reference).relative;
      trial.passed = trial.error <= 1e-4;
      if (!trial.passed)
        trial.status = formatv("failed numerics ({0:e1})", trial.error).str();
      k.trials.push_back(trial);
    }
    // Signatures as the compiler keys them.
    if (c == 0)
      for (KernelResult &k : kernels)
        k.signature = manifest.kernels.at(k.symbol).signature;
  }
  progress(candidates.size(), candidates.size(), candidates.back(), 0);
  errs() << "\n";

  outs() << "kernel                          signature                        "
            "       default ms  best q/k   ms      gain\n";
  for (const KernelResult &k : kernels) {
    const Trial *best = getBest(k);
    if (!best)
      return fail("kernel " + k.symbol + ": no candidate passed");
    double base = k.trials.front().ms;
    database.add({getHostTuningTarget(), k.signature,
                  TuningDatabase::getBucket(seqLen), best->candidate.qTile,
                  best->candidate.kTile, best->ms, base});
    outs() << format(
        "%-31s %-40s %9.2f  %3lld/%-4lld %8.2f  %5.2fx\n", k.symbol.c_str(),
        k.signature.c_str(), base, (long long)best->candidate.qTile,
        (long long)best->candidate.kTile, best->ms, base / best->ms);
  }
  if (!database.save(outputPath, error))
    return fail(error);
  if (!reportDir.empty() &&
      !writeReport(reportDir, getHostTuningTarget(), seqLen, repeat, kernels))
    return 1;
  outs() << format("tuned %zu kernels in %.0f s; wrote ", kernels.size(),
                   secondsSince(start))
         << outputPath << "\n";
  return 0;
}
