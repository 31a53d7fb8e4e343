//===- PtxOnDevice.h - The emulator's PTX tests on a GPU --------*- C++ -*-===//
//
// The emulator's unit tests are PTX kernels with results worked out from the
// PTX ISA. With HYBRID_PTX_ON_DEVICE set, they run on a GPU through the CUDA
// driver instead (HYBRID_CUDA_DRIVER, else libcuda.so.1): the same kernels
// and expected results, so hardware confirms or refutes the emulator's model
// of each instruction (the GPU suite's conformance phase).
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_UNITTESTS_PTXONDEVICE_H
#define HYBRID_RT_UNITTESTS_PTXONDEVICE_H

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hybrid::rt::testing {

/// Whether HYBRID_PTX_ON_DEVICE asks for device runs.
bool ptxOnDevice();

/// Writes into `out` what depends on where it lives (`base`: its address
/// as the kernel sees it), such as a tensor map of a tensor inside it; ""
/// or what failed.
using Placer =
    std::function<std::string(uint64_t base, std::vector<uint64_t> &out)>;

/// Runs kernel `k` of module `ptx` (a .u64 parameter: a device copy of
/// `out`, copied back afterwards; `place` runs before the copy) in one CTA
/// of `threads` threads with `dynamicShared` bytes of dynamic shared memory;
/// "" or what failed. With `byValueAt` >= 0, `k` takes a second parameter:
/// the 128 bytes of `out` from byte `byValueAt` (a tensor map `place`
/// wrote), by value. HYBRID_PTX_DUMP=DIR keeps each module as DIR/kN.ptx.
std::string runPtxOnDevice(const std::string &ptx, std::vector<uint64_t> &out,
                           unsigned threads, uint64_t dynamicShared,
                           const Placer &place = nullptr,
                           int64_t byValueAt = -1);

/// The driver's CUtensorMap (128 bytes into `map`) of a 2-D bf16 tensor at
/// device address `address`: dims {inner, outer}, rows `rowBytes` apart,
/// box {boxInner, boxOuter}, 128-byte swizzle, zero fill.
std::string encodeTensorMapOnDevice(void *map, uint64_t address,
                                    const uint64_t dims[2], uint64_t rowBytes,
                                    const uint32_t box[2]);

} // namespace hybrid::rt::testing

#endif // HYBRID_RT_UNITTESTS_PTXONDEVICE_H
