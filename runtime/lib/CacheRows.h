//===- CacheRows.h - One tensor of a layer's host cache ---------*- C++ -*-===//
//
// The keys or values a CPU session keeps for a layer, [B, rows, Hkv, width]
// with position p in row p % rows: f32, bf16 or f16 (half the bytes a decode
// step reads) or f8 (OCP FP8 E4M3FN: a quarter); the kernels widen each
// element as they load it. f8 rows may hold x / scale (a calibrated scale,
// vLLM's k_scale and v_scale): a step's attention reads them unscaled and
// multiplies its queries and outputs instead, which is exact but for one f32
// rounding.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_CACHEROWS_H
#define HYBRID_RT_LIB_CACHEROWS_H

#include "KernelLibrary.h"
#include "SequenceGather.h"
#include "ThreadPool.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace hybrid::rt {

/// Sequences [first, first + count) of a cache's batch: those one call
/// reads or writes.
struct SequenceRange {
  int64_t first = 0, count = 0;
};

/// What a host cache holds (a kernel's cache_dtype).
enum class CacheElement { F32, BF16, F16, F8E4M3FN };

/// The element of cache_dtype `dtype` ("f32", "bf16", "f16" or "f8"; the
/// manifest admits no other).
CacheElement getCacheElement(const std::string &dtype);

/// f32 to bf16, rounded to nearest even (NaNs stay NaNs).
uint16_t roundToBF16(float x);
/// bf16 to f32 (exact).
float widenBF16(uint16_t x);
/// f32 to IEEE half, rounded to nearest even (past 65504 to infinity; NaNs
/// stay NaNs).
uint16_t roundToF16(float x);
/// IEEE half to f32 (exact).
float widenF16(uint16_t x);
/// f32 to E4M3FN, rounded to nearest even; magnitudes past the largest
/// finite one (448, infinities too) saturate to it, NaNs stay NaNs.
uint8_t roundToF8E4M3FN(float x);
/// E4M3FN to f32 (exact).
float widenF8E4M3FN(uint8_t x);
/// x rounded to the cache element's precision, as f32.
float roundAs(CacheElement element, float x);

class CacheRows {
public:
  /// Zeroed rows: `elements` of `element`. Throws std::bad_alloc or
  /// std::length_error where they cannot be allocated.
  void allocate(int64_t elements, CacheElement element);
  CacheElement getElement() const { return element; }
  /// What `store` divides by before rounding (1 unless set).
  float getScale() const { return scale; }
  void setScale(float newScale) { scale = newScale; }
  /// Sets the scale that stores the largest finite magnitude of x[0, n) as
  /// `target`; 1 if none is above 0.
  void setScaleFor(const float *x, int64_t n, float target);
  int64_t bytes() const {
    return int64_t(f32Rows.size() * sizeof(float) +
                   halfRows.size() * sizeof(uint16_t) + f8Rows.size());
  }
  /// A kernel operand over sequences [first, first + shape[0]), shaped
  /// [shape[0], rows, Hkv, width].
  Tensor4 tensor(const std::array<int64_t, 4> &shape, int64_t first) const;
  /// The f32 rows (null for narrower ones).
  const float *f32Data() const {
    return element == CacheElement::F32 ? f32Rows.data() : nullptr;
  }

  // store, widen and load convert the rows of sequences `seqs` (`rows`
  // per sequence of `rowWidth` = Hkv * width elements) on `pool`'s threads
  // (null: the calling thread alone); their other operands hold those
  // sequences only.

  /// Positions [first, first + count) of src [seqs.count, count, Hkv,
  /// width], divided by the scale, into the rows that hold them; positions
  /// older than the cache's reach are skipped.
  void store(ThreadPool *pool, const float *src, SequenceRange seqs,
             int64_t rows, int64_t first, int64_t count, int64_t rowWidth);
  /// The rows of positions [first, total) as f32 into `out` [seqs.count,
  /// rows, Hkv, width], at the same rows (other rows are not written); as
  /// stored, not times the scale.
  void widen(ThreadPool *pool, float *out, SequenceRange seqs, int64_t rows,
             int64_t first, int64_t total, int64_t rowWidth) const;
  /// Positions [first, first + count) (rows that hold them) into dst
  /// [seqs.count, count, Hkv, width] as f32 times the scale: what `store`
  /// was given, but for the element's rounding.
  void load(ThreadPool *pool, float *dst, SequenceRange seqs, int64_t rows,
            int64_t first, int64_t count, int64_t rowWidth) const;
  /// Each of the `batch` sequences' first `live` elements (the rows that
  /// hold tokens) become those of the sequence `gather` names.
  void gather(const SequenceGather &gather, int64_t batch, int64_t live);

private:
  /// Elements [at, at + rowWidth) as f32 into `to`.
  void widenRow(size_t at, int64_t rowWidth, float *to) const;

  CacheElement element = CacheElement::F32;
  float scale = 1;
  std::vector<float> f32Rows;
  std::vector<uint16_t> halfRows; // bf16 or f16
  std::vector<uint8_t> f8Rows;
};

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_CACHEROWS_H
