//===- Model.cpp - Layer checks and the kernel calls sessions share -------===//

#include "Model.h"
#include "WorkPieces.h"

#include <algorithm>

using namespace hybrid::rt;

hybrid_rt_status hybrid::rt::getRunnableLayer(const hybrid_rt_model &model,
                                              int64_t layer,
                                              const std::string &where,
                                              const LayerSpec *&spec) {
  if (layer < 0 || layer >= int64_t(model.manifest.layers.size()))
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + " is out of range [0, " +
                    std::to_string(model.manifest.layers.size()) + ")");
  spec = &model.manifest.layers[layer];
  if (!spec->hasKernel())
    return fail(HYBRID_RT_UNSUPPORTED, where + " is a '" + spec->kind +
                                           "' layer, which has no kernel in "
                                           "this runtime");
  return HYBRID_RT_OK;
}

std::string hybrid::rt::checkValues(const LayerSpec &l, int64_t batch,
                                    int64_t seq, const hybrid_rt_tensor *k,
                                    const hybrid_rt_tensor *v,
                                    const hybrid_rt_model &model) {
  if (!l.kEqV && !l.latent)
    return checkOperand("v", v, {batch, seq, l.numKvHeads, l.vHeadDim},
                        "[batch, seq, kv_heads, v_head_dim]", model);
  auto same = [](const hybrid_rt_tensor &a, const hybrid_rt_tensor &b) {
    return a.data == b.data && a.dtype == b.dtype && a.rank == b.rank &&
           a.memory == b.memory &&
           std::equal(a.shape, a.shape + std::clamp(a.rank, 0, 4), b.shape);
  };
  if (v && (!k || !same(*v, *k)))
    return l.kEqV ? "v must be null or k itself: a K=V layer's values are its k"
                  : "v must be null or k itself: a latent layer's values are "
                    "the first v_head_dim dims of its k";
  return "";
}

std::string hybrid::rt::checkLayerOperands(
    const LayerSpec &l, int64_t batch, int64_t seq, const hybrid_rt_tensor *q,
    const hybrid_rt_tensor *k, const hybrid_rt_tensor *v,
    const hybrid_rt_tensor *sinks, const hybrid_rt_tensor *out, bool withKeys,
    const hybrid_rt_model &model) {
  std::string error = checkOperand("q", q, {batch, seq, l.numHeads, l.headDim},
                                   "[batch, seq, heads, head_dim]", model);
  if (error.empty() && withKeys)
    error = checkOperand("k", k, {batch, seq, l.numKvHeads, l.headDim},
                         "[batch, seq, kv_heads, head_dim]", model);
  if (error.empty() && withKeys)
    error = checkValues(l, batch, seq, k, v, model);
  if (error.empty() && !withKeys && (k || v))
    error = "k and v must be null: the layer reads layer " +
            std::to_string(l.sourceLayer) + "'s cache";
  if (error.empty())
    error = checkOperand("out", out, {batch, seq, l.numHeads, l.vHeadDim},
                         "[batch, seq, heads, v_head_dim]", model);
  if (error.empty() && l.sinks)
    error = checkOperand("sinks", sinks, {l.numHeads}, "[heads]", model);
  if (error.empty() && !l.sinks && sinks)
    error = "sinks given, but the layer has no sinks";
  return error;
}

void hybrid::rt::prepareRows(hybrid_rt_model &model, PrepareFn prepare,
                             const float *in, float *out, const Shape &shape,
                             int64_t firstPosition) {
  prepareRows(model, prepare, in, out, shape, {0, shape[0] * shape[1]},
              {firstPosition});
}

void hybrid::rt::prepareRows(hybrid_rt_model &model, PrepareFn prepare,
                             const float *in, float *out, const Shape &shape,
                             const std::vector<int64_t> &starts,
                             const std::vector<int64_t> &firstPositions) {
  ThreadPool &pool = *model.pool;
  int64_t rows = starts.back();
  // Enough rows per chunk to amortise the claim, small enough to balance.
  int64_t grain = std::max<int64_t>(1, rows / (8 * pool.size()));
  Tensor4 input = makeTensor4(in, shape.data());
  Tensor4 output = makeTensor4(out, shape.data());
  pool.parallelFor(rows, grain, [&](int64_t begin, int64_t end) {
    forPieces(starts, begin, end, [&](size_t i, int64_t first, int64_t last) {
      Tensor4 from = input, to = output;
      prepare(&from, &to, firstPositions[i], first, last);
    });
  });
}

bool hybrid::rt::keepsValuesOnly(const LayerSpec &l) {
  // The manifest checked that such layers' decode kernels derive keys.
  return l.kEqV;
}

bool hybrid::rt::readsValuesFromKeys(const LayerSpec &l) {
  // The manifest checked that such layers' kernels take strided values.
  return l.latent;
}

Tensor4 hybrid::rt::valuesOfKeys(const LayerSpec &l, Tensor4 keys) {
  keys.sizes[3] = l.vHeadDim;
  return keys;
}

void hybrid::rt::runFlash(hybrid_rt_model &model, const LayerSpec &l, Tensor4 q,
                          Tensor4 k, Tensor4 v, int64_t numKeys,
                          int64_t firstRow, const float *sinks, Tensor4 out,
                          FlashKeys read) {
  runFlash(model, l, {FlashPiece{q, k, v, out, numKeys, firstRow}}, sinks,
           read);
}

void hybrid::rt::runFlash(hybrid_rt_model &model, const LayerSpec &l,
                          const std::vector<FlashPiece> &pieces,
                          const float *sinks, FlashKeys read) {
  const KernelSpec &spec = model.manifest.kernels.at(l.kernel);
  const KernelEntryPoints &fn = model.kernels.get(l.kernel);
  int64_t seq = pieces[0].q.sizes[1], heads = 0;
  bool steps = true; // every piece's queries see about its cache
  for (const FlashPiece &p : pieces) {
    heads += p.q.sizes[0] * l.numKvHeads;
    steps = steps && p.numKeys > seq;
  }
  Tensor1 sa{};
  if (sinks) {
    auto *s = const_cast<float *>(sinks);
    sa = {s, s, 0, {l.numHeads}, {1}};
  }
  int64_t group = l.numHeads / l.numKvHeads, tile;
  int threads = model.pool->size();
  if (model.fixedPrefillTile)
    tile = std::min(model.fixedPrefillTile, spec.qTile);
  else if (steps)
    tile = chooseStepTile(spec.qTile, group, seq, heads, threads);
  else // a prompt: causal tiles cost unlike, many items balance them
    tile = choosePrefillTile(spec.qTile, group, seq, heads, threads);
  std::vector<int64_t> items = layOutPieces(pieces.size(), [&](size_t i) {
    return pieces[i].q.sizes[0] * l.numKvHeads * ((seq + tile - 1) / tile);
  });
  bool cached = read == FlashKeys::Cached;
  AttentionWithSinksFn withSinks =
      cached ? fn.stepsWithSinks : fn.attentionWithSinks;
  AttentionFn plain = cached ? fn.steps : fn.attention;
  model.pool->parallelFor(items.back(), 1, [&](int64_t begin, int64_t end) {
    forPieces(items, begin, end, [&](size_t i, int64_t first, int64_t last) {
      FlashPiece p = pieces[i];
      first -= items[i];
      last -= items[i];
      if (withSinks) {
        Tensor1 sc = sa;
        withSinks(&p.q, &p.k, &p.v, &sc, &p.out, p.numKeys, p.firstRow, tile,
                  first, last);
      } else {
        plain(&p.q, &p.k, &p.v, &p.out, p.numKeys, p.firstRow, tile, first,
              last);
      }
    });
  });
}

namespace {
/// The key scale ([head_dim]) of the layer whose cache `l` reads (its own),
/// or null for ones.
const float *getKeyScale(const hybrid_rt_model &model, const LayerSpec &l) {
  int64_t owner = l.cacheOwner();
  if (owner >= int64_t(model.keyScales.size()) ||
      model.keyScales[owner].empty())
    return nullptr;
  return model.keyScales[owner].data();
}

/// out[i, d] = in[i, d] * scale[d] for `vectors` vectors of `dim`, on the
/// model's threads.
void scaleVectors(hybrid_rt_model &model, const float *scale, const float *in,
                  float *out, int64_t vectors, int64_t dim) {
  model.pool->parallelFor(vectors, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t d = 0; d < dim; ++d)
        out[i * dim + d] = in[i * dim + d] * scale[d];
  });
}

/// The scratch deriveKeyRows writes for keys of `shape`, and where the keys
/// end: the rotated ones, else the scaled ones, else null (k as it is).
float *reserveKeyScratch(hybrid_rt_model &model, const LayerSpec &l,
                         const Shape &shape) {
  int64_t size = shape[0] * shape[1] * shape[2] * shape[3];
  float *keys = nullptr;
  if (getKeyScale(model, l)) {
    model.scaledK.resize(size);
    keys = model.scaledK.data();
  }
  if (model.kernels.get(l.kernel).prepareK) {
    model.preparedK.resize(size);
    keys = model.preparedK.data();
  }
  return keys;
}

/// Keys from the contiguous k [B, S, Hkv, D] at positions firstPosition...
/// (times the key scale, then rotated by prepare_k) at element `offset` of
/// the scratch reserveKeyScratch reserved.
void deriveKeyRows(hybrid_rt_model &model, const LayerSpec &l, const float *k,
                   const Shape &shape, int64_t firstPosition, int64_t offset) {
  const float *keys = k;
  if (const float *scale = getKeyScale(model, l)) {
    float *scaled = model.scaledK.data() + offset;
    scaleVectors(model, scale, keys, scaled, shape[0] * shape[1] * shape[2],
                 shape[3]);
    keys = scaled;
  }
  if (PrepareFn prepare = model.kernels.get(l.kernel).prepareK)
    prepareRows(model, prepare, keys, model.preparedK.data() + offset, shape,
                firstPosition);
}

} // namespace

Tensor1 hybrid::rt::getKeyScaleTensor(hybrid_rt_model &model,
                                      const LayerSpec &l) {
  const float *scale = getKeyScale(model, l);
  if (!scale) {
    model.ones.assign(l.headDim, 1.f);
    scale = model.ones.data();
  }
  auto *p = const_cast<float *>(scale);
  return {p, p, 0, {l.headDim}, {1}};
}

const float *hybrid::rt::deriveCachedKeys(hybrid_rt_model &model,
                                          const LayerSpec &l,
                                          const float *values,
                                          const Shape &shape, int64_t first,
                                          int64_t total) {
  float *keys = reserveKeyScratch(model, l, shape);
  if (!keys)
    return values;
  // Each sequence's positions are at most two runs of rows (a ring wraps).
  int64_t rowWidth = shape[2] * shape[3];
  for (int64_t b = 0; b < shape[0]; ++b)
    for (int64_t p = first; p < total;) {
      int64_t row = p % shape[1], count = std::min(total - p, shape[1] - row);
      int64_t offset = (b * shape[1] + row) * rowWidth;
      deriveKeyRows(model, l, values + offset, {1, count, shape[2], shape[3]},
                    p, offset);
      p += count;
    }
  return keys;
}

const float *hybrid::rt::widenCachedValues(hybrid_rt_model &model,
                                           const CacheRows &values,
                                           int64_t firstSequence,
                                           const Shape &shape, int64_t first,
                                           int64_t total) {
  if (const float *f32 = values.f32Data())
    return f32 + firstSequence * shape[1] * shape[2] * shape[3];
  model.widenedV.resize(shape[0] * shape[1] * shape[2] * shape[3]);
  values.widen(model.pool.get(), model.widenedV.data(),
               {firstSequence, shape[0]}, shape[1], first, total,
               shape[2] * shape[3]);
  return model.widenedV.data();
}

const float *hybrid::rt::deriveKeys(hybrid_rt_model &model, const LayerSpec &l,
                                    const float *k, const Shape &kShape,
                                    int64_t firstPosition) {
  float *keys = reserveKeyScratch(model, l, kShape);
  if (!keys)
    return k;
  deriveKeyRows(model, l, k, kShape, firstPosition, /*offset=*/0);
  return keys;
}

const float *hybrid::rt::runPrefill(hybrid_rt_model &model, const LayerSpec &l,
                                    const Shape &qShape, const float *q,
                                    const Shape &kShape, const float *k,
                                    const Shape &vShape, const float *v,
                                    const float *sinks, float *out) {
  const KernelEntryPoints &fn = model.kernels.get(l.kernel);
  int64_t batch = qShape[0], seq = qShape[1];
  model.preparedQ.resize(batch * seq * l.numHeads * l.headDim);
  prepareRows(model, fn.prepareQ, q, model.preparedQ.data(), qShape,
              /*firstPosition=*/0);
  const float *keys = deriveKeys(model, l, k, kShape, /*firstPosition=*/0);
  Shape oShape = {batch, seq, l.numHeads, l.vHeadDim};
  Tensor4 keyRows = makeTensor4(keys, kShape.data());
  runFlash(model, l, makeTensor4(model.preparedQ.data(), qShape.data()),
           keyRows,
           readsValuesFromKeys(l) ? valuesOfKeys(l, keyRows)
                                  : makeTensor4(v, vShape.data()),
           /*numKeys=*/kShape[1], /*firstRow=*/0, sinks,
           makeTensor4(out, oShape.data()));
  return keys;
}
