//===- Arithmetic.cpp - Scalar PTX instruction semantics ------------------===//
//
// Integer, floating-point and conversion instructions on one thread's raw
// register bits, as the PTX ISA defines them (IEEE round-to-nearest; .ftz
// flushes subnormal inputs and results, f32 and rcp.approx.ftz.f64's;
// .approx computed exactly, within the ISA's error bounds).
//
//===----------------------------------------------------------------------===//

#include "Arithmetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

using namespace hybrid::emu;

namespace hybrid::emu {

uint64_t widthMask(unsigned bits) {
  return bits >= 64 ? ~uint64_t(0) : (uint64_t(1) << bits) - 1;
}
int64_t signExtend(uint64_t v, unsigned bits) {
  if (bits >= 64)
    return int64_t(v);
  uint64_t sign = uint64_t(1) << (bits - 1);
  v &= widthMask(bits);
  return int64_t((v ^ sign) - sign);
}
template <typename To, typename From> To bitCast(From value) {
  static_assert(sizeof(To) == sizeof(From));
  To to;
  std::memcpy(&to, &value, sizeof(To));
  return to;
}
float asF32(uint64_t bits) { return bitCast<float>(uint32_t(bits)); }
double asF64(uint64_t bits) { return bitCast<double>(bits); }
uint64_t fromF32(float f) { return bitCast<uint32_t>(f); }
uint64_t fromF64(double d) { return bitCast<uint64_t>(d); }
float flushF32(float f) {
  return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f;
}
double flushF64(double d) {
  return std::fpclassify(d) == FP_SUBNORMAL ? std::copysign(0.0, d) : d;
}
/// f32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN.
uint16_t toBF16(float f) {
  uint32_t b = uint32_t(fromF32(f));
  if (std::isnan(f))
    return uint16_t((b >> 16) | 0x40);
  b += 0x7fff + ((b >> 16) & 1);
  return uint16_t(b >> 16);
}
float fromBF16(uint16_t h) { return asF32(uint64_t(h) << 16); }

} // namespace hybrid::emu

namespace {

/// eq ne lt le gt ge (lo ls hi hs: the unsigned spellings) on x, y.
template <typename T> bool compareOrdered(Compare c, T x, T y) {
  switch (c) {
  case Compare::Eq:
    return x == y;
  case Compare::Ne:
    return x != y;
  case Compare::Lt:
  case Compare::Lo:
    return x < y;
  case Compare::Le:
  case Compare::Ls:
    return x <= y;
  case Compare::Gt:
  case Compare::Hi:
    return x > y;
  case Compare::Ge:
  case Compare::Hs:
    return x >= y;
  default:
    return false;
  }
}

bool compareFloats(Compare c, double x, double y) {
  bool unordered = std::isnan(x) || std::isnan(y);
  switch (c) {
  case Compare::Eq:
    return !unordered && x == y;
  case Compare::Ne:
    return !unordered && x != y;
  case Compare::Lt:
    return !unordered && x < y;
  case Compare::Le:
    return !unordered && x <= y;
  case Compare::Gt:
    return !unordered && x > y;
  case Compare::Ge:
    return !unordered && x >= y;
  case Compare::Equ:
    return unordered || x == y;
  case Compare::Neu:
    return unordered || x != y;
  case Compare::Ltu:
    return unordered || x < y;
  case Compare::Leu:
    return unordered || x <= y;
  case Compare::Gtu:
    return unordered || x > y;
  case Compare::Geu:
    return unordered || x >= y;
  case Compare::Num:
    return !unordered;
  case Compare::Nan:
    return unordered;
  default:
    return false;
  }
}

template <typename T> T minMax(bool isMax, bool nan, T a, T b) {
  if (std::isnan(a) || std::isnan(b)) {
    if (nan || (std::isnan(a) && std::isnan(b)))
      return std::numeric_limits<T>::quiet_NaN();
    return std::isnan(a) ? b : a;
  }
  if (a == 0 && b == 0) // -0 < +0
    return isMax ? (std::signbit(a) ? b : a) : (std::signbit(a) ? a : b);
  return isMax ? std::max(a, b) : std::min(a, b);
}

/// `v` rounded once to bf16 (nearest, ties to even): truncated to f32 with
/// its inexactness kept in the last bit (round to odd), then rounded to bf16
/// (f32 has more than the two extra bits that makes exact).
uint16_t toBF16Once(double v) {
  float f = float(v);
  if (std::isfinite(f) && double(f) != v) {
    if (std::abs(double(f)) > std::abs(v))
      f = std::nextafter(f, 0.0f);
    f = asF32(uint32_t(fromF32(f)) | 1u);
  }
  return toBF16(f);
}

/// bf16 add, sub, mul, fma, min, max, neg, abs on one 16-bit lane, rounded
/// once: sums and products of two bf16 values are exact in f64 or, when not,
/// cannot sit on a bf16 halfway point; fma keeps its lost bits (round to odd).
uint16_t bf16Lane(const Instruction &in, uint16_t a, uint16_t b, uint16_t c,
                  bool &ok) {
  double x = fromBF16(a), y = fromBF16(b), z = fromBF16(c);
  switch (in.opcode) {
  case Opcode::Add:
    return toBF16Once(x + y);
  case Opcode::Sub:
    return toBF16Once(x - y);
  case Opcode::Mul:
    return toBF16Once(x * y);
  case Opcode::Fma: {
    // x y is exact; the sum's rounding error (TwoSum) makes the f64 result
    // round to odd, which the narrowing below keeps exact.
    double p = x * y, sum = p + z, back = sum - p;
    double error = (p - (sum - back)) + (z - back);
    if (error != 0 && std::isfinite(sum)) {
      if ((error > 0) != (sum > 0))
        sum = std::nextafter(sum, 0.0);
      sum = bitCast<double>(bitCast<uint64_t>(sum) | 1u);
    }
    return toBF16Once(sum);
  }
  case Opcode::Min:
  case Opcode::Max:
    return toBF16(float(minMax(in.opcode == Opcode::Max,
                               bool(in.modifiers & PropagateNaN), x, y)));
  case Opcode::Neg:
    return a ^ 0x8000u;
  case Opcode::Abs:
    return a & 0x7fffu;
  default:
    ok = false;
    return 0;
  }
}

/// Float arithmetic; `ok` false for what the emulator does not model. `op`
/// is `in.opcode`, a constant where the lane loop is instantiated per opcode.
[[gnu::always_inline]] inline uint64_t floatOp(Opcode op, const Instruction &in,
                                               uint64_t a, uint64_t b,
                                               uint64_t c, bool &ok) {
  ok = true;
  bool isMax = op == Opcode::Max;
  bool nan = in.modifiers & PropagateNaN;
  if (in.type == Type::BF16)
    return bf16Lane(in, uint16_t(a), uint16_t(b), uint16_t(c), ok);
  if (in.type == Type::BF16x2) {
    uint64_t lo = bf16Lane(in, uint16_t(a), uint16_t(b), uint16_t(c), ok);
    uint64_t hi = bf16Lane(in, uint16_t(a >> 16), uint16_t(b >> 16),
                           uint16_t(c >> 16), ok);
    return lo | hi << 16;
  }
  if (in.type == Type::F64) {
    double x = asF64(a), y = asF64(b), z = asF64(c);
    // rcp.approx.ftz.f64 (libdevice's division seed): sign-preserving
    // zeros for subnormals in and out.
    if ((in.modifiers & Ftz) && op == Opcode::Rcp)
      return fromF64(flushF64(1.0 / flushF64(x)));
    switch (op) {
    case Opcode::Add:
      return fromF64(x + y);
    case Opcode::Sub:
      return fromF64(x - y);
    case Opcode::Mul:
      return fromF64(x * y);
    case Opcode::Fma:
    case Opcode::Mad:
      return fromF64(std::fma(x, y, z));
    case Opcode::Div:
      return fromF64(x / y);
    case Opcode::Rcp:
      return fromF64(1.0 / x);
    case Opcode::Sqrt:
      return fromF64(std::sqrt(x));
    case Opcode::Min:
    case Opcode::Max:
      return fromF64(minMax(isMax, nan, x, y));
    case Opcode::Neg:
      return a ^ (uint64_t(1) << 63);
    case Opcode::Abs:
      return a & ~(uint64_t(1) << 63);
    case Opcode::Copysign:
      return (b & ~(uint64_t(1) << 63)) | (a & (uint64_t(1) << 63));
    default:
      ok = false;
      return 0;
    }
  }
  bool ftz = in.modifiers & Ftz;
  float x = asF32(a), y = asF32(b), z = asF32(c);
  if (ftz) {
    x = flushF32(x);
    y = flushF32(y);
    z = flushF32(z);
  }
  float r;
  switch (op) {
  case Opcode::Add:
    r = x + y;
    break;
  case Opcode::Sub:
    r = x - y;
    break;
  case Opcode::Mul:
    r = x * y;
    break;
  case Opcode::Fma:
  case Opcode::Mad:
    r = std::fma(x, y, z);
    break;
  case Opcode::Div:
    r = x / y;
    break;
  case Opcode::Rcp:
    r = 1.0f / x;
    break;
  case Opcode::Sqrt:
    r = std::sqrt(x);
    break;
  case Opcode::Ex2:
    r = std::exp2(x);
    break;
  case Opcode::Sin:
    r = std::sin(x);
    break;
  case Opcode::Cos:
    r = std::cos(x);
    break;
  case Opcode::Min:
  case Opcode::Max:
    r = minMax(isMax, nan, x, y);
    break;
  case Opcode::Neg:
    return uint32_t(a) ^ 0x80000000u;
  case Opcode::Abs:
    return uint32_t(a) & 0x7fffffffu;
  case Opcode::Copysign:
    return (uint32_t(b) & 0x7fffffffu) | (uint32_t(a) & 0x80000000u);
  default:
    ok = false;
    return 0;
  }
  return fromF32(ftz ? flushF32(r) : r);
}

/// Integer arithmetic on `in.type`; carries through `cf` where asked.
[[gnu::always_inline]] inline uint64_t intOp(Opcode op, const Instruction &in,
                                             uint64_t a, uint64_t b, uint64_t c,
                                             uint8_t &cf, bool &ok) {
  ok = true;
  unsigned w = bitWidth(in.type);
  uint64_t m = widthMask(w);
  bool s = isSigned(in.type);
  bool carryOut = in.modifiers & CarryOut;
  auto product = [&](bool wide, bool hi) -> uint64_t {
    if (s) {
      __int128 p = __int128(signExtend(a, w)) * signExtend(b, w);
      if (wide)
        return uint64_t(p) & widthMask(2 * w);
      return hi ? uint64_t(p >> w) & m : uint64_t(p) & m;
    }
    unsigned __int128 p = (unsigned __int128)(a & m) * (b & m);
    if (wide)
      return uint64_t(p) & widthMask(2 * w);
    return hi ? uint64_t(p >> w) & m : uint64_t(p) & m;
  };
  auto addCarry = [&](uint64_t x, uint64_t y, uint64_t cin) {
    unsigned __int128 sum = (unsigned __int128)(x & m) + (y & m) + cin;
    if (carryOut)
      cf = uint8_t((sum >> w) & 1);
    return uint64_t(sum) & m;
  };
  switch (op) {
  case Opcode::Add:
    return addCarry(a, b, 0);
  case Opcode::Addc:
    return addCarry(a, b, cf);
  case Opcode::Sub:
  case Opcode::Subc: {
    uint64_t borrowIn = op == Opcode::Subc ? cf : 0;
    unsigned __int128 rhs = (unsigned __int128)(b & m) + borrowIn;
    if (carryOut)
      cf = (a & m) < rhs;
    return uint64_t((a & m) - (b & m) - borrowIn) & m;
  }
  case Opcode::Mul:
    return product(in.modifiers & Wide, in.modifiers & Hi);
  case Opcode::Mad:
  case Opcode::Madc: {
    bool wide = in.modifiers & Wide;
    uint64_t p = product(wide, in.modifiers & Hi);
    if (wide)
      return (p + c) & widthMask(2 * w);
    return addCarry(p, c, op == Opcode::Madc ? cf : 0);
  }
  case Opcode::Div:
  case Opcode::Rem: {
    bool div = op == Opcode::Div;
    if ((b & m) == 0)
      return div ? m : a & m; // undefined in PTX: all ones / the dividend
    if (s) {
      int64_t x = signExtend(a, w), y = signExtend(b, w);
      if (y == -1)
        return div ? uint64_t(-(unsigned __int128)x) & m : 0;
      return uint64_t(div ? x / y : x % y) & m;
    }
    return div ? (a & m) / (b & m) : (a & m) % (b & m);
  }
  case Opcode::Min:
  case Opcode::Max: {
    bool less = s ? signExtend(a, w) < signExtend(b, w) : (a & m) < (b & m);
    bool pickA = (op == Opcode::Min) == less;
    return (pickA ? a : b) & m;
  }
  case Opcode::Neg:
    return (uint64_t(0) - a) & m;
  case Opcode::Abs: {
    int64_t x = signExtend(a, w);
    return uint64_t(x < 0 ? -x : x) & m;
  }
  case Opcode::Not:
    return in.type == Type::Pred ? !(a & 1) : ~a & m;
  case Opcode::And:
    return a & b & m;
  case Opcode::Or:
    return (a | b) & m;
  case Opcode::Xor:
    return (a ^ b) & m;
  case Opcode::Shl: {
    uint64_t n = b & 0xffffffff;
    return n >= w ? 0 : (a << n) & m;
  }
  case Opcode::Shr: {
    uint64_t n = b & 0xffffffff;
    if (s) {
      int64_t x = signExtend(a, w);
      return uint64_t(x >> std::min<uint64_t>(n, 63)) & m;
    }
    return n >= w ? 0 : ((a & m) >> n);
  }
  case Opcode::Bfe: {
    unsigned pos = unsigned(b & 0xff), len = unsigned(c & 0xff);
    if (len == 0)
      return 0;
    uint64_t field = pos >= w ? 0 : (a & m) >> pos;
    unsigned have = pos >= w ? 0 : std::min(len, w - pos);
    field &= widthMask(have);
    if (s) {
      unsigned msb = std::min(pos + len - 1, w - 1);
      bool sign = (a >> msb) & 1;
      if (sign)
        field |= ~widthMask(std::min(len, have));
      if (pos >= w)
        field = sign ? m : 0;
      return field & m;
    }
    return field;
  }
  case Opcode::Clz: {
    uint64_t x = a & m;
    return x ? __builtin_clzll(x) - (64 - w) : w;
  }
  case Opcode::Shf: {
    uint64_t n = c & 0xffffffff;
    n = (in.modifiers & Wrap) ? n & 31 : std::min<uint64_t>(n, 32);
    uint64_t joined = (uint64_t(uint32_t(b)) << 32) | uint32_t(a);
    return (in.modifiers & ShiftLeft) ? uint32_t((joined << n) >> 32)
                                      : uint32_t(joined >> n);
  }
  default:
    ok = false;
    return 0;
  }
}

[[gnu::always_inline]] inline bool convertOne(const Instruction &in, uint64_t a,
                                              uint64_t &out) {
  Type to = in.type, from = in.source;
  unsigned fw = bitWidth(from), tw = bitWidth(to);
  uint32_t mode = in.modifiers;
  auto roundInt = [&](double v) {
    if (mode & RoundZero)
      return std::trunc(v);
    if (mode & RoundDown)
      return std::floor(v);
    if (mode & RoundUp)
      return std::ceil(v);
    return std::nearbyint(v);
  };
  if (!isFloat(from) && !isFloat(to)) {
    out = isSigned(from) ? uint64_t(signExtend(a, fw)) & widthMask(tw)
                         : a & widthMask(fw) & widthMask(tw);
    return true;
  }
  double v;
  if (from == Type::F32)
    v = (mode & Ftz) ? flushF32(asF32(a)) : asF32(a);
  else if (from == Type::F64)
    v = asF64(a);
  else if (from == Type::BF16)
    v = fromBF16(uint16_t(a));
  else if (isSigned(from))
    v = double(signExtend(a, fw));
  else if (!isFloat(from)) {
    // u64 -> f64 rounds once, directly.
    if (to == Type::F64) {
      out = fromF64(double(a & widthMask(fw)));
      return true;
    }
    if (to == Type::F32) {
      out = fromF32(float(a & widthMask(fw)));
      return true;
    }
    v = double(a & widthMask(fw));
  } else
    return false;
  if (isSigned(from) && to == Type::F32) {
    out = fromF32(float(signExtend(a, fw)));
    return true;
  }
  if (!isFloat(to)) { // float -> integer saturates, NaN -> 0
    if (std::isnan(v)) {
      out = 0;
      return true;
    }
    double r = roundInt(v);
    if (isSigned(to)) {
      double lo = -std::ldexp(1.0, tw - 1), hi = std::ldexp(1.0, tw - 1) - 1;
      r = std::min(std::max(r, lo), hi);
      out = uint64_t(int64_t(r)) & widthMask(tw);
    } else {
      double hi = std::ldexp(1.0, tw) - 1;
      r = std::min(std::max(r, 0.0), hi);
      out =
          tw == 64 && r >= 18446744073709551615.0 ? ~uint64_t(0) : uint64_t(r);
    }
    return true;
  }
  if ((mode & IntegerRound) && isFloat(from) && from == to) {
    out = to == Type::F64 ? fromF64(roundInt(v)) : fromF32(float(roundInt(v)));
    return true;
  }
  if (to == Type::F64) {
    out = fromF64(v);
    return true;
  }
  if (to == Type::F32) {
    if ((mode & (RoundZero | RoundDown | RoundUp)) && from == Type::F64)
      return false;
    float f = float(v);
    out = fromF32((mode & Ftz) ? flushF32(f) : f);
    return true;
  }
  if (to == Type::BF16) {
    if (mode & (RoundZero | RoundDown | RoundUp))
      return false;
    out = toBF16(float(v));
    return true;
  }
  return false;
}

[[gnu::always_inline]] inline bool compareOne(const Instruction &in, uint64_t a,
                                              uint64_t b) {
  if (isFloat(in.type)) {
    double x = in.type == Type::F64 ? asF64(a) : asF32(a);
    double y = in.type == Type::F64 ? asF64(b) : asF32(b);
    if ((in.modifiers & Ftz) && in.type == Type::F32) {
      x = flushF32(float(x));
      y = flushF32(float(y));
    }
    return compareFloats(in.compare, x, y);
  }
  unsigned w = bitWidth(in.type);
  if (isSigned(in.type))
    return compareOrdered(in.compare, signExtend(a, w), signExtend(b, w));
  return compareOrdered(in.compare, a & widthMask(w), b & widthMask(w));
}

} // namespace

bool hybrid::emu::convert(const Instruction &in, uint32_t lanes,
                          const uint64_t *a, uint64_t *out) {
  bool ok = true;
  for (uint32_t m = lanes; m && ok; m &= m - 1) {
    unsigned l = __builtin_ctz(m);
    ok = convertOne(in, a[l], out[l]);
  }
  return ok;
}

void hybrid::emu::compare(const Instruction &in, uint32_t lanes,
                          const uint64_t *a, const uint64_t *b, bool *out) {
  for (uint32_t m = lanes; m; m &= m - 1) {
    unsigned l = __builtin_ctz(m);
    out[l] = compareOne(in, a[l], b[l]);
  }
}

namespace {
/// Float arithmetic, unless the type is a bitwise one's (and/or/xor/not
/// on .f32 registers are bit operations).
bool isFloatArithmetic(const Instruction &in) {
  return isFloat(in.type) &&
         !(in.opcode == Opcode::And || in.opcode == Opcode::Or ||
           in.opcode == Opcode::Xor || in.opcode == Opcode::Not);
}
} // namespace

std::string hybrid::emu::whyUnsupported(const Instruction &in) {
  bool fp = isFloatArithmetic(in);
  bool bf16 = in.type == Type::BF16 || in.type == Type::BF16x2;
  if (fp && in.type != Type::F32 && in.type != Type::F64 && !bf16)
    return "unsupported float type";
  if (bf16 && !(in.opcode == Opcode::Add || in.opcode == Opcode::Sub ||
                in.opcode == Opcode::Mul || in.opcode == Opcode::Fma ||
                in.opcode == Opcode::Min || in.opcode == Opcode::Max ||
                in.opcode == Opcode::Neg || in.opcode == Opcode::Abs))
    return "unsupported bf16 instruction";
  if (fp && (in.modifiers & (RoundZero | RoundDown | RoundUp)))
    return "unsupported rounding mode";
  if ((in.opcode == Opcode::Ex2 || in.opcode == Opcode::Sin ||
       in.opcode == Opcode::Cos) &&
      in.type != Type::F32)
    return "unsupported ex2, sin or cos type";
  return "";
}

namespace {
/// One warp's lanes of `in`, with the opcode a constant: the per-thread
/// semantics (floatOp, intOp) inline into the loop and their dispatch
/// folds away.
template <Opcode Op, bool Float>
bool lanesOf(const Instruction &in, uint32_t lanes, const uint64_t *a,
             const uint64_t *b, const uint64_t *c, uint8_t *carry,
             uint64_t *out) {
  bool ok = true;
  for (uint32_t m = lanes; m && ok; m &= m - 1) {
    unsigned l = __builtin_ctz(m);
    out[l] = Float ? floatOp(Op, in, a[l], b[l], c[l], ok)
                   : intOp(Op, in, a[l], b[l], c[l], carry[l], ok);
  }
  return ok;
}
} // namespace

bool hybrid::emu::arithmetic(const Instruction &in, uint32_t lanes,
                             const uint64_t *a, const uint64_t *b,
                             const uint64_t *c, uint8_t *carry, uint64_t *out) {
  bool fp = isFloatArithmetic(in);
  switch (in.opcode) {
#define HYBRID_LANES(OP)                                                       \
  case Opcode::OP:                                                             \
    return fp ? lanesOf<Opcode::OP, true>(in, lanes, a, b, c, carry, out)      \
              : lanesOf<Opcode::OP, false>(in, lanes, a, b, c, carry, out);
    HYBRID_LANES(Add)
    HYBRID_LANES(Sub)
    HYBRID_LANES(Mul)
    HYBRID_LANES(Mad)
    HYBRID_LANES(Fma)
    HYBRID_LANES(Div)
    HYBRID_LANES(Rem)
    HYBRID_LANES(Min)
    HYBRID_LANES(Max)
    HYBRID_LANES(Neg)
    HYBRID_LANES(Abs)
    HYBRID_LANES(Not)
    HYBRID_LANES(And)
    HYBRID_LANES(Or)
    HYBRID_LANES(Xor)
    HYBRID_LANES(Shl)
    HYBRID_LANES(Shr)
    HYBRID_LANES(Bfe)
    HYBRID_LANES(Clz)
    HYBRID_LANES(Shf)
    HYBRID_LANES(Copysign)
    HYBRID_LANES(Rcp)
    HYBRID_LANES(Ex2)
    HYBRID_LANES(Sin)
    HYBRID_LANES(Cos)
    HYBRID_LANES(Sqrt)
    HYBRID_LANES(Addc)
    HYBRID_LANES(Subc)
    HYBRID_LANES(Madc)
#undef HYBRID_LANES
  default:
    return false;
  }
}
