//===- RunOptions.cpp - The options hybrid-run and hybrid-bench share -----===//
//
// In a file of its own so that tools with other options (hybrid-tune) can
// link the rest of ToolSupport without registering these.
//
//===----------------------------------------------------------------------===//

#include "GPUKernelOptions.h"
#include "ToolSupport.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <new>

using namespace hybrid;
using namespace hybrid::tools;
using namespace llvm;

//===----------------------------------------------------------------------===//
// Options every run tool shares
//===----------------------------------------------------------------------===//

static cl::OptionCategory runCategory("Run options");
cl::OptionCategory &hybrid::tools::getRunOptionCategory() {
  return runCategory;
}
static cl::opt<std::string> target("target", cl::init("cpu"),
                                   cl::desc("Kernel target: cpu, cuda:sm_80 "
                                            "or cuda:sm_90a"),
                                   cl::cat(runCategory));
static cl::opt<int64_t> batchSize("batch", cl::init(1), cl::desc("Batch size"),
                                  cl::cat(runCategory));
static cl::opt<int64_t> seqLength("seq-len", cl::Required,
                                  cl::desc("Prompt length (prefill tokens)"),
                                  cl::cat(runCategory));
static cl::opt<int64_t> decodeStepCount("decode-steps", cl::init(0),
                                        cl::desc("Decode steps after prefill"),
                                        cl::cat(runCategory));
static cl::opt<int64_t> stepTokenCount("step-tokens", cl::init(1),
                                       cl::desc("Tokens per decode step"),
                                       cl::cat(runCategory));
static cl::opt<std::string> layerList("layers", cl::value_desc("i,j,..."),
                                      cl::desc("Only these layers"),
                                      cl::cat(runCategory));
static cl::opt<int>
    numThreads("num-threads", cl::init(0),
               cl::desc("Threads (default: $HYBRID_NUM_THREADS, else all)"),
               cl::cat(runCategory));
static cl::opt<int64_t>
    qTile("q-tile", cl::init(0),
          cl::desc("CPU kernels: query rows (positions x GQA group) per "
                   "work item at most (0: 256)"),
          cl::cat(runCategory));
static cl::opt<int64_t> kTile("k-tile", cl::init(64), cl::desc("Keys per tile"),
                              cl::cat(runCategory));
static cl::opt<StorageType> kvDtype(
    "kv-dtype",
    cl::desc("Element type of the caches (CPU: f32, the default, bf16, f16 "
             "or f8; GPU: bf16)"),
    cl::values(clEnumValN(StorageType::f32, "f32", "4 bytes"),
               clEnumValN(StorageType::bf16, "bf16", "2 bytes"),
               clEnumValN(StorageType::f16, "f16", "2 bytes"),
               clEnumValN(StorageType::f8, "f8", "1 byte (E4M3FN)")),
    cl::cat(runCategory));
static cl::opt<std::string> kvScales(
    "kv-scales", cl::value_desc("K,V | prompt"),
    cl::desc("f8 caches: store keys / K and values / V (K=V layers, which "
             "keep their values only: V; the default 1,1), or with 'prompt' "
             "scales from the prompt (its largest key magnitude over 200, "
             "value magnitude over 100, as vLLM's calculate_kv_scales)"),
    cl::cat(runCategory));
/// --kv-scales as scales, or for 'prompt' the prompt's targets.
static float kvScaleValues[2] = {1, 1};
static bool kvScalesFromPrompt = false;
static cl::opt<std::string>
    tuningDb("tuning-db", cl::value_desc("tuning.json"),
             cl::desc("Tuning database (hybrid-tune) for the kernels "
                      "compiled from a config or spec"),
             cl::cat(runCategory));
int64_t CompiledModel::batch() const { return batchSize; }
int64_t CompiledModel::seqLen() const { return seqLength; }
int64_t CompiledModel::decodeSteps() const { return decodeStepCount; }
int64_t CompiledModel::stepTokens() const { return stepTokenCount; }

bool CompiledModel::needed(int64_t index) const {
  if (selected(index))
    return true;
  for (const rt::LayerSpec &layer : manifest.layers)
    if (layer.sourceLayer == index && layer.cachePolicy == "shared" &&
        selected(layer.index))
      return true;
  return false;
}

bool CompiledModel::selected(int64_t index) const {
  return only.empty() || is_contained(only, index);
}

bool CompiledModel::open(StringRef tool, StringRef input) {
  auto fail = [&](const Twine &message) {
    WithColor::error(errs(), tool) << message << "\n";
    return false;
  };
  if (batchSize <= 0)
    return fail("--batch must be positive, not " + Twine(batchSize));
  if (seqLength <= 0)
    return fail("--seq-len must be positive, not " + Twine(seqLength));
  if (decodeStepCount < 0)
    return fail("--decode-steps must not be negative");
  if (stepTokenCount <= 0)
    return fail("--step-tokens must be positive, not " + Twine(stepTokenCount));
  if (kvScales.getNumOccurrences()) {
    StringRef k, v;
    std::tie(k, v) = StringRef(kvScales).split(',');
    double kValue, vValue;
    kvScalesFromPrompt = kvScales == "prompt";
    if (kvScalesFromPrompt) {
      kvScaleValues[0] = 200;
      kvScaleValues[1] = 100;
    } else if (k.trim().getAsDouble(kValue) || v.trim().getAsDouble(vValue)) {
      return fail("--kv-scales takes two scales, K,V, or 'prompt'; not '" +
                  kvScales + "'");
    } else {
      kvScaleValues[0] = float(kValue);
      kvScaleValues[1] = float(vValue);
    }
  }
  SmallVector<StringRef> parts;
  StringRef(layerList).split(parts, ',', -1, /*KeepEmpty=*/false);
  for (StringRef part : parts) {
    int64_t index;
    if (part.trim().getAsInteger(10, index) || index < 0)
      return fail("--layers: '" + part + "' is not a layer index");
    only.push_back(index);
  }

  // Compiled already: options that shape the kernels would change nothing.
  if (Artifacts::isCompiled(input)) {
    std::string given = getGivenGPUKernelOption();
    for (const cl::Option *option : std::initializer_list<const cl::Option *>{
             &target, &qTile, &kTile, &kvDtype})
      if (option->getNumOccurrences())
        given = ("--" + option->ArgStr).str();
    if (!given.empty())
      return fail(given + ": " + input +
                  " holds compiled artifacts; give the config or spec (or "
                  "pass " +
                  given + " to hybrid-compile)");
  }

  CompileOptions options;
  options.target = target;
  options.maxSeq = totalLength();
  if (kvDtype.getNumOccurrences())
    options.kvStorage = kvDtype;
  options.qTile = qTile;
  options.kTile = kTile;
  options.kTileGiven = kTile.getNumOccurrences() > 0;
  options.tuningDb = tuningDb;
  if (std::string error = applyGPUKernelOptions(options); !error.empty())
    return fail(error);
  if (std::string error = validate(options); !error.empty())
    return fail(error);
  if (std::string error = validateArtifactCacheStorage(options); !error.empty())
    return fail(error);
  if (!artifacts.prepare(input, options))
    return false;
  std::string error;
  if (!rt::loadManifest(artifacts.dir(), manifest, error))
    return fail(error);
  // Compiled: from here the runtime reports a cache it cannot allocate as
  // an error, where LLVM's out-of-memory handler (InitLLVM) would abort.
  std::set_new_handler(nullptr);
  if (rt::Status s = model.open(artifacts.dir(), numThreads); !s)
    return fail(s.message);
  for (int64_t index : only)
    if (index >= int64_t(manifest.layers.size()))
      return fail("--layers: layer " + Twine(index) + " is out of range (" +
                  Twine(manifest.layers.size()) + " layers)");
  return true;
}

rt::Status CompiledModel::applyCacheScales(rt::Session &session) const {
  if (!kvScales.getNumOccurrences())
    return {};
  for (const rt::LayerSpec &layer : manifest.layers)
    if (needed(layer.index) && layer.hasKernel() && layer.causal &&
        layer.cachePolicy != "shared")
      if (rt::Status s =
              kvScalesFromPrompt
                  ? session.setCacheScalesFromPrompt(
                        layer.index, kvScaleValues[0], kvScaleValues[1])
                  : session.setCacheScales(layer.index,
                                           kvScaleValues[layer.kEqV ? 1 : 0],
                                           kvScaleValues[1]);
          !s)
        return s;
  return {};
}
