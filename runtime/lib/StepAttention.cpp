//===- StepAttention.cpp - A CPU decode step's attention ------------------===//

#include "StepAttention.h"

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

/// Work items [begin, end) of pieces laid end to end (piece i: items
/// [starts[i], starts[i + 1])), as body(i, first, last) for each piece's
/// share of them.
template <typename Body>
void forPieces(const std::vector<int64_t> &starts, int64_t begin, int64_t end,
               const Body &body) {
  size_t i =
      std::upper_bound(starts.begin(), starts.end(), begin) - starts.begin();
  for (--i; begin < end; ++i) {
    int64_t last = std::min(end, starts[i + 1]);
    if (last > begin)
      body(i, begin, last);
    begin = std::max(begin, last);
  }
}

/// Starts of pieces of sizes size(0), ..., size(n - 1) laid end to end, and
/// their total last.
template <typename Size> std::vector<int64_t> layOut(size_t n, Size size) {
  std::vector<int64_t> starts(n + 1, 0);
  for (size_t i = 0; i < n; ++i)
    starts[i + 1] = starts[i] + size(i);
  return starts;
}

/// The slice's queries, prepared (rotated, scaled) at its positions into
/// the model's scratch: one dispatch for every slice.
void prepareQueries(hybrid_rt_model &model, const LayerSpec &l,
                    const std::vector<StepSlice> &slices, int64_t steps,
                    const hybrid_rt_tensor *q) {
  PrepareFn prepare = model.kernels.get(l.kernel).prepareQ;
  int64_t batch = q->shape[0];
  Shape shape = {batch, steps, l.numHeads, l.headDim};
  model.preparedQ.resize(batch * steps * l.numHeads * l.headDim);
  Tensor4 input =
      makeTensor4(static_cast<const float *>(q->data), shape.data());
  Tensor4 output = makeTensor4(model.preparedQ.data(), shape.data());
  // The prepare kernel numbers rows b * steps + t of the whole tensor, a
  // slice's from entry * steps on.
  std::vector<int64_t> starts = layOut(
      slices.size(), [&](size_t i) { return slices[i].slice.batch * steps; });
  int64_t rows = starts.back();
  // Enough rows per chunk to amortise the claim, small enough to balance.
  int64_t grain = std::max<int64_t>(1, rows / (8 * model.pool->size()));
  model.pool->parallelFor(rows, grain, [&](int64_t begin, int64_t end) {
    forPieces(starts, begin, end, [&](size_t i, int64_t first, int64_t last) {
      Tensor4 in = input, o = output;
      prepare(&in, &o, slices[i].position, first, last);
    });
  });
}

/// Slice `x`'s step at `position` through the flash kernel, from its
/// prepared queries `q` [x.batch, steps, Hq, D] into `out` (its entries).
void attendWithFlash(hybrid_rt_model &model, const LayerSpec &l,
                     const StepCache &cache, const Slice &x, int64_t position,
                     int64_t steps, const float *q, const float *sinks,
                     float *out) {
  bool valuesOnly = keepsValuesOnly(l);
  int64_t total = position + steps, first = l.firstVisibleKey(position);
  Shape qShape = {x.batch, steps, l.numHeads, l.headDim};
  Shape kShape = {x.batch, cache.rows, l.numKvHeads, l.headDim};
  Shape vShape = {x.batch, cache.rows, l.numKvHeads, l.vHeadDim};
  Tensor4 va = cache.values.tensor(vShape, x.first);
  Tensor4 ka = valuesOnly ? va : cache.keys.tensor(kShape, x.first);
  // Narrower caches: the kernel compiled for them (`steps`), or for K=V
  // layers the prompt's kernel over values widened and keys derived from
  // them into scratch.
  FlashKeys read =
      cache.values.f32Data() || valuesOnly ? FlashKeys::F32 : FlashKeys::Cached;
  if (valuesOnly) {
    const float *values =
        widenCachedValues(model, cache.values, x.first, vShape, first, total);
    va = makeTensor4(values, vShape.data());
    ka = makeTensor4(deriveCachedKeys(model, l, values, kShape, first, total),
                     kShape.data());
  }
  // The kernel reads the cache in place from the step's first visible key
  // (a ring wraps at most once in between) and puts the step's queries at
  // the last T of the positions.
  Shape outShape = {x.batch, steps, l.numHeads, l.vHeadDim};
  runFlash(model, l, makeTensor4(q, qShape.data()), ka, va, total - first,
           first % cache.rows, sinks, makeTensor4(out, outShape.data()), read);
}

/// One slice's share of a decode dispatch: its tensors and its split of
/// the key range.
struct DecodeRun {
  Tensor4 q, k, v, partialMax, partialSum, out;
  Tensor5 partialOut;
  int64_t position, splits;
};

/// The steps of slices `slices[decoding]` through the decode kernel, from
/// the prepared queries into `out` ([N, steps, Hq, Dv]): one dispatch of
/// every slice's work items, then one of every output row's combine.
void attendWithDecode(hybrid_rt_model &model, const LayerSpec &l,
                      const KernelSpec &kernel, const StepCache &cache,
                      const std::vector<StepSlice> &slices,
                      const std::vector<size_t> &decoding, int64_t steps,
                      const hybrid_rt_tensor *sinks, float *out) {
  const KernelEntryPoints &fn = model.kernels.get(l.kernel);
  bool valuesOnly = keepsValuesOnly(l);
  size_t n = decoding.size();
  // A work item is up to decode_q_tile positions of a sequence for every
  // head, reading every kv head of the cache rows it visits.
  auto items = [&](size_t i) {
    return slices[decoding[i]].slice.batch * ceilDiv(steps, kernel.decodeQTile);
  };
  auto keys = [&](size_t i) {
    int64_t position = slices[decoding[i]].position;
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
  std::vector<int64_t> partials = layOut(n, [&](size_t i) {
    return splits[i] * slices[decoding[i]].slice.batch * steps * l.numHeads;
  });
  model.partialOut.resize(partials.back() * l.vHeadDim);
  model.partialMax.resize(partials.back());
  model.partialSum.resize(partials.back());

  std::vector<DecodeRun> runs;
  for (size_t i = 0; i < n; ++i) {
    const StepSlice &s = slices[decoding[i]];
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
    run.v = cache.values.tensor(vShape, x.first);
    // Values-only caches (K=V): the decode kernel derives keys from values.
    run.k = valuesOnly ? run.v : cache.keys.tensor(kShape, x.first);
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
      layOut(n, [&](size_t i) { return items(i) * splits[i]; });
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
  std::vector<int64_t> rows = layOut(
      n, [&](size_t i) { return slices[decoding[i]].slice.batch * steps; });
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
  int64_t group = l.numHeads / l.numKvHeads;
  std::vector<size_t> decoding;
  for (size_t i = 0; i < slices.size(); ++i) {
    const Slice &x = slices[i].slice;
    StepKernel stepKernel = model.fixedStepKernel;
    // The flash kernel of a values-only cache reads keys derived first:
    // worth it for steps of many tokens only.
    if (stepKernel == StepKernel::Automatic)
      stepKernel = prefersFlashForStep(group, steps, x.batch * l.numKvHeads,
                                       model.pool->size()) &&
                           (!valuesOnly || steps >= kMinFlashStepDerivingKeys)
                       ? StepKernel::Flash
                       : StepKernel::Decode;
    if (stepKernel == StepKernel::Decode) {
      decoding.push_back(i);
      continue;
    }
    attendWithFlash(
        model, l, cache, x, slices[i].position, steps,
        model.preparedQ.data() + x.entry * steps * l.numHeads * l.headDim,
        sinkData, outData + x.entry * steps * l.numHeads * l.vHeadDim);
  }
  if (!decoding.empty())
    attendWithDecode(model, l, kernel, cache, slices, decoding, steps, sinks,
                     outData);
  multiplyRows(model, outData, q->shape[0] * steps * l.numHeads * l.vHeadDim,
               cache.values.getScale());
}
