//===- CudaDriver.cpp - The CUDA driver API, loaded at run time ----------===//

#include "CudaDriver.h"

#include <cstdlib>
#include <dlfcn.h>

using namespace hybrid::rt::cuda;

// Two levels so that macro names (cuMemAlloc) become their symbols
// (cuMemAlloc_v2).
#define HYBRID_CUDA_STRINGIFY_(x) #x
#define HYBRID_CUDA_STRINGIFY(x) HYBRID_CUDA_STRINGIFY_(x)

Driver::~Driver() {
  if (handle)
    dlclose(handle);
}

std::string Driver::load() {
  // HYBRID_CUDA_DRIVER names another implementation of the driver API: the
  // PTX emulator (runtime/emulator) runs the backend without a GPU.
  const char *path = std::getenv("HYBRID_CUDA_DRIVER");
  handle = dlopen(path && *path ? path : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    return std::string("cannot load the CUDA driver (") + dlerror() +
           (path && *path ? ")" : "): is an NVIDIA driver installed?");
#define HYBRID_CUDA_RESOLVE(name)                                              \
  name = reinterpret_cast<decltype(name)>(                                     \
      dlsym(handle, HYBRID_CUDA_STRINGIFY(name)));                             \
  if (!name)                                                                   \
    return "the CUDA driver lacks " HYBRID_CUDA_STRINGIFY(                     \
        name) ": it is older than this runtime needs";
  HYBRID_CUDA_DRIVER_FUNCTIONS(HYBRID_CUDA_RESOLVE)
#undef HYBRID_CUDA_RESOLVE
#define HYBRID_CUDA_RESOLVE_OPTIONAL(name)                                     \
  name = reinterpret_cast<decltype(name)>(                                     \
      dlsym(handle, HYBRID_CUDA_STRINGIFY(name)));
  HYBRID_CUDA_OPTIONAL_FUNCTIONS(HYBRID_CUDA_RESOLVE_OPTIONAL)
#undef HYBRID_CUDA_RESOLVE_OPTIONAL
  return "";
}

std::string Driver::describe(const std::string &what, CUresult result) const {
  const char *name = nullptr, *text = nullptr;
  if (cuGetErrorName)
    cuGetErrorName(result, &name);
  if (cuGetErrorString)
    cuGetErrorString(result, &text);
  return what + ": " + (name ? name : "CUDA error " + std::to_string(result)) +
         (text ? std::string(" (") + text + ")" : "");
}
