//===- CacheRows.cpp - One tensor of a layer's host cache -----------------===//

#include "CacheRows.h"

#include <algorithm>
#include <cstring>

using namespace hybrid::rt;

uint16_t hybrid::rt::roundToBF16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN: keep it quiet, and a NaN
    return uint16_t((bits >> 16) | 0x40);
  // Ties go to the even one: add 0x7fff, plus one if the kept part is odd.
  bits += 0x7fffu + ((bits >> 16) & 1);
  return uint16_t(bits >> 16);
}

float hybrid::rt::widenBF16(uint16_t x) {
  uint32_t bits = uint32_t(x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

void CacheRows::allocate(int64_t elements, bool asBF16) {
  bf16 = asBF16;
  if (bf16)
    bf16Rows.assign(size_t(elements), 0);
  else
    f32Rows.assign(size_t(elements), 0.f);
}

Tensor4 CacheRows::tensor(const std::array<int64_t, 4> &shape) const {
  // Descriptors carry addresses; the kernel's memref type says what they
  // hold.
  const void *data = bf16 ? static_cast<const void *>(bf16Rows.data())
                          : static_cast<const void *>(f32Rows.data());
  return makeTensor4(static_cast<const float *>(data), shape.data());
}

void CacheRows::store(const float *src, int64_t batch, int64_t rows,
                      int64_t first, int64_t count, int64_t rowWidth) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = std::max<int64_t>(0, count - rows); t < count; ++t) {
      const float *from = &src[(b * count + t) * rowWidth];
      size_t at = size_t((b * rows + (first + t) % rows) * rowWidth);
      if (bf16)
        std::transform(from, from + rowWidth, &bf16Rows[at], roundToBF16);
      else
        std::memcpy(&f32Rows[at], from, rowWidth * sizeof(float));
    }
}

void CacheRows::widen(float *out, int64_t batch, int64_t rows, int64_t first,
                      int64_t total, int64_t rowWidth) const {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t p = std::max<int64_t>(first, total - rows); p < total; ++p) {
      size_t at = size_t((b * rows + p % rows) * rowWidth);
      if (bf16)
        std::transform(&bf16Rows[at], &bf16Rows[at] + rowWidth, &out[at],
                       widenBF16);
      else
        std::memcpy(&out[at], &f32Rows[at], rowWidth * sizeof(float));
    }
}
