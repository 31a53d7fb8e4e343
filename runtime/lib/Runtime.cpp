//===- Runtime.cpp - The C ABI: open a compiled schedule, run its layers --===//

#include "hybrid-rt/hybrid_rt.h"

#include "KernelLibrary.h"
#include "ThreadPool.h"
#include "hybrid-rt/Manifest.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace hybrid::rt;

struct hybrid_rt_model {
  Manifest manifest;
  KernelLibrary kernels;
  std::unique_ptr<ThreadPool> pool;
  // Rotated and scaled queries and keys of the current call.
  std::vector<float> preparedQ, preparedK;
};

namespace {
thread_local std::string lastError;

hybrid_rt_status fail(hybrid_rt_status status, std::string message) {
  lastError = std::move(message);
  return status;
}

std::string shapeString(const int64_t *shape, int rank) {
  std::ostringstream os;
  os << '[';
  for (int i = 0; i < rank; ++i)
    os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

const char *dtypeName(hybrid_rt_dtype dtype) {
  switch (dtype) {
  case HYBRID_RT_F32:
    return "f32";
  case HYBRID_RT_F16:
    return "f16";
  case HYBRID_RT_BF16:
    return "bf16";
  }
  return "unknown";
}

/// Checks one operand against its expected shape; "" when it matches.
std::string checkOperand(const char *name, const hybrid_rt_tensor *t,
                         std::vector<int64_t> expected, const char *layout) {
  std::string what = std::string(name) + " ";
  if (!t)
    return what + "is null";
  if (!t->data)
    return what + "has no data";
  if (t->dtype != HYBRID_RT_F32)
    return what + "has dtype " + dtypeName(t->dtype) +
           ", but CPU kernels take f32";
  if (t->rank != int32_t(expected.size()) ||
      !std::equal(expected.begin(), expected.end(), t->shape))
    return what + "has shape " +
           shapeString(t->shape, std::max(0, std::min(t->rank, 4))) +
           ", expected " + shapeString(expected.data(), expected.size()) + " " +
           layout;
  return "";
}
} // namespace

extern "C" {

const char *hybrid_rt_last_error(void) { return lastError.c_str(); }

hybrid_rt_status hybrid_rt_open(const char *dir, int32_t numThreads,
                                hybrid_rt_model **model) {
  if (!dir || !model)
    return fail(HYBRID_RT_INVALID_ARGUMENT, "hybrid_rt_open: null argument");
  *model = nullptr;
  auto m = std::make_unique<hybrid_rt_model>();
  std::string error;
  if (!loadManifest(dir, m->manifest, error))
    return fail(HYBRID_RT_LOAD_ERROR, error);
  if (m->manifest.target != "cpu")
    return fail(HYBRID_RT_UNSUPPORTED,
                std::string(dir) + "/manifest.json: target '" +
                    m->manifest.target +
                    "' is not supported by this runtime (cpu only)");
  if (!m->kernels.load(m->manifest, error))
    return fail(HYBRID_RT_LOAD_ERROR, error);
  m->pool = std::make_unique<ThreadPool>(numThreads > 0 ? numThreads
                                                        : defaultNumThreads());
  *model = m.release();
  return HYBRID_RT_OK;
}

void hybrid_rt_close(hybrid_rt_model *model) { delete model; }

int64_t hybrid_rt_num_layers(const hybrid_rt_model *model) {
  return model ? int64_t(model->manifest.layers.size()) : 0;
}

int32_t hybrid_rt_num_threads(const hybrid_rt_model *model) {
  return model ? model->pool->size() : 0;
}

hybrid_rt_status hybrid_rt_layer_info_get(const hybrid_rt_model *model,
                                          int64_t layer,
                                          hybrid_rt_layer_info *info) {
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
}

hybrid_rt_status hybrid_rt_prefill(hybrid_rt_model *model, int64_t layer,
                                   const hybrid_rt_tensor *q,
                                   const hybrid_rt_tensor *k,
                                   const hybrid_rt_tensor *v,
                                   const hybrid_rt_tensor *sinks,
                                   hybrid_rt_tensor *out) {
  if (!model)
    return fail(HYBRID_RT_INVALID_ARGUMENT, "hybrid_rt_prefill: null model");
  std::string where = "hybrid_rt_prefill: layer " + std::to_string(layer);
  if (layer < 0 || layer >= int64_t(model->manifest.layers.size()))
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + " is out of range [0, " +
                    std::to_string(model->manifest.layers.size()) + ")");
  const LayerSpec &l = model->manifest.layers[layer];
  if (!l.hasKernel())
    return fail(HYBRID_RT_UNSUPPORTED,
                where + " is a '" + l.kind +
                    "' layer, which has no kernel in this runtime");
  if (!q || q->rank != 4)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + ": q must be a rank-4 [batch, seq, heads, head_dim] "
                        "tensor");
  int64_t batch = q->shape[0], seq = q->shape[1];
  if (batch <= 0 || seq <= 0)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + ": q has shape " + shapeString(q->shape, 4) +
                    ", batch and seq must be positive");
  for (std::string error :
       {checkOperand("q", q, {batch, seq, l.numHeads, l.headDim},
                     "[batch, seq, heads, head_dim]"),
        checkOperand("k", k, {batch, seq, l.numKvHeads, l.headDim},
                     "[batch, seq, kv_heads, head_dim]"),
        checkOperand("v", v, {batch, seq, l.numKvHeads, l.vHeadDim},
                     "[batch, seq, kv_heads, v_head_dim]"),
        checkOperand("out", out, {batch, seq, l.numHeads, l.vHeadDim},
                     "[batch, seq, heads, v_head_dim]")})
    if (!error.empty())
      return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  if (l.sinks) {
    std::string error = checkOperand("sinks", sinks, {l.numHeads}, "[heads]");
    if (!error.empty())
      return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  } else if (sinks) {
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + ": sinks given, but the layer has no sinks");
  }

  const KernelSpec &spec = model->manifest.kernels.at(l.kernel);
  const KernelEntryPoints &fn = model->kernels.get(l.kernel);
  ThreadPool &pool = *model->pool;
  int64_t rows = batch * seq;
  // Enough rows per chunk to amortise the claim, small enough to balance.
  int64_t rowGrain = std::max<int64_t>(1, rows / (8 * pool.size()));

  Tensor4 qIn = makeTensor4(static_cast<float *>(q->data), q->shape);
  Tensor4 kIn = makeTensor4(static_cast<float *>(k->data), k->shape);
  Tensor4 vIn = makeTensor4(static_cast<float *>(v->data), v->shape);
  Tensor4 o = makeTensor4(static_cast<float *>(out->data), out->shape);

  model->preparedQ.resize(rows * l.numHeads * l.headDim);
  Tensor4 qPrepared = makeTensor4(model->preparedQ.data(), q->shape);
  pool.parallelFor(rows, rowGrain, [&](int64_t begin, int64_t end) {
    Tensor4 in = qIn, prepared = qPrepared;
    fn.prepareQ(&in, &prepared, /*firstPosition=*/0, begin, end);
  });
  Tensor4 keys = kIn;
  if (fn.prepareK) {
    model->preparedK.resize(rows * l.numKvHeads * l.headDim);
    keys = makeTensor4(model->preparedK.data(), k->shape);
    pool.parallelFor(rows, rowGrain, [&](int64_t begin, int64_t end) {
      Tensor4 in = kIn, prepared = keys;
      fn.prepareK(&in, &prepared, /*firstPosition=*/0, begin, end);
    });
  }

  int64_t items = batch * l.numKvHeads * ((seq + spec.qTile - 1) / spec.qTile);
  Tensor1 sinkLogits{};
  if (sinks) {
    auto *data = static_cast<float *>(sinks->data);
    sinkLogits = {data, data, 0, {l.numHeads}, {1}};
  }
  pool.parallelFor(items, 1, [&](int64_t begin, int64_t end) {
    Tensor4 qa = qPrepared, ka = keys, va = vIn, oa = o;
    if (fn.attentionWithSinks) {
      Tensor1 s = sinkLogits;
      fn.attentionWithSinks(&qa, &ka, &va, &s, &oa, begin, end);
    } else {
      fn.attention(&qa, &ka, &va, &oa, begin, end);
    }
  });
  return HYBRID_RT_OK;
}

} // extern "C"
