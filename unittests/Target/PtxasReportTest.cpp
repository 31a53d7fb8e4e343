//===- PtxasReportTest.cpp - Parsing ptxas -v output ----------------------===//

#include "hybrid/Target/PTX.h"

#include <gtest/gtest.h>

using namespace hybrid;

namespace {
// As ptxas 13 prints it: a note about a function may come before the
// function's own lines, and one (C7508) names none.
constexpr const char *kLog =
    R"(ptxas info    : (C7508) Potential Performance Loss: 'setmaxnreg' ignored; unable to determine register count at entry.
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'k_decode' for 'sm_90a'
ptxas info    : Function properties for k_decode
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 80 registers, used 1 barriers, 7168 bytes smem
ptxas info    : (C7515) Potential Performance Loss: wgmma.mma_async instructions are serialized due to insufficient register resources for the function 'k'
ptxas info    : Compiling entry function 'k' for 'sm_90a'
ptxas info    : Function properties for k
    8 bytes stack frame, 544 bytes spill stores, 612 bytes spill loads
ptxas info    : Used 255 registers, used 16 barriers
)";
} // namespace

TEST(PtxasReport, FunctionsAndPerformanceLosses) {
  PtxasReport report;
  parsePtxasReport(kLog, report);
  ASSERT_EQ(report.functions.size(), 2u);
  EXPECT_EQ(report.functions[0].first, "k_decode");
  EXPECT_EQ(report.functions[0].second.registers, 80u);
  EXPECT_EQ(report.functions[0].second.sharedBytes, 7168u);
  EXPECT_EQ(report.functions[0].second.spillStoreBytes, 0u);
  EXPECT_EQ(report.functions[1].first, "k");
  EXPECT_EQ(report.functions[1].second.registers, 255u);
  EXPECT_EQ(report.functions[1].second.stackBytes, 8u);
  EXPECT_EQ(report.functions[1].second.spillStoreBytes, 544u);
  EXPECT_EQ(report.functions[1].second.spillLoadBytes, 612u);
  ASSERT_EQ(report.performanceLosses.size(), 2u);
  EXPECT_EQ(report.performanceLosses[0],
            "'setmaxnreg' ignored; unable to determine register count at "
            "entry.");
  EXPECT_EQ(report.performanceLosses[1],
            "wgmma.mma_async instructions are serialized due to insufficient "
            "register resources for the function 'k'");
}

TEST(PtxasReport, QuietLogHasNoLosses) {
  PtxasReport report;
  parsePtxasReport("ptxas info    : 0 bytes gmem\n", report);
  EXPECT_TRUE(report.functions.empty());
  EXPECT_TRUE(report.performanceLosses.empty());
}
