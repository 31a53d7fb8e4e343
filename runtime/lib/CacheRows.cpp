//===- CacheRows.cpp - One tensor of a layer's host cache -----------------===//

#include "CacheRows.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

using namespace hybrid::rt;

CacheElement hybrid::rt::getCacheElement(const std::string &dtype) {
  return dtype == "bf16"  ? CacheElement::BF16
         : dtype == "f16" ? CacheElement::F16
         : dtype == "f8"  ? CacheElement::F8E4M3FN
                          : CacheElement::F32;
}

static uint32_t bitsOf(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return bits;
}

/// 2^e for a normal f32 exponent, built from its bits (no libm call in the
/// per-element conversions).
static float powerOfTwo(int e) {
  uint32_t bits = uint32_t(e + 127) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

uint16_t hybrid::rt::roundToBF16(float x) {
  uint32_t bits = bitsOf(x);
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

/// The bits of |x| (finite, short of the format's overflow) in a binary
/// format of `mantissaBits` and exponent `bias` (f16: 10, 15; E4M3FN: 3, 7),
/// rounded to nearest even.
static uint32_t roundMagnitude(float x, int mantissaBits, int bias) {
  uint32_t magnitude = bitsOf(x) & 0x7fffffffu;
  if (magnitude < uint32_t(128 - bias) << 23) { // below 2^(1 - bias)
    // Subnormals (and zero) are multiples of 2^(1 - bias - mantissaBits), up
    // to 2^mantissaBits of them (the smallest normal, whose code that is
    // too); rint ties to even.
    return uint32_t(
        std::nearbyint(std::fabs(x) * powerOfTwo(bias - 1 + mantissaBits)));
  }
  // Normal: keep mantissaBits of 23, ties to even (a carry moves into the
  // exponent), then rebias the exponent from 127.
  int dropped = 23 - mantissaBits;
  magnitude += ((1u << (dropped - 1)) - 1) + ((magnitude >> dropped) & 1);
  uint32_t exponent = (magnitude >> 23) - 127 + uint32_t(bias);
  return (exponent << mantissaBits) |
         ((magnitude >> dropped) & ((1u << mantissaBits) - 1));
}

uint16_t hybrid::rt::roundToF16(float x) {
  uint32_t bits = bitsOf(x);
  uint16_t sign = uint16_t((bits >> 16) & 0x8000);
  uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) // NaN: quiet, keeping the payload's top
    return sign | 0x7e00 | uint16_t((magnitude >> 13) & 0x1ff);
  // From 65520 (halfway past the largest finite, 65504, to an odd one) on,
  // infinities included: infinity.
  if (magnitude >= bitsOf(65520.f))
    return sign | 0x7c00;
  return sign | uint16_t(roundMagnitude(x, /*mantissaBits=*/10, /*bias=*/15));
}

float hybrid::rt::widenF16(uint16_t x) {
  int exponent = (x >> 10) & 31, mantissa = x & 0x3ff;
  float magnitude;
  if (exponent == 31)
    magnitude = mantissa ? std::numeric_limits<float>::quiet_NaN()
                         : std::numeric_limits<float>::infinity();
  else if (exponent == 0)
    magnitude = float(mantissa) * powerOfTwo(-24);
  else { // the exponent rebiased from 15 to 127, the mantissa widened
    uint32_t bits = uint32_t(exponent + 112) << 23 | uint32_t(mantissa) << 13;
    std::memcpy(&magnitude, &bits, sizeof(magnitude));
  }
  return x & 0x8000 ? -magnitude : magnitude;
}

uint8_t hybrid::rt::roundToF8E4M3FN(float x) {
  uint32_t bits = bitsOf(x);
  uint8_t sign = uint8_t((bits >> 24) & 0x80);
  uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) // NaN
    return sign | 0x7f;
  if (magnitude >= bitsOf(448.f)) // the largest finite (its own rounding
    return sign | 0x7e;           // reaches 464, where 480 is no number)
  return sign | uint8_t(roundMagnitude(x, /*mantissaBits=*/3, /*bias=*/7));
}

/// E4M3FN's value of code x, computed.
static float computeF8E4M3FN(uint8_t x) {
  int exponent = (x >> 3) & 15, mantissa = x & 7;
  float magnitude;
  if (exponent == 15 && mantissa == 7)
    magnitude = std::numeric_limits<float>::quiet_NaN();
  else if (exponent == 0)
    magnitude = std::ldexp(float(mantissa), -9);
  else
    magnitude = std::ldexp(float(8 + mantissa), exponent - 10);
  return x & 0x80 ? -magnitude : magnitude;
}

float hybrid::rt::widenF8E4M3FN(uint8_t x) {
  // 256 codes: a table, built once.
  static const std::array<float, 256> values = [] {
    std::array<float, 256> table;
    for (int i = 0; i < 256; ++i)
      table[i] = computeF8E4M3FN(uint8_t(i));
    return table;
  }();
  return values[x];
}

float hybrid::rt::roundAs(CacheElement element, float x) {
  switch (element) {
  case CacheElement::F32:
    return x;
  case CacheElement::BF16:
    return widenBF16(roundToBF16(x));
  case CacheElement::F16:
    return widenF16(roundToF16(x));
  case CacheElement::F8E4M3FN:
    return widenF8E4M3FN(roundToF8E4M3FN(x));
  }
  return x;
}

void CacheRows::allocate(int64_t elements, CacheElement asElement) {
  element = asElement;
  switch (element) {
  case CacheElement::F32:
    f32Rows.assign(size_t(elements), 0.f);
    break;
  case CacheElement::BF16:
  case CacheElement::F16:
    halfRows.assign(size_t(elements), 0);
    break;
  case CacheElement::F8E4M3FN:
    f8Rows.assign(size_t(elements), 0);
    break;
  }
}

namespace {
/// The first `live` elements of each of `batch` contiguous sequence slices
/// of `rows`, copied as `gather` says.
template <typename T>
void gatherSlices(std::vector<T> &rows, const SequenceGather &gather,
                  int64_t batch, int64_t live) {
  int64_t slice = int64_t(rows.size()) / batch;
  // Not zeroed: every element is written before it is read.
  std::unique_ptr<T[]> scratch(new T[gather.saved.size() * live]);
  for (size_t j = 0; j < gather.saved.size(); ++j)
    std::copy_n(rows.data() + gather.saved[j] * slice, live,
                scratch.get() + j * live);
  for (const SequenceGather::Copy &c : gather.copies) {
    const T *from = c.fromScratch ? scratch.get() + c.from * live
                                  : rows.data() + c.from * slice;
    std::copy_n(from, live, rows.data() + c.to * slice);
  }
}
} // namespace

void CacheRows::gather(const SequenceGather &gather, int64_t batch,
                       int64_t live) {
  if (!f32Rows.empty())
    gatherSlices(f32Rows, gather, batch, live);
  if (!halfRows.empty())
    gatherSlices(halfRows, gather, batch, live);
  if (!f8Rows.empty())
    gatherSlices(f8Rows, gather, batch, live);
}

Tensor4 CacheRows::tensor(const std::array<int64_t, 4> &shape,
                          int64_t first) const {
  // Descriptors carry addresses; the kernel's memref type says what they
  // hold.
  size_t at = size_t(first * shape[1] * shape[2] * shape[3]);
  const void *data = element == CacheElement::F8E4M3FN
                         ? static_cast<const void *>(f8Rows.data() + at)
                     : element == CacheElement::F32
                         ? static_cast<const void *>(f32Rows.data() + at)
                         : static_cast<const void *>(halfRows.data() + at);
  return makeTensor4(static_cast<const float *>(data), shape.data());
}

void CacheRows::setScaleFor(const float *x, int64_t n, float target) {
  float largest = 0;
  for (int64_t i = 0; i < n; ++i)
    if (std::isfinite(x[i]))
      largest = std::max(largest, std::fabs(x[i]));
  float fitting = largest / target;
  scale = fitting > 0 && std::isfinite(fitting) ? fitting : 1;
}

namespace {
/// Elements a work item converts at least: a few cache rows, enough that a
/// decode step's one row per sequence stays on the calling thread.
constexpr int64_t kElementsPerItem = 16384;

/// body(begin, end) over the rows [0, count) of `rowWidth` elements, split
/// over `pool`'s threads (null: the calling thread).
void forRows(ThreadPool *pool, int64_t count, int64_t rowWidth,
             const ThreadPool::Body &body) {
  if (!pool)
    return body(0, count);
  pool->parallelFor(
      count,
      std::max<int64_t>(1, kElementsPerItem / std::max<int64_t>(1, rowWidth)),
      body);
}

/// to[i] = round(from[i] / scale) for i in [0, n); divided, not times
/// 1 / scale: one rounding, as the reference's.
template <typename T, typename Round>
void storeDivided(const float *from, int64_t n, float scale, T *to,
                  Round round) {
  if (scale == 1)
    std::transform(from, from + n, to, round);
  else
    std::transform(from, from + n, to,
                   [&](float x) { return round(x / scale); });
}
} // namespace

void CacheRows::store(ThreadPool *pool, const float *src, SequenceRange seqs,
                      int64_t rows, int64_t first, int64_t count,
                      int64_t rowWidth) {
  // Of each sequence's positions, the last `kept` are held.
  int64_t skipped = std::max<int64_t>(0, count - rows), kept = count - skipped;
  forRows(pool, seqs.count * kept, rowWidth, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t b = i / kept, t = skipped + i % kept;
      const float *from = &src[(b * count + t) * rowWidth];
      size_t at =
          size_t(((seqs.first + b) * rows + (first + t) % rows) * rowWidth);
      switch (element) {
      case CacheElement::F32:
        storeDivided(from, rowWidth, scale, &f32Rows[at],
                     [](float x) { return x; });
        break;
      case CacheElement::BF16:
        storeDivided(from, rowWidth, scale, &halfRows[at], roundToBF16);
        break;
      case CacheElement::F16:
        storeDivided(from, rowWidth, scale, &halfRows[at], roundToF16);
        break;
      case CacheElement::F8E4M3FN:
        storeDivided(from, rowWidth, scale, &f8Rows[at], roundToF8E4M3FN);
        break;
      }
    }
  });
}

void CacheRows::widenRow(size_t at, int64_t rowWidth, float *to) const {
  switch (element) {
  case CacheElement::F32:
    std::memcpy(to, &f32Rows[at], rowWidth * sizeof(float));
    break;
  case CacheElement::BF16:
    std::transform(&halfRows[at], &halfRows[at] + rowWidth, to, widenBF16);
    break;
  case CacheElement::F16:
    std::transform(&halfRows[at], &halfRows[at] + rowWidth, to, widenF16);
    break;
  case CacheElement::F8E4M3FN:
    std::transform(&f8Rows[at], &f8Rows[at] + rowWidth, to, widenF8E4M3FN);
    break;
  }
}

void CacheRows::widen(ThreadPool *pool, float *out, SequenceRange seqs,
                      int64_t rows, int64_t first, int64_t total,
                      int64_t rowWidth) const {
  // Of each sequence's positions [first, total), those from `lo` are held.
  int64_t lo = std::max<int64_t>(first, total - rows),
          held = std::max<int64_t>(0, total - lo);
  forRows(pool, seqs.count * held, rowWidth, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t b = i / held, p = lo + i % held;
      size_t at = size_t((b * rows + p % rows) * rowWidth);
      widenRow(at + size_t(seqs.first * rows * rowWidth), rowWidth, &out[at]);
    }
  });
}

void CacheRows::load(ThreadPool *pool, float *dst, SequenceRange seqs,
                     int64_t rows, int64_t first, int64_t count,
                     int64_t rowWidth) const {
  forRows(pool, seqs.count * count, rowWidth, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t b = i / count, t = i % count;
      float *to = &dst[(b * count + t) * rowWidth];
      widenRow(
          size_t(((seqs.first + b) * rows + (first + t) % rows) * rowWidth),
          rowWidth, to);
      if (scale != 1)
        std::transform(to, to + rowWidth, to,
                       [&](float x) { return x * scale; });
    }
  });
}
