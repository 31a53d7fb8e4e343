/*===- DriverFunctions.h - Driver entry points the checks call ---*- C -*-===*
 *
 * The CUDA driver functions that hybrid-rt-c-api-check (C) and
 * hybrid-rt-check --graph (C++) load from the driver the model runs on
 * ($HYBRID_CUDA_DRIVER): an X-macro list, each name as cuda.h spells it
 * (its macros map some to versioned symbols: cuMemAlloc -> cuMemAlloc_v2,
 * and HYBRID_DRIVER_SYMBOL gives the mapped name for dlsym).
 *
 *===----------------------------------------------------------------------===*/

#ifndef HYBRID_RT_TOOLS_DRIVERFUNCTIONS_H
#define HYBRID_RT_TOOLS_DRIVERFUNCTIONS_H

#define HYBRID_DRIVER_SYMBOL_OF(name) #name
#define HYBRID_DRIVER_SYMBOL(name) HYBRID_DRIVER_SYMBOL_OF(name)

#define HYBRID_DRIVER_FUNCTIONS(X)                                             \
  X(cuGetErrorName)                                                            \
  X(cuMemAlloc)                                                                \
  X(cuMemFree)                                                                 \
  X(cuMemsetD8Async)                                                           \
  X(cuMemcpyHtoDAsync)                                                         \
  X(cuMemcpyDtoHAsync)                                                         \
  X(cuStreamCreate)                                                            \
  X(cuStreamDestroy)                                                           \
  X(cuStreamSynchronize)                                                       \
  X(cuStreamBeginCapture)                                                      \
  X(cuStreamEndCapture)                                                        \
  X(cuGraphGetNodes)                                                           \
  X(cuGraphInstantiate)                                                        \
  X(cuGraphLaunch)                                                             \
  X(cuGraphExecDestroy)                                                        \
  X(cuGraphDestroy)

#endif /* HYBRID_RT_TOOLS_DRIVERFUNCTIONS_H */
