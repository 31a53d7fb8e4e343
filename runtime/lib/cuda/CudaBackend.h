//===- CudaBackend.h - Running a cuda manifest's kernels --------*- C++ -*-===//
//
// Holds the device side of an open model: the driver, the primary context of
// one GPU, the kernels' module and a stream, and device scratch for a call's
// operands. Operands are f32 tensors in host memory (copied in, and the
// output back) or in device memory (used in place); a prefill runs prepare
// (RoPE, scale, bf16) and flash kernels.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_CUDA_CUDABACKEND_H
#define HYBRID_RT_LIB_CUDA_CUDABACKEND_H

#include "hybrid-rt/Manifest.h"
#include "hybrid-rt/hybrid_rt.h"

#include <memory>
#include <string>

namespace hybrid::rt::cuda {

/// Why a backend call failed (an empty message: it did not), and the C API
/// status that says so: OUT_OF_MEMORY where the device could not allocate
/// (a caller can retry smaller), else LOAD_ERROR.
class Error {
public:
  Error() = default;
  Error(std::string message, hybrid_rt_status status = HYBRID_RT_LOAD_ERROR)
      : text(std::move(message)), code(status) {}
  bool empty() const { return text.empty(); }
  const std::string &message() const { return text; }
  hybrid_rt_status status() const { return code; }

private:
  std::string text;
  hybrid_rt_status code = HYBRID_RT_LOAD_ERROR;
};

/// One layer's cache on the device: prepared (rotated) keys
/// [B, rows + mirror, Hkv, D] and values [B, rows + mirror, Hkv, Dv], bf16,
/// the token at position p in row p % rows, and rows rows.. again in rows
/// 0.. (the mirror: a flash kernel's key tile across the ring's end is
/// consecutive rows). K=V layers keep their values too (raw keys), so that
/// no step rotates the whole cache again. Allocated zeroed: rows read
/// before they are written (past a step's last key) hold no NaNs.
struct DeviceCache {
  uint64_t keys = 0, values = 0; // CUdeviceptr
  int64_t rows = 0, mirror = 0;
  int64_t bytes() const;
  int64_t keyBytes = 0, valueBytes = 0;
  /// Bytes of the keys and values of `rows` + `mirror` rows of `layer` for
  /// `batch` sequences, in a double: it may not fit a size.
  static double bytesFor(const LayerSpec &layer, int64_t batch, int64_t rows,
                         int64_t mirror);
};

/// An f32 (or bf16) operand of a call, in host or device memory; null
/// data: absent. bf16 operands pass through the artifacts' conversion
/// kernels on their way in and out.
struct Operand {
  void *data = nullptr;
  bool onDevice = false;
  bool bf16 = false;
  /// Bytes of `count` elements.
  size_t bytes(size_t count) const { return count * (bf16 ? 2 : 4); }
  static Operand of(const hybrid_rt_tensor *t) {
    return t ? Operand{t->data, t->memory == HYBRID_RT_DEVICE,
                       t->dtype == HYBRID_RT_BF16}
             : Operand{};
  }
};

class Backend {
public:
  /// Loads the driver and the manifest's cubin (or, where the cubin is
  /// missing or built for another GPU, its PTX) on device
  /// $HYBRID_CUDA_DEVICE (default 0). On failure returns null and sets
  /// `error`.
  static std::unique_ptr<Backend> open(const Manifest &manifest,
                                       std::string &error);
  ~Backend();

  /// Prefill attention of `layer` on f32 rows q [B, S, Hq, D],
  /// k [B, S, Hkv, D], v [B, S, Hkv, Dv], sinks [Hq] (or absent) into out
  /// [B, S, Hq, Dv], also storing the prompt's keys and values in `cache`
  /// (null: none). Returns the error, if any.
  Error prefill(const LayerSpec &layer, const KernelSpec &kernel, int64_t batch,
                int64_t seq, Operand q, Operand k, Operand v, Operand sinks,
                Operand out, DeviceCache *cache = nullptr);

  /// Allocates `rows` rows of `layer` and `mirror` rows past them (ring
  /// caches: the largest key tile of the flash kernels reading it, or
  /// `rows` if fewer) for `batch` sequences, zeroed.
  Error allocate(const LayerSpec &layer, int64_t batch, int64_t rows,
                 int64_t mirror, DeviceCache &cache);
  void release(DeviceCache &cache);

  /// Stores `count` tokens of k [B, count, Hkv, D] and v (ignored for K=V
  /// layers) at positions first.. in `cache`.
  Error append(const LayerSpec &layer, const KernelSpec &kernel,
               DeviceCache &cache, int64_t batch, int64_t first, int64_t count,
               Operand k, Operand v);

  /// A decode step of `steps` queries at positions position..: appends k
  /// and v to `own` (null for shared layers), then attends over `owner`'s
  /// cache with the decode and combine kernels or, for steps of many rows
  /// (chunked prefill; $HYBRID_CUDA_STEP_KERNEL=decode|flash forces one),
  /// with the flash kernel reading the cache in place (split-K and the
  /// combine kernel where its query tiles would leave SMs idle).
  Error decode(const LayerSpec &layer, const KernelSpec &kernel,
               DeviceCache *own, const DeviceCache &owner, int64_t batch,
               int64_t position, int64_t steps, Operand q, Operand k, Operand v,
               Operand sinks, Operand out);

  /// Device milliseconds of the last prefill: prepare kernels, and the
  /// attention kernel alone (waiting for its work).
  float lastPrepareMs();
  float lastAttentionMs();

  /// Queues the calls' work on the caller's CUstream `stream` (null: the
  /// legacy default stream) when `callerStream`, else on the model's own.
  /// On the caller's, a call whose operands are all in device memory
  /// returns once its work is queued. Either way the model's work runs in
  /// call order: a new stream first waits for the earlier calls' work.
  Error setStream(void *stream, bool callerStream);

  /// The device memory free now and in all, in bytes; false where the
  /// driver cannot say.
  bool getMemory(size_t &free, size_t &total);

  /// The GPU's name, e.g. "NVIDIA H100 80GB HBM3".
  const std::string &deviceName() const;

private:
  Backend();
  struct State;
  std::unique_ptr<State> state;
};

} // namespace hybrid::rt::cuda

#endif // HYBRID_RT_LIB_CUDA_CUDABACKEND_H
