//===- Model.h - An open model, and the calls sessions share ----*- C++ -*-===//

#ifndef HYBRID_RT_LIB_MODEL_H
#define HYBRID_RT_LIB_MODEL_H

#include "CacheRows.h"
#include "KernelLibrary.h"
#include "PrefillTile.h"
#include "StepKernel.h"
#include "ThreadPool.h"
#include "hybrid-rt/Manifest.h"
#include "hybrid-rt/hybrid_rt.h"
#ifdef HYBRID_RT_CUDA
#include "cuda/CudaBackend.h"
#endif

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct hybrid_rt_model {
  hybrid::rt::Manifest manifest;
  hybrid::rt::KernelLibrary kernels;
  std::unique_ptr<hybrid::rt::ThreadPool> pool;
#ifdef HYBRID_RT_CUDA
  // Set for cuda manifests: every kernel runs there.
  std::unique_ptr<hybrid::rt::cuda::Backend> cuda;
#endif
  /// True for cuda manifests: every kernel runs on the GPU.
  bool onGPU() const {
#ifdef HYBRID_RT_CUDA
    return cuda != nullptr;
#else
    return false;
#endif
  }
  /// GPU models whose artifacts convert bf16 tensors take them too.
  bool takesBF16() const {
    return onGPU() && !manifest.convertBF16ToF32.empty();
  }
  /// CPU prefill's positions per work item when $HYBRID_CPU_Q_TILE fixes
  /// them, else 0 (the runtime chooses per call).
  int64_t fixedPrefillTile = 0;
  /// CPU decode steps' kernel when $HYBRID_CPU_STEP_KERNEL fixes it.
  hybrid::rt::StepKernel fixedStepKernel = hybrid::rt::StepKernel::Automatic;
  // Scratch of the current call: prepared (rotated, scaled) queries and
  // keys, and decode's split partial results.
  std::vector<float> preparedQ, preparedK, partialOut, partialMax, partialSum;
  /// CPU models: K=V layers' key scales (hybrid_rt_key_scale_set), by
  /// layer; empty: ones.
  std::vector<std::vector<float>> keyScales;
  std::vector<float> scaledK;  // keys multiplied by their scale
  std::vector<float> widenedV; // narrow cached values as f32 (K=V steps)
  std::vector<float> ones;     // the key scale of K=V layers without one
  /// Held through every call on the model or its sessions: they share the
  /// pool (not reentrant), this scratch and the GPU backend's, so calls
  /// from several threads run one at a time instead of corrupting them.
  mutable std::mutex calls;
  /// Sessions not yet destroyed, and whether hybrid_rt_close came before
  /// they were: the last one's destroy frees the model (under `calls`).
  int64_t sessions = 0;
  bool closed = false;
};

namespace hybrid::rt {

using Shape = std::array<int64_t, 4>;

/// Holds `model`'s call lock (nothing for a null model) while it lives:
/// the first statement of each entry point that uses a model.
class CallLock {
public:
  explicit CallLock(const hybrid_rt_model *model) {
    if (model)
      lock = std::unique_lock<std::mutex>(model->calls);
  }

private:
  std::unique_lock<std::mutex> lock;
};

/// Records `message` as the calling thread's last error.
hybrid_rt_status fail(hybrid_rt_status status, std::string message);

/// The error of entry point `call` that threw, from its `catch (...)`: no
/// exception may cross the C API. std::bad_alloc is OUT_OF_MEMORY (host
/// memory); anything else is a bug in the runtime, INTERNAL_ERROR naming
/// the exception.
hybrid_rt_status failFromException(const char *call);

/// "" if `t` is a dense f32 tensor (bf16 too on GPU models that take it) of
/// shape `expected` in memory the model reads (host; device memory too on
/// GPUs), else why not.
std::string checkOperand(const char *name, const hybrid_rt_tensor *t,
                         const std::vector<int64_t> &expected,
                         const char *layout, const hybrid_rt_model &model);

/// Sets `spec` to layer `layer` if it has a kernel, else records why not.
hybrid_rt_status getRunnableLayer(const hybrid_rt_model &model, int64_t layer,
                                  const std::string &where,
                                  const LayerSpec *&spec);

/// "" if v fits `layer` after k (checked before): [B, S, Hkv, Dv], or for
/// K=V layers, whose values are k, null or k itself (their callers then
/// take k as v).
std::string checkValues(const LayerSpec &layer, int64_t batch, int64_t seq,
                        const hybrid_rt_tensor *k, const hybrid_rt_tensor *v,
                        const hybrid_rt_model &model);

/// "" if q [B, S, Hq, D], k [B, S, Hkv, D], v [B, S, Hkv, Dv] (checkValues),
/// out [B, S, Hq, Dv] and sinks [Hq] (exactly when the layer has sinks) fit the
/// layer, else the first mismatch. With `withKeys` false, k and v must be null
/// (shared-cache layers).
std::string checkLayerOperands(const LayerSpec &layer, int64_t batch,
                               int64_t seq, const hybrid_rt_tensor *q,
                               const hybrid_rt_tensor *k,
                               const hybrid_rt_tensor *v,
                               const hybrid_rt_tensor *sinks,
                               const hybrid_rt_tensor *out, bool withKeys,
                               const hybrid_rt_model &model);

/// Runs `prepare` on every [B, S] row of `in` (positions firstPosition...)
/// into `out`, on the model's threads.
void prepareRows(hybrid_rt_model &model, PrepareFn prepare, const float *in,
                 float *out, const Shape &shape, int64_t firstPosition);

/// prepareRows over the [B, S] rows of pieces laid end to end (`starts`, as
/// layOutPieces gives them; numbered as the kernel numbers them), piece i's
/// rows at positions firstPositions[i]... (a ragged step's slices).
void prepareRows(hybrid_rt_model &model, PrepareFn prepare, const float *in,
                 float *out, const Shape &shape,
                 const std::vector<int64_t> &starts,
                 const std::vector<int64_t> &firstPositions);

/// True if `layer`'s cache (K=V) keeps its values only: its decode kernel
/// derives the keys from them, and other calls derive them (on CPUs with
/// deriveKeys or deriveCachedKeys, on GPUs into scratch).
bool keepsValuesOnly(const LayerSpec &layer);

/// True if `layer`'s values are its keys' first vHeadDim dims (latent): its
/// cache keeps keys only, and its kernels read the values as a view of them.
bool readsValuesFromKeys(const LayerSpec &layer);

/// The values a latent layer's kernels read from keys `keys` [B, S, Hkv, D]:
/// the view of each row's first vHeadDim dims (the keys' strides).
Tensor4 valuesOfKeys(const LayerSpec &layer, Tensor4 keys);

/// The key scale ([head_dim]) `layer` derives its keys with: that of the
/// layer whose cache it reads, or ones.
Tensor1 getKeyScaleTensor(hybrid_rt_model &model, const LayerSpec &layer);

/// What the flash kernel's k and v hold: f32 (the prompt's kernel,
/// `entry`), or a bf16 or f8 cache's elements (`steps`).
enum class FlashKeys { F32, Cached };

/// The flash kernel of `layer` on prepared queries q [B, Sq, Hq, D] over
/// `numKeys` key positions (>= Sq: query i sits at position numKeys - Sq +
/// i, so a step of many tokens sees its cache) whose position j is row
/// (firstRow + j) % rows of k [B, rows, Hkv, D] and v (a ring cache wraps),
/// writing out [B, Sq, Hq, Dv], on the model's threads.
void runFlash(hybrid_rt_model &model, const LayerSpec &layer, Tensor4 q,
              Tensor4 k, Tensor4 v, int64_t numKeys, int64_t firstRow,
              const float *sinks, Tensor4 out, FlashKeys read = FlashKeys::F32);

/// One batch of a flash run of several (a ragged step's slices): q, k, v,
/// out and the key positions as runFlash takes them.
struct FlashPiece {
  Tensor4 q, k, v, out;
  int64_t numKeys, firstRow;
};

/// runFlash over every piece at once (one dispatch of their work items);
/// their queries are of one length.
void runFlash(hybrid_rt_model &model, const LayerSpec &layer,
              const std::vector<FlashPiece> &pieces, const float *sinks,
              FlashKeys read);

/// The keys `layer` attends with for k [B, S, Hkv, D] at positions
/// firstPosition...: k times the key scale of the layer whose cache it
/// reads (K=V layers), rotated by its `prepare_k`. Returns k itself when
/// neither applies, else the model's scratch (valid until the next call).
const float *deriveKeys(hybrid_rt_model &model, const LayerSpec &layer,
                        const float *k, const Shape &kShape,
                        int64_t firstPosition);

/// The keys of positions [first, total) of a values-only cache `values`
/// [B, rows, Hkv, D] (position p in row p % rows), derived as deriveKeys
/// does into the model's scratch at the same rows (other rows are not
/// written), for the flash kernel; `values` itself when nothing applies.
const float *deriveCachedKeys(hybrid_rt_model &model, const LayerSpec &layer,
                              const float *values, const Shape &shape,
                              int64_t first, int64_t total);

/// The cached values of positions [first, total) of sequences
/// [firstSequence, firstSequence + shape[0]) as f32, [shape[0], rows, Hkv,
/// Dv] at their rows: an f32 cache itself, a narrower one widened into the
/// model's scratch (valid until the next call).
const float *widenCachedValues(hybrid_rt_model &model, const CacheRows &values,
                               int64_t firstSequence, const Shape &shape,
                               int64_t first, int64_t total);

/// Prefill attention of `layer` on [B, S] rows: prepares q (and k when the
/// layer rotates) and runs the flash kernel (a latent layer's values the
/// view of its keys, `v` unused). Returns the keys the kernel read
/// (prepared, or `k` itself).
const float *runPrefill(hybrid_rt_model &model, const LayerSpec &layer,
                        const Shape &qShape, const float *q,
                        const Shape &kShape, const float *k,
                        const Shape &vShape, const float *v, const float *sinks,
                        float *out);

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_MODEL_H
