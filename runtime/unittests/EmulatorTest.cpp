//===- EmulatorTest.cpp - PTX emulator semantics --------------------------===//
//
// Hand-written PTX kernels with results worked out from the PTX ISA: the
// integer, conversion and approximation corners libdevice and the kernels
// rely on, warp shuffles, ldmatrix layouts, mma.sync fed by ldmatrix
// against a plain matrix product, wgmma through swizzled descriptors, TMA
// loads (box order, 128-byte swizzle, zero fill), and the faults (races,
// cp.async without a wait, out-of-bounds accesses, diverged warps, wgmma and
// mbarrier misuse) the emulator must report. With HYBRID_PTX_ON_DEVICE set the
// kernels run on a GPU instead (PtxOnDevice.h) and the fault tests skip: the
// expected results then check the emulator's model against hardware.
//
//===----------------------------------------------------------------------===//

#include "PtxOnDevice.h"
#include "emulator/Interpreter.h"
#include "emulator/TensorMap.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

using namespace hybrid::emu;
using hybrid::rt::testing::ptxOnDevice;

namespace {

constexpr const char *kHeader = ".version 8.3\n.target sm_90a\n"
                                ".address_size 64\n";

/// Tests of what only the emulator reports (its faults) skip on a device.
#define SKIP_ON_DEVICE(why)                                                    \
  if (ptxOnDevice())                                                           \
  GTEST_SKIP() << why

/// Runs kernel `k` of `body` (one .u64 parameter: `out`) with `threads`
/// threads in one CTA and `dynamicShared` bytes of dynamic shared memory;
/// "" or the fault. `place` writes what depends on `out`'s address.
std::string run(const std::string &body, std::vector<uint64_t> &out,
                unsigned threads = 32, uint64_t dynamicShared = 0,
                const hybrid::rt::testing::Placer &place = nullptr,
                int64_t byValueAt = -1) {
  if (ptxOnDevice())
    return hybrid::rt::testing::runPtxOnDevice(std::string(kHeader) + body, out,
                                               threads, dynamicShared, place,
                                               byValueAt);
  if (place)
    if (std::string e = place(reinterpret_cast<uint64_t>(out.data()), out);
        !e.empty())
      return e;
  Program program;
  std::string error;
  if (!parse(std::string(kHeader) + body, program.module, error))
    return "parse: " + error;
  program.globalAddress.assign(program.module.symbols.size(), 0);
  Memory memory;
  memory.add(reinterpret_cast<uint64_t>(out.data()), out.size() * 8);
  // The parameters where the kernel declares them: `out`'s address, then
  // (byValueAt) 128 bytes of out.
  uint64_t pointer = reinterpret_cast<uint64_t>(out.data());
  const Function &kernel =
      program.module.functions[program.module.functionIndex.at("k")];
  std::vector<uint8_t> params(kernel.paramBytes);
  const void *sources[] = {&pointer, reinterpret_cast<uint8_t *>(out.data()) +
                                         std::max<int64_t>(byValueAt, 0)};
  for (size_t i = 0; i < kernel.params.size() && i < 2; ++i) {
    const Symbol &p = program.module.symbols[kernel.params[i]];
    std::memcpy(&params[p.offset], sources[i], p.size);
  }
  Grid grid;
  grid.block[0] = threads;
  grid.dynamicSharedBytes = dynamicShared;
  return launch(program, program.module.functionIndex.at("k"), grid, params,
                memory);
}

/// A kernel computing `ops` (PTX using %a, %b, %c as inputs loaded from
/// out[0..2] and writing %d) per test case, storing %d to out[3].
uint64_t compute(const std::string &type, const std::string &ops, uint64_t a,
                 uint64_t b = 0, uint64_t c = 0) {
  std::string body = R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b64 %p0;
  .reg .)" + type + R"( %a, %b, %c, %d;
  .reg .pred %q<4>;
  .reg .b16 %h<8>;
  .reg .b32 %t<8>;
  .reg .b64 %w<8>;
  ld.param.u64 %p0, [k_param_0];
  ld.global.)" + type +
                     R"( %a, [%p0];
  ld.global.)" + type +
                     R"( %b, [%p0+8];
  ld.global.)" + type +
                     R"( %c, [%p0+16];
  )" + ops + R"(
  st.global.)" + type +
                     R"( [%p0+24], %d;
  ret;
})";
  std::vector<uint64_t> out = {a, b, c, 0};
  std::string fault = run(body, out, 1);
  EXPECT_EQ(fault, "");
  return out[3];
}

/// `from`'s bits as a `To` of the same size (C++20's std::bit_cast).
template <typename To, typename From> To bitCast(From from) {
  static_assert(sizeof(To) == sizeof(From));
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}
uint32_t f32Bits(float f) { return bitCast<uint32_t>(f); }
uint64_t f64Bits(double d) { return bitCast<uint64_t>(d); }
float f32Of(uint64_t bits) { return bitCast<float>(uint32_t(bits)); }
double f64Of(uint64_t bits) { return bitCast<double>(bits); }

TEST(Emulator, IntegerCorners) {
  // bfe: unsigned field, signed field sign-extends from its top bit.
  EXPECT_EQ(compute("b32", "bfe.u32 %d, %a, 4, 8;", 0xabcd), 0xbcu);
  EXPECT_EQ(compute("b32", "bfe.s32 %d, %a, 4, 8;", 0xabcd), 0xffffffbcu);
  // Funnel shift left: high word of ({b, a} << n).
  EXPECT_EQ(compute("b32", "shf.l.wrap.b32 %d, %a, %b, 36;", 0x80000001, 0x1),
            0x18u);
  EXPECT_EQ(
      compute("b64", "mul.hi.s64 %d, %a, %b;", uint64_t(-3), uint64_t(1) << 62),
      uint64_t(-1));
  EXPECT_EQ(compute("b64", "clz.b64 %t0, %a; cvt.u64.u32 %d, %t0;", 1), 63u);
  EXPECT_EQ(compute("b64", "shr.s64 %d, %a, 70;", uint64_t(-8)), uint64_t(-1));
  EXPECT_EQ(compute("b64", "shl.b64 %d, %a, 64;", 1), 0u);
  // setp.cmp.and: the comparison, and-ed with a third predicate; the second
  // destination gets the negated comparison, also and-ed.
  std::string both = "setp.ne.u32 %q1, %c, 0; setp.lt.and.u32 %q0|%q2, %a, "
                     "%b, %q1; selp.b32 %t0, 1, 0, %q0; selp.b32 %t1, 2, 0, "
                     "%q2; or.b32 %d, %t0, %t1;";
  EXPECT_EQ(compute("b32", both, 1, 2, 1), 1u);
  EXPECT_EQ(compute("b32", both, 3, 2, 1), 2u);
  EXPECT_EQ(compute("b32", both, 1, 2, 0), 0u);
}

TEST(Emulator, CarryChainMultipliesTo128Bits) {
  // libdevice's 64 x 64 -> 128-bit product (its trig reduction).
  std::string ops = R"(
  {
  .reg .u32 r0, r1, r2, r3, alo, ahi, blo, bhi;
  mov.b64 {alo,ahi}, %a;
  mov.b64 {blo,bhi}, %b;
  mul.lo.u32 r0, alo, blo;
  mul.hi.u32 r1, alo, blo;
  mad.lo.cc.u32 r1, alo, bhi, r1;
  madc.hi.u32 r2, alo, bhi, 0;
  mad.lo.cc.u32 r1, ahi, blo, r1;
  madc.hi.cc.u32 r2, ahi, blo, r2;
  madc.hi.u32 r3, ahi, bhi, 0;
  mad.lo.cc.u32 r2, ahi, bhi, r2;
  addc.u32 r3, r3, 0;
  mov.b64 %d, {r2,r3};
  })";
  uint64_t a = 0xfedcba9876543210ull, b = 0xf0e1d2c3b4a59687ull;
  unsigned __int128 p = (unsigned __int128)a * b;
  EXPECT_EQ(compute("b64", ops, a, b), uint64_t(p >> 64));
  // Borrow through sub.cc / subc.
  std::string sub = R"(
  {
  .reg .u32 alo, ahi, blo, bhi, lo, hi;
  mov.b64 {alo,ahi}, %a;
  mov.b64 {blo,bhi}, %b;
  sub.cc.u32 lo, alo, blo;
  subc.u32 hi, ahi, bhi;
  mov.b64 %d, {lo,hi};
  })";
  EXPECT_EQ(compute("b64", sub, 0x100000000ull, 1), 0xffffffffull);
}

TEST(Emulator, Conversions) {
  auto rni = [](double x) {
    return uint32_t(compute(
        "b64", "cvt.rni.s32.f64 %t0, %a; cvt.u64.u32 %d, %t0;", f64Bits(x)));
  };
  EXPECT_EQ(rni(2.5), 2u);
  EXPECT_EQ(rni(-2.5), uint32_t(-2));
  EXPECT_EQ(rni(1e20), 0x7fffffffu);
  EXPECT_EQ(rni(NAN), 0u);
  // bf16 rounds to nearest even; bf16x2 puts its first source high.
  auto bf16 = [](uint32_t bits) {
    return compute("b32", "cvt.rn.bf16.f32 %h0, %a; cvt.u32.u16 %d, %h0;",
                   bits);
  };
  EXPECT_EQ(bf16(0x3f808000), 0x3f80u);
  EXPECT_EQ(bf16(0x3f818000), 0x3f82u);
  EXPECT_EQ(bf16(0x3f808001), 0x3f81u);
  EXPECT_EQ(compute("b32", "cvt.rn.bf16x2.f32 %d, %a, %b;", f32Bits(1.0f),
                    f32Bits(2.0f)),
            0x3f804000u);
  EXPECT_EQ(
      compute("b32", "cvt.u16.u32 %h0, %a; cvt.f32.bf16 %d, %h0;", 0x4040),
      f32Bits(3.0f));
  EXPECT_EQ(compute("b64", "cvt.rmi.f64.f64 %d, %a;", f64Bits(-1.5)),
            f64Bits(-2.0));
}

TEST(Emulator, BFloat16ArithmeticRoundsOnce) {
  // bf16 bits in, bf16 bits out (16-bit registers %h).
  auto op = [](const std::string &ops, uint32_t a, uint32_t b = 0,
               uint32_t c = 0) {
    return compute("b32",
                   "cvt.u16.u32 %h0, %a; cvt.u16.u32 %h1, %b; "
                   "cvt.u16.u32 %h2, %c; " +
                       ops + " cvt.u32.u16 %d, %h3;",
                   a, b, c);
  };
  // (1 + 2^-7)^2 = 1.0157 rounds to 1.015625.
  EXPECT_EQ(op("mul.rn.bf16 %h3, %h0, %h1;", 0x3f81, 0x3f81), 0x3f82u);
  // 1 * 2^-8 + 1: a tie, to even; 1 + 2^-8 + 2^-15: above it, up.
  EXPECT_EQ(op("fma.rn.bf16 %h3, %h0, %h1, %h2;", 0x3f80, 0x3b80, 0x3f80),
            0x3f80u);
  EXPECT_EQ(op("fma.rn.bf16 %h3, %h0, %h1, %h2;", 0x3f81, 0x3b80, 0x3f80),
            0x3f81u);
  // 1.75 * 0.578125 = 1 + 3 * 2^-8, a halfway point; minus 2^-100 it is
  // below it (rounding the sum to f64 first would land on it: 0x3f82).
  EXPECT_EQ(op("fma.rn.bf16 %h3, %h0, %h1, %h2;", 0x3fe0, 0x3f14, 0x8d80),
            0x3f81u);
  EXPECT_EQ(op("sub.rn.bf16 %h3, %h0, %h1;", 0x4040, 0x3f80), 0x4000u);
  EXPECT_EQ(op("neg.bf16 %h3, %h0;", 0x3f80), 0xbf80u);
  // Two lanes: (1, 2) + (2, 3) = (3, 5).
  EXPECT_EQ(compute("b32", "add.rn.bf16x2 %d, %a, %b;", 0x3f804000, 0x40004040),
            0x404040a0u);
}

TEST(Emulator, FloatNaNAndSigns) {
  uint32_t nan = 0x7fc00000, one = f32Bits(1.0f);
  EXPECT_EQ(compute("b32", "max.f32 %d, %a, %b;", nan, one), one);
  EXPECT_TRUE(
      std::isnan(f32Of(compute("b32", "max.NaN.f32 %d, %a, %b;", nan, one))));
  EXPECT_EQ(compute("b32", "setp.lt.f32 %q0, %a, %b; selp.b32 %d, 1, 0, %q0;",
                    nan, one),
            0u);
  EXPECT_EQ(compute("b32", "setp.ltu.f32 %q0, %a, %b; selp.b32 %d, 1, 0, %q0;",
                    nan, one),
            1u);
  // copysign d, a, b: b's magnitude, a's sign.
  EXPECT_EQ(
      compute("b32", "copysign.f32 %d, %a, %b;", f32Bits(-1.0f), f32Bits(3.0f)),
      f32Bits(-3.0f));
  EXPECT_EQ(
      compute("b32", "max.f32 %d, %a, %b;", f32Bits(-0.0f), f32Bits(0.0f)),
      f32Bits(0.0f));
}

TEST(Emulator, ApproximationsAndRoundingAtTheirCorners) {
  // .approx: within a bound of the exact value (the emulator computes it
  // exactly); .ftz: subnormal inputs and results are sign-preserving zeros.
  auto ex2 = [](float x) {
    return f32Of(compute("b32", "ex2.approx.ftz.f32 %d, %a;", f32Bits(x)));
  };
  EXPECT_NEAR(ex2(1.0f), 2.0f, 2.0f * 0x1p-20f);
  EXPECT_NEAR(ex2(-10.5f), std::exp2(-10.5f), std::exp2(-10.5f) * 0x1p-20f);
  EXPECT_EQ(f32Bits(ex2(-INFINITY)), f32Bits(0.0f)); // softmax's masked keys
  EXPECT_EQ(f32Bits(ex2(-140.0f)), f32Bits(0.0f));   // a subnormal, flushed
  EXPECT_EQ(ex2(INFINITY), INFINITY);
  EXPECT_EQ(ex2(200.0f), INFINITY);
  EXPECT_TRUE(std::isnan(ex2(NAN)));
  // sin and cos: the decode kernel's RoPE angles of K=V keys, under 2 pi +
  // 128 radians (PTX: absolute error 2^-20.5 within 100 pi).
  auto trig = [](const char *op, float x) {
    return f32Of(compute("b32",
                         (std::string(op) + ".approx.ftz.f32 %d, %a;").c_str(),
                         f32Bits(x)));
  };
  for (float x : {0.0f, 0.5f, -2.0f, 133.7f}) {
    EXPECT_NEAR(trig("sin", x), std::sin(x), 0x1p-20f);
    EXPECT_NEAR(trig("cos", x), std::cos(x), 0x1p-20f);
  }
  auto rcp = [](float x) {
    return compute("b32", "rcp.approx.ftz.f32 %d, %a;", f32Bits(x));
  };
  EXPECT_NEAR(f32Of(rcp(3.0f)), 1.0f / 3, 0x1p-20f);
  EXPECT_EQ(rcp(0.0f), f32Bits(INFINITY));
  EXPECT_EQ(rcp(-0.0f), f32Bits(-INFINITY));
  EXPECT_EQ(rcp(1e-40f), f32Bits(INFINITY)); // a subnormal input, flushed
  EXPECT_EQ(rcp(-0x1p127f), f32Bits(-0.0f)); // -2^-127, flushed
  EXPECT_EQ(rcp(INFINITY), f32Bits(0.0f));
  // libdevice's double division seeds its Newton steps with this one.
  auto rcp64 = [](double x) {
    return compute("b64", "rcp.approx.ftz.f64 %d, %a;", f64Bits(x));
  };
  EXPECT_NEAR(f64Of(rcp64(3.0)), 1.0 / 3, 1e-4);
  EXPECT_EQ(rcp64(0.0), f64Bits(INFINITY));
  EXPECT_EQ(rcp64(-0.0), f64Bits(-INFINITY));
  EXPECT_EQ(rcp64(1.7e308), f64Bits(0.0)); // 5.9e-309, subnormal: flushed
  // Rounded to nearest: exact bits.
  EXPECT_EQ(compute("b32", "rcp.rn.f32 %d, %a;", f32Bits(3.0f)),
            f32Bits(1.0f / 3));
  EXPECT_EQ(
      compute("b32", "div.rn.f32 %d, %a, %b;", f32Bits(2.0f), f32Bits(3.0f)),
      f32Bits(2.0f / 3));
  // Fused: (1 + 2^-52)(1 - 2^-52) - 1 = -2^-104, which a rounded product
  // loses.
  EXPECT_EQ(compute("b64", "fma.rn.f64 %d, %a, %b, %c;", f64Bits(1 + 0x1p-52),
                    f64Bits(1 - 0x1p-52), f64Bits(-1.0)),
            f64Bits(-0x1p-104));
  // f64 to f32: ties to even, subnormals kept (no .ftz), overflow to inf.
  auto narrow = [](double x) {
    return compute("b64", "cvt.rn.f32.f64 %t0, %a; cvt.u64.u32 %d, %t0;",
                   f64Bits(x));
  };
  EXPECT_EQ(narrow(1 + 0x1p-24), f32Bits(1.0f));
  EXPECT_EQ(narrow(1 + 0x1p-24 + 0x1p-40), f32Bits(1 + 0x1p-23f));
  EXPECT_EQ(narrow(0x1p-140), f32Bits(0x1p-140f));
  EXPECT_EQ(narrow(1e300), f32Bits(INFINITY));
  EXPECT_EQ(compute("b64", "cvt.rn.f64.u64 %d, %a;", ~uint64_t(0)),
            f64Bits(0x1p64));
  EXPECT_EQ(compute("b64", "cvt.u32.u64 %t0, %a; cvt.s64.s32 %d, %t0;",
                    uint64_t(0xfffffffe)),
            uint64_t(-2));
  EXPECT_EQ(compute("b32", "neg.f32 %d, %a;", f32Bits(0.0f)), f32Bits(-0.0f));
  EXPECT_EQ(compute("b64", "abs.f64 %d, %a;", f64Bits(-0.0)), f64Bits(0.0));
  // Unordered comparisons hold for NaN; min/max by the type's signedness.
  EXPECT_EQ(compute("b64", "setp.neu.f64 %q0, %a, %a; selp.b64 %d, 1, 0, %q0;",
                    f64Bits(NAN)),
            1u);
  EXPECT_EQ(compute("b64", "min.s64 %d, %a, %b;", uint64_t(-1), 1),
            uint64_t(-1));
  EXPECT_EQ(compute("b64", "min.u64 %d, %a, %b;", uint64_t(-1), 1), 1u);
}

/// Runs one warp of `compute`, PTX that sets %r2 from the lane in %r0
/// (%r1, %p0 and %p1 are free), and returns every lane's %r2.
std::vector<uint64_t> eachLane(const std::string &compute) {
  std::string body = R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b32 %r<4>;
  .reg .b64 %rd<4>;
  .reg .pred %p<2>;
  ld.param.u64 %rd0, [k_param_0];
  mov.u32 %r0, %tid.x;
)" + compute + R"(
  mul.wide.u32 %rd1, %r0, 8;
  add.s64 %rd2, %rd0, %rd1;
  cvt.u64.u32 %rd3, %r2;
  st.global.b64 [%rd2], %rd3;
  ret;
})";
  std::vector<uint64_t> out(32);
  EXPECT_EQ(run(body, out), "");
  return out;
}

/// out[lane] = shfl.MODE(lane * 10, b, c) over one warp.
std::vector<uint64_t> shuffle(const std::string &mode, int b, int c) {
  return eachLane("  mul.lo.u32 %r1, %r0, 10;\n  shfl.sync." + mode +
                  ".b32 %r2, %r1, " + std::to_string(b) + ", " +
                  std::to_string(c) + ", -1;");
}

TEST(Emulator, Shuffles) {
  std::vector<uint64_t> bfly = shuffle("bfly", 1, 31);
  std::vector<uint64_t> idx = shuffle("idx", 5, 31);
  std::vector<uint64_t> down = shuffle("down", 4, 31);
  std::vector<uint64_t> up = shuffle("up", 4, 0);
  for (unsigned lane = 0; lane < 32; ++lane) {
    EXPECT_EQ(bfly[lane], (lane ^ 1) * 10u);
    EXPECT_EQ(idx[lane], 50u);
    EXPECT_EQ(down[lane], (lane + 4 <= 31 ? lane + 4 : lane) * 10u);
    EXPECT_EQ(up[lane], (lane >= 4 ? lane - 4 : lane) * 10u);
  }
}

/// out[lane] = vote.sync.MODE over one warp of lane % `every` == `is`: the
/// predicate as 0 or 1, or the ballot.
std::vector<uint64_t> vote(const std::string &mode, int every, int is) {
  std::string predicate = "  rem.u32 %r1, %r0, " + std::to_string(every) +
                          ";\n  setp.eq.u32 %p0, %r1, " + std::to_string(is) +
                          ";\n";
  if (mode == "ballot")
    return eachLane(predicate + "  vote.sync.ballot.b32 %r2, %p0, -1;");
  return eachLane(predicate + "  vote.sync." + mode +
                  ".pred %p1, %p0, -1;\n  selp.u32 %r2, 1, 0, %p1;");
}

TEST(Emulator, Votes) {
  // Every lane gets the warp's answer.
  auto warpAnswer = [](const std::vector<uint64_t> &out) {
    for (uint64_t x : out)
      EXPECT_EQ(x, out[0]);
    return out[0];
  };
  EXPECT_EQ(warpAnswer(vote("any", 32, 5)), 1u);  // lane 5 alone
  EXPECT_EQ(warpAnswer(vote("any", 64, 40)), 0u); // no lane
  EXPECT_EQ(warpAnswer(vote("all", 1, 0)), 1u);
  EXPECT_EQ(warpAnswer(vote("all", 32, 5)), 0u);
  EXPECT_EQ(warpAnswer(vote("uni", 64, 40)), 1u);
  EXPECT_EQ(warpAnswer(vote("uni", 2, 0)), 0u);
  EXPECT_EQ(warpAnswer(vote("ballot", 4, 1)), 0x22222222u);
}

/// Shared memory holds a 16 x 16 bf16 row-major matrix M[r][c] = r * 16 + c
/// (as raw 16-bit values); every lane stores its ldmatrix registers.
std::vector<uint64_t> ldmatrix(bool trans) {
  std::string body = R"(
.visible .entry k(.param .u64 k_param_0) {
  .shared .align 16 .b8 tile[512];
  .reg .b32 %r<12>;
  .reg .b64 %rd<12>;
  .reg .pred %p<2>;
  ld.param.u64 %rd0, [k_param_0];
  mov.u32 %r0, %tid.x;
  mov.u32 %r1, 0;
$fill:
  shl.b32 %r2, %r1, 5;
  add.s32 %r2, %r2, %r0;
  setp.lt.u32 %p0, %r2, 256;
  @!%p0 bra $done;
  cvt.u64.u32 %rd1, %r2;
  shl.b64 %rd1, %rd1, 1;
  mov.b64 %rd2, tile;
  add.s64 %rd2, %rd2, %rd1;
  cvt.u16.u32 %r3, %r2;
  st.shared.b16 [%rd2], %r2;
  add.s32 %r1, %r1, 1;
  bra $fill;
$done:
  bar.sync 0;
  // Lane l points at row l % 16, column 8 * (l / 16): matrices 0..3 are
  // the quadrants (top-left, bottom-left, top-right, bottom-right).
  and.b32 %r4, %r0, 15;
  shr.u32 %r5, %r0, 4;
  shl.b32 %r4, %r4, 5;
  shl.b32 %r5, %r5, 4;
  add.s32 %r4, %r4, %r5;
  cvt.u64.u32 %rd3, %r4;
  mov.b64 %rd4, tile;
  add.s64 %rd4, %rd4, %rd3;
  ldmatrix.sync.aligned.m8n8.x4)" +
                     std::string(trans ? ".trans" : "") +
                     R"(.shared.b16 {%r6, %r7, %r8, %r9}, [%rd4];
  mul.wide.u32 %rd5, %r0, 32;
  add.s64 %rd6, %rd0, %rd5;
  cvt.u64.u32 %rd7, %r6;
  st.global.b64 [%rd6], %rd7;
  cvt.u64.u32 %rd7, %r7;
  st.global.b64 [%rd6+8], %rd7;
  cvt.u64.u32 %rd7, %r8;
  st.global.b64 [%rd6+16], %rd7;
  cvt.u64.u32 %rd7, %r9;
  st.global.b64 [%rd6+24], %rd7;
  ret;
})";
  std::vector<uint64_t> out(32 * 4);
  EXPECT_EQ(run(body, out), "");
  return out;
}

TEST(Emulator, LdmatrixLayouts) {
  std::vector<uint64_t> plain = ldmatrix(false), trans = ldmatrix(true);
  for (unsigned lane = 0; lane < 32; ++lane)
    for (unsigned i = 0; i < 4; ++i) {
      unsigned row0 = (i % 2) * 8, col0 = (i / 2) * 8;
      unsigned r = lane / 4, c = 2 * (lane % 4);
      auto at = [&](unsigned rr, unsigned cc) {
        return uint64_t((row0 + rr) * 16 + col0 + cc);
      };
      EXPECT_EQ(plain[lane * 4 + i], at(r, c) | at(r, c + 1) << 16)
          << "lane " << lane << " matrix " << i;
      EXPECT_EQ(trans[lane * 4 + i], at(c, r) | at(c + 1, r) << 16)
          << "lane " << lane << " matrix " << i;
    }
}

/// D = A B (16x16 by 16x8, bf16 in, f32 out) with A row-major and B as
/// [k][n] rows in shared memory, fragments loaded the way the flash kernel
/// loads them: ldmatrix.x4 for A, ldmatrix.x2.trans for B.
TEST(Emulator, MmaFromLdmatrixIsAMatrixProduct) {
  std::string body = R"(
.visible .entry k(.param .u64 k_param_0) {
  .shared .align 16 .b8 a[768];
  .reg .b32 %r<32>;
  .reg .b64 %rd<16>;
  .reg .pred %p<2>;
  ld.param.u64 %rd0, [k_param_0];
  mov.u32 %r0, %tid.x;
  // out[0..383] holds A (256 values) then B (128 values) as bf16 bits;
  // shared memory the same, B from byte 512.
  mov.u32 %r1, %r0;
$copy:
  setp.lt.u32 %p0, %r1, 384;
  @!%p0 bra $copied;
  mul.wide.u32 %rd1, %r1, 8;
  add.s64 %rd2, %rd0, %rd1;
  ld.global.b64 %rd3, [%rd2];
  mul.wide.u32 %rd4, %r1, 2;
  mov.b64 %rd5, a;
  add.s64 %rd5, %rd5, %rd4;
  st.shared.b16 [%rd5], %rd3;
  add.s32 %r1, %r1, 32;
  bra $copy;
$copied:
  bar.sync 0;
  // A: lane l -> row l % 16, column 8 * (l / 16).
  and.b32 %r2, %r0, 15;
  shr.u32 %r3, %r0, 4;
  shl.b32 %r2, %r2, 5;
  shl.b32 %r3, %r3, 4;
  add.s32 %r2, %r2, %r3;
  cvt.u64.u32 %rd6, %r2;
  mov.b64 %rd7, a;
  add.s64 %rd7, %rd7, %rd6;
  ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%r4, %r5, %r6, %r7}, [%rd7];
  // B: lane l < 16 -> row k = l of b.
  and.b32 %r8, %r0, 15;
  shl.b32 %r8, %r8, 4;
  cvt.u64.u32 %rd8, %r8;
  mov.b64 %rd9, a;
  add.s64 %rd9, %rd9, %rd8;
  add.s64 %rd9, %rd9, 512;
  ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%r9, %r10}, [%rd9];
  mov.b32 %r11, 0;
  mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
    {%r12, %r13, %r14, %r15}, {%r4, %r5, %r6, %r7}, {%r9, %r10},
    {%r11, %r11, %r11, %r11};
  // D[g][2q..2q+1] and D[g+8][2q..2q+1] to out[384 + row * 8 + col].
  shr.u32 %r16, %r0, 2;
  and.b32 %r17, %r0, 3;
  shl.b32 %r17, %r17, 1;
  shl.b32 %r18, %r16, 3;
  add.s32 %r18, %r18, %r17;
  add.s32 %r18, %r18, 384;
  mul.wide.u32 %rd10, %r18, 8;
  add.s64 %rd11, %rd0, %rd10;
  cvt.u64.u32 %rd12, %r12;
  st.global.b64 [%rd11], %rd12;
  cvt.u64.u32 %rd12, %r13;
  st.global.b64 [%rd11+8], %rd12;
  cvt.u64.u32 %rd12, %r14;
  st.global.b64 [%rd11+512], %rd12;
  cvt.u64.u32 %rd12, %r15;
  st.global.b64 [%rd11+520], %rd12;
  ret;
})";
  // Small integers: exact in bf16, products and sums exact in f32.
  float A[16][16], B[16][8];
  std::vector<uint64_t> out(384 + 128);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c) {
      A[r][c] = float((r * 7 + c * 3) % 11 - 5);
      out[r * 16 + c] = f32Bits(A[r][c]) >> 16;
    }
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 8; ++n) {
      B[k][n] = float((k * 5 + n * 9) % 13 - 6);
      out[256 + k * 8 + n] = f32Bits(B[k][n]) >> 16;
    }
  ASSERT_EQ(run(body, out), "");
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      float expected = 0;
      for (int k = 0; k < 16; ++k)
        expected += A[m][k] * B[k][n];
      EXPECT_EQ(out[384 + m * 8 + n], f32Bits(expected))
          << "D[" << m << "][" << n << "]";
    }
}

/// LLVM may lay a reconvergence block out above the branch that diverged:
/// lanes 1-31 jump back to the shuffle while lane 0 still has work; the
/// shuffle must wait for lane 0, not fault or run without it.
TEST(Emulator, ReconvergesAboveTheDivergentBranch) {
  std::string body = R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b32 %r<4>;
  .reg .b64 %rd<4>;
  .reg .pred %p<2>;
  ld.param.u64 %rd0, [k_param_0];
  mov.u32 %r0, %tid.x;
  setp.eq.u32 %p0, %r0, 0;
  bra.uni $start;
$join:
  shfl.sync.bfly.b32 %r2, %r1, 1, 31, -1;
  mul.wide.u32 %rd1, %r0, 8;
  add.s64 %rd2, %rd0, %rd1;
  cvt.u64.u32 %rd3, %r2;
  st.global.b64 [%rd2], %rd3;
  ret;
$start:
  mov.u32 %r1, 7;
  @!%p0 bra $join;
  mov.u32 %r1, 9;
  bra.uni $join;
})";
  std::vector<uint64_t> out(32);
  ASSERT_EQ(run(body, out), "");
  EXPECT_EQ(out[0], 7u);
  EXPECT_EQ(out[1], 9u);
  EXPECT_EQ(out[2], 7u);
}

TEST(Emulator, StopsEndlessLoops) {
  SKIP_ON_DEVICE("the emulator's own faults");
  setenv("HYBRID_EMULATOR_MAX_STEPS", "10000", 1);
  std::vector<uint64_t> out(1);
  std::string fault = run(R"(
.visible .entry k(.param .u64 k_param_0) {
$spin:
  bra.uni $spin;
})",
                          out);
  unsetenv("HYBRID_EMULATOR_MAX_STEPS");
  EXPECT_NE(fault.find("ran past 10000 warp-instructions: an endless loop?"),
            std::string::npos)
      << fault;
}

/// What LLVM's PTX and hand-written PTX spell: comments anywhere (inside a
/// multi-line header too), labels, and integer and float immediates in each
/// base the ISA allows.
TEST(Emulator, ParsesCommentsLabelsAndImmediates) {
  std::vector<uint64_t> out(3);
  std::string fault = run(R"(
.visible .entry k(  // the header spans lines
    .param .u64 k_param_0  // with comments in it
) {
  .reg .b32 %r<8>;
  .reg .b64 %rd<2>;
  .reg .pred %p<2>;
  .reg .f32 %f<2>;
  ld.param.u64 %rd0, [k_param_0]; // after a statement
  mov.u32 %r0, 0x10;
  mov.u32 %r1, 017;
  mov.u32 %r2, -3;
  mov.f32 %f0, 0f3FC00000;
  mov.b32 %r3, %f0;
  mov.u32 %r4, 7U;
  mov.u32 %r5, 0;
$L__loop:
  // a comment between a label and its block
  add.s32 %r5, %r5, 1;
  setp.lt.s32 %p0, %r5, 5;
  @%p0 bra $L__loop;
  st.global.u32 [%rd0], %r0;
  st.global.u32 [%rd0+4], %r1;
  st.global.u32 [%rd0+8], %r2;
  st.global.u32 [%rd0+12], %r3;
  st.global.u32 [%rd0+16], %r4;
  st.global.u32 [%rd0+0x14], %r5;
  ret;
})",
                          out);
  ASSERT_EQ(fault, "");
  auto word = [&](int i) { return uint32_t(out[i / 2] >> (32 * (i % 2))); };
  EXPECT_EQ(word(0), 16u);
  EXPECT_EQ(word(1), 15u);
  EXPECT_EQ(word(2), uint32_t(-3));
  EXPECT_EQ(word(3), f32Bits(1.5f));
  EXPECT_EQ(word(4), 7u);
  EXPECT_EQ(word(5), 5u);
}

/// The decode kernel's split counter: each thread fences, adds 1 to a
/// global counter and keeps the value it found; every value from 0 up is
/// found once, and the counter ends at the thread count.
TEST(Emulator, AtomicAddsCountEveryThread) {
  std::vector<uint64_t> out(65);
  std::string fault = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b32 %r<3>;
  .reg .b64 %rd<4>;
  ld.param.u64 %rd0, [k_param_0];
  cvta.to.global.u64 %rd1, %rd0;
  mov.u32 %r0, %tid.x;
  fence.acq_rel.gpu;
  atom.global.add.u32 %r1, [%rd1], 1;
  mul.wide.u32 %rd2, %r0, 8;
  add.s64 %rd3, %rd1, %rd2;
  st.global.u32 [%rd3+8], %r1;
  ret;
})",
                          out, 64);
  ASSERT_EQ(fault, "");
  EXPECT_EQ(uint32_t(out[0]), 64u);
  std::vector<bool> seen(64, false);
  for (unsigned t = 0; t < 64; ++t) {
    uint32_t found = uint32_t(out[1 + t]);
    ASSERT_LT(found, 64u);
    EXPECT_FALSE(seen[found]) << found;
    seen[found] = true;
  }
}

TEST(Emulator, RejectsWhatItDoesNotModel) {
  SKIP_ON_DEVICE("the emulator's own faults");
  std::vector<uint64_t> out(1);
  std::string fault = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b32 %r<2>;
  lg2.approx.f32 %r0, %r1;
  ret;
})",
                          out);
  EXPECT_NE(fault.find("unsupported instruction `lg2.approx.f32`"),
            std::string::npos)
      << fault;
  std::string exchange = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b32 %r<2>;
  .reg .b64 %rd<1>;
  atom.global.exch.b32 %r0, [%rd0], %r1;
  ret;
})",
                             out);
  EXPECT_NE(exchange.find("unsupported atomic `atom.global.exch.b32`"),
            std::string::npos)
      << exchange;
  std::string partial = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  bar.sync 0, 64, 1;
  ret;
})",
                            out);
  EXPECT_NE(partial.find("barriers are `bar.sync 0` or `bar.sync|bar.arrive "
                         "id, threads`"),
            std::string::npos)
      << partial;
  std::string size = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .shared .align 4 .b8 word[4x];
  ret;
})",
                         out);
  EXPECT_EQ(size, "parse: line 6: variable `word[4x]` needs an explicit size");
  std::string immediate = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b32 %r<2>;
  mov.u32 %r0, 12z;
  ret;
})",
                              out);
  EXPECT_EQ(immediate, "parse: line 7: bad immediate `12z`");
  std::string guard = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .pred %p<2>;
  @%p0;
  ret;
})",
                          out);
  EXPECT_EQ(guard,
            "parse: line 7: guarded statement without an instruction `@%p0`");
}

/// Runs `code` on two warps sharing a 4-byte word `word` and an mbarrier
/// `phase` (%r0 = %tid.x; registers %r, %rd and %p to spare): "" or the
/// fault.
std::string runTwoWarps(const std::string &code) {
  std::string body = R"(
.visible .entry k(.param .u64 k_param_0) {
  .shared .align 4 .b8 word[4];
  .shared .align 8 .b8 phase[8];
  .reg .b32 %r<4>;
  .reg .b64 %rd<2>;
  .reg .pred %p<4>;
  mov.u32 %r0, %tid.x;
)" + code + "\n}";
  std::vector<uint64_t> out(1);
  return run(body, out, 64);
}

/// Warp 0 writes a shared word that warp 1 then reads, with or without a
/// barrier between.
std::string crossWarp(bool barrier) {
  return runTwoWarps(R"(
  setp.eq.u32 %p0, %r0, 0;
  @%p0 st.shared.b32 [word], %r0;
  )" + std::string(barrier ? "bar.sync 0;" : "") +
                     R"(
  setp.eq.u32 %p1, %r0, 32;
  @%p1 ld.shared.b32 %r1, [word];
  ret;)");
}

TEST(Emulator, ReportsSharedMemoryRaces) {
  SKIP_ON_DEVICE("the emulator's own faults");
  EXPECT_EQ(crossWarp(true), "");
  std::string fault = crossWarp(false);
  EXPECT_NE(fault.find("race: warp 1 reads shared byte 0 that warp 0 wrote "
                       "with no barrier or mbarrier phase between"),
            std::string::npos)
      << fault;
}

/// Warp 0 reads a shared word and arrives on an mbarrier (every lane);
/// warp 1 overwrites the word after waiting for the phase (`wait`), and
/// warp 0 reads it again after arriving (`readAfter`): the producer and
/// consumer warps of a warp-specialized kernel, ordered by the mbarrier
/// alone.
std::string orderedByMbarrier(bool wait, bool readAfter) {
  return runTwoWarps(
      R"(
  setp.eq.u32 %p0, %r0, 0;
  @%p0 mbarrier.init.shared::cta.b64 [phase], 32;
  bar.sync 0;
  setp.ge.u32 %p1, %r0, 32;
  @%p1 bra $consumer;
  ld.shared.b32 %r1, [word];
  mbarrier.arrive.shared::cta.b64 %rd0, [phase];
  )" + std::string(readAfter ? "ld.shared.b32 %r2, [word];" : "") +
      R"(
  ret;
$consumer:
  )" +
      std::string(
          wait ? R"(mbarrier.try_wait.parity.shared::cta.b64 %p2, [phase], 0;
  @!%p2 bra $consumer;)"
               : "") +
      R"(
  setp.eq.u32 %p3, %r0, 32;
  @%p3 st.shared.b32 [word], %r0;
  ret;)");
}

TEST(Emulator, MbarrierPhasesOrderWarps) {
  EXPECT_EQ(orderedByMbarrier(/*wait=*/true, /*readAfter=*/false), "");
}

/// Warps 0 and 1 write a word in turn, ordered by two named barriers as two
/// warpgroups take turns issuing their tensor-core work (ping-pong): warp 1
/// arrives on barrier 1 to let warp 0 go first; warp 0 waits there (64
/// threads: its sync and warp 1's arrival), writes, arrives on barrier 2;
/// warp 1 waits there, then writes. `order` false drops warp 1's wait.
std::string pingPong(bool order) {
  return runTwoWarps(R"(
  mov.u32 %r1, 2;
  setp.ge.u32 %p0, %r0, 32;
  @%p0 bra $second;
  bar.sync 1, 64;
  st.shared.b32 [word], %r0;
  bar.arrive %r1, 64;
  ret;
$second:
  bar.arrive 1, 64;
  )" + std::string(order ? "bar.sync %r1, 64;" : "") +
                     R"(
  st.shared.b32 [word], %r0;
  ret;)");
}

TEST(Emulator, NamedBarriersOrderWarps) {
  EXPECT_EQ(pingPong(/*order=*/true), "");
}

TEST(Emulator, ReportsNamedBarrierMisuse) {
  SKIP_ON_DEVICE("the emulator's own faults");
  std::string race = pingPong(false);
  // Warp 1 writes right after its arrival, then the warp it let go does.
  EXPECT_NE(race.find("race: warp 0 writes shared byte 0 that warp 1 wrote"),
            std::string::npos)
      << race;
  // Warp 0 waits for an arrival warp 1 never makes.
  std::string stuck = runTwoWarps(R"(
  setp.ge.u32 %p0, %r0, 32;
  @%p0 bra $done;
  bar.sync 3, 64;
$done:
  ret;)");
  std::string badId = runTwoWarps("  bar.sync 16, 64;\n  ret;");
  EXPECT_NE(badId.find("named barrier 16 with 64 threads (ids 0 to 15"),
            std::string::npos)
      << badId;
  EXPECT_NE(stuck.find("deadlock: warp 0 waits at named barrier 3 (32 of 64 "
                       "threads arrived)"),
            std::string::npos)
      << stuck;
  // The warps disagree on the thread count: warp 0 says 64, warp 1 32.
  std::string counts = runTwoWarps(R"(
  setp.ge.u32 %p0, %r0, 32;
  selp.u32 %r1, 32, 64, %p0;
  bar.sync 3, %r1;
  ret;)");
  EXPECT_NE(counts.find("named barrier 3 expects 64 threads, this arrival 32"),
            std::string::npos)
      << counts;
  // Odd and even lanes name different barriers.
  std::string lanes = runTwoWarps(R"(
  and.b32 %r1, %r0, 1;
  bar.sync %r1, 64;
  ret;)");
  EXPECT_NE(lanes.find("a named barrier's id or count differs between lanes"),
            std::string::npos)
      << lanes;
}

TEST(Emulator, ReportsRacesAcrossMbarrierPhases) {
  SKIP_ON_DEVICE("the emulator's own faults");
  std::string unwaited = orderedByMbarrier(false, false);
  EXPECT_NE(unwaited.find("race: warp 1 writes shared byte"), std::string::npos)
      << unwaited;
  EXPECT_NE(unwaited.find("that warp 0 read with no barrier or mbarrier phase "
                          "between"),
            std::string::npos)
      << unwaited;
  // A read after the arrival is not ordered before the write.
  std::string late = orderedByMbarrier(true, true);
  EXPECT_NE(late.find("race:"), std::string::npos) << late;
}

TEST(Emulator, ReportsReadsBeforeAsyncCopiesLand) {
  SKIP_ON_DEVICE("the emulator's own faults");
  std::string body = R"(
.visible .entry k(.param .u64 k_param_0) {
  .shared .align 16 .b8 tile[16];
  .reg .b64 %rd<2>;
  .reg .b32 %r<2>;
  ld.param.u64 %rd0, [k_param_0];
  cp.async.cg.shared.global [tile], [%rd0], 16;
  cp.async.commit_group;
  WAIT
  ld.shared.b32 %r0, [tile];
  ret;
})";
  std::vector<uint64_t> out(2);
  auto with = [&](const std::string &wait) {
    std::string b = body;
    b.replace(b.find("WAIT"), 4, wait);
    return run(b, out, 1);
  };
  EXPECT_EQ(with("cp.async.wait_group 0;"), "");
  EXPECT_NE(with("cp.async.wait_group 1;").find("in flight"),
            std::string::npos);
}

TEST(Emulator, ReportsOutOfBoundsAndDivergence) {
  SKIP_ON_DEVICE("the emulator's own faults");
  std::vector<uint64_t> out(1);
  std::string oob = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b64 %rd<2>;
  ld.param.u64 %rd0, [k_param_0];
  ld.global.b64 %rd1, [%rd0+8];
  ret;
})",
                        out);
  EXPECT_NE(oob.find("out-of-bounds global read of 8 bytes"), std::string::npos)
      << oob;
  // ... also right after an access inside the allocation (which the
  // emulator remembers, to skip the allocation lookup).
  std::string pastEnd = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b64 %rd<3>;
  ld.param.u64 %rd0, [k_param_0];
  ld.global.b64 %rd1, [%rd0];
  st.global.b64 [%rd0+8], %rd1;
  ret;
})",
                            out);
  EXPECT_NE(pastEnd.find("out-of-bounds global write of 8 bytes"),
            std::string::npos)
      << pastEnd;
  std::string misaligned = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b64 %rd<2>;
  .reg .b32 %r<2>;
  ld.param.u64 %rd0, [k_param_0];
  ld.global.b32 %r0, [%rd0+2];
  ret;
})",
                               out);
  EXPECT_NE(misaligned.find("misaligned global read"), std::string::npos)
      << misaligned;
  // Lanes 0-15 wait at the barrier while lanes 16-31 reach a shuffle: the
  // shuffle can never have the whole warp.
  std::string split = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b32 %r<4>;
  .reg .pred %p<2>;
  mov.u32 %r0, %tid.x;
  setp.lt.u32 %p0, %r0, 16;
  @%p0 bra $wait;
  shfl.sync.bfly.b32 %r1, %r0, 1, 31, -1;
  ret;
$wait:
  bar.sync 0;
  ret;
})",
                          out);
  EXPECT_NE(split.find("wait at a barrier while lanes 0xffff0000 wait here"),
            std::string::npos)
      << split;
  std::string diverged = run(R"(
.visible .entry k(.param .u64 k_param_0) {
  .reg .b32 %r<4>;
  .reg .pred %p<2>;
  mov.u32 %r0, %tid.x;
  setp.lt.u32 %p0, %r0, 16;
  @%p0 bra $skip;
  shfl.sync.bfly.b32 %r1, %r0, 1, 31, -1;
$skip:
  ret;
})",
                             out);
  EXPECT_NE(diverged.find("diverged warp"), std::string::npos) << diverged;
}

} // namespace

/// How the wgmma test kernel misbehaves, if it does.
enum class WgmmaFault {
  None,
  NoProxyFence,
  NoWgmmaFence,
  WriteInFlight,
  NoWait
};

/// D = A B for one warpgroup (128 threads): A (64 x 16) in registers, B
/// (16 x n) in shared memory in the 128-byte-swizzled layout for K-major
/// (B stored as n rows of 64 elements, its 16 K values at columns 16..31,
/// so the descriptor starts 32 bytes into the swizzle atom) or N-major (16
/// K rows of n elements, 64-wide blocks of N 2048 bytes apart). The layouts
/// and register fragments are written here from the PTX ISA's pictures, not
/// from the emulator's formulas.
std::string wgmmaProduct(unsigned n, bool nMajor, WgmmaFault mistake,
                         std::vector<float> &d, bool accumulate = false) {
  constexpr unsigned kImage = 8192; // bytes of shared memory staged
  float A[64][16];
  std::vector<float> B(16 * n);
  for (int r = 0; r < 64; ++r)
    for (int c = 0; c < 16; ++c)
      A[r][c] = float((r * 7 + c * 3) % 11 - 5);
  for (unsigned k = 0; k < 16; ++k)
    for (unsigned c = 0; c < n; ++c)
      B[k * n + c] = float(int((k * 5 + c * 9) % 13) - 6);
  auto bits = [](float f) { return uint16_t(f32Bits(f) >> 16); };
  // out: [0, 4096) the shared image as 16-bit halves, then 4 A registers
  // per thread, then the descriptor's LBO/SBO/swizzle bits, then D.
  const unsigned aAt = kImage / 2, descAt = aAt + 128 * 4, dAt = descAt + 1;
  std::vector<uint64_t> out(dAt + 128 * n / 2, 0);
  std::vector<uint16_t> image(kImage / 2, bits(99.0f)); // never read
  auto place = [&](unsigned byte, float v) { image[byte / 2] = bits(v); };
  uint64_t lbo = 0, sbo = 1024, start = 0;
  for (unsigned k = 0; k < 16; ++k)
    for (unsigned c = 0; c < n; ++c) {
      unsigned row, col, atom;
      if (nMajor) { // rows: K; 64-element blocks of N 2048 bytes apart
        row = k, col = c % 64, atom = (c / 64) * 2048;
        lbo = 2048;
      } else { // rows: N; K at columns 16..31
        row = c, col = 16 + k, atom = 0;
        start = 32;
      }
      unsigned chunk = (col / 8) ^ (row % 8);
      place(atom + (row / 8) * 1024 + (row % 8) * 128 + chunk * 16 +
                (col % 8) * 2,
            B[k * n + c]);
    }
  for (unsigned i = 0; i < kImage / 2; ++i)
    out[i] = image[i];
  // With `accumulate`, D starts as C (scale-d true), each thread's
  // registers loaded from its slots of out's D region in D's layout.
  auto C = [&](unsigned row, unsigned col) {
    return accumulate ? float(int((row * 3 + col) % 7) - 3) : 0.0f;
  };
  for (unsigned t = 0; t < 128; ++t)
    for (unsigned i = 0; i < n / 2; ++i) {
      unsigned w = t / 32, g = t % 32 / 4, q = t % 4;
      unsigned row = 16 * w + g + 8 * ((i / 2) % 2),
               col = 8 * (i / 4) + 2 * q + i % 2;
      out[dAt + t * n / 2 + i] = f32Bits(C(row, col));
    }
  for (unsigned t = 0; t < 128; ++t) {
    unsigned w = t / 32, g = t % 32 / 4, q = t % 4;
    for (unsigned r = 0; r < 4; ++r) {
      unsigned row = 16 * w + g + (r & 1) * 8, col = 2 * q + (r >> 1) * 8;
      out[aAt + t * 4 + r] = bits(A[row][col]) | bits(A[row][col + 1]) << 16;
    }
  }
  out[descAt] = (lbo >> 4) << 16 | (sbo >> 4) << 32 | uint64_t(1) << 62;
  std::string dRegs, stores, loads;
  for (unsigned i = 0; i < n / 2; ++i) {
    dRegs += (i ? ", %f" : "%f") + std::to_string(i);
    loads += "  ld.global.b32 %f" + std::to_string(i) + ", [%rd8+" +
             std::to_string(8 * i) + "];\n";
    stores += "  cvt.u64.u32 %rd9, %f" + std::to_string(i) +
              ";\n  st.global.b64 [%rd8+" + std::to_string(8 * i) +
              "], %rd9;\n";
  }
  std::string body = R"(
.visible .entry k(.param .u64 k_param_0) {
  .shared .align 1024 .b8 tile[)" +
                     std::to_string(kImage) + R"(];
  .reg .b32 %r<16>;
  .reg .b32 %f<130>;
  .reg .b64 %rd<16>;
  .reg .pred %p<2>;
  ld.param.u64 %rd0, [k_param_0];
  mov.u32 %r0, %tid.x;
  mov.u32 %r1, %r0;
$copy:
  setp.lt.u32 %p0, %r1, )" +
                     std::to_string(kImage / 2) + R"(;
  @!%p0 bra $copied;
  mul.wide.u32 %rd1, %r1, 8;
  add.s64 %rd2, %rd0, %rd1;
  ld.global.b64 %rd3, [%rd2];
  mul.wide.u32 %rd4, %r1, 2;
  mov.b64 %rd5, tile;
  add.s64 %rd5, %rd5, %rd4;
  st.shared.b16 [%rd5], %rd3;
  add.s32 %r1, %r1, 128;
  bra $copy;
$copied:
  PROXYFENCE
  bar.sync 0;
  mul.wide.u32 %rd1, %r0, 32;
  add.s64 %rd2, %rd0, %rd1;
  ld.global.b32 %r2, [%rd2+)" +
                     std::to_string(aAt * 8) + R"(];
  ld.global.b32 %r3, [%rd2+)" +
                     std::to_string(aAt * 8 + 8) + R"(];
  ld.global.b32 %r4, [%rd2+)" +
                     std::to_string(aAt * 8 + 16) + R"(];
  ld.global.b32 %r5, [%rd2+)" +
                     std::to_string(aAt * 8 + 24) + R"(];
  ld.global.b64 %rd6, [%rd0+)" +
                     std::to_string(descAt * 8) + R"(];
  mov.b64 %rd7, tile;
  add.s64 %rd7, %rd7, )" +
                     std::to_string(start) + R"(;
  shr.u64 %rd7, %rd7, 4;
  and.b64 %rd7, %rd7, 16383;
  or.b64 %rd6, %rd6, %rd7;
  mul.wide.u32 %rd1, %r0, )" +
                     std::to_string(4 * n) + R"(;
  add.s64 %rd8, %rd0, %rd1;
  add.s64 %rd8, %rd8, )" +
                     std::to_string(dAt * 8) + R"(;
  LOADC
  mov.pred %p1, ACCUMULATE;
  WGMMAFENCE
  wgmma.mma_async.sync.aligned.m64n)" +
                     std::to_string(n) + R"(k16.f32.bf16.bf16 {)" + dRegs +
                     R"(}, {%r2, %r3, %r4, %r5}, %rd6, %p1, 1, 1, )" +
                     (nMajor ? "1" : "0") + R"(;
  wgmma.commit_group.sync.aligned;
  CLOBBER
  WAIT
)" + stores + R"(  ret;
})";
  auto set = [&](const std::string &slot, const std::string &text) {
    body.replace(body.find(slot), slot.size(), text);
  };
  set("LOADC", accumulate ? loads : "");
  set("ACCUMULATE", accumulate ? "-1" : "0");
  set("PROXYFENCE", mistake == WgmmaFault::NoProxyFence
                        ? ""
                        : "fence.proxy.async.shared::cta;");
  set("WGMMAFENCE",
      mistake == WgmmaFault::NoWgmmaFence ? "" : "wgmma.fence.sync.aligned;");
  set("CLOBBER", mistake == WgmmaFault::WriteInFlight ? "mov.b32 %f1, 0;" : "");
  set("WAIT", mistake == WgmmaFault::NoWait
                  ? "ret;"
                  : "wgmma.wait_group.sync.aligned 0;");
  std::string fault = run(body, out, 128);
  if (!fault.empty())
    return fault;
  // Thread t's register i: row 16 w + g + 8 ((i / 2) % 2), column
  // 8 (i / 4) + 2 q + i % 2; check against the plain product.
  d.assign(64 * n, NAN);
  for (unsigned t = 0; t < 128; ++t)
    for (unsigned i = 0; i < n / 2; ++i) {
      unsigned w = t / 32, g = t % 32 / 4, q = t % 4;
      unsigned row = 16 * w + g + 8 * ((i / 2) % 2),
               col = 8 * (i / 4) + 2 * q + i % 2;
      uint32_t v = uint32_t(out[dAt + t * n / 2 + i]);
      std::memcpy(&d[row * n + col], &v, 4);
    }
  for (unsigned m = 0; m < 64; ++m)
    for (unsigned c = 0; c < n; ++c) {
      float expected = C(m, c);
      for (unsigned k = 0; k < 16; ++k)
        expected += A[m][k] * B[k * n + c];
      if (d[m * n + c] != expected)
        return "D[" + std::to_string(m) + "][" + std::to_string(c) +
               "] = " + std::to_string(d[m * n + c]) + ", expected " +
               std::to_string(expected);
    }
  return "";
}

TEST(Emulator, WgmmaIsAMatrixProduct) {
  std::vector<float> d;
  EXPECT_EQ(wgmmaProduct(64, /*nMajor=*/false, WgmmaFault::None, d), "");
  EXPECT_EQ(wgmmaProduct(128, /*nMajor=*/true, WgmmaFault::None, d), "");
  EXPECT_EQ(wgmmaProduct(16, /*nMajor=*/true, WgmmaFault::None, d), "");
  // scale-d true: D = C + A B, C read from the registers in D's layout (the
  // flash kernels' steps after the first, and O += P V).
  EXPECT_EQ(wgmmaProduct(64, /*nMajor=*/false, WgmmaFault::None, d,
                         /*accumulate=*/true),
            "");
  EXPECT_EQ(wgmmaProduct(128, /*nMajor=*/true, WgmmaFault::None, d,
                         /*accumulate=*/true),
            "");
}

TEST(Emulator, ReportsWgmmaMisuse) {
  SKIP_ON_DEVICE("the emulator's own faults");
  std::vector<float> d;
  auto fault = [&](WgmmaFault mistake) {
    return wgmmaProduct(64, false, mistake, d);
  };
  EXPECT_NE(fault(WgmmaFault::NoProxyFence).find("no fence.proxy.async"),
            std::string::npos);
  EXPECT_NE(fault(WgmmaFault::NoWgmmaFence).find("without a wgmma.fence"),
            std::string::npos);
  EXPECT_NE(fault(WgmmaFault::WriteInFlight)
                .find("an accumulator register of the wgmma"),
            std::string::npos);
  EXPECT_NE(fault(WgmmaFault::NoWait).find("in flight"), std::string::npos);
}

/// Where a TMA kernel finds its tensor map: in device memory, by pointer;
/// as a kernel parameter (__grid_constant__, what the flash kernels do);
/// or a parameter that holds no tensor map.
enum class MapIn { Memory, Parameter, EmptyParameter };

/// TMA loads of 64 x 8 boxes of a bf16 tensor of 10 rows of 64 (element
/// [r][c] = 64 r + c), box i starting at row `firstRows[i]`, into shared
/// tile i, all completing on one mbarrier: phase i, waited for with parity
/// i % 2 (unless `wait` is false), then a CTA barrier, as the flash
/// kernels' stages do. `tiles[i]` gets tile i as the kernel read it.
std::string tensorLoads(const std::vector<unsigned> &firstRows, bool wait,
                        std::vector<std::vector<uint16_t>> &tiles,
                        MapIn mapIn = MapIn::Memory) {
  std::vector<uint64_t> out(2048 + 128 * firstRows.size(), 0);
  auto *halves = reinterpret_cast<uint16_t *>(out.data());
  for (unsigned i = 0; i < 640; ++i) // the tensor: out bytes [0, 1280)
    halves[i] = uint16_t(i);
  // The tensor map, at the first 64-byte boundary after the tensor (where
  // out lives decides), its address in out[kMapSlot]: the emulator's
  // encoding, or on a device the driver's.
  // As a parameter, the map's bytes are passed from out byte 1536 (1664:
  // zeros).
  constexpr unsigned kMapSlot = 2047, kParameterAt = 1536;
  auto place = [&](uint64_t base, std::vector<uint64_t> &bytes) {
    uint64_t mapAt = mapIn == MapIn::Memory
                         ? (base + 1280 + 63) / 64 * 64 - base
                         : kParameterAt;
    bytes[kMapSlot] = base + mapAt;
    void *at = reinterpret_cast<uint8_t *>(bytes.data()) + mapAt;
    if (ptxOnDevice()) {
      const uint64_t dims[2] = {64, 10};
      const uint32_t box[2] = {64, 8};
      return hybrid::rt::testing::encodeTensorMapOnDevice(at, base, dims, 128,
                                                          box);
    }
    TensorMap map;
    map.magic = TensorMap::kMagic;
    map.rank = 2;
    map.elementBytes = 2;
    map.swizzleBytes = 128;
    map.address = base;
    map.dims[0] = 64;
    map.dims[1] = 10;
    map.box[0] = 64;
    map.box[1] = 8;
    map.strides[0] = 128;
    std::memcpy(at, &map, sizeof(map));
    return std::string();
  };
  const unsigned tileAt = 8192; // bytes of out receiving the shared tiles
  std::string loads;
  for (size_t i = 0; i < firstRows.size(); ++i) {
    std::string n = std::to_string(i), at = std::to_string(1024 * i);
    loads += "  mov.u32 %r2, " + std::to_string(firstRows[i]) +
             ";\n"
             "  @%p0 mbarrier.arrive.expect_tx.shared.b64 %rd2, [bar], 1024;\n"
             "  @%p0 cp.async.bulk.tensor.2d.shared::cluster.global.tile."
             "mbarrier::complete_tx::bytes [tile+" +
             at + "], [%rd1, {%r1, %r2}], [bar];\n";
    if (wait)
      loads += "$wait" + n +
               ":\n"
               "  mbarrier.try_wait.parity.shared::cta.b64 %p1, [bar], " +
               std::to_string(i % 2) + ";\n  @!%p1 bra $wait" + n + ";\n";
    // Thread t copies bytes 32 t .. 32 t + 31 of tile i.
    loads += "  mov.b64 %rd4, tile;\n"
             "  add.s64 %rd4, %rd4, %rd3;\n"
             "  add.s64 %rd5, %rd0, %rd3;\n"
             "  add.s64 %rd5, %rd5, " +
             std::to_string(tileAt + 1024 * i) +
             ";\n"
             "  ld.shared.v4.b32 {%r3, %r4, %r5, %r6}, [%rd4+" +
             at +
             "];\n"
             "  st.global.v4.b32 [%rd5], {%r3, %r4, %r5, %r6};\n"
             "  ld.shared.v4.b32 {%r3, %r4, %r5, %r6}, [%rd4+" +
             std::to_string(1024 * i + 16) +
             "];\n"
             "  st.global.v4.b32 [%rd5+16], {%r3, %r4, %r5, %r6};\n"
             "  bar.sync 0;\n";
  }
  // A map in memory: its address from out, and the fence that orders the
  // host's write of it before the tensormap proxy reads it. A parameter:
  // its generic address, prefetched (as LLVM spells it for a
  // grid-constant argument).
  std::string map =
      mapIn == MapIn::Memory
          ? "  ld.global.u64 %rd1, [%rd0+" + std::to_string(kMapSlot * 8) +
                "];\n"
                "  fence.proxy.tensormap::generic.acquire.gpu [%rd1], 128;\n"
          : "  mov.b64 %rd6, k_param_1;\n"
            "  cvta.param.u64 %rd1, %rd6;\n"
            "  @%p0 prefetch.param.tensormap [%rd6];\n";
  std::string body = std::string(R"(
.visible .entry k(.param .u64 k_param_0)") +
                     (mapIn == MapIn::Memory
                          ? ""
                          : ", .param .align 64 .b8 k_param_1[128]") +
                     R"() {
  .shared .align 1024 .b8 tile[)" +
                     std::to_string(1024 * firstRows.size()) + R"(];
  .shared .align 8 .b8 bar[8];
  .reg .b32 %r<8>;
  .reg .b64 %rd<12>;
  .reg .pred %p<4>;
  ld.param.u64 %rd0, [k_param_0];
  mov.u32 %r0, %tid.x;
  setp.eq.u32 %p0, %r0, 0;
  @%p0 mbarrier.init.shared.b64 [bar], 1;
  bar.sync 0;
)" + map + R"(  mov.u32 %r1, 0;
  mul.wide.u32 %rd3, %r0, 32;
)" + loads + R"(  ret;
})";
  int64_t byValueAt = mapIn == MapIn::Memory      ? -1
                      : mapIn == MapIn::Parameter ? kParameterAt
                                                  : kParameterAt + 128;
  std::string fault = run(body, out, 32, 0, place, byValueAt);
  tiles.clear();
  for (size_t i = 0; i < firstRows.size(); ++i)
    tiles.emplace_back(halves + (tileAt + 1024 * i) / 2,
                       halves + (tileAt + 1024 * (i + 1)) / 2);
  return fault;
}

/// Whether `tile` holds the box from row `firstRow` as TMA writes it: 128-byte
/// rows, 16-byte chunk c of row r at chunk c ^ (r % 8), zeros past row 9.
void expectBox(const std::vector<uint16_t> &tile, unsigned firstRow) {
  for (unsigned r = 0; r < 8; ++r)
    for (unsigned c = 0; c < 64; ++c) {
      unsigned row = firstRow + r;
      uint16_t expected = row < 10 ? uint16_t(64 * row + c) : 0;
      unsigned byte = r * 128 + ((c / 8) ^ (r % 8)) * 16 + (c % 8) * 2;
      EXPECT_EQ(tile[byte / 2], expected)
          << "box from row " << firstRow << ", row " << r << " col " << c;
    }
}

TEST(Emulator, TensorLoadSwizzlesAndZeroFills) {
  std::vector<std::vector<uint16_t>> tiles;
  ASSERT_EQ(tensorLoads({5}, /*wait=*/true, tiles), "");
  expectBox(tiles[0], 5);
  if (ptxOnDevice())
    return; // the fault below is the emulator's
  std::string fault = tensorLoads({5}, /*wait=*/false, tiles);
  EXPECT_NE(fault.find("that a TMA load landed, without having waited on the "
                       "mbarrier phase it completed"),
            std::string::npos)
      << fault;
}

/// The flash kernels' tensor maps are kernel parameters: TMA loads and
/// prefetches take them through cvta.param's generic address.
TEST(Emulator, TensorLoadFromAParameter) {
  std::vector<std::vector<uint16_t>> tiles;
  ASSERT_EQ(tensorLoads({5, 0}, /*wait=*/true, tiles, MapIn::Parameter), "");
  expectBox(tiles[0], 5);
  expectBox(tiles[1], 0);
  if (ptxOnDevice())
    return; // the faults below are the emulator's
  std::string fault =
      tensorLoads({5}, /*wait=*/true, tiles, MapIn::EmptyParameter);
  EXPECT_NE(fault.find("parameter offset 64 holds no tensor map made by "
                       "cuTensorMapEncodeTiled"),
            std::string::npos)
      << fault;
  // Only kernel parameters have generic addresses.
  std::string body = R"(
.func f(.param .b64 f_param_0) {
  .reg .b64 %rd<2>;
  mov.b64 %rd0, f_param_0;
  cvta.param.u64 %rd1, %rd0;
  ret;
}
.visible .entry k(.param .u64 k_param_0) {
  .reg .b64 %rd<2>;
  ld.param.u64 %rd0, [k_param_0];
  {
  .param .b64 param0;
  st.param.b64 [param0], %rd0;
  call.uni f, (param0);
  }
  ret;
})";
  std::vector<uint64_t> out(1);
  fault = run(body, out, 32);
  EXPECT_NE(fault.find("cvta.param in f, which is no kernel"),
            std::string::npos)
      << fault;
}

/// One mbarrier through three phases, waited for with parities 0, 1, 0: the
/// flash kernels' stage s waits for parity (j / S) % 2 at its j-th use.
TEST(Emulator, MbarrierPhasesAlternateParity) {
  std::vector<std::vector<uint16_t>> tiles;
  ASSERT_EQ(tensorLoads({0, 2, 5}, /*wait=*/true, tiles), "");
  expectBox(tiles[0], 0);
  expectBox(tiles[1], 2);
  expectBox(tiles[2], 5);
}

TEST(Emulator, DynamicSharedMemoryFollowsTheStaticVariables) {
  // `.extern .shared name[]` is the launch's dynamic shared memory: after
  // the static variables, at the array's alignment, as large as the launch
  // says; an access past it is out of bounds.
  std::string body = R"(
.shared .align 4 .b8 fixed[8];
.extern .shared .align 1024 .b8 dynamic[];
.visible .entry k(.param .u64 k_param_0) {
  .reg .b64 %p0, %a;
  .reg .b32 %v;
  ld.param.u64 %p0, [k_param_0];
  mov.u64 %a, dynamic;
  st.global.u64 [%p0], %a;
  mov.u32 %v, 7;
  st.shared.u32 [dynamic+4092], %v;
  ld.shared.u32 %v, [dynamic+4092];
  st.global.u32 [%p0+8], %v;
  ret;
})";
  std::vector<uint64_t> out(2, 0);
  EXPECT_EQ(run(body, out, 1, 4096), "");
  EXPECT_EQ(out[0] % 1024, 0u) << out[0]; // the kernels rely on this
  EXPECT_EQ(out[1], 7u);
  if (ptxOnDevice())
    return; // where a GPU puts it; bounds are the emulator's check
  EXPECT_EQ(out[0], 1024u);
  std::string fault = run(body, out, 1, 4092);
  EXPECT_NE(fault.find("shared"), std::string::npos) << fault;
}
