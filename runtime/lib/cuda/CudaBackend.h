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

#include "SequenceGather.h"
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

/// One layer's cache on the device: its lengths (an int64 per sequence in
/// device memory, which the kernels of a step read their first positions
/// from and the step's last kernel advances, so that a CUDA graph's
/// replays each continue where the one before stopped; sequences may stand
/// at different lengths), prepared (rotated) keys
/// [B, rows + mirror, Hkv, D] and values [B, rows + mirror, Hkv, Dv], bf16,
/// the token at position p in row p % rows, and rows rows.. again in rows
/// 0.. (the mirror: a flash kernel's key tile across the ring's end is
/// consecutive rows). K=V layers keep their values only (the raw keys),
/// from which the kernels derive keys. Allocated zeroed: rows read
/// before they are written (past a step's last key) hold no NaNs.
struct DeviceCache {
  // CUdeviceptr of `batch` int64s (shared layers too).
  uint64_t lengths = 0;
  int64_t batch = 0; // sequences
  // CUdeviceptr; none for rows == 0, no keys for K=V layers (values only).
  uint64_t keys = 0, values = 0;
  int64_t rows = 0, mirror = 0;
  /// What kernels take as the key cache: the values where the cache keeps
  /// values only (kernels deriving keys read them as such; the others get
  /// a key width of 0).
  uint64_t keysOrValues() const { return keys ? keys : values; }
  int64_t bytes() const;
  int64_t keyBytes = 0, valueBytes = 0;
  /// Sequences [first, first + count) alone, as a cache of their own (its
  /// memory this one's).
  DeviceCache sequences(int64_t first, int64_t count) const;
  /// Bytes of the keys and values of `rows` + `mirror` rows of `layer` for
  /// `batch` sequences, in a double: it may not fit a size.
  static double bytesFor(const LayerSpec &layer, int64_t batch, int64_t rows,
                         int64_t mirror);
};

/// Page-locked host memory that a session writes device values through
/// in stream order without waiting for the stream: the GPU reads it when
/// the copy runs, so a write waits only for the previous write's copy (the
/// host runs at most one write ahead of the GPU).
struct HostStaging {
  void *host = nullptr;   // `bytes` of pinned memory
  void *copied = nullptr; // CUevent recorded after the last copy from it
  size_t bytes = 0;
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
  /// Its batch entries from `first` on, of `perEntry` elements each
  /// (absent stays absent).
  Operand entries(int64_t first, size_t perEntry) const {
    Operand o = *this;
    if (o.data)
      o.data = static_cast<char *>(o.data) + bytes(first * perEntry);
    return o;
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
  /// (if it has rows) and advancing its length (null: a prompt outside
  /// sessions). A cache that holds the whole prompt takes its rows before
  /// the flash kernel, which reads them there; a shared layer's flash
  /// kernel reads its `source`'s cache where that holds the prompt (its k
  /// and v are the source's); else they pass through scratch. Returns the
  /// error, if any.
  Error prefill(const LayerSpec &layer, const KernelSpec &kernel, int64_t batch,
                int64_t seq, Operand q, Operand k, Operand v, Operand sinks,
                Operand out, DeviceCache *cache = nullptr,
                const DeviceCache *source = nullptr);

  /// Sets K=V `layer`'s key scale ([head_dim] f32, host or device; absent:
  /// ones), which its prepare kernels (and those of layers reading its
  /// cache) multiply its keys by before RoPE; in place, so CUDA graphs
  /// captured before read it too.
  Error setKeyScale(const LayerSpec &layer, Operand scale);

  /// Allocates `rows` rows of `layer` and `mirror` rows past them (ring
  /// caches: the largest key tile of the flash kernels reading it, or
  /// `rows` if fewer) for `batch` sequences, zeroed.
  Error allocate(const LayerSpec &layer, int64_t batch, int64_t rows,
                 int64_t mirror, DeviceCache &cache);
  void release(DeviceCache &cache);

  /// `count` device lengths, zeroed (a session's layers' sequences':
  /// DeviceCache::lengths); `lengths` is the first's address.
  Error allocateLengths(int64_t count, uint64_t &lengths);
  void releaseLengths(uint64_t lengths);
  /// Zeroes `count` lengths in stream order (a capture records it).
  Error resetLengths(uint64_t lengths, int64_t count);
  /// Zeroes `count` elements of `out`: device memory in stream order (a
  /// capture records it), host memory at once.
  Error zero(Operand out, size_t count);
  /// Sets `count` device int64s to values[0, count) in stream order (a
  /// session's lengths going back to a position, or the sequences its
  /// selection's entries are), returning once they are there.
  Error writeLengths(uint64_t lengths, int64_t count, const int64_t *values);
  /// writeLengths through `staging` (of `count` int64s at least),
  /// returning once the copy is queued: a session's selection, written
  /// before each replay of a CUDA graph by a host that runs ahead of the
  /// GPU.
  Error writeLengthsQueued(uint64_t lengths, int64_t count,
                           const int64_t *values, HostStaging &staging);
  /// Gives `staging` `bytes` of pinned memory (and its event); release
  /// frees them once the last copy from them has run.
  Error allocate(HostStaging &staging, size_t bytes);
  void release(HostStaging &staging);
  /// Each of `batch` sequences of `cache` takes the first `live` rows, and
  /// the mirror rows, of the sequence `gather` names, in stream order.
  Error gatherSequences(DeviceCache &cache, int64_t batch, int64_t live,
                        const SequenceGather &gather);
  /// Reads `count` lengths back once the stream's work so far has run.
  Error readLengths(uint64_t lengths, int64_t count, int64_t *out);
  /// Whether the calls' stream is capturing a CUDA graph; an error where
  /// the driver cannot say or the legacy default stream would join another
  /// stream's capture.
  Error getCapturing(bool &capturing);
  /// Grows scratch to what a captured decode step of `steps` tokens of
  /// `layer` over a cache of `rows` rows needs (a capture cannot
  /// allocate).
  Error reserveForCapture(const LayerSpec &layer, const KernelSpec &kernel,
                          int64_t batch, int64_t steps, int64_t rows);

  /// Stores `count` tokens of k [B, count, Hkv, D] and v (ignored for K=V
  /// layers) at positions from their sequences' lengths on, and advances
  /// them: entry i is `cache`'s sequence `sequences[i]` (device int64s; 0:
  /// sequence i). In a CUDA graph capture (device operands only) each
  /// replay appends.
  Error append(const LayerSpec &layer, const KernelSpec &kernel,
               DeviceCache &cache, int64_t batch, uint64_t sequences,
               int64_t count, Operand k, Operand v);

  /// Copies positions [first, first + count) of `cache`'s first `batch`
  /// sequences (held: at most its rows) into k (absent for K=V layers) [B,
  /// count, Hkv, D] and v [B, count, Hkv, Dv], f32 or bf16, host or device,
  /// returning once they are there (on the caller's stream, with device
  /// operands only: once queued).
  Error readCache(const LayerSpec &layer, const DeviceCache &cache,
                  int64_t batch, int64_t first, int64_t count, Operand k,
                  Operand v);
  /// Stores `count` tokens of keys as the cache holds them (rotated) k and
  /// values v at positions from the lengths of `cache`'s first `batch`
  /// sequences on, and advances them: what
  /// readCache gave is held again as it was. Not for K=V layers (append
  /// stores their values).
  Error writeCache(const LayerSpec &layer, const DeviceCache &cache,
                   int64_t batch, int64_t count, Operand k, Operand v);

  /// A decode step of `steps` queries of `batch` entries, entry i the
  /// caches' sequence `sequences[i]` (device int64s; 0: sequence i), each
  /// at its sequence's length in `cache` (which the step advances; the
  /// host's: from `position` to `longest`): appends k and v to `cache`
  /// (unless it has no rows: shared layers), then attends over `owner`'s
  /// cache with the decode kernel (which merges its splits) or, for steps
  /// of many rows (prefersFlashStep) of a whole batch at one position
  /// (chunked prefill;
  /// $HYBRID_CUDA_STEP_KERNEL=decode|flash forces one), with the flash
  /// kernel reading the cache in place (split-K and the combine kernel
  /// where its query tiles would leave SMs idle). In a CUDA graph capture
  /// (device operands only) the positions are not used: each replay runs
  /// the decode kernel from the lengths it finds, its splits sized for the
  /// whole cache.
  Error decode(const LayerSpec &layer, const KernelSpec &kernel,
               DeviceCache &cache, const DeviceCache &owner, int64_t batch,
               uint64_t sequences, int64_t position, int64_t longest,
               int64_t steps, Operand q, Operand k, Operand v, Operand sinks,
               Operand out);

  /// Whether a decode step of `steps` tokens of `batch` sequences of
  /// `layer` at one position takes the flash kernel (decode() runs others'
  /// on the decode kernel).
  bool prefersFlashStep(const LayerSpec &layer, const KernelSpec &kernel,
                        int64_t batch, int64_t steps) const;

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
