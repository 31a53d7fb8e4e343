//===- Runtime.cpp - The C ABI: open a compiled schedule, run its layers --===//

#include "Model.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace hybrid::rt;

namespace {
thread_local std::string lastError;

std::string shapeString(const int64_t *shape, int rank) {
  std::ostringstream os;
  os << '[';
  for (int i = 0; i < rank; ++i)
    os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

/// The int a C caller stored in an enum field, read as an int: C lets it
/// hold any int, and a C++ load of a value outside the enum's range is
/// undefined behaviour.
template <typename Enum> int32_t rawEnum(const Enum &field) {
  static_assert(sizeof(Enum) == sizeof(int32_t), "C enums are ints");
  int32_t value;
  std::memcpy(&value, &field, sizeof(value));
  return value;
}

std::string dtypeName(int32_t dtype) {
  switch (dtype) {
  case HYBRID_RT_F32:
    return "f32";
  case HYBRID_RT_F16:
    return "f16";
  case HYBRID_RT_BF16:
    return "bf16";
  }
  return std::to_string(dtype) + " (not a hybrid_rt_dtype)";
}

} // namespace

hybrid_rt_status hybrid::rt::fail(hybrid_rt_status status,
                                  std::string message) {
  lastError = std::move(message);
  return status;
}

hybrid_rt_status hybrid::rt::failFromException(const char *call) {
  hybrid_rt_status status = HYBRID_RT_INTERNAL_ERROR;
  try {
    // Lives while the entry point's handler runs: the exception is its.
    const char *what = "an unknown exception";
    try {
      throw;
    } catch (const std::bad_alloc &) {
      status = HYBRID_RT_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
      what = e.what();
    } catch (...) {
    }
    return fail(status, std::string(call) +
                            (status == HYBRID_RT_OUT_OF_MEMORY
                                 ? ": out of host memory"
                                 : ": internal error (a bug in the runtime; "
                                   "please report it): " +
                                       std::string(what)));
  } catch (...) {
    // No memory for the message either: a short one (no allocation).
    lastError =
        status == HYBRID_RT_OUT_OF_MEMORY ? "out of memory" : "internal error";
    return status;
  }
}

std::string hybrid::rt::checkOperand(const char *name,
                                     const hybrid_rt_tensor *t,
                                     const std::vector<int64_t> &expected,
                                     const char *layout,
                                     const hybrid_rt_model &model) {
  bool onGPU = model.onGPU();
  std::string what = std::string(name) + " ";
  if (!t)
    return what + "is null";
  if (!t->data)
    return what + "has no data";
  int32_t memory = rawEnum(t->memory), dtype = rawEnum(t->dtype);
  if (memory != HYBRID_RT_HOST && memory != HYBRID_RT_DEVICE)
    return what + "has memory " + std::to_string(memory) +
           ", expected HYBRID_RT_HOST or HYBRID_RT_DEVICE";
  if (memory == HYBRID_RT_DEVICE && !onGPU)
    return what + "is in device memory, but the model runs on the CPU";
  if (dtype == HYBRID_RT_BF16 && onGPU && !model.takesBF16())
    return what + "has dtype bf16, which these GPU artifacts cannot convert "
                  "(they predate the conversion kernels: recompile them)";
  if (dtype != HYBRID_RT_F32 && !(dtype == HYBRID_RT_BF16 && model.takesBF16()))
    return what + "has dtype " + dtypeName(dtype) +
           (onGPU ? ", but GPU models take f32 or bf16 tensors"
                  : ", but the runtime takes f32 tensors on CPUs");
  // A negative dim may equal what the caller's other operands imply (a
  // step's seq dim is read from them): refused first.
  if (t->rank >= 1 && t->rank <= 4 &&
      std::any_of(t->shape, t->shape + t->rank,
                  [](int64_t d) { return d < 0; }))
    return what + "has shape " + shapeString(t->shape, t->rank) +
           ": a negative dim";
  if (t->rank != int32_t(expected.size()) ||
      !std::equal(expected.begin(), expected.end(), t->shape))
    return what + "has shape " +
           shapeString(t->shape, std::max(0, std::min(t->rank, 4))) +
           ", expected " + shapeString(expected.data(), expected.size()) + " " +
           layout;
  return "";
}

namespace {
hybrid_rt_status setStream(hybrid_rt_model *model, void *stream,
                           bool callerStream, const char *call) try {
  CallLock lock(model);
  if (!model)
    return fail(HYBRID_RT_INVALID_ARGUMENT, std::string(call) + ": null model");
#ifdef HYBRID_RT_CUDA
  if (model->cuda) {
    cuda::Error error = model->cuda->setStream(stream, callerStream);
    if (!error.empty())
      return fail(error.status(), std::string(call) + ": " + error.message());
    return HYBRID_RT_OK;
  }
#endif
  return fail(HYBRID_RT_UNSUPPORTED,
              std::string(call) + ": the model runs on the CPU (no streams)");
} catch (...) {
  return failFromException(call);
}
} // namespace

extern "C" {

const char *hybrid_rt_last_error(void) { return lastError.c_str(); }

int64_t hybrid_rt_host_memory_bytes(void) {
  long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
  int64_t bytes = pages > 0 && pageSize > 0 ? int64_t(pages) * pageSize : 0;
  // cgroup v2, then v1 ("max" or a huge number: no limit).
  for (const char *path : {"/sys/fs/cgroup/memory.max",
                           "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream file(path);
    int64_t limit = 0;
    if (file >> limit && limit > 0 && (bytes == 0 || limit < bytes))
      bytes = limit;
  }
  return bytes;
}

hybrid_rt_status hybrid_rt_open(const char *dir, int32_t numThreads,
                                hybrid_rt_model **model) try {
  if (!dir || !model)
    return fail(HYBRID_RT_INVALID_ARGUMENT, "hybrid_rt_open: null argument");
  *model = nullptr;
  auto m = std::make_unique<hybrid_rt_model>();
  std::string error;
  if (!loadManifest(dir, m->manifest, error))
    return fail(HYBRID_RT_LOAD_ERROR, error);
  const std::string &target = m->manifest.target;
  if (target.rfind("cuda:", 0) == 0) {
    for (const LayerSpec &l : m->manifest.layers)
      if (l.latent)
        return fail(HYBRID_RT_UNSUPPORTED,
                    std::string(dir) + "/manifest.json: layer " +
                        std::to_string(l.index) +
                        " has a latent cache, which the CUDA backend does "
                        "not support yet");
#ifdef HYBRID_RT_CUDA
    m->cuda = cuda::Backend::open(m->manifest, error);
    if (!m->cuda)
      return fail(HYBRID_RT_LOAD_ERROR, std::string(dir) + ": " + error);
#else
    return fail(HYBRID_RT_UNSUPPORTED,
                std::string(dir) + "/manifest.json: target '" + target +
                    "' needs the CUDA backend; this runtime was built without "
                    "it (HYBRID_ENABLE_CUDA=OFF)");
#endif
  } else if (target != "cpu") {
    return fail(HYBRID_RT_UNSUPPORTED,
                std::string(dir) + "/manifest.json: target '" + target +
                    "' is not supported by this runtime (cpu, cuda:<chip>)");
  } else if (!m->kernels.load(m->manifest, error)) {
    return fail(HYBRID_RT_LOAD_ERROR, error);
  } else {
    // CPU prefill's positions per work item and decode steps' kernel, when
    // the environment fixes them.
    m->fixedPrefillTile = getFixedPrefillTile(error);
    if (error.empty())
      m->fixedStepKernel = getFixedStepKernel("HYBRID_CPU_STEP_KERNEL", error);
    if (!error.empty())
      return fail(HYBRID_RT_INVALID_ARGUMENT, error);
  }
  m->pool = std::make_unique<ThreadPool>(numThreads > 0 ? numThreads
                                                        : defaultNumThreads());
  *model = m.release();
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_open");
}

void hybrid_rt_close(hybrid_rt_model *model) {
  if (!model)
    return;
  {
    std::lock_guard<std::mutex> lock(model->calls);
    model->closed = true;
    if (model->sessions > 0)
      return; // hybrid_rt_session_destroy frees it
  }
  delete model;
}

int64_t hybrid_rt_num_layers(const hybrid_rt_model *model) {
  return model ? int64_t(model->manifest.layers.size()) : 0;
}

int32_t hybrid_rt_num_threads(const hybrid_rt_model *model) {
  return model ? model->pool->size() : 0;
}

hybrid_rt_status hybrid_rt_layer_info_get(const hybrid_rt_model *model,
                                          int64_t layer,
                                          hybrid_rt_layer_info *info) try {
  if (!model || !info)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                "hybrid_rt_layer_info_get: null argument");
  if (layer < 0 || layer >= int64_t(model->manifest.layers.size()))
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                "hybrid_rt_layer_info_get: layer " + std::to_string(layer) +
                    " is out of range [0, " +
                    std::to_string(model->manifest.layers.size()) + ")");
  const LayerSpec &l = model->manifest.layers[layer];
  *info = {l.index,   l.kind.c_str(), l.hasKernel(), l.numHeads, l.numKvHeads,
           l.headDim, l.vHeadDim,     l.window,      l.chunk,    l.causal,
           l.sinks,   l.kEqV,         l.sourceLayer};
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_layer_info_get");
}

hybrid_rt_status hybrid_rt_prefill(hybrid_rt_model *model, int64_t layer,
                                   const hybrid_rt_tensor *q,
                                   const hybrid_rt_tensor *k,
                                   const hybrid_rt_tensor *v,
                                   const hybrid_rt_tensor *sinks,
                                   hybrid_rt_tensor *out) try {
  CallLock lock(model);
  if (!model)
    return fail(HYBRID_RT_INVALID_ARGUMENT, "hybrid_rt_prefill: null model");
  std::string where = "hybrid_rt_prefill: layer " + std::to_string(layer);
  const LayerSpec *spec = nullptr;
  if (hybrid_rt_status status = getRunnableLayer(*model, layer, where, spec))
    return status;
  const LayerSpec &l = *spec;
  if (!q || q->rank != 4)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + ": q must be a rank-4 [batch, seq, heads, head_dim] "
                        "tensor");
  int64_t batch = q->shape[0], seq = q->shape[1];
  if (batch <= 0 || seq <= 0)
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": q has shape [" +
                                                std::to_string(batch) + ", " +
                                                std::to_string(seq) +
                                                ", ...], batch and seq must be "
                                                "positive");
  if (std::string error =
          checkLayerOperands(l, batch, seq, q, k, v, sinks, out, true, *model);
      !error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  if (l.kEqV)
    v = k; // the values of a K=V layer
#ifdef HYBRID_RT_CUDA
  if (model->cuda) {
    using cuda::Operand;
    cuda::Error error = model->cuda->prefill(
        l, model->manifest.kernels.at(l.kernel), batch, seq, Operand::of(q),
        Operand::of(k), Operand::of(v), Operand::of(sinks), Operand::of(out));
    if (!error.empty())
      return fail(error.status(), where + ": " + error.message());
    return HYBRID_RT_OK;
  }
#endif
  runPrefill(
      *model, l, {batch, seq, l.numHeads, l.headDim},
      static_cast<float *>(q->data), {batch, seq, l.numKvHeads, l.headDim},
      static_cast<float *>(k->data), {batch, seq, l.numKvHeads, l.vHeadDim},
      v ? static_cast<float *>(v->data) : nullptr, // null: latent
      sinks ? static_cast<float *>(sinks->data) : nullptr,
      static_cast<float *>(out->data));
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_prefill");
}

hybrid_rt_status hybrid_rt_key_scale_set(hybrid_rt_model *model, int64_t layer,
                                         const hybrid_rt_tensor *scale) try {
  CallLock lock(model);
  if (!model)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                "hybrid_rt_key_scale_set: null model");
  std::string where = "hybrid_rt_key_scale_set: layer " + std::to_string(layer);
  const LayerSpec *spec = nullptr;
  if (hybrid_rt_status status = getRunnableLayer(*model, layer, where, spec))
    return status;
  const LayerSpec &l = *spec;
  if (l.cachePolicy == "shared")
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + " reads layer " + std::to_string(l.sourceLayer) +
                    "'s cache and takes its key scale: set that layer's");
  if (!l.kEqV)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + " keeps its keys apart from its values (not k_eq_v): "
                        "pass its keys scaled");
  if (scale) {
    if (std::string error =
            checkOperand("scale", scale, {l.headDim}, "[head_dim]", *model);
        !error.empty())
      return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
    if (scale->dtype != HYBRID_RT_F32)
      return fail(HYBRID_RT_INVALID_ARGUMENT,
                  where + ": scale has dtype bf16, expected f32");
    // Host weights are checked here (a NaN would poison every score).
    const float *values = static_cast<const float *>(scale->data);
    for (int64_t d = 0; scale->memory == HYBRID_RT_HOST && d < l.headDim; ++d)
      if (!std::isfinite(values[d]))
        return fail(HYBRID_RT_INVALID_ARGUMENT,
                    where + ": scale[" + std::to_string(d) + "] is " +
                        std::to_string(values[d]) + ", not finite");
  }
#ifdef HYBRID_RT_CUDA
  if (model->cuda) {
    if (cuda::Error e = model->cuda->setKeyScale(l, cuda::Operand::of(scale));
        !e.empty())
      return fail(e.status(), where + ": " + e.message());
    return HYBRID_RT_OK;
  }
#endif
  model->keyScales.resize(model->manifest.layers.size());
  std::vector<float> &kept = model->keyScales[layer];
  kept.clear();
  if (scale) {
    const float *values = static_cast<const float *>(scale->data);
    kept.assign(values, values + l.headDim);
  }
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_key_scale_set");
}

const char *hybrid_rt_device_name(const hybrid_rt_model *model) {
  if (!model)
    return "";
#ifdef HYBRID_RT_CUDA
  if (model->cuda)
    return model->cuda->deviceName().c_str();
#endif
  return "cpu";
}

hybrid_rt_status hybrid_rt_stream_set(hybrid_rt_model *model, void *stream) {
  return setStream(model, stream, true, "hybrid_rt_stream_set");
}

hybrid_rt_status hybrid_rt_stream_reset(hybrid_rt_model *model) {
  return setStream(model, nullptr, false, "hybrid_rt_stream_reset");
}

hybrid_rt_status hybrid_rt_device_time_get(const hybrid_rt_model *model,
                                           hybrid_rt_device_time *time) try {
  CallLock lock(model);
  if (!model || !time)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                "hybrid_rt_device_time_get: null argument");
#ifdef HYBRID_RT_CUDA
  if (model->cuda) {
    *time = {model->cuda->lastPrepareMs(), model->cuda->lastAttentionMs()};
    return HYBRID_RT_OK;
  }
#endif
  return fail(HYBRID_RT_UNSUPPORTED,
              "hybrid_rt_device_time_get: the model runs on the CPU (time "
              "its calls on the host)");
} catch (...) {
  return failFromException("hybrid_rt_device_time_get");
}

} // extern "C"
