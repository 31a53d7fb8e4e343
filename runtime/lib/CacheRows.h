//===- CacheRows.h - One tensor of a layer's host cache ---------*- C++ -*-===//
//
// The keys or values a CPU session keeps for a layer, [B, rows, Hkv, width]
// with position p in row p % rows: f32, or bf16 (half the bytes a decode
// step reads; the kernels widen each element as they load it).
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_CACHEROWS_H
#define HYBRID_RT_LIB_CACHEROWS_H

#include "KernelLibrary.h"

#include <array>
#include <cstdint>
#include <vector>

namespace hybrid::rt {

/// f32 to bf16, rounded to nearest even (NaNs stay NaNs).
uint16_t roundToBF16(float x);
/// bf16 to f32 (exact).
float widenBF16(uint16_t x);

class CacheRows {
public:
  /// Zeroed rows: `elements` of f32, or of bf16 with `bf16`. Throws
  /// std::bad_alloc or std::length_error where they cannot be allocated.
  void allocate(int64_t elements, bool bf16);
  bool isBF16() const { return bf16; }
  int64_t bytes() const {
    return int64_t(f32Rows.size() * sizeof(float) +
                   bf16Rows.size() * sizeof(uint16_t));
  }
  /// A kernel operand over all of it, shaped [B, rows, Hkv, width].
  Tensor4 tensor(const std::array<int64_t, 4> &shape) const;
  /// The f32 rows (null for bf16 ones).
  const float *f32Data() const { return bf16 ? nullptr : f32Rows.data(); }

  /// Positions [first, first + count) of src [B, count, Hkv, width] into the
  /// rows that hold them (`rows` per sequence, `rowWidth` = Hkv * width);
  /// positions older than the cache's reach are skipped.
  void store(const float *src, int64_t batch, int64_t rows, int64_t first,
             int64_t count, int64_t rowWidth);
  /// The rows of positions [first, total) as f32 into `out`, which has as
  /// many elements, at the same places (other rows are not written).
  void widen(float *out, int64_t batch, int64_t rows, int64_t first,
             int64_t total, int64_t rowWidth) const;

private:
  bool bf16 = false;
  std::vector<float> f32Rows;
  std::vector<uint16_t> bf16Rows;
};

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_CACHEROWS_H
