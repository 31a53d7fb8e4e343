//===- Session.cpp - Per-layer KV caches: prefill, decode, append ---------===//
//
// Every layer's cache is a [B, rows, Hkv, D] tensor of prepared (rotated)
// keys and a [B, rows, Hkv, Dv] tensor of values; the token at position p
// lives in row p % rows, so full caches (rows = max_seq) never wrap and ring
// and chunk caches reuse their rows. Host caches hold f32 or, where the
// kernels were compiled for it (--kv-dtype), bf16, f16 or f8 (CacheRows.h). K=V
// layers' values are their k, and their caches keep the values only: their
// decode kernel derives each key as it loads it (times the key scale, rotated
// by angles it steps key by key), and the flash kernel, for prompts and steps
// of many tokens, reads keys derived into scratch first. A step's attention is
// the compiler's decode kernel (split over the key range, merged by a combine
// kernel on CPUs, by its last split on GPUs), or for steps of many rows
// (chunked prefill) its flash kernel, which reads the cache in place too
// (StepKernel.h; StepAttention.h runs it for a call's slices at once).
//
//===----------------------------------------------------------------------===//

#include "CacheRows.h"
#include "Model.h"
#include "SequenceGather.h"
#include "SequenceSlices.h"
#include "StepAttention.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <optional>

using namespace hybrid::rt;

namespace {
/// How far one sequence of a layer's cache has come.
struct Progress {
  int64_t length = 0; // tokens seen
  // The most tokens it held since it was empty, as of the last truncation:
  // a truncation leaves rows of positions past the new length that
  // overwrote older ones (emptying it forgets them).
  int64_t reached = 0;
  // The first position written since it was empty: 0, or where a cache
  // restored from what another held starts (hybrid_rt_session_cache_write).
  int64_t start = 0;
  /// The oldest position `rows` rows still hold: they hold [heldFrom(),
  /// length), none where a truncation left only rows that overwrote older
  /// ones (a step there sees no earlier key).
  int64_t heldFrom(int64_t rows) const {
    return std::min(length, std::max({start, std::max(reached, length) - rows,
                                      int64_t(0)}));
  }
  bool operator==(const Progress &o) const {
    return length == o.length && reached == o.reached && start == o.start;
  }
};

struct LayerCache {
  std::string policy;
  int64_t rows = 0; // 0: no storage (shared, or not an attention layer)
  // Each sequence's (continuous batching: they may stand at different
  // lengths; a call runs them in slices, sequences at one progress).
  std::vector<Progress> progress;
  CacheRows keys, values; // host caches (K=V: values only)
  // f8: the k and v targets whose scales each prompt sets
  // (hybrid_rt_session_cache_scales_from_prompt).
  std::optional<std::array<float, 2>> scaleTargets;
#ifdef HYBRID_RT_CUDA
  cuda::DeviceCache device; // GPU models: the cache lives here
#endif
  int64_t deviceBytes() const {
#ifdef HYBRID_RT_CUDA
    return device.bytes();
#else
    return 0;
#endif
  }
  /// The progress of a slice's sequences (they stand at one).
  const Progress &of(const Slice &x) const { return progress[x.first]; }
  int64_t lengthOf(const Slice &x) const { return of(x).length; }
  int64_t heldFrom(const Slice &x) const { return of(x).heldFrom(rows); }
  /// Sets the progress of a slice's sequences.
  void set(const Slice &x, const Progress &p) {
    std::fill_n(progress.begin() + x.first, x.batch, p);
  }
  void setLength(const Slice &x, int64_t length) {
    Progress p = of(x);
    p.length = length;
    set(x, p);
  }
  /// The most tokens a sequence holds.
  int64_t longest() const {
    int64_t most = 0;
    for (const Progress &p : progress)
      most = std::max(most, p.length);
    return most;
  }
  /// Empties it: no row of any sequence holds a token.
  void empty() { std::fill(progress.begin(), progress.end(), Progress{}); }
  int64_t mirrorRows() const {
#ifdef HYBRID_RT_CUDA
    return device.mirror;
#else
    return 0;
#endif
  }
};
} // namespace

struct hybrid_rt_session {
  hybrid_rt_model *model;
  int64_t batch, maxSeq, maxStep;
  std::vector<LayerCache> caches;
  /// The sequences calls act on (hybrid_rt_session_select), in their
  /// tensors' order, kPaddingEntry for padding; empty: every sequence, in
  /// order.
  std::vector<int64_t> selected;
  int64_t callBatch() const {
    return selected.empty() ? batch : int64_t(selected.size());
  }
#ifdef HYBRID_RT_CUDA
  // GPU models: every layer's sequences' lengths on the device too
  // ([layers][batch]: DeviceCache::lengths), which the kernels read. Calls
  // captured in a CUDA graph advance only those (at each replay, whenever
  // the caller launches one), so once a call was captured the host's are
  // read back at every call outside a capture; a reset the stream could
  // not take is redone there.
  uint64_t deviceLengths = 0;
  bool captured = false, resetPending = false;
  // The selection on the device ([batch] int64s: the selection, padding
  // after it; 0, 1, ... for the whole batch), which the kernels of a step
  // of a selection read: written as it is selected, so that each replay of
  // a CUDA graph steps the selection current when it runs.
  uint64_t deviceSelection = 0;
  // The pinned memory selections reach the device through, so that a
  // select waits for no earlier work.
  cuda::HostStaging selectionStaging;
  ~hybrid_rt_session() {
    if (!model->cuda)
      return;
    for (LayerCache &c : caches)
      model->cuda->release(c.device);
    model->cuda->releaseLengths(deviceLengths);
    model->cuda->releaseLengths(deviceSelection);
    model->cuda->release(selectionStaging);
  }
#endif
};

namespace {
/// Rows a layer's cache needs for its policy.
int64_t cacheRows(const LayerSpec &l, int64_t maxSeq, int64_t maxStep) {
  if (l.cachePolicy == "ring")
    return std::min(maxSeq, l.window + maxStep - 1);
  if (l.cachePolicy == "chunk")
    return std::min(maxSeq, l.chunk + maxStep - 1);
  if (l.cachePolicy == "shared" || l.cachePolicy == "none")
    return 0;
  return maxSeq;
}

/// "1.5 GiB", or "12.0 MiB" below a GiB.
std::string describeBytes(double bytes) {
  constexpr double mib = 1024.0 * 1024.0;
  char text[64];
  if (bytes >= 1024 * mib)
    std::snprintf(text, sizeof(text), "%.1f GiB", bytes / (1024 * mib));
  else
    std::snprintf(text, sizeof(text), "%.1f MiB", bytes / mib);
  return text;
}

/// Rows a GPU cache of `rows` rows keeps past them: caches that wrap
/// mirror their first rows for the flash kernels' key tiles (of any layer:
/// shared layers read their source's), a tile's rows or all of a ring
/// shorter than that.
int64_t mirrorRows(int64_t rows, int64_t maxSeq, int64_t maxKeyTile) {
  return rows < maxSeq ? std::min(maxKeyTile, rows) : 0;
}

/// An error if a session's caches would take more memory than there is:
/// host caches (f32, bf16, f16 or f8, every layer that keeps its own) past the
/// host's memory (hybrid_rt_host_memory_bytes), where zero-filling them would
/// wake the out-of-memory killer rather than fail an allocation; device caches
/// (bf16, with their mirror rows) past the GPU's free memory, refused before
/// any is allocated.
std::string checkCacheMemory(hybrid_rt_model &model, int64_t batch,
                             int64_t maxSeq, int64_t maxStep,
                             int64_t maxKeyTile) {
  double bytes = 0; // in doubles: the product can overflow an int64_t
  for (const LayerSpec &l : model.manifest.layers) {
    if (!l.hasKernel())
      continue;
    int64_t rows = cacheRows(l, maxSeq, maxStep);
#ifdef HYBRID_RT_CUDA
    if (model.cuda) {
      bytes += cuda::DeviceCache::bytesFor(
          l, batch, rows, mirrorRows(rows, maxSeq, maxKeyTile));
      continue;
    }
#endif
    int64_t keyDim = keepsValuesOnly(l) ? 0 : l.headDim;
    bytes += double(batch) * double(rows) * double(l.numKvHeads) *
             double(keyDim + l.vHeadDim) *
             double(model.manifest.getCacheElementBytes(l.kernel));
  }
  auto more = [&](double held, const std::string &whose) {
    return "the caches take " + describeBytes(bytes) + ", more than the " +
           describeBytes(held) + " " + whose;
  };
#ifdef HYBRID_RT_CUDA
  if (model.cuda) {
    size_t free = 0, total = 0;
    if (!model.cuda->getMemory(free, total) || bytes <= double(free))
      return "";
    return more(double(free), "free on " + model.cuda->deviceName() + " (of " +
                                  describeBytes(double(total)) + ")");
  }
#endif
  double held = double(hybrid_rt_host_memory_bytes());
  if (held <= 0 || bytes <= held)
    return "";
  return more(held, "of memory this process may use");
}

const float *data(const hybrid_rt_tensor *t) {
  return t ? static_cast<const float *>(t->data) : nullptr;
}

/// "" if q is a rank-4 tensor, so that its seq dim can be read.
std::string checkQueryRank(const hybrid_rt_tensor *q) {
  if (!q)
    return "q is null";
  if (q->rank != 4)
    return "q must be a rank-4 [batch, seq, heads, head_dim] tensor, got "
           "rank " +
           std::to_string(q->rank);
  return "";
}

std::string layerWhere(const char *call, int64_t layer) {
  return std::string(call) + ": layer " + std::to_string(layer);
}

/// The slices a call on the session's selected sequences runs: sequences
/// standing at one progress in every layer run together.
std::vector<Slice> getSlices(const hybrid_rt_session &s) {
  return planSlices(s.selected, s.batch, [&](int64_t a, int64_t b) {
    for (const LayerCache &c : s.caches)
      if (!(c.progress[a] == c.progress[b]))
        return false;
    return true;
  });
}

/// Zeroes the entries of `out` ([B, ...]) that are padding in the
/// session's selection: calls write their slices' entries only (GPU decode
/// kernels write padding's zeros themselves).
hybrid_rt_status zeroPadding(const hybrid_rt_session &s, hybrid_rt_tensor *out,
                             const std::string &where) {
  if (!out)
    return HYBRID_RT_OK;
  for (size_t i = 0; i < s.selected.size(); ++i) {
    if (s.selected[i] != kPaddingEntry)
      continue;
#ifdef HYBRID_RT_CUDA
    if (s.model->cuda) {
      size_t perEntry = size_t(out->shape[1] * out->shape[2] * out->shape[3]);
      cuda::Operand rows = cuda::Operand::of(out).entries(int64_t(i), perEntry);
      if (cuda::Error e = s.model->cuda->zero(rows, perEntry); !e.empty())
        return fail(e.status(), where + ": " + e.message());
      continue;
    }
#endif
    size_t bytes = size_t(getEntryBytes(*out));
    std::memset(static_cast<char *>(out->data) + i * bytes, 0, bytes);
  }
  return HYBRID_RT_OK;
}

/// `where` for the messages about slice `x` of a call's `slices`: naming
/// its sequences, unless the call runs the whole batch at once.
std::string sliceWhere(const std::string &where, const hybrid_rt_session &s,
                       const std::vector<Slice> &slices, const Slice &x) {
  if (s.selected.empty() && slices.size() == 1)
    return where;
  return where + ", " + describeSlice(x);
}

/// Zeroed host rows for `c` (values, and keys unless `valuesOnly`; keys only
/// for a latent layer) of the element type the layer's kernels read; an error
/// if they overflow a size (INVALID_ARGUMENT) or cannot be allocated
/// (OUT_OF_MEMORY), recorded for the caller `where`.
hybrid_rt_status allocateHostCache(LayerCache &c, const LayerSpec &l,
                                   int64_t batch, bool valuesOnly,
                                   const KernelSpec &kernel,
                                   const std::string &where) {
  int64_t elementBytes = kernel.getCacheElementBytes();
  CacheElement element = getCacheElement(kernel.cacheDtype);
  auto elements = [&](int64_t dim, int64_t &n) {
    int64_t bytes;
    return !__builtin_mul_overflow(batch, c.rows, &n) &&
           !__builtin_mul_overflow(n, l.numKvHeads, &n) &&
           !__builtin_mul_overflow(n, dim, &n) &&
           !__builtin_mul_overflow(n, elementBytes, &bytes);
  };
  int64_t keyElements = 0, valueElements = 0;
  std::string what =
      std::to_string(c.rows) + " cache rows at batch " + std::to_string(batch);
  if (!elements(valuesOnly ? 0 : l.headDim, keyElements) ||
      !elements(readsValuesFromKeys(l) ? 0 : l.vHeadDim, valueElements))
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + ": " + what + " are more bytes than a size holds");
  int64_t keyBytes = keyElements * elementBytes,
          valueBytes = valueElements * elementBytes;
  try {
    c.keys.allocate(keyElements, element);
    c.values.allocate(valueElements, element);
  } catch (const std::exception &) { // bad_alloc, length_error
    return fail(HYBRID_RT_OUT_OF_MEMORY,
                where + ": " + what + " (" +
                    std::to_string((keyBytes + valueBytes) >> 20) +
                    " MiB) cannot be allocated");
  }
  return HYBRID_RT_OK;
}

int64_t getBytes(const LayerCache &c) {
  return c.keys.bytes() + c.values.bytes() + c.deviceBytes();
}

/// The rows `l`'s keys are read from (K=V: its values) and its values
/// (latent: its keys).
const CacheRows &getKeyRows(const LayerSpec &l, const LayerCache &c) {
  return keepsValuesOnly(l) ? c.values : c.keys;
}
const CacheRows &getValueRows(const LayerSpec &l, const LayerCache &c) {
  return readsValuesFromKeys(l) ? c.keys : c.values;
}

/// What every per-layer session call checks first: a session, a layer with
/// a kernel. Sets `where` ("CALL: layer N") for the call's messages.
hybrid_rt_status enterLayer(const hybrid_rt_session *s, const char *call,
                            int64_t layer, std::string &where,
                            const LayerSpec *&spec) {
  if (!s)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                std::string(call) + ": null session");
  where = layerWhere(call, layer);
  return getRunnableLayer(*s->model, layer, where, spec);
}

/// "" if `count` more tokens after `length` fit the session's max_seq.
std::string checkRoom(const hybrid_rt_session &s, int64_t length,
                      int64_t count) {
  if (length + count <= s.maxSeq)
    return "";
  return (length ? std::to_string(length) + " + " : std::string()) +
         std::to_string(count) + " tokens exceed the session's max_seq " +
         std::to_string(s.maxSeq);
}

/// Where the next step of layer `l` on slice `x` may start once its cache's
/// owner holds `p` tokens: at p, or for a layer reading another's cache,
/// which may skip tokens, at its own length or as far as max_step_tokens
/// tokens before p.
int64_t nextStepAt(const hybrid_rt_session &s, const LayerSpec &l,
                   const Slice &x, int64_t p) {
  if (l.cacheOwner() == l.index)
    return p;
  return std::max(std::min(s.caches[l.index].lengthOf(x), p), p - s.maxStep);
}

/// The first key position a step at `step` sees (`step` itself if none
/// before it).
int64_t firstKeySeen(const LayerSpec &l, int64_t step) {
  return std::min(l.firstVisibleKey(step), step);
}

/// Stores `count` tokens' values and keys (rotated; null where the cache
/// keeps values only; values null where it keeps keys only, latent) of
/// slice `x`'s sequences at positions from `position` on (their length, or
/// anywhere in an empty cache); into a cache whose scales come from its
/// prompts and no sequence of which holds a token, sets them from these
/// first.
void storeTokens(const hybrid_rt_session &s, const LayerSpec &l, LayerCache &c,
                 const Slice &x, const float *keys, const float *values,
                 int64_t count, int64_t position) {
  int64_t keyWidth = l.numKvHeads * l.headDim,
          valueWidth = l.numKvHeads * l.vHeadDim;
  if (c.longest() == 0 && c.scaleTargets) {
    if (keys)
      c.keys.setScaleFor(keys, x.batch * count * keyWidth,
                         (*c.scaleTargets)[0]);
    if (values)
      c.values.setScaleFor(values, x.batch * count * valueWidth,
                           (*c.scaleTargets)[1]);
  }
  ThreadPool *pool = s.model->pool.get();
  if (values)
    c.values.store(pool, values, x.sequences(), c.rows, position, count,
                   valueWidth);
  if (keys)
    c.keys.store(pool, keys, x.sequences(), c.rows, position, count, keyWidth);
}

/// Appends `count` tokens of k (and v) to slice `x`'s sequences at their
/// length.
void appendTokens(hybrid_rt_session &s, const LayerSpec &l, LayerCache &c,
                  const Slice &x, const float *k, const float *v,
                  int64_t count) {
  int64_t length = c.lengthOf(x);
  const float *keys =
      keepsValuesOnly(l) ? nullptr
                         : deriveKeys(*s.model, l, k,
                                      {x.batch, count, l.numKvHeads, l.headDim},
                                      /*firstPosition=*/length);
  storeTokens(s, l, c, x, keys, readsValuesFromKeys(l) ? nullptr : v, count,
              length);
}

/// `scale` as printf's %g writes it.
std::string describeScale(float scale) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", double(scale));
  return text;
}

/// What the cache scale calls check first (enterLayer's, then): a layer
/// with an f8 cache of its own that steps read, empty unless the call sets
/// the scales it holds (`scales`: k's and v's; null for calls setting
/// none).
hybrid_rt_status enterScaledCache(const hybrid_rt_session *s, const char *call,
                                  int64_t layer, std::string &where,
                                  const LayerSpec *&spec,
                                  const float *scales = nullptr) {
  if (hybrid_rt_status status = enterLayer(s, call, layer, where, spec))
    return status;
  const LayerSpec &l = *spec;
  const Manifest &manifest = s->model->manifest;
  const LayerCache &c = s->caches[layer];
  if (c.policy == "shared")
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + " reads layer " + std::to_string(l.sourceLayer) +
                    "'s cache, at that layer's scales: set them there");
  if (manifest.kernels.at(l.kernel).decode.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + " is bidirectional: no step reads its cache");
  std::string dtype = manifest.getCacheDtype(l.kernel);
  if (c.rows == 0 || dtype != "f8")
    return fail(
        HYBRID_RT_INVALID_ARGUMENT,
        where +
            ": cache scales apply to f8 caches (hybrid-compile "
            "--kv-dtype f8 for a CPU); this layer's " +
            (c.rows == 0 ? std::string("has no cache") : "holds " + dtype));
  // A values-only cache (K=V) derives its keys at its values' scale, a
  // keys-only one (latent) reads its values at its keys' (the scales
  // hybrid_rt_session_cache_scales_get reports).
  bool same = scales && scales[0] == getKeyRows(l, c).getScale() &&
              scales[1] == getValueRows(l, c).getScale();
  if (int64_t held = c.longest(); held > 0 && !same)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + "'s cache holds " + std::to_string(held) +
                    " tokens stored at its current scales: set scales while "
                    "it is empty (after create or reset), or to those it "
                    "holds");
  return HYBRID_RT_OK;
}

/// "" if `scale` can be a cache scale, else why not.
std::string checkCacheScale(const char *name, float scale) {
  if (std::isfinite(scale) && scale > 0)
    return "";
  return std::string(name) + " is " + describeScale(scale) +
         "; a cache scale is positive and finite";
}

#ifdef HYBRID_RT_CUDA
/// Gives every layer's sequences their device lengths (zeroed), the
/// session its device selection, and reserves the scratch a captured
/// decode step of the session's largest steps uses (a capture cannot
/// allocate).
cuda::Error allocateDeviceLengths(hybrid_rt_session &s) {
  hybrid_rt_model &model = *s.model;
  if (cuda::Error e = model.cuda->allocateLengths(
          int64_t(s.caches.size()) * s.batch, s.deviceLengths);
      !e.empty())
    return e;
  if (cuda::Error e = model.cuda->allocateLengths(s.batch, s.deviceSelection);
      !e.empty())
    return e;
  if (cuda::Error e = model.cuda->allocate(s.selectionStaging,
                                           size_t(s.batch) * sizeof(int64_t));
      !e.empty())
    return e;
  for (size_t i = 0; i < s.caches.size(); ++i) {
    cuda::DeviceCache &device = s.caches[i].device;
    device.lengths = s.deviceLengths + i * s.batch * sizeof(int64_t);
    device.batch = s.batch;
  }
  for (const LayerSpec &l : model.manifest.layers) {
    if (!l.hasKernel())
      continue;
    const KernelSpec &kernel = model.manifest.kernels.at(l.kernel);
    if (kernel.decode.empty())
      continue;
    int64_t owner = l.cacheOwner();
    if (cuda::Error e = model.cuda->reserveForCapture(
            l, kernel, s.batch, s.maxStep, s.caches[owner].rows);
        !e.empty())
      return e;
  }
  return {};
}

/// Brings the host's lengths up to date before a call, unless the stream
/// is capturing a CUDA graph (`capturing`): a pending reset, then, once a
/// call was captured, the lengths replays left on the device (a wait for
/// the stream). Returns why the session cannot go on, if it cannot:
/// replays that ran past max_seq, or the driver's error.
cuda::Error syncLengths(hybrid_rt_session &s, bool &capturing) {
  capturing = false;
  cuda::Backend *cuda = s.model->cuda.get();
  if (!cuda)
    return {};
  if (cuda::Error e = cuda->getCapturing(capturing); !e.empty() || capturing)
    return e;
  int64_t layers = s.caches.size(), count = layers * s.batch;
  if (s.resetPending) {
    if (cuda::Error e = cuda->resetLengths(s.deviceLengths, count); !e.empty())
      return e;
    s.resetPending = false;
  }
  if (!s.captured)
    return {};
  std::vector<int64_t> lengths(count);
  if (cuda::Error e = cuda->readLengths(s.deviceLengths, count, lengths.data());
      !e.empty())
    return e;
  std::string overrun;
  for (int64_t i = 0; i < layers; ++i)
    for (int64_t b = 0; b < s.batch; ++b) {
      int64_t length = lengths[i * s.batch + b];
      s.caches[i].setLength({b, 1, 0}, length);
      if (length > s.maxSeq && overrun.empty())
        overrun = "layer " + std::to_string(i) +
                  (s.batch > 1 ? ", " + describeSlice({b, 1, 0}) : "") +
                  ": CUDA graph replays took it to " + std::to_string(length) +
                  " tokens, past the session's max_seq " +
                  std::to_string(s.maxSeq) +
                  " (the steps past it overwrote the oldest cache rows): "
                  "reset the session";
    }
  if (overrun.empty())
    return {};
  return cuda::Error(overrun, HYBRID_RT_INVALID_ARGUMENT);
}

/// Sets the device lengths of `layer`'s sequences (null: every layer's) to
/// the host's (a call outside captures that moved them: the device's
/// follow). One copy either way: the layers' lengths are consecutive.
cuda::Error writeDeviceLengths(hybrid_rt_session &s,
                               const LayerCache *layer = nullptr) {
  std::vector<int64_t> lengths;
  for (const LayerCache &c : s.caches)
    if (!layer || &c == layer)
      for (const Progress &p : c.progress)
        lengths.push_back(p.length);
  return s.model->cuda->writeLengths(layer ? layer->device.lengths
                                           : s.deviceLengths,
                                     int64_t(lengths.size()), lengths.data());
}

/// The device int64s naming the cache sequence of each entry of a step: 0
/// for the whole batch (entry i is sequence i), else the selection's
/// (hybrid_rt_session_select keeps them current).
uint64_t getDeviceSequences(const hybrid_rt_session &s) {
  return s.selected.empty() ? 0 : s.deviceSelection;
}

/// Writes `selection` (empty: the whole batch) to the session's device
/// selection, padded to the batch, in stream order (queued through pinned
/// memory: a server selecting before each graph replay keeps the GPU
/// busy); refused while the stream is capturing a CUDA graph (a copy there
/// would join the graph).
cuda::Error writeDeviceSelection(hybrid_rt_session &s,
                                 const std::vector<int64_t> &selection) {
  bool capturing = false;
  if (cuda::Error e = s.model->cuda->getCapturing(capturing); !e.empty())
    return e;
  if (capturing)
    return cuda::Error("the stream is capturing a CUDA graph: select before "
                       "the capture (each replay steps the selection current "
                       "when it runs)",
                       HYBRID_RT_UNSUPPORTED);
  std::vector<int64_t> entries(size_t(s.batch), kPaddingEntry);
  if (selection.empty())
    std::iota(entries.begin(), entries.end(), int64_t(0));
  else
    std::copy(selection.begin(), selection.end(), entries.begin());
  return s.model->cuda->writeLengthsQueued(s.deviceSelection, s.batch,
                                           entries.data(), s.selectionStaging);
}

/// The runs of a GPU call's entries that are consecutive sequences (one
/// for the whole batch): prompts and cache copies run each as a batch of
/// its own, over a view of its sequences' caches.
std::vector<Slice> getDeviceRuns(const hybrid_rt_session &s) {
  return planSlices(s.selected, s.batch, [](int64_t, int64_t) { return true; });
}

/// A GPU call's q, k, v and out [B, tokens, heads, dim] (any absent),
/// restricted to slice `x`'s entries.
struct SliceOperands {
  cuda::Operand q, k, v, out;
  SliceOperands(const LayerSpec &l, const Slice &x, int64_t tokens,
                const hybrid_rt_tensor *qt, const hybrid_rt_tensor *kt,
                const hybrid_rt_tensor *vt, const hybrid_rt_tensor *outt) {
    size_t n = size_t(tokens);
    q = cuda::Operand::of(qt).entries(x.entry, n * l.numHeads * l.headDim);
    k = cuda::Operand::of(kt).entries(x.entry, n * l.numKvHeads * l.headDim);
    v = cuda::Operand::of(vt).entries(x.entry, n * l.numKvHeads * l.vHeadDim);
    out = cuda::Operand::of(outt).entries(x.entry, n * l.numHeads * l.vHeadDim);
  }
};

/// syncLengths for a call that no capture may record (`what`, as the error
/// names it): one changing rows or lengths as the host knows them, which
/// the replays of captured steps would not see (the lengths they leave are
/// not known until they run), or copying rows to or from host memory.
hybrid_rt_status enterUncaptured(hybrid_rt_session &s, const std::string &where,
                                 const char *what) {
  bool capturing = false;
  if (cuda::Error e = syncLengths(s, capturing); !e.empty())
    return fail(e.status(), where + ": " + e.message());
  if (capturing)
    return fail(HYBRID_RT_UNSUPPORTED,
                where + ": the stream is capturing a CUDA graph; " + what +
                    " cannot be captured (only decode steps and appends): "
                    "call outside the capture");
  return HYBRID_RT_OK;
}
#endif
/// "" if layer `l`'s cache `c` has rows of its own, else why not (for
/// `where`).
std::string checkOwnCache(const LayerSpec &l, const LayerCache &c) {
  if (c.rows > 0)
    return "";
  return " has no cache of its own (policy " + c.policy + ")" +
         (l.cacheOwner() != l.index
              ? ": it reads layer " + std::to_string(l.cacheOwner()) + "'s"
              : std::string());
}

/// What cache_read and cache_write (`what`, as a refused capture names it)
/// check first (enterLayer's, then): a layer with a cache of its own,
/// tensors k [B, T, Hkv, D] (null for K=V layers, which keep values only)
/// and v [B, T, Hkv, Dv] (null for latent layers, which keep keys only) of
/// one T, which it sets; on GPUs, no capture.
hybrid_rt_status enterCacheRows(hybrid_rt_session *s, const char *call,
                                const char *what, int64_t layer,
                                const hybrid_rt_tensor *k,
                                const hybrid_rt_tensor *v, std::string &where,
                                const LayerSpec *&spec, int64_t &count) {
  if (hybrid_rt_status status = enterLayer(s, call, layer, where, spec))
    return status;
  const LayerSpec &l = *spec;
  if (std::string error = checkOwnCache(l, s->caches[layer]); !error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + error);
  if (l.kEqV && k)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + " keeps its values only (K=V), from which its keys "
                        "are derived: pass k = NULL");
  if (l.latent && v)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + " keeps its keys only (latent), whose first "
                        "v_head_dim dims are its values: pass v = NULL");
  const hybrid_rt_tensor *first = l.kEqV ? v : k;
  count = first && first->rank == 4 ? first->shape[1] : 0;
  std::string error;
  if (!l.kEqV)
    error =
        checkOperand("k", k, {s->callBatch(), count, l.numKvHeads, l.headDim},
                     "[batch, seq, kv_heads, head_dim]", *s->model);
  if (error.empty() && !l.latent)
    error =
        checkOperand("v", v, {s->callBatch(), count, l.numKvHeads, l.vHeadDim},
                     "[batch, seq, kv_heads, v_head_dim]", *s->model);
  if (!error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
#ifdef HYBRID_RT_CUDA
  return enterUncaptured(*s, where, what);
#else
  (void)what;
  return HYBRID_RT_OK;
#endif
}

} // namespace

extern "C" {

hybrid_rt_status
hybrid_rt_session_create(hybrid_rt_model *model,
                         const hybrid_rt_session_options *options,
                         hybrid_rt_session **session) try {
  CallLock lock(model);
  if (!model || !options || !session)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                "hybrid_rt_session_create: null argument");
  *session = nullptr;
  const hybrid_rt_session_options &o = *options;
  if (o.batch <= 0 || o.max_seq <= 0 || o.max_step_tokens <= 0)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                "hybrid_rt_session_create: batch (" + std::to_string(o.batch) +
                    "), max_seq (" + std::to_string(o.max_seq) +
                    ") and max_step_tokens (" +
                    std::to_string(o.max_step_tokens) + ") must be positive");
  auto s = std::make_unique<hybrid_rt_session>();
  s->model = model;
  s->batch = o.batch;
  s->maxSeq = o.max_seq;
  s->maxStep = std::min(o.max_step_tokens, o.max_seq);
  int64_t maxKeyTile = 0; // GPU rings' mirror rows
  for (const auto &[name, kernel] : model->manifest.kernels)
    maxKeyTile = std::max(maxKeyTile, kernel.kTile);
  if (std::string error =
          checkCacheMemory(*model, s->batch, s->maxSeq, s->maxStep, maxKeyTile);
      !error.empty())
    return fail(HYBRID_RT_OUT_OF_MEMORY,
                "hybrid_rt_session_create: batch " + std::to_string(s->batch) +
                    ", max_seq " + std::to_string(s->maxSeq) + ": " + error);
  for (const LayerSpec &l : model->manifest.layers) {
    LayerCache c;
    c.progress.resize(size_t(s->batch));
    c.policy = l.hasKernel() ? (l.cachePolicy.empty() ? "full" : l.cachePolicy)
                             : "none";
    if (l.hasKernel()) {
      c.rows = cacheRows(l, s->maxSeq, s->maxStep);
#ifdef HYBRID_RT_CUDA
      if (model->cuda) {
        // bf16 on the device.
        int64_t mirror = mirrorRows(c.rows, s->maxSeq, maxKeyTile);
        s->caches.push_back(std::move(c));
        LayerCache &added = s->caches.back();
        if (added.rows > 0)
          if (cuda::Error e = model->cuda->allocate(l, s->batch, added.rows,
                                                    mirror, added.device);
              !e.empty())
            return fail(e.status(), "hybrid_rt_session_create: " + e.message());
        continue;
      }
#endif
      if (hybrid_rt_status status = allocateHostCache(
              c, l, s->batch, keepsValuesOnly(l),
              model->manifest.kernels.at(l.kernel),
              layerWhere("hybrid_rt_session_create", l.index)))
        return status;
    }
    s->caches.push_back(std::move(c));
  }
#ifdef HYBRID_RT_CUDA
  if (model->cuda)
    if (cuda::Error e = allocateDeviceLengths(*s); !e.empty())
      return fail(e.status(), "hybrid_rt_session_create: " + e.message());
#endif
  *session = s.release();
  ++model->sessions;
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_create");
}

void hybrid_rt_session_destroy(hybrid_rt_session *session) {
  if (!session)
    return;
  hybrid_rt_model *model = session->model;
  bool lastOfClosed = false;
  {
    CallLock lock(model);
    delete session;
    lastOfClosed = --model->sessions == 0 && model->closed;
  }
  if (lastOfClosed)
    delete model;
}

void hybrid_rt_session_reset(hybrid_rt_session *session) {
  CallLock lock(session ? session->model : nullptr);
  if (!session)
    return;
  for (LayerCache &c : session->caches)
    c.empty();
#ifdef HYBRID_RT_CUDA
  // In a capture the graph resets them (at each replay); where the stream
  // cannot take the reset now (it would join another stream's capture),
  // the next call does it.
  if (cuda::Backend *cuda = session->model->cuda.get()) {
    bool capturing = false;
    session->resetPending =
        !cuda->getCapturing(capturing).empty() ||
        !cuda->resetLengths(session->deviceLengths,
                            int64_t(session->caches.size()) * session->batch)
             .empty();
    session->captured |= capturing && !session->resetPending;
  }
#endif
}

hybrid_rt_status hybrid_rt_session_select(hybrid_rt_session *s,
                                          const int64_t *sequences,
                                          int64_t count) try {
  CallLock lock(s ? s->model : nullptr);
  std::string where = "hybrid_rt_session_select";
  if (!s || (count > 0 && !sequences))
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": null argument");
  if (count < 0 || count > s->batch)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + ": " + std::to_string(count) +
                    " sequences of a batch of " + std::to_string(s->batch));
  if (std::string error = checkSelection(sequences, count, s->batch);
      !error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  bool whole = count == 0 || count == s->batch;
  for (int64_t i = 0; whole && i < count; ++i)
    whole = sequences[i] == i;
  std::vector<int64_t> selection;
  if (!whole)
    selection.assign(sequences, sequences + count);
#ifdef HYBRID_RT_CUDA
  if (s->model->cuda && selection != s->selected)
    if (cuda::Error e = writeDeviceSelection(*s, selection); !e.empty())
      return fail(e.status(), where + ": " + e.message());
#endif
  s->selected = std::move(selection);
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_select");
}

hybrid_rt_status hybrid_rt_session_reorder(hybrid_rt_session *s,
                                           const int64_t *order,
                                           int64_t count) try {
  CallLock lock(s ? s->model : nullptr);
  std::string where = "hybrid_rt_session_reorder";
  if (!s || !order)
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": null argument");
  if (count != s->batch)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + ": an order of " + std::to_string(count) +
                    " sequences for a batch of " + std::to_string(s->batch));
  std::string error;
  SequenceGather gather = SequenceGather::plan(order, s->batch, error);
  if (!error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
#ifdef HYBRID_RT_CUDA
  if (hybrid_rt_status status = enterUncaptured(*s, where, "reordering"))
    return status;
#endif
  if (gather.empty())
    return HYBRID_RT_OK;
  const Manifest &manifest = s->model->manifest;
  for (size_t i = 0; i < s->caches.size(); ++i) {
    LayerCache &c = s->caches[i];
    // The rows that hold tokens (a full cache's first `length`).
    int64_t live = std::min(c.rows, c.longest());
    std::vector<Progress> before = c.progress;
    for (int64_t b = 0; b < s->batch; ++b)
      c.progress[b] = before[order[b]];
    if (live == 0)
      continue;
#ifdef HYBRID_RT_CUDA
    if (s->model->cuda) {
      if (cuda::Error e =
              s->model->cuda->gatherSequences(c.device, s->batch, live, gather);
          !e.empty())
        return fail(e.status(),
                    layerWhere(where.c_str(), int64_t(i)) + ": " + e.message());
      continue;
    }
#endif
    const LayerSpec &l = manifest.layers[i];
    int64_t valueWidth = l.numKvHeads * l.vHeadDim;
    if (!readsValuesFromKeys(l))
      c.values.gather(gather, s->batch, live * valueWidth);
    if (!keepsValuesOnly(l))
      c.keys.gather(gather, s->batch, live * l.numKvHeads * l.headDim);
  }
#ifdef HYBRID_RT_CUDA
  // The sequences' lengths move with them.
  if (s->model->cuda)
    if (cuda::Error e = writeDeviceLengths(*s); !e.empty())
      return fail(e.status(), where + ": " + e.message());
#endif
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_reorder");
}

hybrid_rt_status hybrid_rt_session_truncate(hybrid_rt_session *s,
                                            int64_t length) try {
  CallLock lock(s ? s->model : nullptr);
  std::string where = "hybrid_rt_session_truncate";
  if (!s)
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": null session");
  if (length < 0)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + ": length " + std::to_string(length) + " is negative");
#ifdef HYBRID_RT_CUDA
  if (hybrid_rt_status status = enterUncaptured(*s, where, "truncation"))
    return status;
#endif
  // Every layer and sequence first, so that a refusal changes none: a cache
  // that wraps must still hold every key the next step of each layer
  // reading it sees.
  std::vector<Slice> slices = getSlices(*s);
  for (LayerCache &c : s->caches)
    for (const Slice &x : slices) {
      Progress p = c.of(x);
      p.reached = std::max(p.reached, p.length);
      c.set(x, p);
    }
  const Manifest &manifest = s->model->manifest;
  for (const LayerSpec &l : manifest.layers) {
    // Bidirectional layers have no steps.
    if (!l.hasKernel() || manifest.kernels.at(l.kernel).decode.empty())
      continue;
    const LayerCache &owner = s->caches[l.cacheOwner()];
    for (const Slice &x : slices) {
      if (owner.lengthOf(x) <= length || owner.rows == 0)
        continue;
      int64_t oldest = owner.heldFrom(x);
      // Whether the keys the next step sees (up to p) are held.
      auto held = [&](int64_t p) {
        int64_t from = firstKeySeen(l, nextStepAt(*s, l, x, p));
        return from >= p || from >= oldest;
      };
      if (held(length))
        continue;
      int64_t reach = length;
      while (reach < owner.lengthOf(x) && !held(reach))
        ++reach;
      int64_t step = nextStepAt(*s, l, x, length);
      return fail(
          HYBRID_RT_INVALID_ARGUMENT,
          sliceWhere(layerWhere(where.c_str(), l.index), *s, slices, x) +
              ": a step at position " + std::to_string(step) +
              " sees keys from position " +
              std::to_string(firstKeySeen(l, step)) + ", and the " +
              owner.policy + " cache" +
              (l.cacheOwner() != l.index
                   ? " of layer " + std::to_string(l.cacheOwner())
                   : std::string()) +
              " (" + std::to_string(owner.rows) +
              " rows) holds positions from " + std::to_string(oldest) +
              " on: truncate to " + std::to_string(reach) + " or later");
    }
  }
  std::vector<std::vector<Progress>> before;
  for (LayerCache &c : s->caches) {
    before.push_back(c.progress);
    for (const Slice &x : slices) {
      Progress p = c.of(x);
      p.length = std::min(p.length, length);
      c.set(x, p.length == 0 ? Progress{} : p);
    }
  }
#ifdef HYBRID_RT_CUDA
  // The device's lengths follow: where they cannot be written, the host's
  // go back as they were too.
  if (s->model->cuda)
    if (cuda::Error e = writeDeviceLengths(*s); !e.empty()) {
      for (size_t i = 0; i < s->caches.size(); ++i)
        s->caches[i].progress = std::move(before[i]);
      return fail(e.status(), where + ": " + e.message());
    }
#endif
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_truncate");
}

hybrid_rt_status hybrid_rt_session_cache_info(const hybrid_rt_session *s,
                                              int64_t layer,
                                              hybrid_rt_cache_info *info) try {
  CallLock lock(s ? s->model : nullptr);
  if (!s || !info)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                "hybrid_rt_session_cache_info: null argument");
  if (layer < 0 || layer >= int64_t(s->caches.size()))
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                layerWhere("hybrid_rt_session_cache_info", layer) +
                    " is out of range [0, " + std::to_string(s->caches.size()) +
                    ")");
#ifdef HYBRID_RT_CUDA
  bool capturing = false;
  if (cuda::Error e =
          syncLengths(const_cast<hybrid_rt_session &>(*s), capturing);
      !e.empty())
    return fail(e.status(), "hybrid_rt_session_cache_info: " + e.message());
#endif
  const LayerCache &c = s->caches[layer];
  const LayerSpec &l = s->model->manifest.layers[layer];
  // Lengths are the first selected sequence's (padding's: sequence 0's).
  Slice first = {0, 1, 0};
  for (int64_t b : s->selected)
    if (b != kPaddingEntry) {
      first.first = b;
      break;
    }
  *info = {c.policy.c_str(),
           c.rows,
           getBytes(c),
           c.lengthOf(first),
           l.sourceLayer,
           l.kEqV,
           c.mirrorRows(),
           l.hasKernel() ? s->caches[l.cacheOwner()].heldFrom(first) : 0,
           l.hasKernel() ? s->model->manifest.getCacheDtype(l.kernel).c_str()
                         : "",
           l.latent};
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_cache_info");
}

int64_t hybrid_rt_session_cache_bytes(const hybrid_rt_session *s) {
  CallLock lock(s ? s->model : nullptr);
  int64_t total = 0;
  if (s)
    for (const LayerCache &c : s->caches)
      total += getBytes(c);
  return total;
}

hybrid_rt_status hybrid_rt_session_cache_scales_set(hybrid_rt_session *s,
                                                    int64_t layer, float kScale,
                                                    float vScale) try {
  CallLock lock(s ? s->model : nullptr);
  std::string where;
  const LayerSpec *spec = nullptr;
  float scales[2] = {kScale, vScale};
  if (hybrid_rt_status status = enterScaledCache(
          s, "hybrid_rt_session_cache_scales_set", layer, where, spec, scales))
    return status;
  for (auto [name, scale] : {std::pair{"k_scale", kScale}, {"v_scale", vScale}})
    if (std::string error = checkCacheScale(name, scale); !error.empty())
      return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  if ((keepsValuesOnly(*spec) || readsValuesFromKeys(*spec)) &&
      kScale != vScale)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where +
                    (keepsValuesOnly(*spec)
                         ? " keeps its values only (K=V), from which keys are "
                           "derived"
                         : " keeps its keys only (latent), whose first dims "
                           "are the values") +
                    ": k_scale " + describeScale(kScale) +
                    " must equal v_scale " + describeScale(vScale));
  LayerCache &c = s->caches[layer];
  c.keys.setScale(kScale);
  c.values.setScale(vScale);
  c.scaleTargets.reset();
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_cache_scales_set");
}

hybrid_rt_status
hybrid_rt_session_cache_scales_from_prompt(hybrid_rt_session *s, int64_t layer,
                                           float kTarget, float vTarget) try {
  CallLock lock(s ? s->model : nullptr);
  std::string where;
  const LayerSpec *spec = nullptr;
  if (hybrid_rt_status status = enterScaledCache(
          s, "hybrid_rt_session_cache_scales_from_prompt", layer, where, spec))
    return status;
  for (auto [name, target] :
       {std::pair{"k_target", kTarget}, {"v_target", vTarget}})
    if (!(target > 0 && target <= 448))
      return fail(HYBRID_RT_INVALID_ARGUMENT,
                  where + ": " + name + " is " + describeScale(target) +
                      "; a target magnitude lies in (0, 448], E4M3FN's range");
  s->caches[layer].scaleTargets = std::array{kTarget, vTarget};
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_cache_scales_from_prompt");
}

hybrid_rt_status hybrid_rt_session_cache_scales_get(const hybrid_rt_session *s,
                                                    int64_t layer,
                                                    float *kScale,
                                                    float *vScale) try {
  CallLock lock(s ? s->model : nullptr);
  std::string where;
  const LayerSpec *spec = nullptr;
  if (hybrid_rt_status status = enterLayer(
          s, "hybrid_rt_session_cache_scales_get", layer, where, spec))
    return status;
  if (!kScale || !vScale)
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": null argument");
  const LayerSpec &owner = s->model->manifest.layers[spec->cacheOwner()];
  const LayerCache &c = s->caches[owner.index];
  // A values-only cache (K=V) derives its keys from the values, at their
  // scale; a keys-only one (latent) reads its values at its keys'.
  *kScale = getKeyRows(owner, c).getScale();
  *vScale = getValueRows(owner, c).getScale();
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_cache_scales_get");
}

hybrid_rt_status hybrid_rt_session_prefill(hybrid_rt_session *s, int64_t layer,
                                           const hybrid_rt_tensor *q,
                                           const hybrid_rt_tensor *k,
                                           const hybrid_rt_tensor *v,
                                           const hybrid_rt_tensor *sinks,
                                           hybrid_rt_tensor *out) try {
  CallLock lock(s ? s->model : nullptr);
  std::string where;
  const LayerSpec *spec = nullptr;
  if (hybrid_rt_status status =
          enterLayer(s, "hybrid_rt_session_prefill", layer, where, spec))
    return status;
  const LayerSpec &l = *spec;
  LayerCache &c = s->caches[layer];
#ifdef HYBRID_RT_CUDA
  bool capturing = false;
  if (cuda::Error e = syncLengths(*s, capturing); !e.empty())
    return fail(e.status(), where + ": " + e.message());
#endif
  if (std::string error = checkQueryRank(q); !error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  int64_t seq = q->shape[1];
  if (std::string error =
          checkLayerOperands(l, s->callBatch(), seq, q, k, v, sinks, out,
                             /*withKeys=*/true, *s->model);
      !error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  if (l.kEqV)
    v = k;
  if (seq <= 0)
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": an empty prompt");
  if (std::string error = checkRoom(*s, 0, seq); !error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  std::vector<Slice> slices = getSlices(*s);
  for (const Slice &x : slices) {
    std::string at = sliceWhere(where, *s, slices, x);
    if (int64_t held = c.lengthOf(x); held != 0)
      return fail(HYBRID_RT_INVALID_ARGUMENT,
                  at + " already holds " + std::to_string(held) +
                      " tokens: extend it with hybrid_rt_session_decode");
    if (c.policy != "shared")
      continue;
    if (int64_t held = s->caches[l.sourceLayer].lengthOf(x); held != seq)
      return fail(HYBRID_RT_INVALID_ARGUMENT,
                  at + " reads layer " + std::to_string(l.sourceLayer) +
                      "'s cache, which holds " + std::to_string(held) +
                      " tokens, not " + std::to_string(seq) +
                      ": prefill the source first");
  }
#ifdef HYBRID_RT_CUDA
  if (hybrid_rt_model &model = *s->model; model.cuda) {
    // Each run of consecutive sequences is a prompt of its own over a view
    // of their caches (the flash kernel's batch coordinate is the cache's).
    using cuda::Operand;
    std::vector<Slice> runs = getDeviceRuns(*s);
    for (const Slice &x : runs) {
      cuda::DeviceCache cache = c.device.sequences(x.first, x.batch), source;
      SliceOperands o(l, x, seq, q, k, v, out);
      if (c.policy == "shared")
        source = s->caches[l.sourceLayer].device.sequences(x.first, x.batch);
      if (cuda::Error e = model.cuda->prefill(
              l, model.manifest.kernels.at(l.kernel), x.batch, seq, o.q, o.k,
              o.v, Operand::of(sinks), o.out, &cache,
              c.policy == "shared" ? &source : nullptr);
          !e.empty())
        return fail(e.status(),
                    sliceWhere(where, *s, runs, x) + ": " + e.message());
      c.setLength(x, seq);
    }
    return zeroPadding(*s, out, where);
  }
#endif
  for (const Slice &x : slices) {
    OperandSlice qx(q, x), kx(k, x), vx(v, x), outx(out, x);
    const float *keys = runPrefill(
        *s->model, l, {x.batch, seq, l.numHeads, l.headDim}, data(qx.get()),
        {x.batch, seq, l.numKvHeads, l.headDim}, data(kx.get()),
        {x.batch, seq, l.numKvHeads, l.vHeadDim}, data(vx.get()), data(sinks),
        static_cast<float *>(outx.get()->data));
    if (c.rows > 0)
      storeTokens(*s, l, c, x, keepsValuesOnly(l) ? nullptr : keys,
                  readsValuesFromKeys(l) ? nullptr : data(vx.get()), seq,
                  /*position=*/0);
    c.setLength(x, seq);
  }
  return zeroPadding(*s, out, where);
} catch (...) {
  return failFromException("hybrid_rt_session_prefill");
}

hybrid_rt_status hybrid_rt_session_append(hybrid_rt_session *s, int64_t layer,
                                          const hybrid_rt_tensor *k,
                                          const hybrid_rt_tensor *v) try {
  CallLock lock(s ? s->model : nullptr);
  std::string where;
  const LayerSpec *spec = nullptr;
  if (hybrid_rt_status status =
          enterLayer(s, "hybrid_rt_session_append", layer, where, spec))
    return status;
  const LayerSpec &l = *spec;
  LayerCache &c = s->caches[layer];
  bool capturing = false; // a CUDA graph: lengths are the device's
#ifdef HYBRID_RT_CUDA
  if (cuda::Error e = syncLengths(*s, capturing); !e.empty())
    return fail(e.status(), where + ": " + e.message());
#endif
  if (std::string error = checkOwnCache(l, c); !error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + error);
  int64_t count = k && k->rank == 4 ? k->shape[1] : 0;
  std::string error =
      checkOperand("k", k, {s->callBatch(), count, l.numKvHeads, l.headDim},
                   "[batch, seq, kv_heads, head_dim]", *s->model);
  if (error.empty())
    error = checkValues(l, s->callBatch(), count, k, v, *s->model);
  if (!error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  if (l.kEqV)
    v = k;
  std::vector<Slice> slices = getSlices(*s);
  for (const Slice &x : slices)
    if (std::string error = checkRoom(*s, c.lengthOf(x), count);
        !error.empty() && !capturing)
      return fail(HYBRID_RT_INVALID_ARGUMENT,
                  sliceWhere(where, *s, slices, x) + ": " + error);
#ifdef HYBRID_RT_CUDA
  if (hybrid_rt_model &model = *s->model; model.cuda) {
    // One launch over the selected sequences, each from its own length.
    cuda::Error e =
        model.cuda->append(l, model.manifest.kernels.at(l.kernel), c.device,
                           s->callBatch(), getDeviceSequences(*s), count,
                           cuda::Operand::of(k), cuda::Operand::of(v));
    if (!e.empty())
      return fail(e.status(), where + ": " + e.message());
    if (capturing)
      s->captured = true;
    else
      for (const Slice &x : slices)
        c.setLength(x, c.lengthOf(x) + count);
    return HYBRID_RT_OK;
  }
#endif
  for (const Slice &x : slices) {
    OperandSlice kx(k, x), vx(v, x);
    appendTokens(*s, l, c, x, data(kx.get()), data(vx.get()), count);
    c.setLength(x, c.lengthOf(x) + count);
  }
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_append");
}

hybrid_rt_status hybrid_rt_session_decode(hybrid_rt_session *s, int64_t layer,
                                          const hybrid_rt_tensor *q,
                                          const hybrid_rt_tensor *k,
                                          const hybrid_rt_tensor *v,
                                          const hybrid_rt_tensor *sinks,
                                          hybrid_rt_tensor *out) try {
  CallLock lock(s ? s->model : nullptr);
  std::string where;
  const LayerSpec *spec = nullptr;
  if (hybrid_rt_status status =
          enterLayer(s, "hybrid_rt_session_decode", layer, where, spec))
    return status;
  const LayerSpec &l = *spec;
  hybrid_rt_model &model = *s->model;
  const KernelSpec &kernel = model.manifest.kernels.at(l.kernel);
  if (kernel.decode.empty())
    return fail(HYBRID_RT_UNSUPPORTED,
                where + " is bidirectional: it has no decode");
  LayerCache &c = s->caches[layer];
  bool shared = c.policy == "shared";
  // In a CUDA graph capture the lengths are the device's, as each replay
  // finds them: the checks of lengths below wait for the next call outside
  // the capture, which reads them back.
  bool capturing = false;
#ifdef HYBRID_RT_CUDA
  if (cuda::Error e = syncLengths(*s, capturing); !e.empty())
    return fail(e.status(), where + ": " + e.message());
#endif
  if (std::string error = checkQueryRank(q); !error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  int64_t steps = q->shape[1];
  if (std::string error = checkLayerOperands(l, s->callBatch(), steps, q, k, v,
                                             sinks, out, !shared, model);
      !error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  if (l.kEqV)
    v = k;
  if (steps < 1 || steps > s->maxStep)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + ": a step of " + std::to_string(steps) +
                    " tokens, the session takes 1 to " +
                    std::to_string(s->maxStep));
  // A shared layer keeps nothing, so its step is the last `steps` tokens its
  // source holds: it may skip tokens (transformers' Gemma 4 runs a prompt's
  // last query only through its shared layers), never repeat one.
  LayerCache &owner = shared ? s->caches[l.sourceLayer] : c;
  // Each slice's first query position, every check passed before any
  // slice runs.
  std::vector<Slice> slices = getSlices(*s);
  std::vector<int64_t> positions;
  for (const Slice &x : slices) {
    std::string at = sliceWhere(where, *s, slices, x);
    int64_t position = c.lengthOf(x);
    if (std::string error = checkRoom(*s, position, steps);
        !error.empty() && !capturing)
      return fail(HYBRID_RT_INVALID_ARGUMENT, at + ": " + error);
    if (shared && !capturing) {
      int64_t held = owner.lengthOf(x);
      if (held < position + steps)
        return fail(HYBRID_RT_INVALID_ARGUMENT,
                    at + " reads layer " + std::to_string(l.sourceLayer) +
                        "'s cache, which holds " + std::to_string(held) +
                        " tokens, not " + std::to_string(position + steps) +
                        ": run the source layer's step first");
      position = held - steps;
    }
    // A cache restored from a later position (hybrid_rt_session_cache_write)
    // holds no key before it, and a layer reading it may step back that far:
    // the keys a step sees must be held, but for its own tokens (a shared
    // layer's are its source's).
    if (int64_t from = firstKeySeen(l, position), held = owner.heldFrom(x);
        from < held && (shared || from < position) && !capturing)
      return fail(HYBRID_RT_INVALID_ARGUMENT,
                  at + ": a step at position " + std::to_string(position) +
                      " sees keys from position " + std::to_string(from) +
                      ", but the " + owner.policy + " cache" +
                      (shared ? " of layer " + std::to_string(l.sourceLayer)
                              : std::string()) +
                      " holds positions from " + std::to_string(held) + " on");
    positions.push_back(position);
  }
#ifdef HYBRID_RT_CUDA
  if (model.cuda) {
    using cuda::Operand;
    // One step over every selected sequence, each from its own device
    // length: a shared layer skipping tokens its source holds (never in a
    // capture: the host's lengths are not the device's there) sets them
    // first (the host's follow the device's, should the step fail).
    bool skips = false;
    for (size_t i = 0; i < slices.size(); ++i)
      if (positions[i] != c.lengthOf(slices[i])) {
        c.setLength(slices[i], positions[i]);
        skips = true;
      }
    if (skips)
      if (cuda::Error e = writeDeviceLengths(*s, &c); !e.empty())
        return fail(e.status(), where + ": " + e.message());
    // Steps of many tokens take the flash kernel, whose batch coordinate
    // is the cache's and whose key range is one per launch: a call of
    // several slices (sequences at one progress, consecutive) runs each
    // over a view of its sequences' caches. The others (and captured
    // steps) are one launch of the decode kernel.
    bool whole = s->selected.empty() && slices.size() == 1;
    if (!capturing && !whole &&
        model.cuda->prefersFlashStep(l, kernel, s->callBatch(), steps)) {
      for (size_t i = 0; i < slices.size(); ++i) {
        const Slice &x = slices[i];
        cuda::DeviceCache cache = c.device.sequences(x.first, x.batch),
                          keys = owner.device.sequences(x.first, x.batch);
        SliceOperands o(l, x, steps, q, k, v, out);
        if (cuda::Error e = model.cuda->decode(
                l, kernel, cache, keys, x.batch, /*sequences=*/0, positions[i],
                positions[i], steps, o.q, o.k, o.v, Operand::of(sinks), o.out);
            !e.empty())
          return fail(e.status(),
                      sliceWhere(where, *s, slices, x) + ": " + e.message());
        c.setLength(x, positions[i] + steps);
      }
      return zeroPadding(*s, out, where);
    }
    // Padding alone: nothing to step, but in a capture, whose replays may
    // find sequences in its entries.
    if (slices.empty() && !capturing)
      return zeroPadding(*s, out, where);
    bool none = positions.empty();
    cuda::Error e = model.cuda->decode(
        l, kernel, c.device, owner.device, s->callBatch(),
        getDeviceSequences(*s),
        none ? 0 : *std::min_element(positions.begin(), positions.end()),
        none ? 0 : *std::max_element(positions.begin(), positions.end()), steps,
        Operand::of(q), Operand::of(k), Operand::of(v), Operand::of(sinks),
        Operand::of(out));
    if (!e.empty())
      return fail(e.status(), where + ": " + e.message());
    if (capturing)
      s->captured = true;
    else
      for (size_t i = 0; i < slices.size(); ++i)
        c.setLength(slices[i], positions[i] + steps);
    return HYBRID_RT_OK;
  }
#endif
  // Every slice's tokens stored, each slice's length set as it is (a cache
  // whose scales its prompts set takes them from the first slice's), then
  // their attention at once; should any of it throw (out of memory), the
  // lengths are as they were.
  std::vector<Progress> before = c.progress;
  try {
    std::vector<StepSlice> stepSlices;
    for (size_t i = 0; i < slices.size(); ++i) {
      const Slice &x = slices[i];
      OperandSlice kx(k, x), vx(v, x);
      if (!shared)
        appendTokens(*s, l, c, x, data(kx.get()), data(vx.get()), steps);
      c.setLength(x, positions[i] + steps);
      stepSlices.push_back({x, positions[i]});
    }
    if (!stepSlices.empty()) // else padding alone
      attendStep(model, l, kernel,
                 {owner.keys, getValueRows(l, owner), owner.rows}, stepSlices,
                 steps, q, sinks, out);
  } catch (...) {
    c.progress = std::move(before);
    throw;
  }
  return zeroPadding(*s, out, where);
} catch (...) {
  return failFromException("hybrid_rt_session_decode");
}

hybrid_rt_status hybrid_rt_session_cache_read(const hybrid_rt_session *cs,
                                              int64_t layer, int64_t first,
                                              hybrid_rt_tensor *k,
                                              hybrid_rt_tensor *v) try {
  CallLock lock(cs ? cs->model : nullptr);
  // Reading changes nothing, but for the lengths a GPU session reads back.
  hybrid_rt_session *s = const_cast<hybrid_rt_session *>(cs);
  std::string where;
  const LayerSpec *spec = nullptr;
  int64_t count = 0;
  if (hybrid_rt_status status = enterCacheRows(
          s, "hybrid_rt_session_cache_read", "copying cache rows out", layer, k,
          v, where, spec, count))
    return status;
  const LayerSpec &l = *spec;
  const LayerCache &c = s->caches[layer];
  std::vector<Slice> slices = getSlices(*s);
  for (const Slice &x : slices)
    if (first < c.heldFrom(x) || first + count > c.lengthOf(x))
      return fail(HYBRID_RT_INVALID_ARGUMENT,
                  sliceWhere(where, *s, slices, x) + ": positions [" +
                      std::to_string(first) + ", " +
                      std::to_string(first + count) + "), but its " + c.policy +
                      " cache (" + std::to_string(c.rows) + " rows) holds [" +
                      std::to_string(c.heldFrom(x)) + ", " +
                      std::to_string(c.lengthOf(x)) + ")");
  if (count == 0)
    return HYBRID_RT_OK;
#ifdef HYBRID_RT_CUDA
  if (hybrid_rt_model &model = *s->model; model.cuda) {
    std::vector<Slice> runs = getDeviceRuns(*s);
    for (const Slice &x : runs) {
      SliceOperands o(l, x, count, nullptr, k, v, nullptr);
      if (cuda::Error e =
              model.cuda->readCache(l, c.device.sequences(x.first, x.batch),
                                    x.batch, first, count, o.k, o.v);
          !e.empty())
        return fail(e.status(),
                    sliceWhere(where, *s, runs, x) + ": " + e.message());
    }
    return HYBRID_RT_OK;
  }
#endif
  ThreadPool *pool = s->model->pool.get();
  for (const Slice &x : slices) {
    OperandSlice kx(k, x), vx(v, x);
    if (k)
      c.keys.load(pool, static_cast<float *>(kx.get()->data), x.sequences(),
                  c.rows, first, count, l.numKvHeads * l.headDim);
    if (v)
      c.values.load(pool, static_cast<float *>(vx.get()->data), x.sequences(),
                    c.rows, first, count, l.numKvHeads * l.vHeadDim);
  }
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_cache_read");
}

hybrid_rt_status hybrid_rt_session_cache_write(hybrid_rt_session *s,
                                               int64_t layer, int64_t first,
                                               const hybrid_rt_tensor *k,
                                               const hybrid_rt_tensor *v) try {
  CallLock lock(s ? s->model : nullptr);
  std::string where;
  const LayerSpec *spec = nullptr;
  int64_t count = 0;
  if (hybrid_rt_status status =
          enterCacheRows(s, "hybrid_rt_session_cache_write",
                         "writing cache rows", layer, k, v, where, spec, count))
    return status;
  const LayerSpec &l = *spec;
  LayerCache &c = s->caches[layer];
  if (first < 0)
    return fail(HYBRID_RT_INVALID_ARGUMENT,
                where + ": position " + std::to_string(first) + " is negative");
  std::vector<Slice> slices = getSlices(*s);
  for (const Slice &x : slices)
    if (int64_t length = c.lengthOf(x); length > 0 && first != length)
      return fail(HYBRID_RT_INVALID_ARGUMENT,
                  sliceWhere(where, *s, slices, x) + ": position " +
                      std::to_string(first) + ", but it holds " +
                      std::to_string(length) + " tokens: write from position " +
                      std::to_string(length) +
                      " on (into an empty cache, from any position)");
  if (std::string error = checkRoom(*s, first, count); !error.empty())
    return fail(HYBRID_RT_INVALID_ARGUMENT, where + ": " + error);
  // Restoring an empty cache from position `first` on: the layer's next
  // step must see no key before `first` (a layer reading the cache checks
  // its own steps: hybrid_rt_session_decode).
  int64_t next = first + count;
  for (const Slice &x : slices)
    if (int64_t from = firstKeySeen(l, next);
        first != c.lengthOf(x) && from < first &&
        !s->model->manifest.kernels.at(l.kernel).decode.empty())
      return fail(HYBRID_RT_INVALID_ARGUMENT,
                  sliceWhere(where, *s, slices, x) +
                      ": the cache would hold positions from " +
                      std::to_string(first) + " on, but its step at position " +
                      std::to_string(next) + " sees keys from position " +
                      std::to_string(from) + ": write from position " +
                      std::to_string(from) + " or earlier");
#ifdef HYBRID_RT_CUDA
  if (hybrid_rt_model &model = *s->model; model.cuda) {
    // The rows go in at the device lengths: `first`, where a cache is
    // empty (put back to 0 should the write fail). Each run of consecutive
    // sequences writes a view of their caches.
    std::vector<Progress> held = c.progress;
    for (const Slice &x : slices)
      c.setLength(x, first);
    cuda::Error e;
    if (c.progress != held)
      e = writeDeviceLengths(*s, &c);
    for (const Slice &x : getDeviceRuns(*s)) {
      if (!e.empty() || count == 0)
        break;
      cuda::DeviceCache cache = c.device.sequences(x.first, x.batch);
      SliceOperands o(l, x, count, nullptr, k, v, nullptr);
      e = l.kEqV ? model.cuda->append(l, model.manifest.kernels.at(l.kernel),
                                      cache, x.batch, /*sequences=*/0, count,
                                      o.v, cuda::Operand{})
                 : model.cuda->writeCache(l, cache, x.batch, count, o.k, o.v);
    }
    c.progress = std::move(held);
    if (!e.empty()) {
      writeDeviceLengths(*s, &c);
      return fail(e.status(), where + ": " + e.message());
    }
  }
#endif
  for (const Slice &x : slices) {
    OperandSlice kx(k, x), vx(v, x);
    if (!s->model->onGPU() && count > 0)
      storeTokens(*s, l, c, x, l.kEqV ? nullptr : data(kx.get()),
                  data(vx.get()), count, first);
    Progress p = c.of(x);
    if (p.length == 0)
      p.start = first;
    p.length = first + count;
    c.set(x, p);
  }
  return HYBRID_RT_OK;
} catch (...) {
  return failFromException("hybrid_rt_session_cache_write");
}

} // extern "C"
