//===- TensorMap.h - The emulator's CUtensorMap contents --------*- C++ -*-===//
//
// CUtensorMap is 128 opaque bytes; the emulator's cuTensorMapEncodeTiled
// stores this in them, and the interpreter's TMA loads read it back from the
// (global) memory the kernel names.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_EMULATOR_TENSORMAP_H
#define HYBRID_EMULATOR_TENSORMAP_H

#include <cstdint>

namespace hybrid::emu {

struct TensorMap {
  static constexpr uint32_t kMagic = 0x544d4150; // "TMAP"
  uint32_t magic = 0;
  uint32_t rank = 0;
  uint32_t elementBytes = 0;
  uint32_t swizzleBytes = 0; // 0 (none), 32, 64 or 128
  uint64_t address = 0;
  uint32_t dims[5] = {};    // elements, innermost first
  uint32_t box[5] = {};     // elements per load, innermost first
  uint64_t strides[4] = {}; // bytes between steps of dims 1..rank-1
};
static_assert(sizeof(TensorMap) <= 128, "a CUtensorMap holds 128 bytes");

} // namespace hybrid::emu

#endif // HYBRID_EMULATOR_TENSORMAP_H
