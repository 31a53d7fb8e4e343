//===- Manifest.h - What a compiled schedule's manifest says ----*- C++ -*-===//
//
// The C++ view of manifest.json: per layer its mask, positional encoding,
// score modifiers and cache policy (the semantics of shared/DESIGN.md), and
// per kernel its entry points and tile sizes. The runtime, the reference and
// the tools read a compiled schedule only through this.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_MANIFEST_H
#define HYBRID_RT_MANIFEST_H

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hybrid::rt {

enum class PositionalKind { none, rope, partial, proportional };

/// transformers' `rope_scaling`; `type` is empty when there is none.
struct RopeScaling {
  std::string type; // linear, llama3, yarn
  double factor = 1;
  int64_t originalMaxPosition = 0;
  double lowFreqFactor = 1, highFreqFactor = 4; // llama3
  double betaFast = 32, betaSlow = 1;           // yarn
  double attentionFactor = 0;                   // yarn; 0: from factor
  bool truncate = true;                         // yarn
};

struct Positional {
  PositionalKind kind = PositionalKind::none;
  double theta = 0;
  int64_t rotaryDim = 0; // dims that rotate
  double fraction = 0;   // proportional
  RopeScaling scaling;
  bool interleaved = false; // pairs (2i, 2i + 1), not (i, i + rotating / 2)
  int64_t rotaryOffset = 0; // partial: the first dim that rotates
};

/// Queries scaled by log(floor((p+offset)/floor_scale)+1)*attn_scale+1 (Llama
/// 4's NoPE layers: offset 1; Mistral 3: 0).
struct TemperatureTuning {
  double floorScale = 0, attnScale = 0;
  int64_t offset = 1;
};

struct LayerSpec {
  int64_t index = 0;
  std::string kind;   // the schedule's layer kind: full, sliding, ...
  std::string kernel; // empty: no attention kernel
  int64_t numHeads = 0, numKvHeads = 0, headDim = 0, vHeadDim = 0;
  int64_t window = 0, chunk = 0; // 0: not used
  bool causal = true;
  double scale = 0, softcap = 0;
  bool sinks = false;
  std::optional<TemperatureTuning> temperature;
  Positional positional;
  std::string cachePolicy; // full, ring, chunk, shared, none
  int64_t sourceLayer = -1;
  bool kEqV = false;
  /// The values are the keys' first vHeadDim dims (MLA's latent cache): the
  /// cache keeps keys only, and callers pass v = NULL.
  bool latent = false;

  bool hasKernel() const { return !kernel.empty(); }
  /// The layer whose cache this one reads: its source if shared, else
  /// itself.
  int64_t cacheOwner() const {
    return cachePolicy == "shared" ? sourceLayer : index;
  }
  /// True if the key at position `pk` is visible to the query at `pq`.
  bool visible(int64_t pq, int64_t pk) const;
  /// The first key position visible to the query at `pq` (window and chunk
  /// starts; 0 for full masks).
  int64_t firstVisibleKey(int64_t pq) const;
  /// Visible (query, key) pairs for `numQueries` queries at the last
  /// positions of `numKeys` keys (positions numKeys-numQueries...).
  int64_t countVisiblePairs(int64_t numQueries, int64_t numKeys) const;
  /// Useful FLOPs per visible pair over every query head: Q K^T and P V,
  /// 2 (D + Dv) Hq (the rate benchmarks report).
  double getFlopsPerVisiblePair() const {
    return 2.0 * double(headDim + vHeadDim) * double(numHeads);
  }
};

struct KernelSpec {
  std::string entry, prepareQ, prepareK; // prepareK empty: no rotation
  std::string decode, decodeCombine;     // empty: no decode (bidirectional)
  std::string prepareV; // GPU targets: value rows to the kernels' bf16
  /// GPU targets: prepareQ and prepareK reading bf16 rows (empty in older
  /// manifests: bf16 operands are then widened to f32 first).
  std::string prepareQBF16, prepareKBF16;
  /// GPU targets: the flash kernel writing bf16 rows (empty in older
  /// manifests: bf16 outputs are then written as f32 and narrowed).
  std::string entryOutBF16;
  /// GPU targets, causal layers: the flash kernel's split-K twin (grid y:
  /// split, kv head, value slice), writing partials that decodeCombine
  /// merges (empty: launches never split the keys).
  std::string entrySplit;
  /// GPU targets, causal layers: a session step's queries prepared and its
  /// keys and values stored into the cache in one launch, from f32 or
  /// bf16 rows (empty in older manifests: prepareK, prepareV and the cache
  /// kernel's store then run apart).
  std::string prepareStep, prepareStepBF16;
  /// GPU targets, causal layers: decodeCombine writing bf16 rows (empty:
  /// bf16 outputs are written as f32 and narrowed).
  std::string decodeCombineBF16;
  /// GPU targets, causal layers: the decode kernel writing bf16 rows (GPU
  /// decode kernels merge their own splits; decodeCombine merges the
  /// split-K flash kernel's).
  std::string decodeBF16;
  int64_t threads = 0; // GPU targets: threads per CTA (but the flash kernel)
  int64_t flashThreads = 0; // GPU targets: the flash kernel's threads per CTA
  /// GPU targets: the flash kernel's dynamic shared memory per CTA (bytes;
  /// 0: static shared memory only).
  int64_t sharedBytes = 0;
  int64_t valueSlices = 1; // GPU targets: flash CTAs per head (value dims)
  /// GPU targets: the flash kernel loads K and V tiles by TMA and takes
  /// their tensor maps (pointers to CUtensorMap in device memory) as two
  /// trailing arguments.
  bool tma = false;
  int64_t numHeads = 0, numKvHeads = 0, headDim = 0, vHeadDim = 0;
  bool sinks = false;
  /// The mask the kernel was compiled for (0: not used); its layers' must be
  /// the same, since the runtime sizes their caches by theirs.
  int64_t window = 0, chunk = 0;
  bool causal = true;
  int64_t qTile = 0, kTile = 0, decodeQTile = 0;
  /// K=V layers: the decode kernel derives keys from the cached values
  /// (times a key scale operand after the sinks, rotated).
  bool derivesKeys = false;
  /// Latent layers: every kernel reads the values as a view of the keys'
  /// rows (a strided operand).
  bool valuesInKeys = false;
  /// GPU targets, K=V layers: the keys of a range of cache positions
  /// derived, and its values gathered, into scratch for a flash step.
  std::string deriveKV;
  /// CPU targets: the element type of the caches the decode kernel reads,
  /// "f32", "bf16", "f16" or "f8" (E4M3FN), and for the narrow ones the flash
  /// kernel reading them (steps of many tokens; empty for K=V layers, whose
  /// steps read derived f32 keys).
  std::string cacheDtype = "f32";
  std::string steps;
  bool cachesF32() const { return cacheDtype == "f32"; }
  int64_t getCacheElementBytes() const {
    return cacheDtype == "f32" ? 4 : cacheDtype == "f8" ? 1 : 2;
  }
  // Where the tile sizes came from: the tuning signature and "database",
  // "default" or "default (no entry)"; empty in older manifests.
  std::string signature, tuningSource;
};

/// GPU targets with a cubin: what ptxas gave one kernel function.
struct FunctionResources {
  int64_t registers = 0; // per thread
  int64_t stackBytes = 0, spillStoreBytes = 0, spillLoadBytes = 0;
  // ptxas' "Potential Performance Loss" notes naming the function (wgmma
  // serialized for want of registers, ...).
  int64_t performanceLosses = 0;
};

struct Manifest {
  int64_t version = 0;
  std::string dir, target, library, modelType, name;
  std::string cubin; // GPU targets: assembled kernels, empty if none
  std::vector<LayerSpec> layers;
  std::map<std::string, KernelSpec> kernels;
  /// GPU targets: elementwise conversion kernels for bf16 tensors at the
  /// API (empty in artifacts that predate them).
  std::string convertBF16ToF32, convertF32ToBF16;
  /// GPU targets: the kernels that store a step's rows in a cache and
  /// advance a layer's length on the device (wherever there are
  /// conversions).
  std::string storeCacheRows, advanceLength;
  /// By kernel function (a KernelSpec's entry, decode, ...); empty without
  /// a cubin.
  std::map<std::string, FunctionResources> resources;

  /// Bytes per element of the caches of `kernel`'s layers: bf16 on GPUs,
  /// the kernel's cache_dtype on CPUs.
  int64_t getCacheElementBytes(const std::string &kernel) const {
    return target != "cpu" ? 2 : kernels.at(kernel).getCacheElementBytes();
  }
  /// Whether every operand a kernel reads is rounded to bf16: GPU targets'
  /// (the tensor cores' input).
  bool roundsToBF16() const { return target != "cpu"; }
  /// The element type a CPU `kernel`'s host caches hold, which its steps
  /// read keys and values rounded to; "f32" on GPUs, whose checks allow
  /// bf16's rounding of every operand.
  std::string getHostCacheDtype(const std::string &kernel) const {
    return target == "cpu" ? kernels.at(kernel).cacheDtype : "f32";
  }
  /// The element type of the caches: bf16 on GPUs, else the kernels'
  /// cache_dtype (compiled with one --kv-dtype; the narrowest if not).
  std::string getCacheDtype() const {
    if (target != "cpu")
      return "bf16";
    const KernelSpec *narrowest = nullptr;
    for (const auto &[name, kernel] : kernels)
      if (!narrowest ||
          kernel.getCacheElementBytes() < narrowest->getCacheElementBytes())
        narrowest = &kernel;
    return narrowest ? narrowest->cacheDtype : "f32";
  }
  /// The element type of `kernel`'s caches: bf16 on GPUs, else its
  /// cache_dtype (a string that lives as long as the manifest).
  const std::string &getCacheDtype(const std::string &kernel) const {
    static const std::string bf16 = "bf16";
    return target != "cpu" ? bf16 : kernels.at(kernel).cacheDtype;
  }
};

/// Reads `dir`/manifest.json. On failure returns false and sets `error` to
/// one line naming the file and the field.
bool loadManifest(const std::string &dir, Manifest &manifest,
                  std::string &error);

} // namespace hybrid::rt

#endif // HYBRID_RT_MANIFEST_H
