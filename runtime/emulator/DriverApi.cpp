//===- DriverApi.cpp - The CUDA driver API over the PTX interpreter -------===//
//
// libhybrid-cuda-emulator.so exports the driver entry points the runtime
// dlopens (runtime/lib/cuda/CudaDriver.h), so the unmodified CUDA backend runs
// on machines without a GPU: HYBRID_CUDA_DRIVER=<this library>. "Device" memory
// is host memory (as much as the host has, or $HYBRID_EMULATOR_MEMORY_MIB), and
// cubins are refused so that the runtime falls back to the PTX. Copies,
// memsets, kernels and event records run when the host waits for them, as a
// GPU's do (copies read pageable host memory when queued, as the driver
// stages it, and pinned memory, cuMemAllocHost's, when they run), and a wait
// runs only the work it depends on through stream order, event waits and the
// legacy default stream's implicit synchronization with blocking streams
// (WorkQueue.h): other streams' work has not run yet. A kernel
// fault (out-of-bounds access, shared-memory race, unsupported instruction)
// fails the wait that ran the kernel; cuGetErrorString then returns the fault's
// description. Work on a stream that was never created, or was destroyed, is
// CUDA_ERROR_INVALID_HANDLE. Streams capture CUDA graphs: kernels, device
// copies and memsets queued on a capturing stream are recorded, in order, and
// an instantiated graph's launch queues them again on its stream (a chain, as
// a one-stream capture makes). A capture is invalidated by what invalidates
// it on a GPU: waiting for the stream, work on the legacy default stream while
// a blocking stream captures, and allocating or freeing memory (the global
// and thread-local modes' unsafe calls); host copies, event records and event
// waits on a capturing stream are refused (CUDA_ERROR_NOT_SUPPORTED: not
// emulated in graphs) and invalidate it too.
//
// cuda.h declares every function defined here, so the compiler checks the
// signatures (its macros map names to versioned symbols: cuMemAlloc_v2).
//
//===----------------------------------------------------------------------===//

#include "Interpreter.h"
#include "TensorMap.h"
#include "WorkQueue.h"

#include <cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <unistd.h>

using namespace hybrid::emu;

namespace {

/// Shared memory per CTA: without opting in, and an H100's opt-in maximum.
constexpr int kDefaultSharedBytes = 48 * 1024;
constexpr int kOptInSharedBytes = 227 * 1024;

struct Kernel {
  const Program *program;
  int function;
  /// Dynamic shared memory a launch may ask for (cuFuncSetAttribute raises
  /// it past the default).
  int maxDynamicShared = kDefaultSharedBytes;
};

struct LoadedModule {
  Program program;
  std::vector<std::unique_ptr<Kernel>> kernels;
};

using Clock = std::chrono::steady_clock;

struct Event {
  Clock::time_point time;
  uint64_t ticket = 0; // its last record's work (0: never recorded)
};

/// A captured graph (and its instantiation): the capture's work in order.
struct Graph {
  std::vector<WorkQueue::Work> work;
};

struct Capture {
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  bool invalidated = false;
  std::vector<WorkQueue::Work> work;
};

struct State {
  std::mutex mutex;
  Memory memory;
  // Page-locked host memory (cuMemAllocHost), which copies read when they
  // run, as a GPU's DMA does: a caller that rewrites it before is caught.
  Memory pinned;
  WorkQueue queue;
  // Streams created and not destroyed, with their flags.
  std::map<CUstream, unsigned> streams;
  // Queue keys of streams capturing a graph, and their captures.
  std::map<const void *, Capture> captures;
  std::string lastFault;
  int multiprocessors = 4;
  // "Device" memory: its size, and what cuMemAlloc holds of it.
  uint64_t memoryBytes =
      uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
  uint64_t allocatedBytes = 0;
  // Freed allocations by capacity, which cuMemAlloc hands out
  // again as they are (contents and address), as a GPU's allocator may: a
  // caller that takes a new address for a new allocation, or its bytes for
  // zeros, is caught. At most kReused are kept (past it the smallest go).
  std::multimap<size_t, void *> reusable;
  static constexpr size_t kReused = 64;
  uint64_t freeBytes() const {
    return memoryBytes - std::min(memoryBytes, allocatedBytes);
  }
  // HYBRID_EMULATOR_PROFILE=FILE ("-": stderr): counts written at exit.
  std::unique_ptr<Profile> profile;
  std::string profilePath;
  ~State() {
    // What cuMemFree kept for reuse is freed at exit.
    for (const auto &[capacity, p] : reusable)
      std::free(p);
    if (!profile)
      return;
    std::string text = profile->report();
    FILE *out =
        profilePath == "-" ? stderr : std::fopen(profilePath.c_str(), "w");
    if (!out)
      return;
    std::fputs(text.c_str(), out);
    if (out != stderr)
      std::fclose(out);
  }
} state;

/// Serialises the driver, like a single stream would.
std::unique_lock<std::mutex> lock() {
  return std::unique_lock<std::mutex>(state.mutex);
}

CUresult faulted(CUresult code, std::string what) {
  state.lastFault = std::move(what);
  return code;
}

/// The queue's key for `stream` (the legacy default stream has two
/// handles); false, with the fault set, if `stream` is not a stream.
bool getStreamKey(CUstream stream, const void *&key) {
  key = stream == CU_STREAM_LEGACY ? nullptr : stream;
  if (!stream || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD ||
      state.streams.count(stream))
    return true;
  faulted(CUDA_ERROR_INVALID_HANDLE,
          "PTX emulator: a stream that was never created or was destroyed");
  return false;
}

/// Whether work on stream `key` synchronizes with the legacy default
/// stream's: streams created without CU_STREAM_NON_BLOCKING, the
/// per-thread default stream and, as a GPU may, destroyed streams.
bool isBlocking(const void *key) {
  if (!key)
    return false;
  auto it = state.streams.find(static_cast<CUstream>(const_cast<void *>(key)));
  return it == state.streams.end() || !(it->second & CU_STREAM_NON_BLOCKING);
}

/// Whether a blocking stream captures a graph: the legacy default stream
/// waits for blocking streams, so its work would join the capture.
bool isBlockingStreamCapturing() {
  for (const auto &[key, capture] : state.captures)
    if (isBlocking(key))
      return true;
  return false;
}

/// Queues `work` on the stream of queue key `key` after the work of
/// tickets `after` and what the legacy default stream's implicit
/// synchronization orders it after: the legacy stream's work waits for
/// every blocking stream's earlier work, a blocking stream's for the
/// legacy stream's.
uint64_t enqueue(const void *key, WorkQueue::Work work,
                 std::vector<uint64_t> after = {}) {
  if (!key) {
    for (const auto &[other, ticket] : state.queue.lastOnEach())
      if (isBlocking(other))
        after.push_back(ticket);
  } else if (isBlocking(key)) {
    if (uint64_t legacy = state.queue.lastOn(nullptr))
      after.push_back(legacy);
  }
  return state.queue.push(key, std::move(work), after);
}

/// getStreamKey for queueing work on `stream` (or waiting for it, `wait`):
/// waiting for a capturing stream is CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
/// as on a GPU, and the legacy default stream's work or wait is
/// CUDA_ERROR_STREAM_CAPTURE_IMPLICIT while a blocking stream captures.
/// Each invalidates the captures concerned, as on a GPU.
CUresult getWorkStreamKey(CUstream stream, const void *&key, bool wait) {
  if (!getStreamKey(stream, key))
    return CUDA_ERROR_INVALID_HANDLE;
  if (!key && isBlockingStreamCapturing()) {
    for (auto &[capturing, capture] : state.captures)
      capture.invalidated = true;
    return faulted(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
                   "PTX emulator: the legacy default stream used while a "
                   "blocking stream captures a graph");
  }
  auto capture = state.captures.find(key);
  if (capture == state.captures.end() || !wait)
    return CUDA_SUCCESS;
  capture->second.invalidated = true;
  return faulted(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                 "PTX emulator: waiting for a stream that captures a graph");
}

/// Queues `work` on `stream` after the work of tickets `after` (its
/// ticket in `ticket`, if asked) or, on a capturing stream, records it in
/// the capture if `what` is empty; else refuses it there (`what` says
/// what cannot be captured) and invalidates the capture.
CUresult submit(CUstream stream, WorkQueue::Work work, const char *what = "",
                std::vector<uint64_t> after = {}, uint64_t *ticket = nullptr) {
  const void *key;
  if (CUresult result = getWorkStreamKey(stream, key, /*wait=*/false))
    return result;
  auto capture = state.captures.find(key);
  if (capture == state.captures.end()) {
    uint64_t queued = enqueue(key, std::move(work), std::move(after));
    if (ticket)
      *ticket = queued;
    return CUDA_SUCCESS;
  }
  if (capture->second.invalidated)
    return faulted(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
                   "PTX emulator: work queued in an invalidated capture");
  if (*what) {
    capture->second.invalidated = true;
    return faulted(CUDA_ERROR_NOT_SUPPORTED,
                   std::string("PTX emulator: ") + what +
                       " on a stream that captures a graph (not emulated)");
  }
  capture->second.work.push_back(std::move(work));
  return CUDA_SUCCESS;
}

/// Refuses an allocation or a free while a capture forbids unsafe calls
/// (every mode but relaxed), invalidating it, as on a GPU.
CUresult refuseUnsafeCall(const char *what) {
  bool refused = false;
  for (auto &[key, capture] : state.captures)
    if (capture.mode != CU_STREAM_CAPTURE_MODE_RELAXED)
      refused = capture.invalidated = true;
  return refused ? faulted(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                           std::string("PTX emulator: ") + what +
                               " while a stream captures a graph")
                 : CUDA_SUCCESS;
}

/// A wait's result: its fault, if any, is the waiting call's error.
CUresult waited(const std::string &fault) {
  if (fault.empty())
    return CUDA_SUCCESS;
  return faulted(CUDA_ERROR_LAUNCH_FAILED, "PTX emulator: " + fault);
}

/// Runs the work of `ticket` and what it depends on.
CUresult runThrough(uint64_t ticket) {
  return waited(state.queue.runThrough(ticket));
}

/// Runs everything queued (as cuMemFree and cuModuleUnload wait for).
CUresult runAll() { return waited(state.queue.runAll()); }

} // namespace

extern "C" {

CUresult cuInit(unsigned int flags) {
  if (flags)
    return CUDA_ERROR_INVALID_VALUE;
  if (const char *env = std::getenv("HYBRID_EMULATOR_SMS"))
    state.multiprocessors = std::max(1, std::atoi(env));
  if (const char *env = std::getenv("HYBRID_EMULATOR_MEMORY_MIB"))
    state.memoryBytes = uint64_t(std::max(1LL, std::atoll(env))) << 20;
  if (const char *env = std::getenv("HYBRID_EMULATOR_SHUFFLE"))
    state.queue.shuffle(std::strtoull(env, nullptr, 10));
  if (const char *env = std::getenv("HYBRID_EMULATOR_PROFILE");
      env && *env && !state.profile) {
    state.profile = std::make_unique<Profile>();
    state.profilePath = env;
  }
  return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char **name) {
  switch (error) {
#define HYBRID_ERROR_NAME(code)                                                \
  case code:                                                                   \
    *name = #code;                                                             \
    return CUDA_SUCCESS;
    HYBRID_ERROR_NAME(CUDA_SUCCESS)
    HYBRID_ERROR_NAME(CUDA_ERROR_INVALID_VALUE)
    HYBRID_ERROR_NAME(CUDA_ERROR_OUT_OF_MEMORY)
    HYBRID_ERROR_NAME(CUDA_ERROR_INVALID_IMAGE)
    HYBRID_ERROR_NAME(CUDA_ERROR_INVALID_PTX)
    HYBRID_ERROR_NAME(CUDA_ERROR_NOT_FOUND)
    HYBRID_ERROR_NAME(CUDA_ERROR_ILLEGAL_ADDRESS)
    HYBRID_ERROR_NAME(CUDA_ERROR_LAUNCH_FAILED)
    HYBRID_ERROR_NAME(CUDA_ERROR_NO_BINARY_FOR_GPU)
    HYBRID_ERROR_NAME(CUDA_ERROR_INVALID_HANDLE)
    HYBRID_ERROR_NAME(CUDA_ERROR_NOT_READY)
    HYBRID_ERROR_NAME(CUDA_ERROR_NOT_SUPPORTED)
    HYBRID_ERROR_NAME(CUDA_ERROR_ILLEGAL_STATE)
    HYBRID_ERROR_NAME(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)
    HYBRID_ERROR_NAME(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED)
    HYBRID_ERROR_NAME(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT)
#undef HYBRID_ERROR_NAME
  default:
    *name = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult cuGetErrorString(CUresult error, const char **text) {
  switch (error) {
  case CUDA_SUCCESS:
    *text = "no error";
    break;
  case CUDA_ERROR_INVALID_PTX:
  case CUDA_ERROR_LAUNCH_FAILED:
  case CUDA_ERROR_ILLEGAL_ADDRESS:
  case CUDA_ERROR_INVALID_VALUE:
  case CUDA_ERROR_INVALID_HANDLE:
  case CUDA_ERROR_NOT_SUPPORTED:
  case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED:
  case CUDA_ERROR_STREAM_CAPTURE_IMPLICIT:
    *text = state.lastFault.empty() ? "invalid value" : state.lastFault.c_str();
    break;
  case CUDA_ERROR_ILLEGAL_STATE:
    *text = "the stream is not in the capture state the call needs";
    break;
  case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED:
    *text = "the capture was invalidated by an operation it does not allow";
    break;
  case CUDA_ERROR_NO_BINARY_FOR_GPU:
    *text = "the PTX emulator runs PTX, not cubins";
    break;
  case CUDA_ERROR_NOT_FOUND:
    *text = "named symbol not found";
    break;
  case CUDA_ERROR_OUT_OF_MEMORY:
    *text = "out of memory";
    break;
  case CUDA_ERROR_NOT_READY:
    *text = "device not ready";
    break;
  default:
    *text = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
  *count = 1;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal) {
  if (ordinal != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *device = 0;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int length, CUdevice) {
  std::snprintf(name, size_t(length), "hybrid PTX emulator");
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *value, CUdevice_attribute attribute,
                              CUdevice) {
  switch (attribute) {
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
    *value = state.multiprocessors;
    break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
    *value = 9;
    break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
    *value = 0;
    break;
  case CU_DEVICE_ATTRIBUTE_WARP_SIZE:
    *value = 32;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
    *value = 1024;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
    *value = kDefaultSharedBytes;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN:
    *value = kOptInSharedBytes;
    break;
  default:
    *value = 0;
    break;
  }
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *context, CUdevice) {
  static int token;
  *context = reinterpret_cast<CUcontext>(&token);
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice) { return CUDA_SUCCESS; }

CUresult cuCtxSetCurrent(CUcontext) { return CUDA_SUCCESS; }

CUresult cuModuleLoadData(CUmodule *module, const void *image) {
  const char *text = static_cast<const char *>(image);
  if (std::memcmp(text,
                  "\x7f"
                  "ELF",
                  4) == 0)
    return CUDA_ERROR_NO_BINARY_FOR_GPU;
  auto loaded = std::make_unique<LoadedModule>();
  std::string error;
  if (!parse(text, loaded->program.module, error))
    return faulted(CUDA_ERROR_INVALID_PTX, "PTX emulator: " + error);
  Program &p = loaded->program;
  p.globalAddress.assign(p.module.symbols.size(), 0);
  auto guard = lock();
  for (size_t i = 0; i < p.module.symbols.size(); ++i) {
    const Symbol &s = p.module.symbols[i];
    if (s.space != Space::Global)
      continue;
    auto bytes = std::make_unique<uint8_t[]>(s.size);
    std::memset(bytes.get(), 0, s.size);
    std::memcpy(bytes.get(), s.init.data(), s.init.size());
    p.globalAddress[i] = reinterpret_cast<uint64_t>(bytes.get());
    state.memory.add(p.globalAddress[i], s.size);
    p.storage.push_back(std::move(bytes));
  }
  *module = reinterpret_cast<CUmodule>(loaded.release());
  return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule module) {
  auto *loaded = reinterpret_cast<LoadedModule *>(module);
  auto guard = lock();
  CUresult result = runAll(); // its kernels may be queued
  for (uint64_t address : loaded->program.globalAddress)
    if (address)
      state.memory.remove(address);
  delete loaded;
  return result;
}

CUresult cuModuleGetFunction(CUfunction *function, CUmodule module,
                             const char *name) {
  auto *loaded = reinterpret_cast<LoadedModule *>(module);
  const Module &m = loaded->program.module;
  auto it = m.functionIndex.find(name);
  if (it == m.functionIndex.end() || !m.functions[it->second].entry)
    return CUDA_ERROR_NOT_FOUND;
  loaded->kernels.push_back(
      std::make_unique<Kernel>(Kernel{&loaded->program, it->second}));
  *function = reinterpret_cast<CUfunction>(loaded->kernels.back().get());
  return CUDA_SUCCESS;
}

CUresult cuFuncSetAttribute(CUfunction function, CUfunction_attribute attribute,
                            int value) {
  auto *kernel = reinterpret_cast<Kernel *>(function);
  const Module &m = kernel->program->module;
  uint64_t staticBytes =
      m.moduleSharedBytes + m.functions[kernel->function].sharedBytes;
  if (attribute != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)
    return faulted(CUDA_ERROR_INVALID_VALUE,
                   "PTX emulator: cuFuncSetAttribute: only "
                   "CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES");
  // As the driver: static plus dynamic within the opt-in maximum.
  if (value < 0 || staticBytes + uint64_t(value) > uint64_t(kOptInSharedBytes))
    return faulted(CUDA_ERROR_INVALID_VALUE,
                   "PTX emulator: " + std::to_string(value) +
                       " bytes of dynamic shared memory beside " +
                       std::to_string(staticBytes) + " static exceed " +
                       std::to_string(kOptInSharedBytes));
  kernel->maxDynamicShared = value;
  return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks,
                                                     CUfunction function,
                                                     int blockSize,
                                                     size_t dynamicSMemSize) {
  // An H100 multiprocessor's limits: 64 warps, 32 CTAs, 228 KiB of shared
  // memory of which each CTA reserves 1 KiB. Registers are not counted:
  // PTX's are virtual (ptxas allocates them), so this is an upper bound.
  auto *kernel = reinterpret_cast<Kernel *>(function);
  const Module &m = kernel->program->module;
  if (blockSize <= 0 || blockSize > 1024)
    return faulted(CUDA_ERROR_INVALID_VALUE,
                   "PTX emulator: cuOccupancyMaxActiveBlocksPerMultiprocessor:"
                   " block size " +
                       std::to_string(blockSize));
  uint64_t sharedPerCta = m.moduleSharedBytes +
                          m.functions[kernel->function].sharedBytes +
                          dynamicSMemSize + 1024;
  int byWarps = 64 / ((blockSize + 31) / 32);
  int byShared = int(228 * 1024 / sharedPerCta);
  *numBlocks = std::min({32, byWarps, byShared});
  return CUDA_SUCCESS;
}

CUresult cuFuncGetParamInfo(CUfunction function, size_t index, size_t *offset,
                            size_t *size) {
  auto *kernel = reinterpret_cast<Kernel *>(function);
  const Function &f = kernel->program->module.functions[kernel->function];
  if (index >= f.params.size())
    return CUDA_ERROR_INVALID_VALUE;
  const Symbol &s = kernel->program->module.symbols[f.params[index]];
  *offset = s.offset;
  *size = s.size;
  return CUDA_SUCCESS;
}

CUresult cuMemGetInfo(size_t *free, size_t *total) {
  auto guard = lock();
  *total = state.memoryBytes;
  *free = state.freeBytes();
  return CUDA_SUCCESS;
}

namespace {
/// What an allocation of `bytes` takes: whole 256-byte blocks, as a GPU's.
size_t capacityOf(size_t bytes) {
  return (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
}
} // namespace

CUresult cuMemAlloc(CUdeviceptr *pointer, size_t bytes) {
  auto guard = lock();
  if (CUresult result = refuseUnsafeCall("cuMemAlloc"))
    return result;
  if (bytes == 0) // as the driver: no empty allocations
    return CUDA_ERROR_INVALID_VALUE;
  if (bytes > state.freeBytes())
    return CUDA_ERROR_OUT_OF_MEMORY;
  size_t capacity = capacityOf(bytes);
  void *p = nullptr;
  if (auto it = state.reusable.find(capacity); it != state.reusable.end()) {
    p = it->second; // as it was left
    state.reusable.erase(it);
  } else {
    p = std::aligned_alloc(256, capacity);
    if (!p)
      return CUDA_ERROR_OUT_OF_MEMORY;
    // NaN bytes, so that reads of never-written memory show in results.
    std::memset(p, 0xff, capacity);
  }
  *pointer = reinterpret_cast<CUdeviceptr>(p);
  state.memory.add(*pointer, bytes);
  state.allocatedBytes += bytes;
  return CUDA_SUCCESS;
}

CUresult cuMemFree(CUdeviceptr pointer) {
  auto guard = lock();
  if (CUresult result = refuseUnsafeCall("cuMemFree"))
    return result;
  // Waits for queued work, which may still use the memory, as cuMemFree
  // does on a GPU.
  CUresult result = runAll();
  uint64_t bytes = state.memory.remove(pointer);
  state.allocatedBytes -= bytes;
  if (bytes > 0) {
    state.reusable.emplace(capacityOf(bytes),
                           reinterpret_cast<void *>(pointer));
    if (state.reusable.size() > State::kReused) {
      auto oldest = state.reusable.begin(); // the smallest: cheap to lose
      std::free(oldest->second);
      state.reusable.erase(oldest);
    }
  }
  return result;
}

CUresult cuMemAllocHost(void **pointer, size_t bytes) {
  auto guard = lock();
  if (CUresult result = refuseUnsafeCall("cuMemAllocHost"))
    return result;
  if (bytes == 0)
    return CUDA_ERROR_INVALID_VALUE;
  void *p = std::aligned_alloc(256, capacityOf(bytes));
  if (!p)
    return CUDA_ERROR_OUT_OF_MEMORY;
  std::memset(p, 0xff, capacityOf(bytes));
  state.pinned.add(reinterpret_cast<uint64_t>(p), bytes);
  *pointer = p;
  return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void *pointer) {
  auto guard = lock();
  if (CUresult result = refuseUnsafeCall("cuMemFreeHost"))
    return result;
  // Waits for queued work, whose copies may still read it.
  CUresult result = runAll();
  if (state.pinned.remove(reinterpret_cast<uint64_t>(pointer)) == 0)
    return CUDA_ERROR_INVALID_VALUE;
  std::free(pointer);
  return result;
}

namespace {
/// Queues a copy on `stream`. Pageable host sources are read now (the
/// driver stages them); pinned ones and host destinations when the copy
/// runs.
CUresult copy(uint64_t dst, bool dstDevice, uint64_t src, bool srcDevice,
              size_t bytes, CUstream stream) {
  auto guard = lock();
  if ((dstDevice && !state.memory.contains(dst, bytes)) ||
      (srcDevice && !state.memory.contains(src, bytes)))
    return faulted(CUDA_ERROR_INVALID_VALUE,
                   "PTX emulator: a copy of " + std::to_string(bytes) +
                       " bytes outside device allocations");
  auto *target = reinterpret_cast<char *>(dst);
  const auto *source = reinterpret_cast<const char *>(src);
  const char *host = srcDevice && dstDevice ? "" : "a host copy";
  if (srcDevice || state.pinned.contains(src, bytes))
    return submit(
        stream,
        [=] {
          std::memmove(target, source, bytes);
          return std::string();
        },
        host);
  return submit(
      stream,
      [target, staged = std::string(source, bytes)] {
        std::memcpy(target, staged.data(), staged.size());
        return std::string();
      },
      host);
}
} // namespace

CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t bytes,
                           CUstream stream) {
  return copy(dst, true, reinterpret_cast<uint64_t>(src), false, bytes, stream);
}

CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t bytes,
                           CUstream stream) {
  return copy(reinterpret_cast<uint64_t>(dst), false, src, true, bytes, stream);
}

CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes,
                           CUstream stream) {
  return copy(dst, true, src, true, bytes, stream);
}

CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t bytes,
                         CUstream stream) {
  auto guard = lock();
  if (!state.memory.contains(dst, bytes))
    return faulted(CUDA_ERROR_INVALID_VALUE,
                   "PTX emulator: a memset of " + std::to_string(bytes) +
                       " bytes outside device allocations");
  return submit(stream, [=] {
    std::memset(reinterpret_cast<void *>(dst), value, bytes);
    return std::string();
  });
}

/// The attributes the runtime asks of its callers' device pointers, for
/// the emulator's one GPU; memory outside its allocations is unknown
/// (CUDA_ERROR_INVALID_VALUE), as host memory is to CUDA.
CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute,
                               CUdeviceptr pointer) {
  auto guard = lock();
  uint64_t begin = 0, end = 0;
  if (!state.memory.find(pointer, begin, end))
    return CUDA_ERROR_INVALID_VALUE;
  switch (attribute) {
  case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
    *static_cast<unsigned *>(data) = CU_MEMORYTYPE_DEVICE;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
    *static_cast<int *>(data) = 0;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    *static_cast<unsigned *>(data) = 0;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    *static_cast<CUdeviceptr *>(data) = begin;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    *static_cast<size_t *>(data) = end - begin;
    return CUDA_SUCCESS;
  default:
    return CUDA_ERROR_NOT_SUPPORTED;
  }
}

/// Checks what the CUDA driver documents for tiled tensor maps, then stores
/// the emulator's TensorMap in the opaque bytes.
CUresult cuTensorMapEncodeTiled(
    CUtensorMap *tensorMap, CUtensorMapDataType dataType, cuuint32_t rank,
    void *globalAddress, const cuuint64_t *globalDim,
    const cuuint64_t *globalStrides, const cuuint32_t *boxDim,
    const cuuint32_t *elementStrides, CUtensorMapInterleave interleave,
    CUtensorMapSwizzle swizzle, CUtensorMapL2promotion,
    CUtensorMapFloatOOBfill oobFill) {
  auto refuse = [](const std::string &why) {
    return faulted(CUDA_ERROR_INVALID_VALUE,
                   "PTX emulator: cuTensorMapEncodeTiled: " + why);
  };
  TensorMap map;
  switch (dataType) {
  case CU_TENSOR_MAP_DATA_TYPE_BFLOAT16:
  case CU_TENSOR_MAP_DATA_TYPE_FLOAT16:
  case CU_TENSOR_MAP_DATA_TYPE_UINT16:
    map.elementBytes = 2;
    break;
  case CU_TENSOR_MAP_DATA_TYPE_FLOAT32:
  case CU_TENSOR_MAP_DATA_TYPE_INT32:
  case CU_TENSOR_MAP_DATA_TYPE_UINT32:
    map.elementBytes = 4;
    break;
  default:
    return refuse("element type " + std::to_string(int(dataType)) +
                  " is not emulated");
  }
  if (rank < 1 || rank > 5)
    return refuse("rank " + std::to_string(rank) + " (1 to 5)");
  uint64_t address = reinterpret_cast<uint64_t>(globalAddress);
  if (address % 16)
    return refuse("the global address is not 16-byte aligned");
  if (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE ||
      oobFill != CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE)
    return refuse("only no interleave and zero out-of-bounds fill are "
                  "emulated");
  switch (swizzle) {
  case CU_TENSOR_MAP_SWIZZLE_NONE:
    map.swizzleBytes = 0;
    break;
  case CU_TENSOR_MAP_SWIZZLE_128B:
    map.swizzleBytes = 128;
    break;
  default:
    return refuse("only no swizzle and the 128-byte swizzle are emulated");
  }
  for (cuuint32_t d = 0; d < rank; ++d) {
    if (globalDim[d] == 0 || globalDim[d] > (uint64_t(1) << 32))
      return refuse("dimension " + std::to_string(d) + " is " +
                    std::to_string(globalDim[d]) + " (1 to 2^32)");
    if (boxDim[d] == 0 || boxDim[d] > 256)
      return refuse("box dimension " + std::to_string(d) + " is " +
                    std::to_string(boxDim[d]) + " (1 to 256)");
    if (elementStrides[d] != 1)
      return refuse("only element strides of 1 are emulated");
    map.dims[d] = uint32_t(globalDim[d]);
    map.box[d] = boxDim[d];
    if (d + 1 < rank) {
      if (globalStrides[d] % 16 || globalStrides[d] >= (uint64_t(1) << 40))
        return refuse("stride " + std::to_string(d) +
                      " is not a multiple of 16 below 2^40");
      map.strides[d] = globalStrides[d];
    }
  }
  if (map.swizzleBytes && boxDim[0] * map.elementBytes > map.swizzleBytes)
    return refuse("the box's inner dimension (" +
                  std::to_string(boxDim[0] * map.elementBytes) +
                  " bytes) exceeds the swizzle span");
  if (boxDim[0] * map.elementBytes % 16)
    return refuse("the box's inner dimension is not a multiple of 16 bytes");
  map.magic = TensorMap::kMagic;
  map.rank = rank;
  map.address = address;
  static_assert(sizeof(CUtensorMap) >= sizeof(TensorMap), "opaque size");
  std::memset(tensorMap, 0, sizeof(CUtensorMap));
  std::memcpy(tensorMap, &map, sizeof(map));
  return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction function, unsigned gridX, unsigned gridY,
                        unsigned gridZ, unsigned blockX, unsigned blockY,
                        unsigned blockZ, unsigned sharedMemBytes,
                        CUstream stream, void **kernelParams, void **extra) {
  auto *kernel = reinterpret_cast<Kernel *>(function);
  const Module &m = kernel->program->module;
  const Function &f = m.functions[kernel->function];
  if (extra)
    return faulted(CUDA_ERROR_INVALID_VALUE,
                   "PTX emulator: launches with `extra` are not supported");
  if (sharedMemBytes > unsigned(kernel->maxDynamicShared))
    return faulted(CUDA_ERROR_INVALID_VALUE,
                   "PTX emulator: a launch with " +
                       std::to_string(sharedMemBytes) +
                       " bytes of dynamic shared memory, over the function's " +
                       std::to_string(kernel->maxDynamicShared) +
                       " (cuFuncSetAttribute raises it)");
  if (sharedMemBytes && !m.dynamicSharedAlign)
    return faulted(CUDA_ERROR_INVALID_VALUE,
                   "PTX emulator: dynamic shared memory for a module without "
                   "an .extern .shared array");
  std::vector<uint8_t> params(f.paramBytes);
  for (size_t i = 0; i < f.params.size(); ++i) {
    const Symbol &s = m.symbols[f.params[i]];
    std::memcpy(&params[s.offset], kernelParams[i], s.size);
  }
  Grid grid;
  grid.grid[0] = gridX;
  grid.grid[1] = gridY;
  grid.grid[2] = gridZ;
  grid.block[0] = blockX;
  grid.block[1] = blockY;
  grid.block[2] = blockZ;
  grid.dynamicSharedBytes = sharedMemBytes;
  auto guard = lock();
  return submit(stream, [kernel, grid, params = std::move(params)] {
    return launch(*kernel->program, kernel->function, grid, params,
                  state.memory, state.profile.get());
  });
}

CUresult cuStreamCreate(CUstream *stream, unsigned int flags) {
  auto guard = lock();
  *stream = reinterpret_cast<CUstream>(new char);
  state.streams[*stream] = flags;
  return CUDA_SUCCESS;
}

/// Work queued on the stream still runs, as on a GPU.
CUresult cuStreamDestroy(CUstream stream) {
  auto guard = lock();
  if (!state.streams.erase(stream))
    return faulted(CUDA_ERROR_INVALID_HANDLE,
                   "PTX emulator: destroying a stream that does not exist");
  state.captures.erase(stream);
  delete reinterpret_cast<char *>(stream);
  return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream stream) {
  auto guard = lock();
  const void *key;
  if (CUresult result = getWorkStreamKey(stream, key, /*wait=*/true))
    return result;
  // The legacy default stream's last work waits for every blocking
  // stream's: so does a wait for it (an empty item, queued as work is).
  return runThrough(key ? state.queue.lastOn(key)
                        : enqueue(key, [] { return std::string(); }));
}

/// An empty work item on `stream` after `event`'s record (a record not
/// yet made: nothing to wait for, as on a GPU) orders the stream's later
/// work after it.
CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned flags) {
  auto guard = lock();
  if (!event || flags)
    return CUDA_ERROR_INVALID_VALUE;
  std::vector<uint64_t> after;
  if (uint64_t record = reinterpret_cast<Event *>(event)->ticket)
    after.push_back(record);
  return submit(
      stream, [] { return std::string(); }, "an event wait", after);
}

/// Capture on the legacy default stream is
/// CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, as on a GPU.
CUresult cuStreamBeginCapture(CUstream stream, CUstreamCaptureMode mode) {
  auto guard = lock();
  const void *key;
  if (!getStreamKey(stream, key))
    return CUDA_ERROR_INVALID_HANDLE;
  if (!key)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  Capture capture;
  capture.mode = mode;
  if (!state.captures.emplace(key, std::move(capture)).second)
    return CUDA_ERROR_ILLEGAL_STATE;
  return CUDA_SUCCESS;
}

CUresult cuStreamIsCapturing(CUstream stream, CUstreamCaptureStatus *status) {
  auto guard = lock();
  const void *key;
  if (!getStreamKey(stream, key))
    return CUDA_ERROR_INVALID_HANDLE;
  if (!key && isBlockingStreamCapturing())
    return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
  auto capture = state.captures.find(key);
  *status = capture == state.captures.end() ? CU_STREAM_CAPTURE_STATUS_NONE
            : capture->second.invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                          : CU_STREAM_CAPTURE_STATUS_ACTIVE;
  return CUDA_SUCCESS;
}

/// The capture's graph: its work in order.
CUresult cuStreamEndCapture(CUstream stream, CUgraph *graph) {
  auto guard = lock();
  const void *key;
  if (!getStreamKey(stream, key))
    return CUDA_ERROR_INVALID_HANDLE;
  auto capture = state.captures.find(key);
  if (capture == state.captures.end())
    return CUDA_ERROR_ILLEGAL_STATE;
  Capture ended = std::move(capture->second);
  state.captures.erase(capture);
  *graph = ended.invalidated
               ? nullptr
               : reinterpret_cast<CUgraph>(new Graph{std::move(ended.work)});
  return ended.invalidated ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
                           : CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph graph) {
  delete reinterpret_cast<Graph *>(graph);
  return CUDA_SUCCESS;
}

/// The graph's nodes (its kernels, copies and memsets, in capture order;
/// handles only to count and compare): at most `*count` into `nodes`
/// (null: none), and their number into `*count`.
CUresult cuGraphGetNodes(CUgraph graph, CUgraphNode *nodes, size_t *count) {
  if (!graph || !count)
    return CUDA_ERROR_INVALID_VALUE;
  std::vector<WorkQueue::Work> &work = reinterpret_cast<Graph *>(graph)->work;
  for (size_t i = 0; nodes && i < *count; ++i)
    nodes[i] =
        i < work.size() ? reinterpret_cast<CUgraphNode>(&work[i]) : nullptr;
  *count = work.size();
  return CUDA_SUCCESS;
}

CUresult cuGraphInstantiate(CUgraphExec *exec, CUgraph graph,
                            unsigned long long) {
  if (!graph)
    return CUDA_ERROR_INVALID_VALUE;
  *exec = reinterpret_cast<CUgraphExec>(
      new Graph(*reinterpret_cast<Graph *>(graph)));
  return CUDA_SUCCESS;
}

/// Queues the graph's work on `stream`, in order (or records it, in a
/// capture).
CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
  auto guard = lock();
  if (!exec)
    return CUDA_ERROR_INVALID_VALUE;
  for (const WorkQueue::Work &work : reinterpret_cast<Graph *>(exec)->work)
    if (CUresult result = submit(stream, work))
      return result;
  return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec exec) {
  delete reinterpret_cast<Graph *>(exec);
  return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent *event, unsigned int) {
  *event = reinterpret_cast<CUevent>(new Event);
  return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent event) {
  delete reinterpret_cast<Event *>(event);
  return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent event, CUstream stream) {
  auto guard = lock();
  auto *e = reinterpret_cast<Event *>(event);
  return submit(
      stream,
      [e] {
        e->time = Clock::now();
        return std::string();
      },
      "an event record", {}, &e->ticket);
}

CUresult cuEventSynchronize(CUevent event) {
  auto guard = lock();
  return runThrough(reinterpret_cast<Event *>(event)->ticket);
}

/// As on a GPU: both events recorded, and their records run.
CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end) {
  auto guard = lock();
  auto *a = reinterpret_cast<Event *>(start);
  auto *b = reinterpret_cast<Event *>(end);
  if (!a->ticket || !b->ticket)
    return CUDA_ERROR_INVALID_HANDLE;
  if (!state.queue.done(a->ticket) || !state.queue.done(b->ticket))
    return CUDA_ERROR_NOT_READY;
  *ms = std::chrono::duration<float, std::milli>(b->time - a->time).count();
  return CUDA_SUCCESS;
}

} // extern "C"
