//===- CudaBackend.h - Running a cuda manifest's kernels --------*- C++ -*-===//
//
// Holds the device side of an open model: the driver, the primary context of
// one GPU, the kernels' module and a stream, and device scratch for a call's
// operands. The C ABI stays on host f32 tensors: a prefill copies them in,
// runs prepare (RoPE, scale, bf16) and flash kernels, and copies the output
// back.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_CUDA_CUDABACKEND_H
#define HYBRID_RT_LIB_CUDA_CUDABACKEND_H

#include "hybrid-rt/Manifest.h"

#include <memory>
#include <string>

namespace hybrid::rt::cuda {

class Backend {
public:
  /// Loads the driver and the manifest's cubin (or, where the cubin is
  /// missing or built for another GPU, its PTX) on device
  /// $HYBRID_CUDA_DEVICE (default 0). On failure returns null and sets
  /// `error`.
  static std::unique_ptr<Backend> open(const Manifest &manifest,
                                       std::string &error);
  ~Backend();

  /// Prefill attention of `layer` on host f32 rows q [B, S, Hq, D],
  /// k [B, S, Hkv, D], v [B, S, Hkv, Dv], sinks [Hq] (or null) into out
  /// [B, S, Hq, Dv]. Returns "" or the error.
  std::string prefill(const LayerSpec &layer, const KernelSpec &kernel,
                      int64_t batch, int64_t seq, const float *q,
                      const float *k, const float *v, const float *sinks,
                      float *out);

  /// Device milliseconds of the last prefill: prepare kernels, and the
  /// attention kernel alone.
  float lastPrepareMs() const;
  float lastAttentionMs() const;

  /// The GPU's name, e.g. "NVIDIA H100 80GB HBM3".
  const std::string &deviceName() const;

private:
  Backend();
  struct State;
  std::unique_ptr<State> state;
};

} // namespace hybrid::rt::cuda

#endif // HYBRID_RT_LIB_CUDA_CUDABACKEND_H
