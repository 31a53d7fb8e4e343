//===- hybrid-bench.cpp - Time a schedule's layers ------------------------===//
//
// hybrid-bench INPUT [--target T] [--batch B] --seq-len N [--decode-steps M]
//                    [--json] [--repeat R] [--warmup W] [--layers I,J]
//                    [--num-threads T] [--q-tile N] [--k-tile N]
//
// Per attention layer: the median prefill time over R runs after W warm-up
// runs, and the useful GFLOP/s, counting only the query-key pairs the mask
// shows: 2 * pairs * (D + Dv) * Hq * B (4 * pairs * D * Hq per batch entry
// when Dv = D). With --decode-steps, the median step of T tokens
// (--step-tokens) after the prompt: the cache bytes its first query sees,
// read once (on CPUs a K=V layer's values only), per second, and the useful
// GFLOP/s of the step's pairs (a step of many tokens is a chunk of a
// prompt). GPU targets report device time (CUDA events around the attention
// kernels: the host copies of the arrays are left out).
//
//===----------------------------------------------------------------------===//

#include "../common/GPUKernelOptions.h"
#include "../common/ToolSupport.h"
#include "hybrid-rt/Runtime.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>

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
cl::opt<bool> decodeOnly("decode-only",
                         cl::desc("Time decode only; fill the caches without "
                                  "attending to the prompt"),
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
  cl::HideUnrelatedOptions({&toolCategory, &tools::getRunOptionCategory(),
                            &tools::getGPUKernelOptionCategory()});
  cl::ParseCommandLineOptions(argc, argv,
                              "hybrid-bench: time a compiled schedule's "
                              "layers\n");
  if (repeat <= 0 || warmup < 0)
    return fail("--repeat must be positive and --warmup not negative");
  tools::CompiledModel compiled;
  if (!compiled.open("hybrid-bench", inputPath))
    return 1;
  const rt::Manifest &manifest = compiled.manifest;
  rt::Model &model = compiled.model;
  int64_t batch = compiled.batch(), seqLen = compiled.seqLen(),
          steps = compiled.decodeSteps(), stepTokens = compiled.stepTokens();
  int64_t allSteps = steps ? warmup + steps : 0;
  int64_t total = seqLen + allSteps * stepTokens;
  if (steps == 0 && decodeOnly)
    return fail("--decode-only needs --decode-steps");

  tools::InputGenerator inputs(manifest.layers, /*seed=*/0, batch, total);
  std::vector<const rt::LayerSpec *> timed;
  std::map<int64_t, json> entries;
  for (const rt::LayerSpec &layer : manifest.layers) {
    if (!compiled.needed(layer.index))
      continue;
    json entry = {{"index", layer.index},
                  {"kind", layer.kind},
                  {"window", nullptr},
                  {"chunk", nullptr},
                  {"prefill_ms", nullptr},
                  {"prefill_gflops", nullptr},
                  {"visible_pairs", nullptr},
                  {"decode_ms", nullptr},
                  {"decode_gbytes_per_s", nullptr},
                  {"decode_gflops", nullptr}};
    if (layer.window)
      entry["window"] = layer.window;
    if (layer.chunk)
      entry["chunk"] = layer.chunk;
    entries[layer.index] = std::move(entry);
    if (layer.hasKernel())
      timed.push_back(&layer);
  }
  if (std::string error =
          tools::checkInputMemory(timed, batch, total, tools::kRunSizeOptions);
      !error.empty())
    return fail(error);

  bool onDevice = manifest.target != "cpu";

  // Prefill: the stateless call on the prompt, timed.
  for (const rt::LayerSpec *layer : decodeOnly ? decltype(timed){} : timed) {
    const tools::LayerInputs &in = inputs.get(*layer);
    tools::LayerSlice prompt(*layer, in, 0, seqLen);
    std::vector<double> times;
    for (int run = 0; run < warmup + repeat; ++run) {
      auto start = std::chrono::steady_clock::now();
      if (rt::Status s = model.prefill(layer->index, prompt.q, prompt.k,
                                       prompt.v, prompt.sinksOrNull, prompt.o);
          !s)
        return fail(s.message);
      double ms = tools::getCallMs(model, start);
      if (run >= warmup)
        times.push_back(ms);
    }
    double ms = median(times);
    int64_t pairs = layer->countVisiblePairs(seqLen, seqLen);
    double flops =
        double(pairs) * layer->getFlopsPerVisiblePair() * double(batch);
    json &entry = entries[layer->index];
    entry["prefill_ms"] = ms;
    entry["prefill_gflops"] = flops / (ms * 1e6);
    entry["visible_pairs"] = pairs;
  }

  // Decode: a session through the prompt, then every layer once per step.
  int64_t cacheBytes = 0;
  if (steps) {
    rt::Session session;
    if (rt::Status s = session.create(model, batch, total, stepTokens); !s)
      return fail(s.message);
    if (rt::Status s = compiled.applyCacheScales(session); !s)
      return fail(s.message);
    std::map<int64_t, std::vector<double>> times;
    for (const rt::LayerSpec *layer : timed) {
      const tools::LayerInputs &in = inputs.get(*layer);
      tools::LayerSlice prompt(*layer, in, 0, seqLen);
      rt::Status s =
          decodeOnly && layer->cachePolicy != "shared"
              ? session.append(layer->index, prompt.k, prompt.v)
              : session.prefill(layer->index, prompt.q, prompt.k, prompt.v,
                                prompt.sinksOrNull, prompt.o);
      if (!s)
        return fail(s.message);
    }
    for (int64_t step = 0; step < allSteps; ++step)
      for (const rt::LayerSpec *layer : timed) {
        if (!layer->causal)
          continue;
        tools::LayerSlice next(*layer, inputs.get(*layer),
                               seqLen + step * stepTokens, stepTokens);
        bool shared = layer->cachePolicy == "shared";
        auto start = std::chrono::steady_clock::now();
        if (rt::Status s = session.decode(
                layer->index, next.q, shared ? nullptr : &next.k,
                shared ? nullptr : &next.v, next.sinksOrNull, next.o);
            !s)
          return fail(s.message);
        double ms = tools::getCallMs(model, start);
        if (step >= warmup)
          times[layer->index].push_back(ms);
      }
    cacheBytes = session.cacheBytes();
    for (auto &[index, layerTimes] : times) {
      const rt::LayerSpec &layer = manifest.layers[index];
      double ms = median(layerTimes);
      // Per timed step (the context grows by T each): the keys its first
      // query sees, each read once, and the pairs its queries see (steps of
      // many tokens are a prompt's chunks); their means over the steps.
      double keys = 0, pairs = 0;
      for (int64_t step = warmup; step < allSteps; ++step) {
        int64_t context = seqLen + step * stepTokens;
        keys += double(context + stepTokens - layer.firstVisibleKey(context)) /
                double(steps);
        pairs +=
            double(layer.countVisiblePairs(stepTokens, context + stepTokens)) /
            double(steps);
      }
      // A values-only cache (K=V) is read once for keys and values.
      bool valuesOnly = manifest.kernels.at(layer.kernel).derivesKeys;
      double bytes = double(batch) * keys * double(layer.numKvHeads) *
                     double((valuesOnly ? 0 : layer.headDim) + layer.vHeadDim) *
                     double(manifest.getCacheElementBytes(layer.kernel));
      double flops = pairs * layer.getFlopsPerVisiblePair() * double(batch);
      entries[index]["decode_ms"] = ms;
      entries[index]["decode_gbytes_per_s"] = bytes / (ms * 1e6);
      entries[index]["decode_gflops"] = flops / (ms * 1e6);
    }
  }

  json layers = json::array();
  for (auto &[index, entry] : entries)
    if (compiled.selected(index))
      layers.push_back(std::move(entry));

  if (asJson) {
    json result = {{"model_type", manifest.modelType},
                   {"name", manifest.name},
                   {"target", manifest.target},
                   {"batch", int64_t(batch)},
                   {"seq_len", int64_t(seqLen)},
                   {"decode_steps", int64_t(steps)},
                   {"step_tokens", int64_t(stepTokens)},
                   {"threads", model.numThreads()},
                   {"timing", onDevice ? "device" : "host"},
                   {"repeat", int(repeat)},
                   {"layers", std::move(layers)}};
    if (steps) {
      result["cache_bytes"] = cacheBytes;
      result["all_full_cache_bytes"] =
          tools::getAllFullCacheBytes(manifest, batch, total);
    }
    outs() << result.dump(2) << "\n";
    return 0;
  }
  outs() << "hybrid-bench: " << manifest.name << ", " << manifest.target
         << ", batch " << batch << ", seq " << seqLen << ", "
         << (onDevice ? std::string("device time")
                      : std::to_string(model.numThreads()) + " threads")
         << ", median of " << repeat << "\n";
  outs() << "layer  kind      prefill ms   GFLOP/s   decode ms    GB/s   "
            "GFLOP/s\n";
  auto cell = [](const json &value, const char *style) {
    return value.is_null() ? std::string(std::strlen(style) ? 10 : 0, ' ')
                           : std::string(formatv(style, value.get<double>()));
  };
  for (const json &entry : layers) {
    outs() << format("%5lld  %-8s", (long long)entry["index"].get<int64_t>(),
                     entry["kind"].get<std::string>().c_str());
    if (entry["prefill_ms"].is_null() && entry["decode_ms"].is_null()) {
      outs() << "  -\n";
      continue;
    }
    outs() << "  " << cell(entry["prefill_ms"], "{0,10:f3}")
           << cell(entry["prefill_gflops"], "{0,10:f1}") << "  "
           << cell(entry["decode_ms"], "{0,10:f3}")
           << cell(entry["decode_gbytes_per_s"], "{0,8:f1}")
           << cell(entry["decode_gflops"], "{0,10:f1}") << "\n";
  }
  if (steps)
    outs() << tools::describeCache(manifest, cacheBytes, batch, total) << "\n";
  return 0;
}
