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
  int64_t layer = 0, headDim = 0, vHeadDim = 0, rowsPerQuery = 1;
  std::vector<float> reference; // the default candidate's output
  std::vector<Trial> trials;
};

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

void writeReport(const std::vector<KernelResult> &kernels) {
  if (std::error_code ec = sys::fs::create_directories(reportDir)) {
    WithColor::error(errs(), "hybrid-tune")
        << reportDir << ": " << ec.message();
    return;
  }
  std::error_code ec;
  raw_fd_ostream md(reportDir + "/tuning-report.md", ec);
  md << "# Tuning report\n\nTarget " << getHostTuningTarget() << ", prompt "
     << seqLen << " tokens, median of " << repeat
     << " runs. Every candidate's output is checked against the default "
        "kernel's (max |diff| / max |default| <= 1e-4).\n";
  for (const KernelResult &k : kernels) {
    md << "\n## " << k.symbol << " (" << k.signature << ", layer " << k.layer
       << ")\n\n| q-tile | k-tile | kernel tiles | ms | vs default | |\n"
       << "|---:|---:|---|---:|---:|---|\n";
    double base = k.trials.empty() ? 0 : k.trials.front().ms;
    for (const Trial &t : k.trials)
      md << "| " << t.candidate.qTile << " | " << t.candidate.kTile << " | "
         << (t.qTile ? formatv("{0} x {1}", t.qTile, t.kTile).str() : "-")
         << " | " << (t.ms > 0 ? formatv("{0:f2}", t.ms).str() : "-") << " | "
         << (t.ms > 0 && base > 0 ? formatv("{0:f2}x", base / t.ms).str() : "-")
         << " | " << (t.status.empty() ? "ok" : t.status) << " |\n";
  }
  // One row of bars per kernel: candidate time, the winner filled.
  raw_fd_ostream svg(reportDir + "/tuning-report.svg", ec);
  int barWidth = 26, rowHeight = 150, left = 60;
  size_t most = 0;
  for (const KernelResult &k : kernels)
    most = std::max(most, k.trials.size());
  int width = left + int(most) * (barWidth + 6) + 20;
  int height = int(kernels.size()) * rowHeight + 20;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width
      << "' height='" << height
      << "' font-family='sans-serif' font-size='9'>\n";
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelResult &k = kernels[i];
    int top = int(i) * rowHeight + 20, base = top + rowHeight - 40;
    double maxMs = 0;
    for (const Trial &t : k.trials)
      maxMs = std::max(maxMs, t.ms);
    const Trial *best = nullptr;
    for (const Trial &t : k.trials)
      if (t.passed && (!best || t.ms < best->ms))
        best = &t;
    svg << "<text x='4' y='" << top - 4 << "' font-size='11'>" << k.symbol
        << " (" << k.signature << "): ms per prefill of " << seqLen
        << " tokens</text>\n";
    for (size_t j = 0; j < k.trials.size(); ++j) {
      const Trial &t = k.trials[j];
      int x = left + int(j) * (barWidth + 6);
      int h = maxMs > 0 ? int((base - top - 10) * t.ms / maxMs) : 0;
      svg << "<rect x='" << x << "' y='" << base - h << "' width='" << barWidth
          << "' height='" << h << "' fill='"
          << (&t == best ? "#1f77b4"
              : t.passed ? "#aec7e8"
                         : "#d62728")
          << "'/>\n<text x='" << x << "' y='" << base + 12 << "'>"
          << t.candidate.qTile << "/" << t.candidate.kTile << "</text>\n";
      if (t.ms > 0)
        svg << "<text x='" << x << "' y='" << base - h - 2 << "'>"
            << formatv("{0:f1}", t.ms) << "</text>\n";
    }
    svg << "<text x='4' y='" << base + 24 << "'>q-tile/k-tile</text>\n";
  }
  svg << "</svg>\n";
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
      double diff = 0, scale = 0;
      for (size_t i = 0; i < t.out.size(); ++i) {
        diff = std::max(diff, double(std::abs(t.out[i] - k.reference[i])));
        scale = std::max(scale, double(std::abs(k.reference[i])));
        if (std::isnan(t.out[i]))
          diff = INFINITY;
      }
      trial.error = scale > 0 ? diff / scale : diff;
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
    const Trial *best = nullptr;
    for (const Trial &t : k.trials)
      if (t.passed && (!best || t.ms < best->ms))
        best = &t;
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
  if (!reportDir.empty())
    writeReport(kernels);
  outs() << format("tuned %zu kernels in %.0f s; wrote ", kernels.size(),
                   secondsSince(start))
         << outputPath << "\n";
  return 0;
}
