//===- hybrid-run.cpp - Run a schedule's layers on seeded inputs ----------===//
//
// hybrid-run INPUT [--target T] [--batch B] --seq-len N [--decode-steps M]
//                  [--seed S] [--dump DIR] [--check [--tolerance X]]
//                  [--layers I,J] [--num-threads T] [--q-tile N] [--k-tile N]
//                  [--tensor-cores mma.sync|wgmma] [--tma] [--warps 4|8]
//                  [--stages 1..4] [--kv-dtype T [--kv-scales K,V|prompt]]
//
// Compiles INPUT (or opens a directory of artifacts), makes seeded random
// inputs for every attention layer, runs prefill through the runtime and,
// with --check, compares every output with the float64 reference.
//
//===----------------------------------------------------------------------===//

#include "../common/GPUKernelOptions.h"
#include "../common/ToolSupport.h"
#include "hybrid-rt/Reference.h"
#include "hybrid-rt/Runtime.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <map>

using namespace llvm;
using namespace hybrid;

namespace {
cl::OptionCategory toolCategory("Check and dump options");
cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                               cl::desc("<config.json | spec.json | .mlir | "
                                        "artifacts dir>"),
                               cl::cat(toolCategory));
cl::opt<uint64_t> seed("seed", cl::init(0), cl::desc("Input seed"),
                       cl::cat(toolCategory));
cl::opt<std::string> dumpDir("dump", cl::value_desc("dir"),
                             cl::desc("Write layer<i>/{q,k,v,out}.npy"),
                             cl::cat(toolCategory));
cl::opt<bool> check("check", cl::desc("Compare with the float64 reference"),
                    cl::cat(toolCategory));
cl::opt<double> tolerance("tolerance", cl::init(1e-4),
                          cl::desc("--check: largest accepted error, "
                                   "max|out - ref| / max|ref| per layer "
                                   "(GPU targets, bf16: 2e-2; steps over "
                                   "bf16 or f16 caches 1e-3, f8 ones 1e-2)"),
                          cl::cat(toolCategory));

int fail(const Twine &message) {
  WithColor::error(errs(), "hybrid-run") << message << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions({&toolCategory, &tools::getRunOptionCategory(),
                            &tools::getGPUKernelOptionCategory()});
  cl::ParseCommandLineOptions(argc, argv,
                              "hybrid-run: run a compiled schedule's layers "
                              "on seeded inputs\n");
  tools::CompiledModel compiled;
  if (!compiled.open("hybrid-run", inputPath))
    return 1;
  const rt::Manifest &manifest = compiled.manifest;
  rt::Model &model = compiled.model;
  int64_t batch = compiled.batch(), prompt = compiled.seqLen(),
          steps = compiled.decodeSteps(), stepTokens = compiled.stepTokens(),
          total = compiled.totalLength();
  // bf16 tensor-core inputs on GPUs, f32 throughout on CPUs (steps over
  // bf16 or f8 caches are compared with the reference over the caches'
  // rounded keys and values).
  double limit =
      tolerance.getNumOccurrences() ? double(tolerance)
      : manifest.roundsToBF16()
          ? 2e-2
          : rt::reference::getSessionTolerance(manifest.getCacheDtype());

  std::vector<const rt::LayerSpec *> layers;
  for (const rt::LayerSpec &layer : manifest.layers)
    if (layer.hasKernel() && compiled.needed(layer.index))
      layers.push_back(&layer);
  if (std::string error =
          tools::checkInputMemory(layers, batch, total, tools::kRunSizeOptions);
      !error.empty())
    return fail(error);
  rt::Session session;
  if (rt::Status s = session.create(model, batch, total, stepTokens); !s)
    return fail(s.message);
  if (rt::Status s = compiled.applyCacheScales(session); !s)
    return fail(s.message);

  outs() << "hybrid-run: " << manifest.name << " (" << manifest.layers.size()
         << " layers), " << manifest.target << ", batch " << batch
         << ", prompt " << prompt;
  if (steps)
    outs() << " + " << steps << " decode steps of " << stepTokens << " token"
           << (stepTokens > 1 ? "s" : "");
  outs() << ", " << model.numThreads() << " threads\n";

  // Prefill every layer, then each decode step through every layer, in
  // model order (a shared layer's step follows its source's).
  tools::InputGenerator inputs(manifest.layers, seed, batch, total);
  std::map<int64_t, std::vector<float>> outputs; // [B, total, Hq, Dv]
  for (const rt::LayerSpec *layer : layers) {
    const tools::LayerInputs &in = inputs.get(*layer);
    outputs[layer->index].resize(in.outShape[0] * in.outShape[1] *
                                 in.outShape[2] * in.outShape[3]);
  }
  auto runPositions = [&](const rt::LayerSpec &layer, int64_t begin,
                          int64_t count) -> rt::Status {
    const tools::LayerInputs &in = inputs.get(layer);
    tools::LayerSlice t(layer, in, begin, count);
    bool shared = layer.cachePolicy == "shared";
    rt::Status status =
        begin == 0
            ? session.prefill(layer.index, t.q, t.k, t.v, t.sinksOrNull, t.o)
            : session.decode(layer.index, t.q, shared ? nullptr : &t.k,
                             shared ? nullptr : &t.v, t.sinksOrNull, t.o);
    if (status)
      tools::storePositions(outputs[layer.index], in.outShape, t.out, begin,
                            count);
    return status;
  };
  for (const rt::LayerSpec *layer : layers)
    if (rt::Status s = runPositions(*layer, 0, prompt); !s)
      return fail(s.message);
  // Bidirectional layers have no decode: they are checked on the prompt.
  for (int64_t step = 0; step < steps; ++step)
    for (const rt::LayerSpec *layer : layers)
      if (!layer->causal)
        continue;
      else if (rt::Status s =
                   runPositions(*layer, prompt + step * stepTokens, stepTokens);
               !s)
        return fail(s.message);

  double worst = 0;
  int64_t ran = 0;
  for (const rt::LayerSpec &layer : manifest.layers) {
    if (!compiled.selected(layer.index))
      continue;
    outs() << "layer " << layer.index << " " << layer.kind;
    if (!layer.hasKernel()) {
      outs() << ": skipped, no attention kernel for this layer kind\n";
      continue;
    }
    ++ran;
    const tools::LayerInputs &in = inputs.get(layer);
    const std::vector<float> &out = outputs[layer.index];
    bool decoded = steps && layer.causal;
    outs() << (decoded ? ": prefill + decode ok"
               : steps ? ": prefill ok (bidirectional: no decode)"
                       : ": prefill ok");
    if (check) {
      int64_t n = decoded ? total : prompt;
      auto positions = [&](const std::vector<float> &x,
                           const std::array<int64_t, 4> &shape) {
        return tools::slicePositions(x, shape, 0, n);
      };
      std::vector<float> q = positions(in.q, in.qShape),
                         k = positions(in.k, in.kShape),
                         v = positions(in.v, in.vShape);
      rt::reference::CacheFormat cached{
          manifest.getHostCacheDtype(layer.kernel)};
      if (rt::Status s = session.cacheScales(layer.index, cached.keyScale,
                                             cached.valueScale);
          !s)
        return fail(s.message);
      std::vector<double> ref = rt::reference::sessionAttention(
          layer, batch, n, prompt, cached, q.data(), k.data(), v.data(),
          layer.sinks ? in.sinks.data() : nullptr);
      tools::Deviation d =
          tools::compareOutputs(positions(out, in.outShape), ref);
      double diff = d.absolute, relative = d.relative;
      worst = std::max(worst, relative);
      outs() << format(", max abs error %.3g, relative %.3g", diff, relative)
             << (relative <= limit ? "" : "  FAILED");
    }
    outs() << "\n";

    if (!dumpDir.empty()) {
      std::string dir = dumpDir + "/layer" + std::to_string(layer.index);
      if (std::error_code ec = sys::fs::create_directories(dir))
        return fail(dir + ": " + ec.message());
      auto shape = [](std::array<int64_t, 4> s) {
        return std::vector<int64_t>(s.begin(), s.end());
      };
      if (!tools::writeNpy(dir + "/q.npy", in.q.data(), shape(in.qShape)) ||
          !tools::writeNpy(dir + "/k.npy", in.k.data(), shape(in.kShape)) ||
          !tools::writeNpy(dir + "/v.npy", in.v.data(), shape(in.vShape)) ||
          !tools::writeNpy(dir + "/out.npy", out.data(), shape(in.outShape)) ||
          (layer.sinks && !tools::writeNpy(dir + "/sinks.npy", in.sinks.data(),
                                           {layer.numHeads})))
        return 1;
    }
  }
  // What the session allocated, per layer and in all, for the summary's
  // plan to be compared with (test/Runtime/cache-plan.test).
  for (const rt::LayerSpec &layer : manifest.layers) {
    hybrid_rt_cache_info info;
    if (!compiled.selected(layer.index) ||
        !session.cacheInfo(layer.index, info))
      continue;
    outs() << "cache layer " << layer.index << ": " << info.policy << ", "
           << info.rows << " rows, " << info.bytes << " bytes";
    if (info.mirror_rows > 0)
      outs() << " (with " << info.mirror_rows << " mirror rows)";
    float kScale = 1, vScale = 1;
    if (session.cacheScales(layer.index, kScale, vScale) &&
        info.source_layer < 0 && (kScale != 1 || vScale != 1))
      outs() << format(", scales %g %g", kScale, vScale);
    outs() << "\n";
  }
  outs() << tools::describeCache(manifest, session.cacheBytes(), batch, total)
         << "\n";
  if (check) {
    bool ok = worst <= limit;
    outs() << "check: " << (ok ? "passed" : "FAILED") << " on " << ran
           << " layers, max relative error " << format("%.3g", worst)
           << (ok ? " <= " : " > ") << format("%.3g", limit) << "\n";
    return ok ? 0 : 1;
  }
  return 0;
}
