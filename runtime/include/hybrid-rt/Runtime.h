//===- Runtime.h - Thin C++ wrapper over the hybrid_rt C ABI ----*- C++ -*-===//
//
// Owns a hybrid_rt_model and turns statuses into a Status that names the
// failure; no exceptions, so it works in -fno-exceptions code such as the
// LLVM-based tools.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_RUNTIME_H
#define HYBRID_RT_RUNTIME_H

#include "hybrid-rt/hybrid_rt.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace hybrid::rt {

struct Status {
  hybrid_rt_status code = HYBRID_RT_OK;
  std::string message;
  explicit operator bool() const { return code == HYBRID_RT_OK; }
  static Status fromCode(hybrid_rt_status code) {
    return {code, code == HYBRID_RT_OK ? "" : hybrid_rt_last_error()};
  }
};

/// A float32 view of caller-owned memory (device memory: GPU models).
inline hybrid_rt_tensor view(const float *data, std::array<int64_t, 4> shape,
                             hybrid_rt_memory memory = HYBRID_RT_HOST) {
  return {const_cast<float *>(data),
          HYBRID_RT_F32,
          4,
          {shape[0], shape[1], shape[2], shape[3]},
          memory};
}
inline hybrid_rt_tensor view(const float *data, int64_t size,
                             hybrid_rt_memory memory = HYBRID_RT_HOST) {
  return {const_cast<float *>(data), HYBRID_RT_F32, 1, {size, 0, 0, 0}, memory};
}

class Model {
public:
  Model() = default;
  ~Model() { hybrid_rt_close(model); }
  Model(Model &&other) noexcept : model(other.model) { other.model = nullptr; }
  Model &operator=(Model &&other) noexcept {
    std::swap(model, other.model);
    return *this;
  }

  /// Opens `dir` (manifest.json + kernels); numThreads <= 0: the default.
  Status open(const std::string &dir, int numThreads = 0) {
    hybrid_rt_close(model);
    model = nullptr;
    return Status::fromCode(hybrid_rt_open(dir.c_str(), numThreads, &model));
  }

  int64_t numLayers() const { return hybrid_rt_num_layers(model); }
  int numThreads() const { return hybrid_rt_num_threads(model); }
  Status layerInfo(int64_t layer, hybrid_rt_layer_info &info) const {
    return Status::fromCode(hybrid_rt_layer_info_get(model, layer, &info));
  }

  /// See hybrid_rt_prefill; `sinks` is null for layers without sinks.
  Status prefill(int64_t layer, const hybrid_rt_tensor &q,
                 const hybrid_rt_tensor &k, const hybrid_rt_tensor &v,
                 const hybrid_rt_tensor *sinks, hybrid_rt_tensor &out) {
    return Status::fromCode(
        hybrid_rt_prefill(model, layer, &q, &k, &v, sinks, &out));
  }

  /// See hybrid_rt_key_scale_set; null restores ones.
  Status setKeyScale(int64_t layer, const hybrid_rt_tensor *scale) {
    return Status::fromCode(hybrid_rt_key_scale_set(model, layer, scale));
  }

  /// See hybrid_rt_stream_set: `stream` is a CUstream.
  Status setStream(void *stream) {
    return Status::fromCode(hybrid_rt_stream_set(model, stream));
  }
  /// See hybrid_rt_stream_reset.
  Status resetStream() {
    return Status::fromCode(hybrid_rt_stream_reset(model));
  }

  hybrid_rt_model *get() { return model; }

private:
  hybrid_rt_model *model = nullptr;
};

/// Per-layer KV caches of a batch of sequences (hybrid_rt_session_*).
class Session {
public:
  Session() = default;
  ~Session() { hybrid_rt_session_destroy(session); }
  Session(Session &&other) noexcept : session(other.session) {
    other.session = nullptr;
  }
  Session &operator=(Session &&other) noexcept {
    std::swap(session, other.session);
    return *this;
  }

  Status create(Model &model, int64_t batch, int64_t maxSeq,
                int64_t maxStepTokens = 1) {
    hybrid_rt_session_destroy(session);
    session = nullptr;
    hybrid_rt_session_options options{batch, maxSeq, maxStepTokens};
    return Status::fromCode(
        hybrid_rt_session_create(model.get(), &options, &session));
  }
  void reset() { hybrid_rt_session_reset(session); }
  /// See hybrid_rt_session_select (empty: the whole batch).
  Status select(const std::vector<int64_t> &sequences) {
    return Status::fromCode(hybrid_rt_session_select(
        session, sequences.data(), int64_t(sequences.size())));
  }
  /// See hybrid_rt_session_reorder (order.size() is the batch).
  Status reorder(const std::vector<int64_t> &order) {
    return Status::fromCode(hybrid_rt_session_reorder(session, order.data(),
                                                      int64_t(order.size())));
  }
  /// See hybrid_rt_session_truncate.
  Status truncate(int64_t length) {
    return Status::fromCode(hybrid_rt_session_truncate(session, length));
  }
  Status cacheInfo(int64_t layer, hybrid_rt_cache_info &info) const {
    return Status::fromCode(
        hybrid_rt_session_cache_info(session, layer, &info));
  }
  int64_t cacheBytes() const { return hybrid_rt_session_cache_bytes(session); }
  /// See hybrid_rt_session_cache_scales_set.
  Status setCacheScales(int64_t layer, float kScale, float vScale) {
    return Status::fromCode(
        hybrid_rt_session_cache_scales_set(session, layer, kScale, vScale));
  }
  /// See hybrid_rt_session_cache_scales_from_prompt.
  Status setCacheScalesFromPrompt(int64_t layer, float kTarget, float vTarget) {
    return Status::fromCode(hybrid_rt_session_cache_scales_from_prompt(
        session, layer, kTarget, vTarget));
  }
  Status cacheScales(int64_t layer, float &kScale, float &vScale) const {
    return Status::fromCode(
        hybrid_rt_session_cache_scales_get(session, layer, &kScale, &vScale));
  }

  Status prefill(int64_t layer, const hybrid_rt_tensor &q,
                 const hybrid_rt_tensor &k, const hybrid_rt_tensor &v,
                 const hybrid_rt_tensor *sinks, hybrid_rt_tensor &out) {
    return Status::fromCode(
        hybrid_rt_session_prefill(session, layer, &q, &k, &v, sinks, &out));
  }
  /// `k` and `v` are null for layers that read another layer's cache.
  Status decode(int64_t layer, const hybrid_rt_tensor &q,
                const hybrid_rt_tensor *k, const hybrid_rt_tensor *v,
                const hybrid_rt_tensor *sinks, hybrid_rt_tensor &out) {
    return Status::fromCode(
        hybrid_rt_session_decode(session, layer, &q, k, v, sinks, &out));
  }
  Status append(int64_t layer, const hybrid_rt_tensor &k,
                const hybrid_rt_tensor &v) {
    return Status::fromCode(hybrid_rt_session_append(session, layer, &k, &v));
  }

  /// See hybrid_rt_session_cache_read (`k` null for K=V layers, `v` for
  /// latent ones).
  Status readCache(int64_t layer, int64_t first, hybrid_rt_tensor *k,
                   hybrid_rt_tensor *v) const {
    return Status::fromCode(
        hybrid_rt_session_cache_read(session, layer, first, k, v));
  }
  /// See hybrid_rt_session_cache_write (`k` null for K=V layers, `v` for
  /// latent ones).
  Status writeCache(int64_t layer, int64_t first, const hybrid_rt_tensor *k,
                    const hybrid_rt_tensor *v) {
    return Status::fromCode(
        hybrid_rt_session_cache_write(session, layer, first, k, v));
  }

  hybrid_rt_session *get() { return session; }

private:
  hybrid_rt_session *session = nullptr;
};

} // namespace hybrid::rt

#endif // HYBRID_RT_RUNTIME_H
