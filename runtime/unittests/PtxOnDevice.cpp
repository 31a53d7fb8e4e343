//===- PtxOnDevice.cpp - The emulator's PTX tests on a GPU ----------------===//

#include "PtxOnDevice.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>

#ifdef HYBRID_RT_CUDA
#include "cuda/CudaDriver.h"
#endif

using namespace hybrid::rt;

bool testing::ptxOnDevice() {
  static const bool on = std::getenv("HYBRID_PTX_ON_DEVICE") != nullptr;
  return on;
}

#ifndef HYBRID_RT_CUDA
static const char *kNoCuda =
    "HYBRID_PTX_ON_DEVICE: the runtime was built without HYBRID_ENABLE_CUDA";

std::string testing::runPtxOnDevice(const std::string &,
                                    std::vector<uint64_t> &, unsigned, uint64_t,
                                    const Placer &, int64_t) {
  return kNoCuda;
}

std::string testing::encodeTensorMapOnDevice(void *, uint64_t,
                                             const uint64_t[2], uint64_t,
                                             const uint32_t[2]) {
  return kNoCuda;
}
#else
namespace {
/// The driver, initialised once, with device 0's primary context current.
struct Device {
  cuda::Driver driver;
  std::string error;
  Device() {
    error = driver.load();
    if (!error.empty())
      return;
    CUdevice device;
    CUcontext context;
    if (CUresult r = driver.cuInit(0))
      error = driver.describe("cuInit", r);
    else if (CUresult r = driver.cuDeviceGet(&device, 0))
      error = driver.describe("cuDeviceGet", r);
    else if (CUresult r = driver.cuDevicePrimaryCtxRetain(&context, device))
      error = driver.describe("cuDevicePrimaryCtxRetain", r);
    else if (CUresult r = driver.cuCtxSetCurrent(context))
      error = driver.describe("cuCtxSetCurrent", r);
  }
};

Device &getDevice() {
  static Device device;
  return device;
}
} // namespace

std::string testing::encodeTensorMapOnDevice(void *map, uint64_t address,
                                             const uint64_t dims[2],
                                             uint64_t rowBytes,
                                             const uint32_t box[2]) {
  Device &device = getDevice();
  if (!device.error.empty())
    return device.error;
  cuda::Driver &d = device.driver;
  if (!d.cuTensorMapEncodeTiled)
    return "the CUDA driver has no cuTensorMapEncodeTiled";
  cuuint64_t globalDims[2] = {dims[0], dims[1]}, strides[1] = {rowBytes};
  cuuint32_t boxDims[2] = {box[0], box[1]}, elementStrides[2] = {1, 1};
  CUtensorMap encoded; // aligned as the driver wants; `map` need not be
  CUresult r = d.cuTensorMapEncodeTiled(
      &encoded, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2,
      reinterpret_cast<void *>(address), globalDims, strides, boxDims,
      elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    return d.describe("cuTensorMapEncodeTiled", r);
  std::memcpy(map, &encoded, sizeof(encoded));
  return "";
}

std::string testing::runPtxOnDevice(const std::string &ptx,
                                    std::vector<uint64_t> &out,
                                    unsigned threads, uint64_t dynamicShared,
                                    const Placer &place, int64_t byValueAt) {
  // HYBRID_PTX_DUMP=DIR keeps every module (k0.ptx, k1.ptx, ...): what the
  // driver's JIT refused, or ptxas's view of it.
  if (const char *dump = std::getenv("HYBRID_PTX_DUMP")) {
    static unsigned modules = 0;
    std::ofstream(std::string(dump) + "/k" + std::to_string(modules++) + ".ptx")
        << ptx;
  }
  Device &device = getDevice();
  if (!device.error.empty())
    return device.error;
  cuda::Driver &d = device.driver;
  size_t bytes = out.size() * sizeof(uint64_t);
  CUmodule module = nullptr;
  CUfunction function = nullptr;
  CUdeviceptr buffer = 0;
  std::string error;
  auto failed = [&](const char *what, CUresult r) {
    if (r != CUDA_SUCCESS && error.empty())
      error = d.describe(what, r);
    return !error.empty();
  };
  void *params[] = {&buffer, reinterpret_cast<uint8_t *>(out.data()) +
                                 std::max<int64_t>(byValueAt, 0)};
  if (!failed("cuModuleLoadData", d.cuModuleLoadData(&module, ptx.c_str())) &&
      !failed("cuModuleGetFunction",
              d.cuModuleGetFunction(&function, module, "k")) &&
      !failed("cuFuncSetAttribute",
              d.cuFuncSetAttribute(
                  function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                  int(dynamicShared))) &&
      !failed("cuMemAlloc", d.cuMemAlloc(&buffer, bytes)) &&
      (!place || (error = place(uint64_t(buffer), out)).empty()) &&
      !failed("cuMemcpyHtoDAsync",
              d.cuMemcpyHtoDAsync(buffer, out.data(), bytes, nullptr)) &&
      !failed("cuLaunchKernel", d.cuLaunchKernel(function, 1, 1, 1, threads, 1,
                                                 1, unsigned(dynamicShared),
                                                 nullptr, params, nullptr)) &&
      !failed("cuMemcpyDtoHAsync",
              d.cuMemcpyDtoHAsync(out.data(), buffer, bytes, nullptr)))
    failed("cuStreamSynchronize", d.cuStreamSynchronize(nullptr));
  if (buffer)
    d.cuMemFree(buffer);
  if (module)
    d.cuModuleUnload(module);
  return error;
}
#endif
