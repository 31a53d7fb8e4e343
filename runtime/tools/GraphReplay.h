//===- GraphReplay.h - Decode steps replayed from a CUDA graph --*- C++ -*-===//
//
// hybrid-rt-check --graph: one decode step of every layer is captured once
// in a CUDA graph on a stream of its own, its operands in device buffers
// that stay put, and every step then copies its inputs in, replays the graph
// and copies the outputs out. The driver is the one the model runs on
// ($HYBRID_CUDA_DRIVER, else libcuda.so.1), loaded again by name: the same
// library, so the same device memory and streams.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_TOOLS_GRAPHREPLAY_H
#define HYBRID_RT_TOOLS_GRAPHREPLAY_H

#include "DriverFunctions.h"
#include "hybrid-rt/hybrid_rt.h"

#include <cuda.h>
#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace hybrid::rt {

class GraphReplay {
public:
  GraphReplay() = default;
  GraphReplay(const GraphReplay &) = delete;
  GraphReplay &operator=(const GraphReplay &) = delete;
  ~GraphReplay() {
    if (exec)
      d.cuGraphExecDestroy(exec);
    if (graph)
      d.cuGraphDestroy(graph);
    for (CUdeviceptr buffer : buffers)
      d.cuMemFree(buffer);
    if (stream)
      d.cuStreamDestroy(stream);
  }

  /// Loads the driver and creates the stream; the error, if any.
  std::string open() {
    const char *path = std::getenv("HYBRID_CUDA_DRIVER");
    void *library = dlopen(path ? path : "libcuda.so.1", RTLD_NOW);
    if (!library)
      return std::string("cannot load the CUDA driver: ") + dlerror();
#define HYBRID_LOAD(name)                                                      \
  if (!(d.name = reinterpret_cast<decltype(&::name)>(                          \
            dlsym(library, HYBRID_DRIVER_SYMBOL(name)))))                      \
    return std::string("the CUDA driver lacks ") + #name;
    HYBRID_DRIVER_FUNCTIONS(HYBRID_LOAD)
#undef HYBRID_LOAD
    return check("cuStreamCreate", d.cuStreamCreate(&stream, 0));
  }

  CUstream getStream() const { return stream; }

  /// A zeroed device tensor of `shape`, f32 or `bf16` (freed with this
  /// object).
  std::string allocate(std::vector<int64_t> shape, bool bf16,
                       hybrid_rt_tensor &tensor) {
    tensor = {nullptr,
              bf16 ? HYBRID_RT_BF16 : HYBRID_RT_F32,
              int32_t(shape.size()),
              {},
              HYBRID_RT_DEVICE};
    size_t bytes = bf16 ? 2 : 4;
    for (size_t i = 0; i < shape.size(); ++i)
      bytes *= size_t(tensor.shape[i] = shape[i]);
    CUdeviceptr ptr = 0;
    if (std::string e = check("cuMemAlloc", d.cuMemAlloc(&ptr, bytes));
        !e.empty())
      return e;
    buffers.push_back(ptr);
    tensor.data = reinterpret_cast<void *>(ptr);
    return check("cuMemsetD8Async", d.cuMemsetD8Async(ptr, 0, bytes, stream));
  }

  /// Copies `host` (elements of the tensor's dtype) into `device` on the
  /// stream (pageable memory: staged before the call returns).
  template <typename T>
  std::string upload(const hybrid_rt_tensor &device,
                     const std::vector<T> &host) {
    return check("cuMemcpyHtoDAsync",
                 d.cuMemcpyHtoDAsync(CUdeviceptr(device.data), host.data(),
                                     host.size() * sizeof(T), stream));
  }
  /// Copies `device` into `host` (elements of its dtype) on the stream
  /// (ready after synchronize()).
  template <typename T>
  std::string download(std::vector<T> &host, const hybrid_rt_tensor &device) {
    return check("cuMemcpyDtoHAsync",
                 d.cuMemcpyDtoHAsync(host.data(), CUdeviceptr(device.data),
                                     host.size() * sizeof(T), stream));
  }

  std::string beginCapture() {
    return check("cuStreamBeginCapture",
                 d.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL));
  }
  /// Ends the capture and instantiates its graph.
  std::string endCapture() {
    if (std::string e =
            check("cuStreamEndCapture", d.cuStreamEndCapture(stream, &graph));
        !e.empty())
      return e;
    return check("cuGraphInstantiate", d.cuGraphInstantiate(&exec, graph, 0));
  }
  /// Nodes of the captured graph (kernels, copies, memsets): `count`.
  std::string countNodes(size_t &count) {
    count = 0;
    return check("cuGraphGetNodes", d.cuGraphGetNodes(graph, nullptr, &count));
  }
  std::string replay() {
    return check("cuGraphLaunch", d.cuGraphLaunch(exec, stream));
  }
  std::string synchronize() {
    return check("cuStreamSynchronize", d.cuStreamSynchronize(stream));
  }

private:
  struct Driver {
#define HYBRID_DECLARE(name) decltype(&::name) name = nullptr;
    HYBRID_DRIVER_FUNCTIONS(HYBRID_DECLARE)
#undef HYBRID_DECLARE
  } d;

  std::string check(const char *what, CUresult result) {
    if (result == CUDA_SUCCESS)
      return "";
    const char *name = nullptr;
    if (d.cuGetErrorName)
      d.cuGetErrorName(result, &name);
    return std::string(what) + ": " + (name ? name : std::to_string(result));
  }

  CUstream stream = nullptr;
  CUgraph graph = nullptr;
  CUgraphExec exec = nullptr;
  std::vector<CUdeviceptr> buffers;
};

} // namespace hybrid::rt

#endif // HYBRID_RT_TOOLS_GRAPHREPLAY_H
