//===- ToolSupport.h - What hybrid-run and hybrid-bench share ---*- C++ -*-===//
//
// Compiling an input into artifacts the runtime opens, seeded inputs for
// each attention layer (honouring cache sharing and K=V), and .npy output.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_TOOLS_COMMON_TOOLSUPPORT_H
#define HYBRID_TOOLS_COMMON_TOOLSUPPORT_H

#include "hybrid-rt/Manifest.h"
#include "hybrid-rt/Runtime.h"
#include "hybrid/Driver/Compiler.h"
#include "llvm/Support/CommandLine.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace hybrid::tools {

/// Artifacts in a directory: INPUT itself when it already holds a
/// manifest.json, else a temporary directory INPUT is compiled into, removed
/// with this object.
class Artifacts {
public:
  ~Artifacts();
  /// Errors are reported on stderr.
  bool prepare(llvm::StringRef input, const CompileOptions &options);
  /// Whether `input` is a directory of compiled artifacts (manifest.json).
  static bool isCompiled(llvm::StringRef input);
  const std::string &dir() const { return directory; }

private:
  std::string directory;
  bool temporary = false;
};

/// One attention layer's seeded inputs, [B, S, H, D] row-major.
struct LayerInputs {
  std::array<int64_t, 4> qShape, kShape, vShape, outShape;
  std::vector<float> q, k, v, sinks;
};

/// Fills `values` with standard-normal floats, each a function of `stream`
/// and its index alone (so threads fill chunks of it in parallel).
void fillNormal(llvm::MutableArrayRef<float> values, uint64_t stream);

/// Standard-normal q, k, v (and sinks) from (seed, layer index). Layers that
/// read another layer's cache get that layer's k and v; K=V layers use k as
/// v.
class InputGenerator {
public:
  InputGenerator(const std::vector<rt::LayerSpec> &layers, uint64_t seed,
                 int64_t batch, int64_t seq)
      : layers(layers), seed(seed), batch(batch), seq(seq) {}
  const LayerInputs &get(const rt::LayerSpec &layer);

private:
  const std::vector<rt::LayerSpec> &layers;
  uint64_t seed;
  int64_t batch, seq;
  std::map<int64_t, LayerInputs> made;
};

/// The remedy hybrid-run and hybrid-bench give: the options that size a run.
inline constexpr llvm::StringLiteral kRunSizeOptions =
    "--seq-len, --batch or --decode-steps, or pick layers with --layers";
/// Whether the seeded inputs and outputs of `layers` (kernel layers only) at
/// (`batch`, `tokens`) fit in the host's memory (hybrid_rt_host_memory_bytes),
/// with the copies a run makes: "" if so, else "N tokens at batch B: ... lower
/// `remedy`" with the GiB needed and held (a clear error instead of an
/// allocation that aborts or wakes the out-of-memory killer).
std::string checkInputMemory(const std::vector<const rt::LayerSpec *> &layers,
                             int64_t batch, int64_t tokens,
                             llvm::StringRef remedy);

/// Positions [begin, begin + count) of a layer's inputs as runtime tensors
/// (views of `in` where contiguous, else copies), with an output buffer.
struct LayerSlice {
  LayerSlice(const rt::LayerSpec &layer, const LayerInputs &in, int64_t begin,
             int64_t count);
  std::vector<float> qData, kData, vData; // copies, where not in place
  std::vector<float> out;
  hybrid_rt_tensor q, k, v, o, sinks;
  const hybrid_rt_tensor *sinksOrNull; // null for layers without sinks
};

/// What hybrid-run and hybrid-bench do before their per-layer work: check
/// the options every run tool shares (--batch, --seq-len, --decode-steps,
/// --step-tokens, --target, --layers, --num-threads, --q-tile, --k-tile,
/// --tuning-db),
/// compile or open INPUT, read its manifest and open the runtime on it.
class CompiledModel {
public:
  /// Errors go to stderr as "`tool`: error: ..."; false on failure.
  bool open(llvm::StringRef tool, llvm::StringRef input);
  /// True if --layers is empty or names `index`.
  bool selected(int64_t index) const;
  /// Selected, or the source of a selected layer's shared cache.
  bool needed(int64_t index) const;
  int64_t batch() const;
  int64_t seqLen() const;      // prompt tokens
  int64_t decodeSteps() const; // steps after the prompt
  int64_t stepTokens() const;  // tokens per step
  /// --kv-scales (K,V, or 'prompt') on every cache `session` keeps for the
  /// run's causal layers (none without it); the runtime's error for caches
  /// not of f8.
  rt::Status applyCacheScales(rt::Session &session) const;
  /// Prompt and every step: the positions a run covers.
  int64_t totalLength() const {
    return seqLen() + decodeSteps() * stepTokens();
  }

  rt::Manifest manifest;
  rt::Model model;

private:
  Artifacts artifacts;
  std::vector<int64_t> only;
};

/// Milliseconds of the runtime call that started at `start`: the device
/// time of its attention kernels on GPU targets (CUDA events; host copies
/// and RoPE left out), else the host's.
double getCallMs(rt::Model &model, std::chrono::steady_clock::time_point start);

/// The category of the shared run options; tools show it in --help beside
/// their own (cl::HideUnrelatedOptions).
llvm::cl::OptionCategory &getRunOptionCategory();

/// How far kernel outputs are from a reference: max|out - ref| and that over
/// max|ref| (a NaN output counts as infinitely far).
struct Deviation {
  double absolute = 0, relative = 0;
};
template <typename T>
Deviation compareOutputs(const std::vector<float> &out,
                         const std::vector<T> &ref) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    diff = std::max(diff, std::abs(double(out[i]) - double(ref[i])));
    scale = std::max(scale, std::abs(double(ref[i])));
    if (std::isnan(out[i]))
      diff = INFINITY;
  }
  return {diff, scale > 0 ? diff / scale : diff};
}

/// Positions [begin, begin + count) of a [B, S, H, D] tensor, contiguous.
std::vector<float> slicePositions(const std::vector<float> &x,
                                  const std::array<int64_t, 4> &shape,
                                  int64_t begin, int64_t count);
/// Writes `part` [B, count, H, D] at positions [begin, ...) of `x`.
void storePositions(std::vector<float> &x, const std::array<int64_t, 4> &shape,
                    const std::vector<float> &part, int64_t begin,
                    int64_t count);

/// Bytes of the runtime's caches (bf16 on GPUs, f32 or bf16 on CPUs) if
/// every attention layer kept its own full K and V for `tokens` tokens of
/// `batch` sequences (the plan's baseline).
int64_t getAllFullCacheBytes(const rt::Manifest &manifest, int64_t batch,
                             int64_t tokens);

/// "cache: X bytes (f32|bf16, batch B, up to N tokens); every layer full: Y
/// bytes; this schedule needs Z% of that".
std::string describeCache(const rt::Manifest &manifest, int64_t bytes,
                          int64_t batch, int64_t tokens);

/// Writes a float32 .npy file (NumPy format 1.0).
bool writeNpy(const std::string &path, const float *data,
              const std::vector<int64_t> &shape);

} // namespace hybrid::tools

#endif // HYBRID_TOOLS_COMMON_TOOLSUPPORT_H
