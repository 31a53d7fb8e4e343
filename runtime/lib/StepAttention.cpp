//===- StepAttention.cpp - A CPU decode step's attention ------------------===//

#include "StepAttention.h"
#include "WorkPieces.h"

#include <algorithm>

using namespace hybrid::rt;

namespace {
int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// x[0, n) times `factor` (none for 1), on the model's threads.
void multiplyRows(hybrid_rt_model &model, float *x, int64_t n, float factor) {
  if (factor != 1)
    model.pool->parallelFor(n, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        x[i] *= factor;
    });
}

/// Every slice's queries, prepared (rotated, scaled) at its positions into
/// the model's scratch: one dispatch for every slice.
void prepareQueries(hybrid_rt_model &model, const LayerSpec &l,
                    const std::vector<StepSlice> &slices, int64_t steps,
                    const hybrid_rt_tensor *q) {
  int64_t batch = q->shape[0];
  Shape shape = {batch, steps, l.numHeads, l.headDim};
  model.preparedQ.resize(batch * steps * l.numHeads * l.headDim);
  // The prepare kernel numbers rows b * steps + t of the whole tensor, a
  // slice's from entry * steps on; padding entries between slices (which
  // no slice reads) are prepared at position 0, so the pieces tile it.
  std::vector<int64_t> starts = {0}, positions;
  auto addPiece = [&](int64_t endEntry, int64_t position) {
    if (endEntry * steps > starts.back()) {
      starts.push_back(endEntry * steps);
      positions.push_back(position);
    }
  };
  for (const StepSlice &s : slices) {
    addPiece(s.slice.entry, 0);
    addPiece(s.slice.entry + s.slice.batch, s.position);
  }
  addPiece(batch, 0);
  prepareRows(model, model.kernels.get(l.kernel).prepareQ,
              static_cast<const float *>(q->data), model.preparedQ.data(),
              shape, starts, positions);
}

/// The kernel operands k and v over sequences from `first` of `cache`:
/// values-only caches (K=V) pass the values as k too (the decode kernel
/// derives keys from them), keys-only ones (latent) a view of the keys as v.
void setCacheOperands(const LayerSpec &l, const StepCache &cache, int64_t first,
                      const Shape &kShape, const Shape &vShape, Tensor4 &k,
                      Tensor4 &v) {
  if (readsValuesFromKeys(l)) {
    k = cache.keys.tensor(kShape, first);
    v = valuesOfKeys(l, k);
    return;
  }
  v = cache.values.tensor(vShape, first);
  k = keepsValuesOnly(l) ? v : cache.keys.tensor(kShape, first);
}

/// Every slice's step through the flash kernel, from the prepared queries
/// into `out` ([N, steps, Hq, Dv]): one dispatch of every slice's work
/// items, or for a values-only cache (K=V), whose keys are derived into
/// scratch first, one slice after another.
void attendWithFlash(hybrid_rt_model &model, const LayerSpec &l,
                     const StepCache &cache,
                     const std::vector<StepSlice> &slices, int64_t steps,
                     const float *sinks, float *out) {
  bool valuesOnly = keepsValuesOnly(l);
  // Narrower caches: the kernel compiled for them (`steps`), or for K=V
  // layers the prompt's kernel over values widened and keys derived from
  // them into scratch.
  FlashKeys read =
      cache.values.f32Data() || valuesOnly ? FlashKeys::F32 : FlashKeys::Cached;
  std::vector<FlashPiece> pieces;
  for (const StepSlice &s : slices) {
    const Slice &x = s.slice;
    int64_t total = s.position + steps, first = l.firstVisibleKey(s.position);
    Shape qShape = {x.batch, steps, l.numHeads, l.headDim};
    Shape kShape = {x.batch, cache.rows, l.numKvHeads, l.headDim};
    Shape vShape = {x.batch, cache.rows, l.numKvHeads, l.vHeadDim};
    Shape outShape = {x.batch, steps, l.numHeads, l.vHeadDim};
    FlashPiece p;
    p.q = makeTensor4(model.preparedQ.data() +
                          x.entry * steps * l.numHeads * l.headDim,
                      qShape.data());
    p.out = makeTensor4(out + x.entry * steps * l.numHeads * l.vHeadDim,
                        outShape.data());
    setCacheOperands(l, cache, x.first, kShape, vShape, p.k, p.v);
    // The kernel reads the cache in place from the step's first visible key
    // (a ring wraps at most once in between) and puts the step's queries
    // at the last T of the positions.
    p.numKeys = total - first;
    p.firstRow = first % cache.rows;
    if (!valuesOnly) {
      pieces.push_back(p);
      continue;
    }
    const float *values =
        widenCachedValues(model, cache.values, x.first, vShape, first, total);
    p.v = makeTensor4(values, vShape.data());
    p.k = makeTensor4(deriveCachedKeys(model, l, values, kShape, first, total),
                      kShape.data());
    runFlash(model, l, {p}, sinks, read);
  }
  if (!pieces.empty())
    runFlash(model, l, pieces, sinks, read);
}

/// One slice's share of a decode dispatch: its tensors and its split of
/// the key range.
struct DecodeRun {
  Tensor4 q, k, v, partialMax, partialSum, out;
  Tensor5 partialOut;
  int64_t position, splits;
};

/// Every slice's step through the decode kernel, from the prepared queries
/// into `out` ([N, steps, Hq, Dv]): one dispatch of every slice's work
/// items, then one of every output row's combine.
void attendWithDecode(hybrid_rt_model &model, const LayerSpec &l,
                      const KernelSpec &kernel, const StepCache &cache,
                      const std::vector<StepSlice> &slices, int64_t steps,
                      const hybrid_rt_tensor *sinks, float *out) {
  const KernelEntryPoints &fn = model.kernels.get(l.kernel);
  bool valuesOnly = keepsValuesOnly(l);
  size_t n = slices.size();
  // A work item is up to decode_q_tile positions of a sequence for every
  // head, reading every kv head of the cache rows it visits.
  auto items = [&](size_t i) {
    return slices[i].slice.batch * ceilDiv(steps, kernel.decodeQTile);
  };
  auto keys = [&](size_t i) {
    int64_t position = slices[i].position;
    return position + steps - l.firstVisibleKey(position);
  };
  // Split the key ranges so that the pool gets about 4 items per thread of
  // about equal weight (a batch-1 step is split across every thread; a
  // slice of long sequences in a ragged batch into more splits than one of
  // short ones), each split at least 4 key tiles.
  int64_t weight = 0;
  for (size_t i = 0; i < n; ++i)
    weight += items(i) * keys(i);
  int64_t parts = 4 * model.pool->size();
  std::vector<int64_t> splits(n);
  for (size_t i = 0; i < n; ++i)
    splits[i] =
        std::max<int64_t>(1, std::min(ceilDiv(keys(i), 4 * kernel.kTile),
                                      ceilDiv(parts * keys(i), weight)));
  std::vector<int64_t> partials = layOutPieces(n, [&](size_t i) {
    return splits[i] * slices[i].slice.batch * steps * l.numHeads;
  });
  model.partialOut.resize(partials.back() * l.vHeadDim);
  model.partialMax.resize(partials.back());
  model.partialSum.resize(partials.back());

  std::vector<DecodeRun> runs;
  for (size_t i = 0; i < n; ++i) {
    const StepSlice &s = slices[i];
    const Slice &x = s.slice;
    Shape qShape = {x.batch, steps, l.numHeads, l.headDim};
    Shape kShape = {x.batch, cache.rows, l.numKvHeads, l.headDim};
    Shape vShape = {x.batch, cache.rows, l.numKvHeads, l.vHeadDim};
    Shape outShape = {x.batch, steps, l.numHeads, l.vHeadDim};
    int64_t oShape[5] = {splits[i], x.batch, steps, l.numHeads, l.vHeadDim};
    DecodeRun run;
    run.q = makeTensor4(model.preparedQ.data() +
                            x.entry * steps * l.numHeads * l.headDim,
                        qShape.data());
    setCacheOperands(l, cache, x.first, kShape, vShape, run.k, run.v);
    run.partialOut = makeTensor<5>(
        model.partialOut.data() + partials[i] * l.vHeadDim, oShape);
    run.partialMax = makeTensor4(model.partialMax.data() + partials[i], oShape);
    run.partialSum = makeTensor4(model.partialSum.data() + partials[i], oShape);
    run.out = makeTensor4(out + x.entry * steps * l.numHeads * l.vHeadDim,
                          outShape.data());
    run.position = s.position;
    run.splits = splits[i];
    runs.push_back(run);
  }

  Tensor1 sa{}, ks{};
  if (sinks) {
    auto *p = static_cast<float *>(sinks->data);
    sa = {p, p, 0, {l.numHeads}, {1}};
  }
  if (valuesOnly)
    ks = getKeyScaleTensor(model, l);
  std::vector<int64_t> work =
      layOutPieces(n, [&](size_t i) { return items(i) * splits[i]; });
  model.pool->parallelFor(work.back(), 1, [&](int64_t begin, int64_t end) {
    forPieces(work, begin, end, [&](size_t i, int64_t first, int64_t last) {
      DecodeRun r = runs[i];
      first -= work[i];
      last -= work[i];
      Tensor1 sk = sa, kk = ks;
      if (fn.decodeDerivedWithSinks)
        fn.decodeDerivedWithSinks(&r.q, &r.k, &r.v, &sk, &kk, &r.partialOut,
                                  &r.partialMax, &r.partialSum, r.position,
                                  r.splits, first, last);
      else if (fn.decodeDerived)
        fn.decodeDerived(&r.q, &r.k, &r.v, &kk, &r.partialOut, &r.partialMax,
                         &r.partialSum, r.position, r.splits, first, last);
      else if (fn.decodeWithSinks)
        fn.decodeWithSinks(&r.q, &r.k, &r.v, &sk, &r.partialOut, &r.partialMax,
                           &r.partialSum, r.position, r.splits, first, last);
      else
        fn.decode(&r.q, &r.k, &r.v, &r.partialOut, &r.partialMax, &r.partialSum,
                  r.position, r.splits, first, last);
    });
  });
  std::vector<int64_t> rows =
      layOutPieces(n, [&](size_t i) { return slices[i].slice.batch * steps; });
  model.pool->parallelFor(rows.back(), 1, [&](int64_t begin, int64_t end) {
    forPieces(rows, begin, end, [&](size_t i, int64_t first, int64_t last) {
      DecodeRun r = runs[i];
      fn.combine(&r.partialOut, &r.partialMax, &r.partialSum, &r.out,
                 first - rows[i], last - rows[i]);
    });
  });
}
} // namespace

void hybrid::rt::attendStep(hybrid_rt_model &model, const LayerSpec &l,
                            const KernelSpec &kernel, const StepCache &cache,
                            const std::vector<StepSlice> &slices, int64_t steps,
                            const hybrid_rt_tensor *q,
                            const hybrid_rt_tensor *sinks,
                            hybrid_rt_tensor *out) {
  // Queries at their positions; keys and values from the cache.
  prepareQueries(model, l, slices, steps, q);
  bool valuesOnly = keepsValuesOnly(l);
  // Caches of x / scale (f8): q . k = (q scale_k) . (k / scale_k), and the
  // output is linear in the values.
  multiplyRows(model, model.preparedQ.data(), int64_t(model.preparedQ.size()),
               (valuesOnly ? cache.values : cache.keys).getScale());
  auto *outData = static_cast<float *>(out->data);
  const float *sinkData =
      sinks ? static_cast<const float *>(sinks->data) : nullptr;
  // One kernel for the call: its slices' work items fill the threads
  // together. The flash kernel of a values-only cache reads keys derived
  // first: worth it for steps of many tokens only.
  int64_t group = l.numHeads / l.numKvHeads, batch = q->shape[0];
  StepKernel stepKernel = model.fixedStepKernel;
  if (stepKernel == StepKernel::Automatic)
    stepKernel = prefersFlashForStep(group, steps, batch * l.numKvHeads,
                                     model.pool->size()) &&
                         (!valuesOnly || steps >= kMinFlashStepDerivingKeys)
                     ? StepKernel::Flash
                     : StepKernel::Decode;
  if (stepKernel == StepKernel::Flash)
    attendWithFlash(model, l, cache, slices, steps, sinkData, outData);
  else
    attendWithDecode(model, l, kernel, cache, slices, steps, sinks, outData);
  multiplyRows(model, outData, batch * steps * l.numHeads * l.vHeadDim,
               cache.values.getScale());
}
