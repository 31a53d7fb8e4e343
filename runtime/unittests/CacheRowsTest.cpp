//===- CacheRowsTest.cpp - bf16 rounding and host cache rows --------------===//

#include "CacheRows.h"

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

TEST(CacheRows, StoresIntoRingRowsAndWidens) {
  // Batch 2, a ring of 3 rows of width 2; positions 2..5 stored (4 > 3: the
  // oldest is skipped), so rows hold positions 3, 4, 5 at rows 0, 1, 2.
  CacheRows rows;
  rows.allocate(2 * 3 * 2, /*bf16=*/true);
  EXPECT_EQ(rows.bytes(), 2 * 3 * 2 * 2);
  EXPECT_EQ(rows.f32Data(), nullptr);
  std::vector<float> src(2 * 4 * 2);
  for (size_t i = 0; i < src.size(); ++i)
    src[i] = float(i) + 0.5f;
  rows.store(src.data(), 2, 3, /*first=*/2, /*count=*/4, /*rowWidth=*/2);
  std::vector<float> out(2 * 3 * 2, -1.f);
  rows.widen(out.data(), 2, 3, /*first=*/3, /*total=*/6, 2);
  // Sequence b, position p (t = p - 2 in src) sits in row p % 3.
  for (int b = 0; b < 2; ++b)
    for (int p = 3; p < 6; ++p)
      for (int e = 0; e < 2; ++e)
        EXPECT_EQ(out[(b * 3 + p % 3) * 2 + e], src[(b * 4 + (p - 2)) * 2 + e])
            << b << " " << p << " " << e;
  // Positions before `first` are not widened.
  std::vector<float> part(2 * 3 * 2, -1.f);
  rows.widen(part.data(), 2, 3, /*first=*/5, /*total=*/6, 2);
  EXPECT_EQ(part[(0 * 3 + 3 % 3) * 2], -1.f);
  EXPECT_EQ(part[(0 * 3 + 5 % 3) * 2], src[(0 * 4 + 3) * 2]);
}
