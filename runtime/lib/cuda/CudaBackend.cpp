//===- CudaBackend.cpp - Running a cuda manifest's kernels ---------------===//

#include "CudaBackend.h"
#include "CudaDriver.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

using namespace hybrid::rt;
using namespace hybrid::rt::cuda;

namespace {

/// A grow-only device allocation.
struct DeviceBuffer {
  CUdeviceptr ptr = 0;
  size_t bytes = 0;
};

/// Kernel parameters in the memref descriptor convention the kernels are
/// lowered with: per memref (allocated, aligned, offset, sizes, strides),
/// every field 8 bytes.
class LaunchArgs {
public:
  LaunchArgs() { values.reserve(96); }
  void memref(CUdeviceptr data, std::vector<int64_t> shape) {
    scalar(int64_t(data));
    scalar(int64_t(data));
    scalar(0);
    for (int64_t size : shape)
      scalar(size);
    std::vector<int64_t> strides(shape.size());
    int64_t stride = 1;
    for (size_t i = shape.size(); i-- > 0;) {
      strides[i] = stride;
      stride *= shape[i];
    }
    for (int64_t s : strides)
      scalar(s);
  }
  void scalar(int64_t value) { values.push_back(value); }
  void **get() {
    params.clear();
    for (int64_t &value : values)
      params.push_back(&value);
    return params.data();
  }

private:
  std::vector<int64_t> values;
  std::vector<void *> params;
};

std::string readFile(const std::string &path, bool &ok) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  ok = bool(file);
  return text.str();
}

} // namespace

struct Backend::State {
  Driver driver;
  CUdevice device = 0;
  CUcontext context = nullptr;
  CUmodule module = nullptr;
  CUstream stream = nullptr;
  CUevent events[3] = {};
  std::string name;
  std::map<std::string, CUfunction> functions;
  // q, k, v and sinks in f32, q, k, v prepared (bf16), out in f32.
  DeviceBuffer qIn, kIn, vIn, sinksIn, qBf16, kBf16, vBf16, out;
  float prepareMs = 0, attentionMs = 0;

  std::string check(const std::string &what, CUresult result) {
    return result == CUDA_SUCCESS ? "" : driver.describe(what, result);
  }
  std::string ensure(DeviceBuffer &buffer, size_t bytes) {
    if (buffer.bytes >= bytes)
      return "";
    if (buffer.ptr)
      driver.cuMemFree(buffer.ptr);
    buffer = {};
    if (std::string e = check("cuMemAlloc(" + std::to_string(bytes) + ")",
                              driver.cuMemAlloc(&buffer.ptr, bytes));
        !e.empty())
      return e;
    buffer.bytes = bytes;
    return "";
  }
  std::string function(const std::string &symbol, CUfunction &f) {
    auto it = functions.find(symbol);
    if (it == functions.end()) {
      CUfunction loaded = nullptr;
      if (std::string e =
              check("kernel " + symbol,
                    driver.cuModuleGetFunction(&loaded, module,
                                               symbol.c_str()));
          !e.empty())
        return e;
      it = functions.emplace(symbol, loaded).first;
    }
    f = it->second;
    return "";
  }
  std::string launch(const std::string &symbol, unsigned gridX, unsigned gridY,
                     unsigned gridZ, unsigned threads, LaunchArgs &args) {
    CUfunction f;
    if (std::string e = function(symbol, f); !e.empty())
      return e;
    return check("launching " + symbol,
                 driver.cuLaunchKernel(f, gridX, gridY, gridZ, threads, 1, 1,
                                       /*sharedMemBytes=*/0, stream, args.get(),
                                       nullptr));
  }
};

Backend::Backend() : state(std::make_unique<State>()) {}

Backend::~Backend() {
  if (!state->driver.cuInit)
    return;
  Driver &d = state->driver;
  if (state->context)
    d.cuCtxSetCurrent(state->context);
  for (DeviceBuffer *b : {&state->qIn, &state->kIn, &state->vIn,
                          &state->sinksIn, &state->qBf16, &state->kBf16,
                          &state->vBf16, &state->out})
    if (b->ptr)
      d.cuMemFree(b->ptr);
  for (CUevent e : state->events)
    if (e)
      d.cuEventDestroy(e);
  if (state->stream)
    d.cuStreamDestroy(state->stream);
  if (state->module)
    d.cuModuleUnload(state->module);
  if (state->context)
    d.cuDevicePrimaryCtxRelease(state->device);
}

std::unique_ptr<Backend> Backend::open(const Manifest &manifest,
                                       std::string &error) {
  std::unique_ptr<Backend> backend(new Backend());
  State &s = *backend->state;
  Driver &d = s.driver;
  auto failed = [&](std::string message) {
    error = std::move(message);
    return nullptr;
  };
  if (std::string e = d.load(); !e.empty())
    return failed(e);
  if (std::string e = s.check("cuInit", d.cuInit(0)); !e.empty())
    return failed(e);
  int count = 0;
  if (std::string e = s.check("cuDeviceGetCount", d.cuDeviceGetCount(&count));
      !e.empty())
    return failed(e);
  int ordinal = 0;
  if (const char *env = std::getenv("HYBRID_CUDA_DEVICE"))
    ordinal = std::atoi(env);
  if (ordinal < 0 || ordinal >= count)
    return failed("CUDA device " + std::to_string(ordinal) +
                  " does not exist (" + std::to_string(count) +
                  " found; HYBRID_CUDA_DEVICE picks one)");
  char name[256] = {};
  if (std::string e = s.check("cuDeviceGet", d.cuDeviceGet(&s.device, ordinal));
      !e.empty())
    return failed(e);
  d.cuDeviceGetName(name, sizeof(name), s.device);
  s.name = name;
  if (std::string e =
          s.check("cuDevicePrimaryCtxRetain",
                  d.cuDevicePrimaryCtxRetain(&s.context, s.device));
      !e.empty())
    return failed(e);
  d.cuCtxSetCurrent(s.context);

  // The cubin runs without JIT on the GPU it was assembled for; anything
  // else JIT-compiles the PTX.
  std::string cubinError;
  if (!manifest.cubin.empty()) {
    bool ok = false;
    std::string cubin = readFile(manifest.dir + "/" + manifest.cubin, ok);
    if (!ok)
      cubinError = manifest.dir + "/" + manifest.cubin + ": cannot be read";
    else
      cubinError = s.check("loading " + manifest.cubin,
                           d.cuModuleLoadData(&s.module, cubin.data()));
  }
  if (!s.module) {
    bool ok = false;
    std::string ptx = readFile(manifest.dir + "/" + manifest.library, ok);
    if (!ok)
      return failed(manifest.dir + "/" + manifest.library +
                    ": cannot be read");
    if (std::string e = s.check("loading " + manifest.library + " on " +
                                    s.name,
                                d.cuModuleLoadData(&s.module, ptx.c_str()));
        !e.empty())
      return failed(cubinError.empty() ? e : cubinError + "; " + e);
  }
  if (std::string e = s.check("cuStreamCreate",
                              d.cuStreamCreate(&s.stream, CU_STREAM_NON_BLOCKING));
      !e.empty())
    return failed(e);
  for (CUevent &event : s.events)
    if (std::string e =
            s.check("cuEventCreate", d.cuEventCreate(&event, CU_EVENT_DEFAULT));
        !e.empty())
      return failed(e);
  return backend;
}

std::string Backend::prefill(const LayerSpec &l, const KernelSpec &kernel,
                             int64_t batch, int64_t seq, const float *q,
                             const float *k, const float *v,
                             const float *sinks, float *out) {
  State &s = *state;
  Driver &d = s.driver;
  d.cuCtxSetCurrent(s.context);
  int64_t rows = batch * seq;
  size_t qCount = rows * l.numHeads * l.headDim;
  size_t kCount = rows * l.numKvHeads * l.headDim;
  size_t vCount = rows * l.numKvHeads * l.vHeadDim;
  size_t outCount = rows * l.numHeads * l.vHeadDim;
  std::string e;
  auto step = [&](const std::string &result) {
    if (e.empty())
      e = result;
    return e.empty();
  };
  step(s.ensure(s.qIn, qCount * 4));
  step(s.ensure(s.kIn, kCount * 4));
  step(s.ensure(s.vIn, vCount * 4));
  step(s.ensure(s.qBf16, qCount * 2));
  step(s.ensure(s.kBf16, kCount * 2));
  step(s.ensure(s.vBf16, vCount * 2));
  step(s.ensure(s.out, outCount * 4));
  if (sinks)
    step(s.ensure(s.sinksIn, l.numHeads * 4));
  if (!e.empty())
    return e;
  auto copyIn = [&](DeviceBuffer &b, const float *data, size_t count) {
    return step(s.check("copying operands to the GPU",
                        d.cuMemcpyHtoDAsync(b.ptr, data, count * 4, s.stream)));
  };
  copyIn(s.qIn, q, qCount);
  copyIn(s.kIn, k, kCount);
  copyIn(s.vIn, v, vCount);
  if (sinks)
    copyIn(s.sinksIn, sinks, l.numHeads);
  if (!e.empty())
    return e;

  unsigned threads = unsigned(kernel.threads);
  std::vector<int64_t> qShape = {batch, seq, l.numHeads, l.headDim},
                       kShape = {batch, seq, l.numKvHeads, l.headDim},
                       vShape = {batch, seq, l.numKvHeads, l.vHeadDim},
                       outShape = {batch, seq, l.numHeads, l.vHeadDim};
  auto prepare = [&](const std::string &symbol, DeviceBuffer &in,
                     DeviceBuffer &prepared, const std::vector<int64_t> &shape,
                     bool withPosition) {
    LaunchArgs args;
    args.memref(in.ptr, shape);
    args.memref(prepared.ptr, shape);
    if (withPosition)
      args.scalar(0); // prefill: the first position is 0
    return step(s.launch(symbol, unsigned(rows), 1, 1, threads, args));
  };
  step(s.check("cuEventRecord", d.cuEventRecord(s.events[0], s.stream)));
  prepare(kernel.prepareQ, s.qIn, s.qBf16, qShape, true);
  prepare(kernel.prepareK, s.kIn, s.kBf16, kShape, true);
  prepare(kernel.prepareV, s.vIn, s.vBf16, vShape, false);
  step(s.check("cuEventRecord", d.cuEventRecord(s.events[1], s.stream)));
  LaunchArgs args;
  args.memref(s.qBf16.ptr, qShape);
  args.memref(s.kBf16.ptr, kShape);
  args.memref(s.vBf16.ptr, vShape);
  if (sinks)
    args.memref(s.sinksIn.ptr, {l.numHeads});
  args.memref(s.out.ptr, outShape);
  int64_t tiles = (seq + kernel.qTile - 1) / kernel.qTile;
  step(s.launch(kernel.entry, unsigned(tiles), unsigned(l.numHeads),
                unsigned(batch), threads, args));
  step(s.check("cuEventRecord", d.cuEventRecord(s.events[2], s.stream)));
  step(s.check("copying the output from the GPU",
               d.cuMemcpyDtoHAsync(out, s.out.ptr, outCount * 4, s.stream)));
  step(s.check("running " + kernel.entry, d.cuStreamSynchronize(s.stream)));
  if (!e.empty())
    return e;
  d.cuEventElapsedTime(&s.prepareMs, s.events[0], s.events[1]);
  d.cuEventElapsedTime(&s.attentionMs, s.events[1], s.events[2]);
  return "";
}

float Backend::lastPrepareMs() const { return state->prepareMs; }
float Backend::lastAttentionMs() const { return state->attentionMs; }
const std::string &Backend::deviceName() const { return state->name; }
