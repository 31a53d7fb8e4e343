//===- Arithmetic.h - Scalar PTX instruction semantics ----------*- C++ -*-===//
//
// What one thread's integer, floating-point, comparison and conversion
// instructions compute from raw register bits (the interpreter stores every
// register as 64 raw bits and reads it at the instruction's type).
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_EMULATOR_ARITHMETIC_H
#define HYBRID_EMULATOR_ARITHMETIC_H

#include "Ptx.h"

#include <cstdint>
#include <string>

namespace hybrid::emu {

uint64_t widthMask(unsigned bits);
int64_t signExtend(uint64_t v, unsigned bits);
float asF32(uint64_t bits);
double asF64(uint64_t bits);
uint64_t fromF32(float f);
uint64_t fromF64(double d);
float flushF32(float f);
/// f32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN.
uint16_t toBF16(float f);
float fromBF16(uint16_t h);

// The instructions below run a whole warp per call: for each lane in
// `lanes`, out[lane] from a[lane] (b[lane], ...), so that the per-thread
// work inlines into one loop.

/// setp's comparison of `a` and `b` at `in`'s type and compare operator.
void compare(const Instruction &in, uint32_t lanes, const uint64_t *a,
             const uint64_t *b, bool *out);
/// cvt from `in.source` to `in.type`; false for conversions not modelled.
bool convert(const Instruction &in, uint32_t lanes, const uint64_t *a,
             uint64_t *out);
/// "" or why `in`, an arithmetic instruction, is outside the model (a float
/// type or rounding mode), known before any thread runs it.
std::string whyUnsupported(const Instruction &in);
/// Integer or float arithmetic (add ... shf); carry[lane] is the lane's
/// CC.CF for the .cc/addc/subc/madc forms. False if not modelled.
bool arithmetic(const Instruction &in, uint32_t lanes, const uint64_t *a,
                const uint64_t *b, const uint64_t *c, uint8_t *carry,
                uint64_t *out);

} // namespace hybrid::emu

#endif // HYBRID_EMULATOR_ARITHMETIC_H
