//===- hybrid-bench.cpp - Time a schedule's layers ------------------------===//
//
// hybrid-bench INPUT [--target T] [--batch B] --seq-len N [--decode-steps M]
//                    [--json] [--repeat R] [--warmup W] [--layers I,J]
//                    [--num-threads T] [--q-tile N] [--k-tile N]
//
// Per attention layer: the median prefill time over R runs after W warm-up
// runs, and the useful GFLOP/s, counting only the query-key pairs the mask
// shows: 2 * pairs * (D + Dv) * Hq * B (4 * pairs * D * Hq per batch entry
// when Dv = D).
//
//===----------------------------------------------------------------------===//

#include "../common/ToolSupport.h"
#include "hybrid-rt/Runtime.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>

using namespace llvm;
using namespace hybrid;
using json = nlohmann::ordered_json;

namespace {
cl::OptionCategory toolCategory("Timing options");
cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                               cl::desc("<config.json | spec.json | .mlir | "
                                        "artifacts dir>"),
                               cl::cat(toolCategory));
cl::opt<bool> asJson("json", cl::desc("Print JSON"), cl::cat(toolCategory));
cl::opt<int> repeat("repeat", cl::init(5), cl::desc("Timed runs per layer"),
                    cl::cat(toolCategory));
cl::opt<int> warmup("warmup", cl::init(1), cl::desc("Untimed runs first"),
                    cl::cat(toolCategory));

int fail(const Twine &message) {
  WithColor::error(errs(), "hybrid-bench") << message << "\n";
  return 1;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}
} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions({&toolCategory, &tools::getRunOptionCategory()});
  cl::ParseCommandLineOptions(argc, argv,
                              "hybrid-bench: time a compiled schedule's "
                              "layers\n");
  if (repeat <= 0 || warmup < 0)
    return fail("--repeat must be positive and --warmup not negative");
  tools::CompiledModel session;
  if (!session.open("hybrid-bench", inputPath))
    return 1;
  const rt::Manifest &manifest = session.manifest;
  rt::Model &model = session.model;
  int64_t batch = session.batch(), seqLen = session.seqLen();

  tools::InputGenerator inputs(manifest.layers, /*seed=*/0, batch, seqLen);
  json layers = json::array();
  for (const rt::LayerSpec &layer : manifest.layers) {
    if (!session.selected(layer.index))
      continue;
    json entry = {{"index", layer.index},     {"kind", layer.kind},
                  {"window", nullptr},        {"chunk", nullptr},
                  {"prefill_ms", nullptr},    {"prefill_gflops", nullptr},
                  {"visible_pairs", nullptr}, {"decode_ms", nullptr}};
    if (!layer.hasKernel()) {
      layers.push_back(std::move(entry));
      continue;
    }
    if (layer.window)
      entry["window"] = layer.window;
    if (layer.chunk)
      entry["chunk"] = layer.chunk;
    const tools::LayerInputs &in = inputs.get(layer);
    tools::LayerTensors t(layer, in);
    std::vector<double> times;
    for (int run = 0; run < warmup + repeat; ++run) {
      auto start = std::chrono::steady_clock::now();
      if (rt::Status s =
              model.prefill(layer.index, t.q, t.k, t.v, t.sinksOrNull, t.o);
          !s)
        return fail(s.message);
      std::chrono::duration<double, std::milli> elapsed =
          std::chrono::steady_clock::now() - start;
      if (run >= warmup)
        times.push_back(elapsed.count());
    }
    double ms = median(times);
    int64_t pairs = layer.countVisiblePairs(seqLen, seqLen);
    double flops = 2.0 * double(pairs) *
                   double(layer.headDim + layer.vHeadDim) *
                   double(layer.numHeads) * double(batch);
    entry["prefill_ms"] = ms;
    entry["prefill_gflops"] = flops / (ms * 1e6);
    entry["visible_pairs"] = pairs;
    layers.push_back(std::move(entry));
  }

  if (asJson) {
    json result = {{"model_type", manifest.modelType},
                   {"name", manifest.name},
                   {"target", manifest.target},
                   {"batch", int64_t(batch)},
                   {"seq_len", int64_t(seqLen)},
                   {"threads", model.numThreads()},
                   {"repeat", int(repeat)},
                   {"layers", std::move(layers)}};
    outs() << result.dump(2) << "\n";
    return 0;
  }
  outs() << "hybrid-bench: " << manifest.name << ", " << manifest.target
         << ", batch " << batch << ", seq " << seqLen << ", "
         << model.numThreads() << " threads, median of " << repeat << "\n";
  outs() << "layer  kind      prefill ms   GFLOP/s\n";
  for (const json &entry : layers) {
    outs() << format("%5lld  %-8s", (long long)entry["index"].get<int64_t>(),
                     entry["kind"].get<std::string>().c_str());
    if (entry["prefill_ms"].is_null())
      outs() << "  (no kernel)\n";
    else
      outs() << format("  %10.3f  %8.1f\n", entry["prefill_ms"].get<double>(),
                       entry["prefill_gflops"].get<double>());
  }
  return 0;
}
