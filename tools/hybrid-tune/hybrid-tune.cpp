//===- hybrid-tune.cpp - Measure tile sizes, remember the best ------------===//
//
// hybrid-tune INPUT [--target cpu|cuda:sm_80|cuda:sm_90a] [--seq-len N]
//             [--budget-seconds S] [--repeat R] [--candidates A,B,...]
//             -o tuning.json [--report DIR]
//
// For each distinct attention kernel of the schedule, tries what the
// target's lowering exposes: on CPUs the tile sizes (query tile x key tile),
// pruned by a cache-size cost model; on GPUs the flash kernel's variants
// (tensor-core instructions, TMA and stages, softmax overlap, warp
// specialization, warps, rows per warp) by key tile. Every candidate is
// compiled through the same pipeline as hybrid-compile, timed with the runtime
// (warm-up, repeats, median; on GPUs the attention kernel's device time) on the
// kernel's first layer, and checked: against the default kernel's output on
// CPUs (f32 throughout), on GPUs (bf16 inputs) against the float64 reference on
// the last queries and the default kernel's output on all. The fastest
// candidate that passes becomes the kernel's entry in the tuning database
// (merged into -o if it exists). A progress bar shows the search; --report
// writes every candidate as a table and an SVG plot.
//
//===----------------------------------------------------------------------===//

#include "../common/ToolSupport.h"
#include "TuningResults.h"
#include "hybrid-rt/Reference.h"
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
cl::opt<std::string> target("target", cl::init("cpu"),
                            cl::desc("cpu, cuda:sm_80 or cuda:sm_90a (GPU "
                                     "targets need a GPU, or the emulator)"),
                            cl::cat(toolCategory));
cl::list<std::string>
    onlyCandidates("candidates", cl::CommaSeparated, cl::value_desc("name,..."),
                   cl::desc("Try only these candidates (names as in the "
                            "report: 32/64 on CPUs, wgmma.tma.s2.w8.k128 on "
                            "GPUs) after the default"),
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
    cl::desc("Scale this candidate's outputs (its name, as --candidates) "
             "before the check: by 1.01 on CPUs, 1.1 on GPUs"),
    cl::cat(toolCategory));
cl::opt<std::string> reportDir("report", cl::value_desc("dir"),
                               cl::desc("Write tuning-report.md and .svg"),
                               cl::cat(toolCategory));

/// True while the progress bar holds stderr's current line.
bool midLine = false;

int fail(const Twine &message) {
  if (midLine)
    errs() << "\n";
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

/// The candidates of `target`, its defaults first.
std::vector<Candidate> getCandidates(StringRef target) {
  std::vector<Candidate> list;
  if (target == "cpu") {
    list.push_back({0, 64, std::nullopt}); // q-tile 0: the compiler's rule
    for (int64_t q : {16, 32, 64, 128})
      for (int64_t k : {32, 64, 128, 256})
        list.push_back({q, k, std::nullopt});
    return list;
  }
  // Each 64-key GPU candidate is followed by its twin of value slices up to
  // 128, which computes Q K^T once per slice for half the accumulators (V
  // head dims over 128; at most 128 it is the same kernel: findWideTwin).
  auto add = [&](int64_t k, GPUKernelVariant v) {
    list.push_back({0, k, v});
    if (k == 64) {
      v.valueSlice = 128;
      list.push_back({0, k, v});
    }
  };
  GPUKernelVariant mma; // mma.sync, 4 warps of 16 rows
  add(64, mma);
  for (int64_t warps : {4, 8})
    for (int64_t rows : {16, 32})
      for (int64_t k : {32, 64, 128}) {
        GPUKernelVariant v = mma;
        v.warps = warps;
        v.warpRows = rows;
        if (!(v == mma && k == 64))
          add(k, v);
      }
  if (target != "cuda:sm_90a")
    return list;
  // Warp specialization (and ping-pong) with the overlap only (the pairing
  // FlashAttention-3 ships).
  for (int64_t stages : {0, 1, 2, 3}) // 0: wgmma fed by cp.async
    for (bool overlap : {false, true})
      for (bool specialized : {false, true}) {
        if ((overlap && stages < 2) || (specialized && !overlap))
          continue;
        for (int64_t warps : {4, 8})
          for (int64_t k : {64, 128}) {
            GPUKernelVariant v;
            v.tensorCores = TensorCores::Wgmma;
            v.tma = stages > 0;
            v.stages = std::max<int64_t>(stages, 1);
            v.softmaxOverlap = overlap;
            v.warpSpecialized = specialized;
            v.warps = warps;
            add(k, v);
            // ... and two specialized warpgroups taking turns.
            if (specialized && warps == 8) {
              v.pingPong = true;
              add(k, v);
            }
          }
      }
  return list;
}

/// `kernel`'s trial of `candidate`'s twin of value slices up to 256 when
/// `candidate` narrows them and yet builds the same kernel (a V head dim
/// whose slice it leaves as it was), or null.
const Trial *findWideTwin(const KernelResult &kernel,
                          const Candidate &candidate) {
  if (!candidate.gpu || candidate.gpu->valueSlice == 256)
    return nullptr;
  GPUKernelVariant wide = *candidate.gpu;
  wide.valueSlice = 256;
  if (getFlashValueSlice(kernel.vHeadDim, candidate.gpu->valueSlice,
                         wide.tensorCores) !=
      getFlashValueSlice(kernel.vHeadDim, wide.valueSlice, wide.tensorCores))
    return nullptr;
  auto it = llvm::find_if(kernel.trials, [&](const Trial &t) {
    return t.candidate.gpu == wide && t.candidate.kTile == candidate.kTile;
  });
  return it == kernel.trials.end() ? nullptr : &*it;
}

/// A trial of `candidate` that ran nothing, and why.
Trial getUnrunTrial(const Candidate &candidate, const char *status) {
  Trial trial;
  trial.candidate = candidate;
  trial.status = status;
  return trial;
}

/// `earlier`'s result again for `candidate`, which built the same kernel.
Trial getRepeatedTrial(const Trial &earlier, const Candidate &candidate) {
  Trial trial = earlier;
  trial.candidate = candidate;
  if (earlier.passed)
    trial.status = "same kernel as " + earlier.candidate.getName();
  return trial;
}

/// The median device time of --repeat prefill calls of `layer` on `t`
/// (after one untimed call), or the runtime's error.
std::optional<double> timePrefill(rt::Model &model, const rt::LayerSpec &layer,
                                  tools::LayerSlice &t, std::string &error) {
  std::vector<double> times;
  for (int run = 0; run < 1 + repeat; ++run) {
    Clock::time_point begin = Clock::now();
    if (rt::Status s =
            model.prefill(layer.index, t.q, t.k, t.v, t.sinksOrNull, t.o);
        !s) {
      error = s.message;
      return std::nullopt;
    }
    if (run > 0)
      times.push_back(tools::getCallMs(model, begin));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

/// What candidates are checked against: the default kernel's output `out`
/// and, on GPUs, the float64 reference on the last `referenceQueries`
/// queries (every mask boundary and the longest rows).
void setReferences(KernelResult &k, const std::vector<float> &out,
                   const rt::LayerSpec &layer, const tools::LayerInputs &in,
                   bool gpu, int64_t referenceQueries) {
  k.reference = out;
  if (!gpu)
    return;
  std::vector<float> q = tools::slicePositions(
      in.q, in.qShape, seqLen - referenceQueries, referenceQueries);
  std::vector<double> ref = rt::reference::attention(
      layer, /*batch=*/1, referenceQueries, seqLen, q.data(), in.k.data(),
      in.v.data(), layer.sinks ? in.sinks.data() : nullptr);
  k.exact.assign(ref.begin(), ref.end());
}

/// `out`'s relative error (max |diff| / max |ref|) against `k`'s
/// references, the worse of the two on GPUs.
double getError(const KernelResult &k, const std::vector<float> &out,
                const tools::LayerInputs &in, bool gpu,
                int64_t referenceQueries) {
  double error = tools::compareOutputs(out, k.reference).relative;
  if (gpu)
    error = std::max(error, tools::compareOutputs(
                                tools::slicePositions(out, in.outShape,
                                                      seqLen - referenceQueries,
                                                      referenceQueries),
                                k.exact)
                                .relative);
  return error;
}

void progress(size_t done, size_t total, const Candidate &c, double left) {
  int width = 30, filled = int(width * done / std::max<size_t>(total, 1));
  errs() << "\r[" << std::string(filled, '#')
         << std::string(width - filled, '.') << "] " << done << "/" << total
         << "  " << c.getName() << format("  %.0f s left   ", left);
  midLine = true;
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(toolCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "hybrid-tune: measure kernel tile sizes (CPU) and variants (GPU)\n");
  if (printTarget) {
    outs() << getHostTuningTarget() << "\n";
    return 0;
  }
  if (inputPath.empty() || outputPath.empty())
    return fail("needs an INPUT and -o tuning.json");
  if (std::string error = validateTarget(target); !error.empty())
    return fail(error);
  bool gpu = target != "cpu";
  if (seqLen <= 0 || repeat <= 0 || budget <= 0)
    return fail("--seq-len, --repeat and --budget-seconds must be positive");
  TuningDatabase database;
  std::string error;
  if (sys::fs::exists(outputPath) && !database.load(outputPath, error))
    return fail(error);

  std::vector<Candidate> candidates = getCandidates(target);
  if (!onlyCandidates.empty()) {
    std::vector<Candidate> chosen = {candidates.front()};
    for (const std::string &name : onlyCandidates) {
      auto it = llvm::find_if(
          candidates, [&](const Candidate &c) { return c.getName() == name; });
      if (it == candidates.end()) {
        std::string known;
        for (const Candidate &c : candidates)
          known += (known.empty() ? "" : ", ") + c.getName();
        return fail("--candidates: no candidate '" + name + "' for " + target +
                    " (candidates: " + known + ")");
      }
      if (it != candidates.begin())
        chosen.push_back(*it);
    }
    candidates = std::move(chosen);
  }
  // GPU kernels compute in bf16: their outputs are checked against the
  // float64 reference on the last queries and against the default kernel's
  // on all (setReferences), both within the tolerance hybrid-run uses for
  // them.
  double tolerance = gpu ? 2e-2 : 1e-4;
  const int64_t referenceQueries = std::min<int64_t>(seqLen, 256);
  std::string device;

  Clock::time_point start = Clock::now();
  std::vector<KernelResult> kernels;
  for (size_t c = 0; c < candidates.size(); ++c) {
    const Candidate &candidate = candidates[c];
    double left = budget - secondsSince(start);
    progress(c, candidates.size(), candidate, std::max(0.0, left));
    if (c > 0 && left <= 0) {
      for (KernelResult &k : kernels)
        k.trials.push_back(getUnrunTrial(candidate, "over budget"));
      continue;
    }
    if (c > 0 && !gpu && llvm::none_of(kernels, [&](const KernelResult &k) {
          return fitsCache(k, candidate);
        })) {
      for (KernelResult &k : kernels)
        k.trials.push_back(getUnrunTrial(candidate, "pruned (cache)"));
      continue;
    }
    // Narrower value slices that change no kernel: nothing to compile.
    if (c > 0 && llvm::all_of(kernels, [&](const KernelResult &k) {
          return findWideTwin(k, candidate);
        })) {
      for (KernelResult &k : kernels)
        k.trials.push_back(
            getRepeatedTrial(*findWideTwin(k, candidate), candidate));
      continue;
    }
    CompileOptions options;
    options.target = target;
    options.maxSeq = seqLen;
    options.kTile = candidate.kTile;
    if (candidate.gpu) {
      // The default is hybrid-compile's (its key tile halved to fit 48 KiB
      // per stage); the others' key tiles are halved only until the chip
      // holds them, as the database's k_tile is when compiled.
      options.kTileGiven = c > 0;
      options.gpu = *candidate.gpu;
      // Spills go to the report's registers column, not between progress
      // lines.
      options.warnPtxas = false;
    } else {
      options.qTile = candidate.qTile;
    }
    tools::Artifacts artifacts;
    rt::Manifest manifest;
    rt::Model model;
    if (!artifacts.prepare(inputPath, options)) {
      // A variant some kernel's shape cannot take (the error above says
      // which); the defaults always compile.
      if (c == 0)
        return 1;
      for (KernelResult &k : kernels)
        k.trials.push_back(getUnrunTrial(candidate, "does not compile"));
      continue;
    }
    if (!rt::loadManifest(artifacts.dir(), manifest, error))
      return fail(error);
    if (rt::Status s = model.open(artifacts.dir()); !s)
      return fail(s.message);
    if (c == 0) {
      if (gpu)
        device = hybrid_rt_device_name(model.get());
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
        k.groupSize = layer.numHeads / layer.numKvHeads;
        kernels.push_back(std::move(k));
      }
    }
    std::vector<const rt::LayerSpec *> tuned;
    for (const KernelResult &k : kernels)
      tuned.push_back(&manifest.layers[k.layer]);
    if (std::string error =
            tools::checkInputMemory(tuned, /*batch=*/1, seqLen, "--seq-len");
        !error.empty())
      return fail(error);
    tools::InputGenerator inputs(manifest.layers, /*seed=*/0, /*batch=*/1,
                                 seqLen);
    for (KernelResult &k : kernels) {
      const rt::LayerSpec &layer = manifest.layers[k.layer];
      const rt::KernelSpec &spec = manifest.kernels.at(layer.kernel);
      Trial trial = getUnrunTrial(candidate, "");
      trial.qTile = spec.qTile;
      trial.kTile = spec.kTile;
      trial.valueSlices = spec.valueSlices;
      if (auto used = manifest.resources.find(spec.entry);
          used != manifest.resources.end()) {
        trial.registers = used->second.registers;
        trial.spillBytes = used->second.spillStoreBytes;
        trial.performanceLosses = used->second.performanceLosses;
      }
      if (c > 0 && !gpu && !fitsCache(k, candidate)) {
        trial.status = "pruned (cache)";
        k.trials.push_back(trial);
        continue;
      }
      // The same kernel again (tile sizes round to the same rows, a key
      // tile halved to fit, or value slices as they were): reuse.
      if (const Trial *wide = findWideTwin(k, candidate);
          wide && wide->ms > 0) {
        k.trials.push_back(getRepeatedTrial(*wide, candidate));
        continue;
      }
      if (auto same = llvm::find_if(k.trials,
                                    [&](const Trial &t) {
                                      return t.qTile == trial.qTile &&
                                             t.kTile == trial.kTile &&
                                             t.candidate.gpu == candidate.gpu &&
                                             t.ms > 0;
                                    });
          same != k.trials.end()) {
        k.trials.push_back(getRepeatedTrial(*same, candidate));
        continue;
      }
      const tools::LayerInputs &in = inputs.get(layer);
      tools::LayerSlice t(layer, in, 0, seqLen);
      std::optional<double> ms = timePrefill(model, layer, t, error);
      if (!ms)
        return fail(error);
      trial.ms = *ms;
      if (corruptCandidate == candidate.getName())
        for (float &x : t.out)
          x *= gpu ? 1.1f : 1.01f;
      if (c == 0)
        setReferences(k, t.out, layer, in, gpu, referenceQueries);
      trial.error = getError(k, t.out, in, gpu, referenceQueries);
      trial.passed = trial.error <= tolerance;
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
  midLine = false;

  std::string tuningTarget = getTuningTarget(target);
  outs() << "kernel                          signature                        "
            "       default ms  best "
         << (gpu ? "variant                      " : "q/k ")
         << "  ms      gain\n";
  for (const KernelResult &k : kernels) {
    const Trial *best = getBest(k);
    if (!best)
      return fail("kernel " + k.symbol + ": no candidate passed");
    double base = k.trials.front().ms;
    TuningEntry entry;
    entry.target = tuningTarget;
    entry.kernel = k.signature;
    entry.seqBucket = TuningDatabase::getBucket(seqLen);
    entry.qTile = best->candidate.qTile;
    entry.kTile = best->candidate.kTile;
    entry.ms = best->ms;
    entry.defaultMs = base;
    // The CPU default's q-tile is a rule (0): record the rows its kernel
    // got, which compile to the same kernel.
    if (!gpu && entry.qTile == 0)
      entry.qTile = best->qTile * k.groupSize;
    if (gpu) {
      // What the kernel got: compiled from the entry, the same kernel.
      entry.qTile = best->qTile;
      entry.kTile = best->kTile;
      entry.gpu = best->candidate.gpu;
      entry.device = device;
    }
    database.add(entry);
    outs() << format("%-31s %-40s %9.2f  %-*s %8.2f  %5.2fx\n",
                     k.symbol.c_str(), k.signature.c_str(), base, gpu ? 29 : 8,
                     best->candidate.getName().c_str(), best->ms,
                     base / best->ms);
  }
  if (!database.save(outputPath, error))
    return fail(error);
  TuningSetup setup{gpu, tuningTarget, device, seqLen, repeat, ""};
  setup.check =
      gpu ? formatv("Every candidate's output is checked against the float64 "
                    "reference on the last {0} queries and against the "
                    "default kernel's on all (max |diff| / max |ref| <= {1}).",
                    referenceQueries, tolerance)
                .str()
          : "Every candidate's output is checked against the default "
            "kernel's (max |diff| / max |default| <= 1e-4).";
  if (!reportDir.empty() && !writeReport(reportDir, setup, kernels))
    return 1;
  outs() << format("tuned %zu kernels in %.0f s; wrote ", kernels.size(),
                   secondsSince(start))
         << outputPath << "\n";
  return 0;
}
