//===- CudaDriver.h - The CUDA driver API, loaded at run time ---*- C++ -*-===//
//
// The runtime never links libcuda: it dlopens libcuda.so.1 (or the library
// HYBRID_CUDA_DRIVER names, such as the PTX emulator) when a cuda manifest is
// opened, so one build runs on machines with and without a GPU.
// cuda.h provides the types; several entry points are macros for versioned
// symbols (cuMemAlloc -> cuMemAlloc_v2), which the expanded names below
// follow.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_CUDA_CUDADRIVER_H
#define HYBRID_RT_LIB_CUDA_CUDADRIVER_H

#include <cuda.h>

#include <string>

namespace hybrid::rt::cuda {

#define HYBRID_CUDA_DRIVER_FUNCTIONS(X)                                        \
  X(cuInit)                                                                    \
  X(cuGetErrorName)                                                            \
  X(cuGetErrorString)                                                          \
  X(cuDeviceGet)                                                               \
  X(cuDeviceGetCount)                                                          \
  X(cuDeviceGetName)                                                           \
  X(cuDeviceGetAttribute)                                                      \
  X(cuDevicePrimaryCtxRetain)                                                  \
  X(cuDevicePrimaryCtxRelease)                                                 \
  X(cuCtxSetCurrent)                                                           \
  X(cuModuleLoadData)                                                          \
  X(cuModuleUnload)                                                            \
  X(cuModuleGetFunction)                                                       \
  X(cuFuncSetAttribute)                                                        \
  X(cuMemAlloc)                                                                \
  X(cuMemFree)                                                                 \
  X(cuMemAllocHost)                                                            \
  X(cuMemFreeHost)                                                             \
  X(cuMemcpyHtoDAsync)                                                         \
  X(cuMemcpyDtoHAsync)                                                         \
  X(cuMemcpyDtoDAsync)                                                         \
  X(cuMemsetD8Async)                                                           \
  X(cuLaunchKernel)                                                            \
  X(cuStreamCreate)                                                            \
  X(cuStreamDestroy)                                                           \
  X(cuStreamSynchronize)                                                       \
  X(cuStreamWaitEvent)                                                         \
  X(cuEventCreate)                                                             \
  X(cuEventDestroy)                                                            \
  X(cuEventRecord)                                                             \
  X(cuEventSynchronize)                                                        \
  X(cuEventElapsedTime)

/// Entry points used when the driver has them: newer than the runtime
/// needs, or only for better messages (cuMemGetInfo).
#define HYBRID_CUDA_OPTIONAL_FUNCTIONS(X)                                      \
  X(cuFuncGetParamInfo)                                                        \
  X(cuMemGetInfo)                                                              \
  X(cuOccupancyMaxActiveBlocksPerMultiprocessor)                               \
  X(cuPointerGetAttribute)                                                     \
  X(cuStreamIsCapturing)                                                       \
  X(cuTensorMapEncodeTiled)

/// The driver's entry points; null until load() succeeds.
struct Driver {
#define HYBRID_CUDA_DECLARE(name) decltype(&::name) name = nullptr;
  HYBRID_CUDA_DRIVER_FUNCTIONS(HYBRID_CUDA_DECLARE)
  HYBRID_CUDA_OPTIONAL_FUNCTIONS(HYBRID_CUDA_DECLARE)
#undef HYBRID_CUDA_DECLARE

  Driver() = default;
  Driver(const Driver &) = delete;
  Driver &operator=(const Driver &) = delete;
  ~Driver();

  /// Loads libcuda.so.1 and every entry point; "" or why not.
  std::string load();

  /// "what: CUDA_ERROR_X (description)" for a failed call.
  std::string describe(const std::string &what, CUresult result) const;

private:
  void *handle = nullptr;
};

} // namespace hybrid::rt::cuda

#endif // HYBRID_RT_LIB_CUDA_CUDADRIVER_H
