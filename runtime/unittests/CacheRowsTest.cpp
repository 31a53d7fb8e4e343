//===- CacheRowsTest.cpp - bf16, f16 and f8 rounding, host cache rows -----===//

#include "CacheRows.h"
#include "hybrid-rt/Reference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace hybrid::rt;

TEST(CacheRows, RoundsToNearestEven) {
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 (bf16 keeps 7 fraction
  // bits): ties go to the even one, 1; past halfway rounds up.
  EXPECT_EQ(roundToBF16(1.0f), 0x3f80);
  EXPECT_EQ(roundToBF16(1.0f + 0x1p-8f), 0x3f80);
  EXPECT_EQ(roundToBF16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  // 1 + 3 * 2^-8 is halfway between 0x3f81 and 0x3f82: to 0x3f82 (even).
  EXPECT_EQ(roundToBF16(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(roundToBF16(-2.0f), 0xc000);
  EXPECT_EQ(roundToBF16(0.0f), 0x0000);
  EXPECT_EQ(roundToBF16(-0.0f), 0x8000);
  float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(roundToBF16(inf), 0x7f80);
  EXPECT_EQ(roundToBF16(-inf), 0xff80);
  // The largest float rounds past bf16's largest finite value: infinity.
  EXPECT_EQ(roundToBF16(std::numeric_limits<float>::max()), 0x7f80);
  // NaNs stay NaNs, even those whose payload sits in the dropped bits.
  EXPECT_TRUE(std::isnan(widenBF16(roundToBF16(std::nanf("")))));
  uint32_t lowPayload = 0x7f800001;
  float nan;
  std::memcpy(&nan, &lowPayload, sizeof(nan));
  EXPECT_TRUE(std::isnan(widenBF16(roundToBF16(nan))));
}

TEST(CacheRows, WidensExactly) {
  for (uint32_t bits = 0; bits < 0x10000; bits += 7) {
    float x = widenBF16(uint16_t(bits));
    if (!std::isnan(x))
      EXPECT_EQ(roundToBF16(x), bits) << bits;
  }
}

/// Every f16 and E4M3FN code widens to its value (sign, 2^(e - bias) times
/// 1.m, or m 2^(1 - bias - mantissa bits) for subnormals) and rounds back
/// to itself; NaN codes widen to NaNs.
TEST(CacheRows, WidensEveryHalfAndF8Code) {
  for (uint32_t code = 0; code < 0x10000; ++code) {
    int exponent = (code >> 10) & 31, mantissa = code & 0x3ff;
    float x = widenF16(uint16_t(code));
    if (exponent == 31) {
      EXPECT_EQ(std::isnan(x), mantissa != 0) << code;
      continue;
    }
    double value = exponent ? std::ldexp(1024.0 + mantissa, exponent - 25)
                            : std::ldexp(double(mantissa), -24);
    EXPECT_EQ(double(x), code & 0x8000 ? -value : value) << code;
    EXPECT_EQ(roundToF16(x), code) << code;
  }
  for (uint32_t code = 0; code < 0x100; ++code) {
    int exponent = (code >> 3) & 15, mantissa = code & 7;
    float x = widenF8E4M3FN(uint8_t(code));
    if (exponent == 15 && mantissa == 7) {
      EXPECT_TRUE(std::isnan(x)) << code;
      continue;
    }
    double value = exponent ? std::ldexp(8.0 + mantissa, exponent - 10)
                            : std::ldexp(double(mantissa), -9);
    EXPECT_EQ(double(x), code & 0x80 ? -value : value) << code;
    EXPECT_EQ(roundToF8E4M3FN(x), code) << code;
  }
}

TEST(CacheRows, RoundsToF16) {
  EXPECT_EQ(roundToF16(1.0f), 0x3c00);
  // Halfway between 1 and 1 + 2^-10: to 1 (even); halfway between the next
  // two: up to the even one.
  EXPECT_EQ(roundToF16(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(roundToF16(1.0f + 3 * 0x1p-11f), 0x3c02);
  EXPECT_EQ(roundToF16(-2.0f), 0xc000);
  // The largest finite, 65504; from halfway past it (65520) on, infinity.
  EXPECT_EQ(roundToF16(65504.f), 0x7bff);
  EXPECT_EQ(roundToF16(65519.f), 0x7bff);
  EXPECT_EQ(roundToF16(65520.f), 0x7c00);
  EXPECT_EQ(roundToF16(-std::numeric_limits<float>::infinity()), 0xfc00);
  // Subnormals: multiples of 2^-24; 2^-25 ties to 0, 3 * 2^-25 to 2^-23.
  EXPECT_EQ(roundToF16(0x1p-24f), 0x0001);
  EXPECT_EQ(roundToF16(0x1p-25f), 0x0000);
  EXPECT_EQ(roundToF16(3 * 0x1p-25f), 0x0002);
  EXPECT_EQ(roundToF16(0x1p-14f - 0x1p-30f), 0x0400);
  EXPECT_TRUE(std::isnan(widenF16(roundToF16(std::nanf("")))));
  EXPECT_EQ(widenF16(0x7c00), std::numeric_limits<float>::infinity());
  for (uint32_t code = 0; code < 0x10000; ++code)
    if ((code & 0x7c00) != 0x7c00 || (code & 0x3ff) == 0) // all but NaNs
      EXPECT_EQ(roundToF16(widenF16(uint16_t(code))), code) << code;
}

TEST(CacheRows, RoundsToF8E4M3FN) {
  EXPECT_EQ(roundToF8E4M3FN(1.0f), 0x38); // exponent 7 (bias 7), mantissa 0
  EXPECT_EQ(roundToF8E4M3FN(-1.0f), 0xb8);
  // Halfway between 1 and 1.125 (3 fraction bits): to 1, the even one;
  // halfway between 1.125 and 1.25: to 1.25; past halfway: up.
  EXPECT_EQ(roundToF8E4M3FN(1.0625f), 0x38);
  EXPECT_EQ(roundToF8E4M3FN(1.1875f), 0x3a);
  EXPECT_EQ(roundToF8E4M3FN(1.0625f + 0x1p-12f), 0x39);
  // Rounding up carries into the exponent: 1.96875 (past 1.9375) to 2.
  EXPECT_EQ(roundToF8E4M3FN(1.96875f), 0x40);
  // Subnormals: multiples of 2^-9; 2^-10 ties to 0, 3 * 2^-10 to 2 * 2^-9;
  // just under the smallest normal 2^-6 rounds to it (code 8).
  EXPECT_EQ(roundToF8E4M3FN(0x1p-9f), 0x01);
  EXPECT_EQ(roundToF8E4M3FN(0x1p-10f), 0x00);
  EXPECT_EQ(roundToF8E4M3FN(3 * 0x1p-10f), 0x02);
  EXPECT_EQ(roundToF8E4M3FN(0x1p-6f - 0x1p-12f), 0x08);
  EXPECT_EQ(roundToF8E4M3FN(-0.0f), 0x80);
  // Saturation: 448 is the largest finite; larger magnitudes and
  // infinities saturate to it; NaNs stay NaNs (S.1111.111).
  float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(roundToF8E4M3FN(448.f), 0x7e);
  EXPECT_EQ(roundToF8E4M3FN(470.f), 0x7e);
  EXPECT_EQ(roundToF8E4M3FN(1e30f), 0x7e);
  EXPECT_EQ(roundToF8E4M3FN(inf), 0x7e);
  EXPECT_EQ(roundToF8E4M3FN(-inf), 0xfe);
  EXPECT_EQ(roundToF8E4M3FN(std::nanf("")) & 0x7f, 0x7f);
  EXPECT_TRUE(std::isnan(widenF8E4M3FN(0x7f)));
  EXPECT_TRUE(std::isnan(widenF8E4M3FN(0xff)));
  EXPECT_EQ(widenF8E4M3FN(0x7e), 448.f);
  EXPECT_EQ(widenF8E4M3FN(0x01), 0x1p-9f);
  EXPECT_EQ(widenF8E4M3FN(0x08), 0x1p-6f);
  // Every code but the NaNs widens exactly and rounds back to itself.
  for (int code = 0; code < 256; ++code)
    if ((code & 0x7f) != 0x7f)
      EXPECT_EQ(roundToF8E4M3FN(widenF8E4M3FN(uint8_t(code))), code) << code;
}

/// The runtime's bit-level rounding agrees with the reference's, written
/// from the formats' definitions, on floats across every exponent.
TEST(CacheRows, RoundsAsTheReference) {
  for (CacheElement element :
       {CacheElement::BF16, CacheElement::F16, CacheElement::F8E4M3FN}) {
    std::string dtype = element == CacheElement::BF16  ? "bf16"
                        : element == CacheElement::F16 ? "f16"
                                                       : "f8";
    for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 4099) {
      float x;
      uint32_t word = uint32_t(bits);
      std::memcpy(&x, &word, sizeof(x));
      float ours = roundAs(element, x),
            theirs = reference::roundAsCached(dtype, x);
      if (std::isnan(theirs))
        EXPECT_TRUE(std::isnan(ours)) << dtype << " " << x;
      else
        ASSERT_EQ(ours, theirs) << dtype << " " << x << " (" << word << ")";
    }
  }
}

TEST(CacheRows, StoresIntoRingRowsAndWidens) {
  // Batch 2, a ring of 3 rows of width 2; positions 2..5 stored (4 > 3: the
  // oldest is skipped), so rows hold positions 3, 4, 5 at rows 0, 1, 2.
  for (CacheElement element :
       {CacheElement::BF16, CacheElement::F16, CacheElement::F8E4M3FN}) {
    CacheRows rows;
    rows.allocate(2 * 3 * 2, element);
    EXPECT_EQ(rows.bytes(),
              2 * 3 * 2 * (element == CacheElement::F8E4M3FN ? 1 : 2));
    EXPECT_EQ(rows.f32Data(), nullptr);
    std::vector<float> src(2 * 4 * 2); // 0.5 .. 8: exact in both
    for (size_t i = 0; i < src.size(); ++i)
      src[i] = 0.5f * float(i + 1);
    rows.store(nullptr, src.data(), {0, 2}, 3, /*first=*/2, /*count=*/4,
               /*rowWidth=*/2);
    std::vector<float> out(2 * 3 * 2, -1.f);
    rows.widen(nullptr, out.data(), {0, 2}, 3, /*first=*/3, /*total=*/6, 2);
    // Sequence b, position p (t = p - 2 in src) sits in row p % 3.
    for (int b = 0; b < 2; ++b)
      for (int p = 3; p < 6; ++p)
        for (int e = 0; e < 2; ++e)
          EXPECT_EQ(out[(b * 3 + p % 3) * 2 + e],
                    src[(b * 4 + (p - 2)) * 2 + e])
              << b << " " << p << " " << e;
    // Positions before `first` are not widened.
    std::vector<float> part(2 * 3 * 2, -1.f);
    rows.widen(nullptr, part.data(), {0, 2}, 3, /*first=*/5, /*total=*/6, 2);
    EXPECT_EQ(part[(0 * 3 + 3 % 3) * 2], -1.f);
    EXPECT_EQ(part[(0 * 3 + 5 % 3) * 2], src[(0 * 4 + 3) * 2]);
  }
}

/// load gathers positions out of ring rows in position order, times the
/// scale: storing what it gives at the same scale holds the same elements.
TEST(CacheRows, LoadsPositionsTimesTheScale) {
  for (CacheElement element : {CacheElement::F32, CacheElement::BF16,
                               CacheElement::F16, CacheElement::F8E4M3FN}) {
    CacheRows rows;
    rows.allocate(2 * 3 * 2, element);
    rows.setScale(0.75f);
    // Batch 2, 3 rows of width 2: positions 4..8 stored, 6..8 held (rows
    // 0, 1, 2 hold 6, 7, 8).
    std::vector<float> src(2 * 5 * 2);
    for (size_t i = 0; i < src.size(); ++i)
      src[i] = 0.3f * float(i) - 2.f;
    rows.store(nullptr, src.data(), {0, 2}, 3, /*first=*/4, /*count=*/5, 2);
    std::vector<float> loaded(2 * 2 * 2, -1.f);
    rows.load(nullptr, loaded.data(), {0, 2}, 3, /*first=*/7, /*count=*/2, 2);
    for (int b = 0; b < 2; ++b)
      for (int t = 0; t < 2; ++t)
        for (int e = 0; e < 2; ++e) {
          float x = src[(b * 5 + 3 + t) * 2 + e];
          EXPECT_EQ(loaded[(b * 2 + t) * 2 + e],
                    roundAs(element, x / 0.75f) * 0.75f)
              << int(element) << " " << b << " " << t << " " << e;
        }
    // What load gives, stored again at the same scale, is held unchanged.
    CacheRows copy;
    copy.allocate(2 * 3 * 2, element);
    copy.setScale(0.75f);
    copy.store(nullptr, loaded.data(), {0, 2}, 3, /*first=*/7, /*count=*/2, 2);
    std::vector<float> held(2 * 3 * 2, 0.f), heldCopy(2 * 3 * 2, 0.f);
    rows.widen(nullptr, held.data(), {0, 2}, 3, 7, 9, 2);
    copy.widen(nullptr, heldCopy.data(), {0, 2}, 3, 7, 9, 2);
    EXPECT_EQ(held, heldCopy) << int(element);
  }
}

/// Rows converted on a pool's threads are those converted on one: a batch
/// of 3 through a ring of 700 rows of width 40 (enough rows for several
/// work items), 1000 positions stored (the first 300 skipped), widened and
/// loaded.
TEST(CacheRows, ConvertsOnAPoolAsOnOneThread) {
  constexpr int64_t batch = 3, ringRows = 700, width = 40, count = 1000;
  ThreadPool pool(3);
  std::vector<float> src(batch * count * width);
  for (size_t i = 0; i < src.size(); ++i)
    src[i] = std::sin(float(i)) * 300.f;
  for (CacheElement element : {CacheElement::F32, CacheElement::BF16,
                               CacheElement::F16, CacheElement::F8E4M3FN}) {
    std::array<CacheRows, 2> rows; // on one thread, on the pool
    std::array<std::vector<float>, 2> widened, loaded;
    for (int i = 0; i < 2; ++i) {
      ThreadPool *on = i ? &pool : nullptr;
      rows[i].allocate(batch * ringRows * width, element);
      rows[i].setScale(element == CacheElement::F8E4M3FN ? 0.5f : 1.f);
      rows[i].store(on, src.data(), {0, batch}, ringRows, /*first=*/5, count,
                    width);
      widened[i].assign(batch * ringRows * width, -1.f);
      rows[i].widen(on, widened[i].data(), {0, batch}, ringRows, /*first=*/400,
                    /*total=*/5 + count, width);
      loaded[i].assign(batch * 650 * width, -1.f);
      rows[i].load(on, loaded[i].data(), {0, batch}, ringRows, /*first=*/320,
                   /*count=*/650, width);
    }
    EXPECT_EQ(widened[0], widened[1]) << int(element);
    EXPECT_EQ(loaded[0], loaded[1]) << int(element);
    // Position 969 of sequence 2 (src row 964) came back.
    EXPECT_EQ(loaded[1][(2 * 650 + 969 - 320) * width + 7],
              roundAs(element,
                      src[(2 * count + 964) * width + 7] / rows[1].getScale()) *
                  rows[1].getScale());
  }
}

/// A range of sequences past the first reads and writes those sequences'
/// rows only, its operands holding them alone: a batch of 4, a ring of 3
/// rows of width 2, sequences 1 and 2 written.
TEST(CacheRows, ConvertsARangeOfSequences) {
  for (CacheElement element : {CacheElement::F32, CacheElement::BF16,
                               CacheElement::F16, CacheElement::F8E4M3FN}) {
    CacheRows rows;
    rows.allocate(4 * 3 * 2, element);
    std::vector<float> src(2 * 2 * 2); // 2 sequences, positions 4 and 5
    for (size_t i = 0; i < src.size(); ++i)
      src[i] = float(i + 1);
    rows.store(nullptr, src.data(), {1, 2}, 3, /*first=*/4, /*count=*/2, 2);
    // In place: sequence b of the range in sequence 1 + b's rows 1 and 2.
    std::vector<float> all(4 * 3 * 2, -1.f);
    rows.widen(nullptr, all.data(), {0, 4}, 3, /*first=*/4, /*total=*/6, 2);
    for (int b = 0; b < 4; ++b)
      for (int p = 4; p < 6; ++p)
        for (int e = 0; e < 2; ++e)
          EXPECT_EQ(all[(b * 3 + p % 3) * 2 + e],
                    b == 1 || b == 2 ? src[((b - 1) * 2 + p - 4) * 2 + e] : 0.f)
              << int(element) << " " << b << " " << p << " " << e;
    // Widened and loaded into operands of the range's sequences only.
    std::vector<float> part(1 * 3 * 2, -1.f), loaded(1 * 2 * 2, -1.f);
    rows.widen(nullptr, part.data(), {2, 1}, 3, 4, 6, 2);
    rows.load(nullptr, loaded.data(), {2, 1}, 3, /*first=*/4, /*count=*/2, 2);
    for (int p = 4; p < 6; ++p)
      for (int e = 0; e < 2; ++e) {
        EXPECT_EQ(part[(p % 3) * 2 + e], src[(2 + p - 4) * 2 + e]);
        EXPECT_EQ(loaded[(p - 4) * 2 + e], src[(2 + p - 4) * 2 + e]);
      }
    // A kernel operand over the range starts at its first sequence.
    Tensor4 t = rows.tensor({2, 3, 1, 2}, /*first=*/1);
    EXPECT_EQ(static_cast<const char *>(static_cast<const void *>(t.aligned)) -
                  static_cast<const char *>(static_cast<const void *>(
                      rows.tensor({4, 3, 1, 2}, 0).aligned)),
              3 * 2 *
                  (element == CacheElement::F32        ? 4
                   : element == CacheElement::F8E4M3FN ? 1
                                                       : 2));
  }
}

/// Scaled rows hold x / scale rounded (saturating past 448 times the scale),
/// widened as held; the reference reads them back times the scale.
TEST(CacheRows, StoresDividedByTheScale) {
  CacheRows rows;
  rows.allocate(8, CacheElement::F8E4M3FN);
  EXPECT_EQ(rows.getScale(), 1.f);
  rows.setScale(0.25f);
  // 0.3 / 0.25 = 1.2 -> 1.25; 200 / 0.25 = 800 -> 448 (saturated);
  // 1e-3 / 0.25 = 0.004 -> 2 * 2^-9, a subnormal.
  std::vector<float> src = {0.3f, -0.3f, 200.f, -1e-3f, 1e-3f, 0.f, 3.f, 7.f};
  rows.store(nullptr, src.data(), {0, 1}, 1, 0, 1, 8);
  std::vector<float> held(8);
  rows.widen(nullptr, held.data(), {0, 1}, 1, 0, 1, 8);
  std::vector<float> expected = {1.25f,       -1.25f, 448.f, -0.00390625f,
                                 0.00390625f, 0.f,    12.f,  28.f};
  EXPECT_EQ(held, expected);
  for (size_t i = 0; i < src.size(); ++i)
    EXPECT_EQ(reference::roundAsCached("f8", src[i], 0.25f),
              double(expected[i]) * 0.25)
        << src[i];
}

/// A scale for data stores its largest finite magnitude as the target.
TEST(CacheRows, ScalesForData) {
  CacheRows rows;
  std::vector<float> x = {0.5f, -3.f, INFINITY, std::nanf(""), 1.f};
  rows.setScaleFor(x.data(), int64_t(x.size()), 100.f);
  EXPECT_EQ(rows.getScale(), 0.03f);
  std::vector<float> zeros(4, 0.f);
  rows.setScaleFor(zeros.data(), int64_t(zeros.size()), 100.f);
  EXPECT_EQ(rows.getScale(), 1.f);
}
