//===- CudaBackend.cpp - Running a cuda manifest's kernels ---------------===//

#include "CudaBackend.h"
#include "CudaDriver.h"
#include "StepKernel.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>

using namespace hybrid::rt;
using namespace hybrid::rt::cuda;

/// Returns the error of `expr` (an Error, empty on success) if there is
/// one: nothing after a failed step runs (a launch on a buffer that failed
/// to allocate would poison the context).
#define HYBRID_CUDA_TRY(expr)                                                  \
  do {                                                                         \
    if (Error error_ = (expr); !error_.empty())                                \
      return error_;                                                           \
  } while (false)

namespace {

/// A grow-only device allocation.
struct DeviceBuffer {
  CUdeviceptr ptr = 0;
  size_t bytes = 0;
};

/// An operand where the kernels read it: f32 rows, or bf16 rows the
/// kernels prepare as they are.
struct DeviceRows {
  CUdeviceptr ptr = 0;
  bool bf16 = false;
};

/// Kernel parameters in the memref descriptor convention the kernels are
/// lowered with: per memref (allocated, aligned, offset, sizes, strides),
/// every field 8 bytes; TMA kernels' tensor maps by value.
class LaunchArgs {
public:
  LaunchArgs() { params.reserve(96); }
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
  void scalar(int64_t value) { params.push_back({value, nullptr, 8}); }
  /// A by-value parameter (a CUtensorMap): `value` must live until the
  /// launch, which copies it.
  void bytes(const void *value, size_t size) {
    params.push_back({0, value, size});
  }
  size_t size() const { return params.size(); }
  size_t bytesOf(size_t i) const { return params[i].size; }
  void **get() {
    pointers.clear();
    for (Param &p : params)
      pointers.push_back(p.external ? const_cast<void *>(p.external)
                                    : &p.value);
    return pointers.data();
  }

private:
  struct Param {
    int64_t value;
    const void *external; // by-value bytes elsewhere, else `value`
    size_t size;
  };
  std::vector<Param> params;
  std::vector<void *> pointers;
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
  int ordinal = 0; // $HYBRID_CUDA_DEVICE
  CUdevice device = 0;
  // The GPU reads pageable host memory (HMM or ATS).
  bool pageableAccess = false;
  CUcontext context = nullptr;
  CUmodule module = nullptr;
  // The stream calls queue their work on: the model's own (`own`), each
  // call waiting for its work, or the caller's (setStream).
  CUstream own = nullptr, stream = nullptr;
  bool callerStream = false;
  // Recorded at the end of every call that queues work (CallEnd): the
  // model's work so far, for a new stream to wait for and for frees.
  CUevent done = nullptr;
  bool doneRecorded = false;
  CUevent events[3] = {};
  // events[] of the last timed call, not yet read into the times below
  // (prepare timed too: a prefill).
  bool timesPending = false, timesPrepare = false;
  std::string name;
  struct Function {
    CUfunction handle = nullptr;
    // Each parameter's size in bytes; empty: unknown (the driver cannot
    // say).
    std::vector<size_t> parameters;
    // Dynamic shared memory the function was allowed past the default 48 KiB.
    unsigned sharedLimit = kDefaultSharedBytes;
    // CTAs of it a multiprocessor holds at once (0: not asked yet).
    int resident = 0;
  };
  /// What every CUDA GPU gives a CTA without opting in.
  static constexpr unsigned kDefaultSharedBytes = 48 * 1024;
  int sharedOptIn = kDefaultSharedBytes; // the device's opt-in maximum
  std::map<std::string, Function> functions;
  // q, k, v and sinks in f32, q, k, v prepared (bf16), out in f32, and
  // decode's partial results per split.
  DeviceBuffer qIn, kIn, vIn, sinksIn, qBf16, kBf16, vBf16, out;
  DeviceBuffer partialOut, partialMax, partialSum;
  // The decode kernel's counters of finished splits (i32, zero between
  // launches: each launch's last arrivals reset them).
  DeviceBuffer decodeCounters;
  // K=V flash steps: a range's derived keys and gathered values.
  DeviceBuffer derivedKeys, derivedValues;
  // bf16 operands: their 2-byte copies on the device, converted from (or
  // to) the f32 staging buffers one operand at a time, in stream order.
  DeviceBuffer narrow;
  // Sequences a reordering overwrites while others still take them.
  DeviceBuffer savedSequences;
  std::string bf16ToF32, f32ToBF16; // the manifest's conversion kernels
  // TMA flash kernels: the K and V tensor maps of the current launch
  // (kernel parameters).
  CUtensorMap tensorMaps[2];
  float prepareMs = 0, attentionMs = 0;
  std::string storeRowsKernel, advanceLengthKernel; // the manifest's
  // Device int64s: 0, 1, 2, ... (a call's entries are the cache's first
  // sequences, in order), and zeros (prompts outside sessions start at
  // position 0), grown to a call's batch (sessions reserve theirs).
  DeviceBuffer identity, zeros;
  // Key scales ([head_dim] f32) of K=V layers that keep their cache, by
  // layer (0 for others), ones until setKeyScale; the other layers'
  // prepare kernels read `unitKeyScale` (ones, as many as the widest head).
  std::vector<CUdeviceptr> keyScales;
  CUdeviceptr unitKeyScale = 0;
  /// The key scale `l`'s keys take: its own, or its source's for a layer
  /// reading another's cache.
  CUdeviceptr keyScaleOf(const LayerSpec &l) const {
    CUdeviceptr own = keyScales[l.cacheOwner()];
    return own ? own : unitKeyScale;
  }
  // Whether the current call's stream captures a CUDA graph, and whether
  // any call was captured: scratch that a graph launches on is never freed
  // then (a grown buffer retires until the model closes).
  bool capturing = false, captured = false;
  std::vector<CUdeviceptr> retired;

  Error check(const std::string &what, CUresult result) {
    if (result == CUDA_SUCCESS)
      return {};
    return Error(driver.describe(what, result),
                 result == CUDA_ERROR_OUT_OF_MEMORY ? HYBRID_RT_OUT_OF_MEMORY
                                                    : HYBRID_RT_LOAD_ERROR);
  }
  Error ensure(DeviceBuffer &buffer, size_t bytes) {
    if (buffer.bytes >= bytes)
      return {};
    // A capture cannot allocate (in its global mode, the driver refuses
    // and invalidates it); sessions reserve what their captured steps use.
    if (capturing)
      return Error("a CUDA graph capture of this call would grow the "
                   "model's scratch to " +
                       std::to_string(bytes) +
                       " bytes, and a capture cannot allocate: run the call "
                       "outside the capture",
                   HYBRID_RT_UNSUPPORTED);
    // Work queued before (this call's, or earlier calls' through the
    // stream's wait) may still read the old buffer, and so may the
    // launches of captured graphs.
    if (buffer.ptr && captured) {
      retired.push_back(buffer.ptr);
    } else if (buffer.ptr) {
      HYBRID_CUDA_TRY(check("waiting for the GPU before growing scratch",
                            driver.cuStreamSynchronize(stream)));
      driver.cuMemFree(buffer.ptr);
    }
    buffer = {};
    HYBRID_CUDA_TRY(check("allocating " + std::to_string(bytes) +
                              " bytes of scratch for the call",
                          driver.cuMemAlloc(&buffer.ptr, bytes)));
    buffer.bytes = bytes;
    return {};
  }
  Error function(const std::string &symbol, Function &f) {
    auto it = functions.find(symbol);
    if (it == functions.end()) {
      Function loaded;
      HYBRID_CUDA_TRY(check(
          "kernel " + symbol,
          driver.cuModuleGetFunction(&loaded.handle, module, symbol.c_str())));
      // The kernel's parameters, to catch a launch ABI mismatch between
      // these artifacts and this runtime before it corrupts memory.
      size_t offset = 0, size = 0;
      if (driver.cuFuncGetParamInfo)
        while (driver.cuFuncGetParamInfo(loaded.handle,
                                         loaded.parameters.size(), &offset,
                                         &size) == CUDA_SUCCESS)
          loaded.parameters.push_back(size);
      it = functions.emplace(symbol, loaded).first;
    }
    f = it->second;
    return {};
  }
  /// CTAs of `threads` threads and `sharedBytes` of dynamic shared memory
  /// of kernel `symbol` that one multiprocessor holds at once, by the
  /// driver's occupancy calculator (its registers, shared memory and
  /// threads); `fallback` where the driver cannot say.
  Error getResidentCtas(const std::string &symbol, unsigned threads,
                        unsigned sharedBytes, int fallback, int &resident) {
    Function f;
    HYBRID_CUDA_TRY(function(symbol, f));
    if (!f.resident) {
      HYBRID_CUDA_TRY(allowSharedBytes(symbol, f, sharedBytes));
      int n = 0;
      f.resident = fallback;
      if (driver.cuOccupancyMaxActiveBlocksPerMultiprocessor &&
          driver.cuOccupancyMaxActiveBlocksPerMultiprocessor(
              &n, f.handle, int(threads), sharedBytes) == CUDA_SUCCESS &&
          n > 0)
        f.resident = n;
      functions[symbol].resident = f.resident;
    }
    resident = f.resident;
    return {};
  }
  /// Past 48 KiB a kernel's dynamic shared memory needs the function's
  /// opt-in, up to what the device allows.
  Error allowSharedBytes(const std::string &symbol, const Function &f,
                         unsigned sharedBytes) {
    if (sharedBytes <= f.sharedLimit)
      return {};
    if (int(sharedBytes) > sharedOptIn)
      return "kernel " + symbol + " needs " + std::to_string(sharedBytes) +
             " bytes of shared memory per CTA; " + name + " allows " +
             std::to_string(sharedOptIn) + " (compile with a smaller --k-tile)";
    HYBRID_CUDA_TRY(
        check("allowing " + symbol + " " + std::to_string(sharedBytes) +
                  " bytes of shared memory",
              driver.cuFuncSetAttribute(
                  f.handle, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                  int(sharedBytes))));
    functions[symbol].sharedLimit = sharedBytes;
    return {};
  }
  Error launch(const std::string &symbol, unsigned gridX, unsigned gridY,
               unsigned gridZ, unsigned threads, LaunchArgs &args,
               unsigned sharedBytes = 0) {
    Function f;
    HYBRID_CUDA_TRY(function(symbol, f));
    const char *mismatch =
        ": the artifacts were compiled for another runtime version";
    if (!f.parameters.empty() && f.parameters.size() != args.size())
      return "kernel " + symbol + " takes " +
             std::to_string(f.parameters.size()) +
             " parameters, the runtime passes " + std::to_string(args.size()) +
             mismatch;
    for (size_t i = 0; i < f.parameters.size(); ++i)
      if (f.parameters[i] != args.bytesOf(i))
        return "kernel " + symbol + "'s parameter " + std::to_string(i) +
               " takes " + std::to_string(f.parameters[i]) +
               " bytes, the runtime passes " + std::to_string(args.bytesOf(i)) +
               mismatch;
    HYBRID_CUDA_TRY(allowSharedBytes(symbol, f, sharedBytes));
    return check("launching " + symbol,
                 driver.cuLaunchKernel(f.handle, gridX, gridY, gridZ, threads,
                                       1, 1, sharedBytes, stream, args.get(),
                                       nullptr));
  }

  /// Converts `count` elements from `src` into `dst` with the conversion
  /// kernel `symbol`.
  Error convert(const std::string &symbol, CUdeviceptr src, CUdeviceptr dst,
                size_t count) {
    LaunchArgs args;
    args.memref(src, {int64_t(count)});
    args.memref(dst, {int64_t(count)});
    size_t blocks = std::min<size_t>((count + 127) / 128, 1 << 16);
    return launch(symbol, unsigned(blocks), 1, 1, 128, args);
  }
  /// Refuses a device operand of `count` elements that the kernels could
  /// not read in place: memory CUDA does not know (and the GPU cannot
  /// address), an allocation that ends before the operand does, or memory
  /// of another GPU. Their loads would stop the context with an illegal
  /// address, and it is the device's primary context, the caller's too.
  /// Checked where the driver can tell; what it cannot say passes.
  Error checkDeviceOperand(const char *operandName, Operand operand,
                           size_t count) const {
    if (!operand.onDevice || !operand.data || !driver.cuPointerGetAttribute)
      return {};
    auto refuse = [&](const std::string &why) {
      return Error(std::string(operandName) + ": " + why,
                   HYBRID_RT_INVALID_ARGUMENT);
    };
    CUdeviceptr ptr = CUdeviceptr(operand.data);
    auto get = [&](auto &value, CUpointer_attribute attribute) {
      return driver.cuPointerGetAttribute(&value, attribute, ptr) ==
             CUDA_SUCCESS;
    };
    unsigned type = 0, managed = 0;
    if (!get(type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE))
      return pageableAccess
                 ? Error()
                 : refuse("marked HYBRID_RT_DEVICE, but CUDA neither allocated "
                          "nor registered it, so " +
                          name +
                          " cannot read it (host memory is HYBRID_RT_HOST)");
    size_t bytes = operand.bytes(count), size = 0;
    CUdeviceptr start = 0;
    if (get(start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR) &&
        get(size, CU_POINTER_ATTRIBUTE_RANGE_SIZE) &&
        ptr + bytes > start + size)
      return refuse("needs " + std::to_string(bytes) +
                    " bytes from its address, but its device allocation ends " +
                    std::to_string(start + size - ptr) + " bytes after it");
    int owner = ordinal;
    if (type == CU_MEMORYTYPE_DEVICE &&
        !(get(managed, CU_POINTER_ATTRIBUTE_IS_MANAGED) && managed) &&
        get(owner, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL) && owner != ordinal)
      return refuse("memory of GPU " + std::to_string(owner) +
                    ", but the model runs on GPU " + std::to_string(ordinal) +
                    " ($HYBRID_CUDA_DEVICE)");
    return {};
  }
  /// checkDeviceOperand of a call's q, k, v, sinks and out over `seq`
  /// tokens of `batch` sequences (absent operands pass).
  Error checkDeviceOperands(const LayerSpec &l, int64_t batch, int64_t seq,
                            Operand q, Operand k, Operand v, Operand sinks,
                            Operand out) const {
    size_t tokens = size_t(batch * seq);
    HYBRID_CUDA_TRY(
        checkDeviceOperand("q", q, tokens * l.numHeads * l.headDim));
    HYBRID_CUDA_TRY(
        checkDeviceOperand("k", k, tokens * l.numKvHeads * l.headDim));
    HYBRID_CUDA_TRY(
        checkDeviceOperand("v", v, tokens * l.numKvHeads * l.vHeadDim));
    HYBRID_CUDA_TRY(checkDeviceOperand("sinks", sinks, size_t(l.numHeads)));
    return checkDeviceOperand("out", out, tokens * l.numHeads * l.vHeadDim);
  }
  /// Where the kernels read `count` elements of `operand` (`rows`): in place
  /// in device memory, else copied into `staging`. bf16 operands stay bf16
  /// (rows.bf16) when `kernel` prepares bf16 rows as they are
  /// (takesBF16Rows), else are widened into `staging`.
  Error input(DeviceBuffer &staging, Operand operand, size_t count,
              DeviceRows &rows, const KernelSpec *kernel = nullptr) {
    bool keep = operand.bf16 && kernel && takesBF16Rows(*kernel);
    rows.bf16 = keep;
    CUdeviceptr &ptr = rows.ptr;
    // Host operands land in `staging` (bf16 ones to widen in `narrow`).
    ptr = CUdeviceptr(operand.data);
    if (!operand.onDevice) {
      DeviceBuffer &landing = operand.bf16 && !keep ? narrow : staging;
      size_t bytes = operand.bytes(count);
      HYBRID_CUDA_TRY(ensure(landing, bytes));
      ptr = landing.ptr;
      HYBRID_CUDA_TRY(
          check("copying operands to the GPU",
                driver.cuMemcpyHtoDAsync(ptr, operand.data, bytes, stream)));
    }
    if (!operand.bf16 || keep)
      return {};
    HYBRID_CUDA_TRY(ensure(staging, count * 4));
    CUdeviceptr source = ptr;
    ptr = staging.ptr;
    return convert(bf16ToF32, source, ptr, count);
  }
  /// True if `kernel`'s artifacts prepare bf16 query and key rows without
  /// widening them (values need no preparing but a copy).
  static bool takesBF16Rows(const KernelSpec &kernel) {
    return !kernel.prepareQBF16.empty() && !kernel.prepareKBF16.empty();
  }
  /// Where the kernels write `count` elements of `operand` (`rows`): in
  /// place in device memory, else in `staging` (copied out by finish()).
  /// bf16 outputs are written as bf16 (rows.bf16) when the kernel that
  /// writes them can (`writesBF16`: writesBF16Rows), else as f32 in
  /// `staging`, which finish() narrows.
  Error output(DeviceBuffer &staging, Operand operand, size_t count,
               DeviceRows &rows, bool writesBF16 = false) {
    rows.bf16 = operand.bf16 && writesBF16;
    bool inPlace = operand.onDevice && operand.bf16 == rows.bf16;
    rows.ptr = inPlace ? CUdeviceptr(operand.data) : 0;
    if (inPlace)
      return {};
    HYBRID_CUDA_TRY(ensure(staging, count * (rows.bf16 ? 2 : 4)));
    rows.ptr = staging.ptr;
    return {};
  }
  /// Whether the last kernel of an attention launch of `splits` key
  /// splits (the flash kernel, or the combine kernel after splits) has a
  /// twin writing bf16 rows.
  static bool writesBF16Rows(const KernelSpec &kernel, int64_t splits) {
    return !(splits > 1 ? kernel.decodeCombineBF16 : kernel.entryOutBF16)
                .empty();
  }
  /// Grows `identity` and `zeros` to `batch` entries.
  Error ensureEntries(int64_t batch) {
    size_t bytes = size_t(std::max<int64_t>(batch, 1)) * sizeof(int64_t);
    if (identity.bytes < bytes) {
      HYBRID_CUDA_TRY(ensure(identity, bytes));
      std::vector<int64_t> entries(identity.bytes / sizeof(int64_t));
      for (size_t i = 0; i < entries.size(); ++i)
        entries[i] = int64_t(i);
      HYBRID_CUDA_TRY(copyIn(identity.ptr, entries.data(), identity.bytes));
    }
    if (zeros.bytes < bytes) {
      HYBRID_CUDA_TRY(ensure(zeros, bytes));
      HYBRID_CUDA_TRY(
          check("zeroing lengths",
                driver.cuMemsetD8Async(zeros.ptr, 0, zeros.bytes, stream)));
    }
    return {};
  }
  /// The lengths and sequences arguments of a launch of `batch` entries
  /// (StepLengths): `cache`'s lengths, entry i's that of cache sequence
  /// `sequences[i]` (device int64s; 0: entry i is sequence i); no cache:
  /// position 0 for every entry (prompts outside sessions).
  Error addLengths(LaunchArgs &args, const DeviceCache *cache, int64_t batch,
                   CUdeviceptr sequences) {
    HYBRID_CUDA_TRY(ensureEntries(batch));
    args.memref(cache ? CUdeviceptr(cache->lengths) : zeros.ptr,
                {cache ? cache->batch : 1});
    args.memref(!cache      ? zeros.ptr
                : sequences ? sequences
                            : identity.ptr,
                {batch});
    return {};
  }
  /// Where a launch's batch entries stand (addLengths): at the lengths of
  /// `cache`'s sequences `sequences`, or at position 0 without a cache.
  struct Positions {
    const DeviceCache *cache = nullptr;
    CUdeviceptr sequences = 0;
  };
  /// Runs prepare kernel `symbol` on [B, S] rows of `in` (f32, `shape`)
  /// into `out` (bf16); queries and keys take their first positions from
  /// `at` (values: null). `in` holding bf16 rows (kept so by input()) goes
  /// to `bf16Symbol` instead, or, for values (no symbol), is copied.
  Error prepare(const KernelSpec &kernel, const std::string &symbol,
                DeviceRows in, DeviceBuffer &out,
                const std::vector<int64_t> &shape, const Positions *at,
                const std::string &bf16Symbol = "", CUdeviceptr keyScale = 0) {
    size_t count = shape[0] * shape[1] * shape[2] * shape[3];
    HYBRID_CUDA_TRY(ensure(out, count * 2));
    if (in.bf16 && bf16Symbol.empty())
      return check(
          "copying bf16 values",
          driver.cuMemcpyDtoDAsync(out.ptr, in.ptr, count * 2, stream));
    LaunchArgs args;
    args.memref(in.ptr, shape);
    args.memref(out.ptr, shape);
    if (at)
      HYBRID_CUDA_TRY(addLengths(args, at->cache, shape[0], at->sequences));
    if (keyScale)
      args.memref(keyScale, {shape[3]});
    return launch(in.bf16 ? bf16Symbol : symbol, unsigned(shape[0] * shape[1]),
                  1, 1, unsigned(kernel.threads), args);
  }
  /// Tensor maps for a TMA flash kernel's K and V tiles (bf16 rows
  /// [B][rows][H][D]: a prompt's, or a cache's with its mirror rows; boxes
  /// of 64 columns x 1 head x kTile keys x 1 batch, 128-byte swizzled,
  /// zeros past the end), which join `args` by value.
  Error tensorMapArgs(const KernelSpec &kernel, CUdeviceptr keys,
                      CUdeviceptr values, int64_t batch, int64_t rows,
                      int64_t heads, int64_t headDim, int64_t vHeadDim,
                      LaunchArgs &args) {
    if (!driver.cuTensorMapEncodeTiled)
      return "kernel " + kernel.entry +
             " loads tiles by TMA, which needs cuTensorMapEncodeTiled "
             "(CUDA 12 or later drivers); this driver lacks it";
    auto encode = [&](CUtensorMap &map, CUdeviceptr data,
                      int64_t dim) -> Error {
      cuuint64_t dims[4] = {cuuint64_t(dim), cuuint64_t(heads),
                            cuuint64_t(rows), cuuint64_t(batch)};
      cuuint64_t strides[3] = {cuuint64_t(dim * 2), cuuint64_t(heads * dim * 2),
                               cuuint64_t(rows * heads * dim * 2)};
      cuuint32_t box[4] = {64, 1, cuuint32_t(kernel.kTile), 1};
      cuuint32_t elementStrides[4] = {1, 1, 1, 1};
      return check("cuTensorMapEncodeTiled (" + kernel.entry + ")",
                   driver.cuTensorMapEncodeTiled(
                       &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4,
                       reinterpret_cast<void *>(data), dims, strides, box,
                       elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                       CU_TENSOR_MAP_SWIZZLE_128B,
                       CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                       CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
    };
    HYBRID_CUDA_TRY(encode(tensorMaps[0], keys, headDim));
    HYBRID_CUDA_TRY(encode(tensorMaps[1], values, vHeadDim));
    for (const CUtensorMap &map : tensorMaps)
      args.bytes(&map, sizeof(map));
    return {};
  }
  /// Stores `count` tokens of prepared keys (kBf16; none for K=V layers)
  /// and values (vBf16),
  /// [B, count, Hkv, D], in the rows of `cache` that hold their positions
  /// from its length on (and the mirror rows past the ring for its first
  /// rows); tokens older than the cache's reach are skipped. Entry i is
  /// the cache's sequence `sequences[i]` (0: sequence i).
  Error storeRows(const LayerSpec &l, const DeviceCache &cache, int64_t batch,
                  CUdeviceptr sequences, int64_t count) {
    int64_t stride = cache.rows + cache.mirror;
    // K=V layers' caches keep values only: keys of width 0.
    int64_t keyWidth = l.kEqV ? 0 : l.numKvHeads * l.headDim;
    int64_t valueWidth = l.numKvHeads * l.vHeadDim;
    LaunchArgs args;
    args.memref(kBf16.ptr, {batch, count, keyWidth});
    args.memref(CUdeviceptr(cache.keysOrValues()),
                {cache.batch, stride, keyWidth});
    args.memref(vBf16.ptr, {batch, count, valueWidth});
    args.memref(CUdeviceptr(cache.values), {cache.batch, stride, valueWidth});
    HYBRID_CUDA_TRY(addLengths(args, &cache, batch, sequences));
    args.scalar(cache.rows);
    return launch(storeRowsKernel, unsigned(count), unsigned(batch), 1, 128,
                  args);
  }
  /// K=V layers: keys derived from `cache`'s values at positions `first`
  /// to `first + count` and the values gathered, [B, count, Hkv, D] bf16
  /// in derivedKeys and derivedValues (a flash step's range).
  Error deriveKeys(const LayerSpec &l, const KernelSpec &kernel,
                   const DeviceCache &cache, int64_t batch, int64_t first,
                   int64_t count) {
    std::vector<int64_t> shape = {batch, count, l.numKvHeads, l.headDim};
    size_t bytes = batch * count * l.numKvHeads * l.headDim * 2;
    HYBRID_CUDA_TRY(ensure(derivedKeys, bytes));
    HYBRID_CUDA_TRY(ensure(derivedValues, bytes));
    LaunchArgs args;
    args.memref(CUdeviceptr(cache.values),
                {batch, cache.rows + cache.mirror, l.numKvHeads, l.headDim});
    args.memref(derivedKeys.ptr, shape);
    args.memref(derivedValues.ptr, shape);
    args.memref(keyScaleOf(l), {l.headDim});
    args.scalar(first);
    args.scalar(cache.rows);
    return launch(kernel.deriveKV, unsigned(batch * count), 1, 1,
                  unsigned(kernel.threads), args);
  }
  /// Adds `count` to the lengths of `cache`'s sequences that a call's
  /// `batch` entries are (`sequences`, as storeRows takes them), after
  /// every kernel of the call that reads them.
  Error advance(const DeviceCache &cache, int64_t batch, CUdeviceptr sequences,
                int64_t count) {
    LaunchArgs args;
    HYBRID_CUDA_TRY(addLengths(args, &cache, batch, sequences));
    args.scalar(count);
    return launch(advanceLengthKernel, 1, 1, 1, 1, args);
  }
  /// Splits of each query tile's key range for a flash launch of `seq`
  /// queries, the last of which sees `keys` keys: 1 without a split-K
  /// kernel, else enough to fill one wave (getFlashKeySplits), or
  /// $HYBRID_CUDA_FLASH_SPLITS's count.
  Error getFlashSplits(const LayerSpec &l, const KernelSpec &kernel,
                       int64_t batch, int64_t seq, int64_t keys,
                       int64_t &splits) {
    splits = 1;
    if (kernel.entrySplit.empty())
      return {};
    if (fixedFlashSplits > 0) {
      splits = fixedFlashSplits;
      return {};
    }
    int resident = 0;
    HYBRID_CUDA_TRY(getResidentCtas(
        kernel.entrySplit, unsigned(kernel.flashThreads),
        unsigned(kernel.sharedBytes), /*fallback=*/1, resident));
    int64_t ctas = (seq + kernel.qTile - 1) / kernel.qTile * l.numKvHeads *
                   kernel.valueSlices * batch;
    splits = getFlashKeySplits(ctas, (keys + kernel.kTile - 1) / kernel.kTile,
                               int64_t(multiprocessors) * resident);
    return {};
  }
  /// The split-K flash kernel's combine kernel: `splits` partials of [B,
  /// seq, Hq, Dv] rows
  /// (in partialOut, partialMax, partialSum) merged into `outRows` (f32,
  /// or bf16 by its twin); it adds `count` to the lengths of `advanced`'s
  /// first `batch` sequences (a step's, after its last reader; null: none).
  Error combine(const LayerSpec &l, const KernelSpec &kernel, int64_t splits,
                int64_t batch, int64_t seq, const DeviceRows &outRows,
                const DeviceCache *advanced, int64_t count) {
    LaunchArgs args;
    addPartialArgs(l, splits, batch, seq, args);
    args.memref(outRows.ptr, {batch, seq, l.numHeads, l.vHeadDim});
    HYBRID_CUDA_TRY(addLengths(args, advanced, batch, /*sequences=*/0));
    args.scalar(advanced ? count : 0);
    return launch(outRows.bf16 ? kernel.decodeCombineBF16
                               : kernel.decodeCombine,
                  unsigned(batch * seq), unsigned(l.numKvHeads), 1,
                  unsigned(kernel.threads), args);
  }
  /// The decode kernel's counters for a grid of `items` (batch x query
  /// position x kv head) work items: one per item and one for the grid,
  /// zeroed when allocated (each launch leaves them zero).
  Error ensureDecodeCounters(int64_t items) {
    size_t bytes = size_t(items + 1) * sizeof(int32_t);
    // Grown or not by its size: a new allocation may reuse the freed one's
    // address, and its bytes past the old ones are not zero.
    size_t before = decodeCounters.bytes;
    HYBRID_CUDA_TRY(ensure(decodeCounters, bytes));
    if (decodeCounters.bytes == before)
      return {};
    return check("zeroing the decode kernel's counters",
                 driver.cuMemsetD8Async(decodeCounters.ptr, 0,
                                        decodeCounters.bytes, stream));
  }
  /// Partial buffers for `splits` splits of [B, seq, Hq, Dv] rows.
  Error ensurePartials(const LayerSpec &l, int64_t splits, int64_t batch,
                       int64_t seq) {
    size_t partial = splits * batch * seq * l.numHeads;
    HYBRID_CUDA_TRY(ensure(partialOut, partial * l.vHeadDim * 4));
    HYBRID_CUDA_TRY(ensure(partialMax, partial * 4));
    return ensure(partialSum, partial * 4);
  }
  /// The partial buffers' memrefs: O [splits, B, seq, Hq, Dv], max and sum
  /// [splits, B, seq, Hq].
  void addPartialArgs(const LayerSpec &l, int64_t splits, int64_t batch,
                      int64_t seq, LaunchArgs &args) {
    args.memref(partialOut.ptr, {splits, batch, seq, l.numHeads, l.vHeadDim});
    args.memref(partialMax.ptr, {splits, batch, seq, l.numHeads});
    args.memref(partialSum.ptr, {splits, batch, seq, l.numHeads});
  }
  /// Launches `kernel`'s flash kernel (its bf16-writing twin for bf16
  /// `outRows`; with `splits` > 1 its split-K twin and the combine kernel,
  /// into f32 `outRows`) on the prepared queries [B, seq, Hq, D] in qBf16
  /// over `numKeys` keys of `keys` and `values` ([B, rows, Hkv, D] bf16)
  /// from row `firstRow` of a ring of `ringRows` (see FlashKernel.cpp).
  /// Then adds `seq` to the lengths of `advanced`'s first `batch`
  /// sequences, if given (the combine kernel does under split-K). Returns the
  /// error, if any; `flash` names the kernel launched.
  Error launchFlash(const LayerSpec &l, const KernelSpec &kernel, int64_t batch,
                    int64_t seq, CUdeviceptr keys, CUdeviceptr values,
                    int64_t rows, int64_t numKeys, int64_t firstRow,
                    int64_t ringRows, int64_t splits, const DeviceRows *sinks,
                    const DeviceRows &outRows, std::string &flash,
                    const DeviceCache *advanced = nullptr) {
    LaunchArgs args;
    args.memref(qBf16.ptr, {batch, seq, l.numHeads, l.headDim});
    args.memref(keys, {batch, rows, l.numKvHeads, l.headDim});
    args.memref(values, {batch, rows, l.numKvHeads, l.vHeadDim});
    if (sinks)
      args.memref(sinks->ptr, {l.numHeads});
    if (splits > 1) {
      HYBRID_CUDA_TRY(ensurePartials(l, splits, batch, seq));
      addPartialArgs(l, splits, batch, seq, args);
    } else {
      args.memref(outRows.ptr, {batch, seq, l.numHeads, l.vHeadDim});
    }
    args.scalar(numKeys);
    args.scalar(firstRow);
    args.scalar(ringRows);
    if (kernel.tma)
      HYBRID_CUDA_TRY(tensorMapArgs(kernel, keys, values, batch, rows,
                                    l.numKvHeads, l.headDim, l.vHeadDim, args));
    int64_t tiles = (seq + kernel.qTile - 1) / kernel.qTile;
    // One CTA per (q_tile positions of a GQA group, [split,] kv head x
    // value slice, batch).
    flash = splits > 1     ? kernel.entrySplit
            : outRows.bf16 ? kernel.entryOutBF16
                           : kernel.entry;
    HYBRID_CUDA_TRY(launch(flash, unsigned(tiles),
                           unsigned(splits * l.numKvHeads * kernel.valueSlices),
                           unsigned(batch), unsigned(kernel.flashThreads), args,
                           unsigned(kernel.sharedBytes)));
    // The last kernel to run advances the length: the combine kernel, else
    // the advance kernel.
    if (splits > 1)
      return combine(l, kernel, splits, batch, seq, outRows, advanced, seq);
    return advanced ? advance(*advanced, batch, /*sequences=*/0, seq) : Error();
  }
  /// Copies `count` elements from `rows` (output()'s) to a host `out` and,
  /// if `wait`, waits for the stream: errors of earlier launches surface
  /// here.
  Error finish(Operand out, DeviceRows rows, size_t count,
               const std::string &what, bool wait) {
    CUdeviceptr ptr = rows.ptr;
    size_t bytes = count * (rows.bf16 ? 2 : 4);
    // f32 rows for a bf16 output are narrowed in place on the device, else
    // into `narrow`, which is then copied out.
    if (out.bf16 && !rows.bf16) {
      CUdeviceptr target = CUdeviceptr(out.data);
      if (!out.onDevice) {
        HYBRID_CUDA_TRY(ensure(narrow, count * 2));
        target = narrow.ptr;
      }
      HYBRID_CUDA_TRY(convert(f32ToBF16, ptr, target, count));
      ptr = target;
      bytes = count * 2;
    }
    if (!out.onDevice)
      HYBRID_CUDA_TRY(
          check("copying the output from the GPU",
                driver.cuMemcpyDtoHAsync(out.data, ptr, bytes, stream)));
    return wait ? check("running " + what, driver.cuStreamSynchronize(stream))
                : Error();
  }
  /// Whether `target` is capturing a CUDA graph (`active`); an error where
  /// the driver cannot say, where the capture was invalidated, or where
  /// `target` is the legacy default stream while a blocking stream
  /// captures (its work would join that capture, as work the capture does
  /// not expect).
  Error getCaptureStatus(CUstream target, bool &active) {
    active = false;
    if (!driver.cuStreamIsCapturing)
      return {};
    CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
    CUresult result = driver.cuStreamIsCapturing(target, &status);
    if (result == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT)
      return Error("the legacy default stream waits for a stream that is "
                   "capturing a CUDA graph, so this call's work would join "
                   "that capture: call on the capturing stream "
                   "(hybrid_rt_stream_set) or outside the capture",
                   HYBRID_RT_UNSUPPORTED);
    HYBRID_CUDA_TRY(
        check("asking whether the stream captures a CUDA graph", result));
    if (status == CU_STREAM_CAPTURE_STATUS_INVALIDATED)
      return Error("the stream's CUDA graph capture was invalidated: end it",
                   HYBRID_RT_UNSUPPORTED);
    active = status == CU_STREAM_CAPTURE_STATUS_ACTIVE;
    return {};
  }
  /// Starts a call that queues work: sets `capturing`, and refuses, before
  /// anything is queued (the caller's capture stays valid), a capture of a
  /// call that a replay cannot repeat (`capturable` false: prompts and
  /// session creation) and of a call with host operands (`operands`: their
  /// copies would wait for the host).
  Error enterCall(bool capturable,
                  std::initializer_list<Operand> operands = {}) {
    capturing = false;
    bool active = false;
    HYBRID_CUDA_TRY(getCaptureStatus(stream, active));
    if (!active)
      return {};
    if (!capturable)
      return Error("the stream is capturing a CUDA graph; prompts and "
                   "session creation cannot be captured (only decode steps "
                   "and appends): call outside the capture",
                   HYBRID_RT_UNSUPPORTED);
    for (const Operand &operand : operands)
      if (operand.data && !operand.onDevice)
        return Error("the stream is capturing a CUDA graph, and host "
                     "tensors cannot be captured (their copies wait for the "
                     "host): pass device tensors",
                     HYBRID_RT_UNSUPPORTED);
    capturing = captured = true;
    return {};
  }
  /// Copies `bytes` of host memory to `to` in stream order, returning
  /// once they are there (the caller may free them).
  Error copyIn(CUdeviceptr to, const void *from, size_t bytes) {
    HYBRID_CUDA_TRY(check("copying to the GPU",
                          driver.cuMemcpyHtoDAsync(to, from, bytes, stream)));
    return check("copying to the GPU", driver.cuStreamSynchronize(stream));
  }
  /// Whether a call on these operands waits for its work: always on the
  /// model's own stream; on the caller's, unless an operand is in host
  /// memory (the caller may reuse it once the call returns).
  bool mustWait(std::initializer_list<Operand> operands) const {
    if (!callerStream)
      return true;
    for (const Operand &operand : operands)
      if (operand.data && !operand.onDevice)
        return true;
    return false;
  }
  /// The start of a call on `count` tokens' k and v rows of `l` (appends,
  /// cache rows read or written): the context current, enterCall's checks
  /// (`capturable`), the device operands' (checkDeviceOperands).
  Error enterRowsCall(const LayerSpec &l, bool capturable, int64_t batch,
                      int64_t count, Operand k, Operand v) {
    driver.cuCtxSetCurrent(context);
    HYBRID_CUDA_TRY(enterCall(capturable, {k, v}));
    return checkDeviceOperands(l, batch, count, {}, k, v, {}, {});
  }
  /// The end of such a call (`what` it did): waits for its work where
  /// mustWait says it must.
  Error waitForRows(const std::string &what, Operand k, Operand v) {
    if (!mustWait({k, v}))
      return {};
    return check(what, driver.cuStreamSynchronize(stream));
  }
  /// events[] now time this call (`prepare`: events[0] too, a prefill);
  /// a captured call's records are its graph's.
  void timed(bool prepare) {
    if (capturing)
      return;
    timesPending = true;
    timesPrepare = prepare;
  }
  /// Reads events[] into prepareMs and attentionMs, once the last timed
  /// call's work is done.
  void readTimes() {
    if (!timesPending)
      return;
    timesPending = false;
    prepareMs = attentionMs = 0;
    if (driver.cuEventSynchronize(events[2]) != CUDA_SUCCESS)
      return;
    if (timesPrepare)
      driver.cuEventElapsedTime(&prepareMs, events[0], events[1]);
    driver.cuEventElapsedTime(&attentionMs, events[1], events[2]);
  }
  /// Marks the end of a call that queued work on the stream, however it
  /// returns: a new stream waits for it, and so do frees. A captured call
  /// queued nothing (its graph's replays are ordered by the stream the
  /// caller launches them on).
  struct CallEnd {
    State &s;
    ~CallEnd() {
      if (!s.capturing &&
          s.driver.cuEventRecord(s.done, s.stream) == CUDA_SUCCESS)
        s.doneRecorded = true;
    }
  };
  /// Waits for every call's work (before freeing what it may use).
  void waitForCalls() {
    if (doneRecorded)
      driver.cuEventSynchronize(done);
  }
  int multiprocessors = 1;
  // $HYBRID_CUDA_DECODE_SPLITS, for tuning experiments (0: automatic).
  int64_t fixedSplits = 0;
  // $HYBRID_CUDA_FLASH_SPLITS, for tuning experiments and tests (0:
  // automatic).
  int64_t fixedFlashSplits = 0;
  // $HYBRID_CUDA_STEP_KERNEL: decode steps' kernel, when fixed.
  StepKernel fixedStepKernel = StepKernel::Automatic;

  /// A session step's rows prepared: its queries `q` (absent for appends)
  /// into qBf16, its keys `k` and values `v` into `cache`'s rows of their
  /// positions (a cache with rows; shared layers store none). One launch
  /// of the kernel's prepare_step where the operands reach the kernels as
  /// rows of one type, else the prepare kernels and the store kernel.
  /// Does not advance the lengths. Entry i is the cache's sequence
  /// `sequences[i]` (0: sequence i).
  Error prepareStep(const LayerSpec &l, const KernelSpec &kernel,
                    DeviceCache &cache, int64_t batch, CUdeviceptr sequences,
                    int64_t count, Operand q, Operand k, Operand v);
  /// Splits of a decode kernel launch of `steps` queries whose last sees
  /// `keys` keys: whole tiles each, for one full wave (every CTA the GPU
  /// holds at once: a memory-bound kernel wants every warp slot for loads
  /// in flight), or $HYBRID_CUDA_DECODE_SPLITS's.
  Error getDecodeSplits(const LayerSpec &l, const KernelSpec &kernel,
                        int64_t batch, int64_t steps, int64_t keys,
                        int64_t &splits);
};

Backend::Backend() : state(std::make_unique<State>()) {}

Backend::~Backend() {
  if (!state->driver.cuInit)
    return;
  Driver &d = state->driver;
  if (state->context)
    d.cuCtxSetCurrent(state->context);
  state->waitForCalls();
  for (DeviceBuffer *b :
       {&state->qIn, &state->kIn, &state->vIn, &state->sinksIn, &state->qBf16,
        &state->kBf16, &state->vBf16, &state->out, &state->partialOut,
        &state->partialMax, &state->partialSum, &state->narrow,
        &state->derivedKeys, &state->derivedValues, &state->decodeCounters,
        &state->savedSequences})
    if (b->ptr)
      d.cuMemFree(b->ptr);
  for (CUdeviceptr ptr : state->retired)
    d.cuMemFree(ptr);
  for (CUdeviceptr ptr : state->keyScales)
    if (ptr)
      d.cuMemFree(ptr);
  for (CUdeviceptr ptr :
       {state->identity.ptr, state->zeros.ptr, state->unitKeyScale})
    if (ptr)
      d.cuMemFree(ptr);
  for (CUevent e : state->events)
    if (e)
      d.cuEventDestroy(e);
  if (state->done)
    d.cuEventDestroy(state->done);
  if (state->own)
    d.cuStreamDestroy(state->own);
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
  auto failed = [&](const Error &why) {
    error = why.message();
    return nullptr;
  };
  if (Error e = d.load(); !e.empty())
    return failed(e);
  if (Error e = s.check("cuInit", d.cuInit(0)); !e.empty())
    return failed(e);
  int count = 0;
  if (Error e = s.check("cuDeviceGetCount", d.cuDeviceGetCount(&count));
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
  if (Error e = s.check("cuDeviceGet", d.cuDeviceGet(&s.device, ordinal));
      !e.empty())
    return failed(e);
  s.ordinal = ordinal;
  d.cuDeviceGetName(name, sizeof(name), s.device);
  s.name = name;
  s.bf16ToF32 = manifest.convertBF16ToF32;
  s.f32ToBF16 = manifest.convertF32ToBF16;
  s.storeRowsKernel = manifest.storeCacheRows;
  s.advanceLengthKernel = manifest.advanceLength;
  if (const char *env = std::getenv("HYBRID_CUDA_DECODE_SPLITS"))
    s.fixedSplits = std::atoll(env);
  if (const char *env = std::getenv("HYBRID_CUDA_FLASH_SPLITS"))
    s.fixedFlashSplits = std::clamp<int64_t>(std::atoll(env), 0, 1024);
  d.cuDeviceGetAttribute(&s.multiprocessors,
                         CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, s.device);
  d.cuDeviceGetAttribute(&s.sharedOptIn,
                         CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                         s.device);
  int pageable = 0;
  d.cuDeviceGetAttribute(&pageable, CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS,
                         s.device);
  s.pageableAccess = pageable != 0;
  std::string stepError;
  s.fixedStepKernel = getFixedStepKernel("HYBRID_CUDA_STEP_KERNEL", stepError);
  if (!stepError.empty())
    return failed(stepError);
  if (Error e = s.check("cuDevicePrimaryCtxRetain",
                        d.cuDevicePrimaryCtxRetain(&s.context, s.device));
      !e.empty())
    return failed(e);
  d.cuCtxSetCurrent(s.context);

  // The cubin runs without JIT on the GPU it was assembled for; anything
  // else JIT-compiles the PTX.
  Error cubinError;
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
      return failed(manifest.dir + "/" + manifest.library + ": cannot be read");
    if (Error e = s.check("loading " + manifest.library + " on " + s.name,
                          d.cuModuleLoadData(&s.module, ptx.c_str()));
        !e.empty())
      return failed(cubinError.empty()
                        ? e
                        : Error(cubinError.message() + "; " + e.message()));
  }
  // A blocking stream: device operands are often written just before the
  // call by kernels still queued on the legacy default stream (PyTorch's
  // default stream), which a blocking stream waits for.
  if (Error e = s.check("cuStreamCreate",
                        d.cuStreamCreate(&s.own, CU_STREAM_DEFAULT));
      !e.empty())
    return failed(e);
  s.stream = s.own;
  if (Error e = s.check("cuEventCreate",
                        d.cuEventCreate(&s.done, CU_EVENT_DISABLE_TIMING));
      !e.empty())
    return failed(e);
  for (CUevent &event : s.events)
    if (Error e =
            s.check("cuEventCreate", d.cuEventCreate(&event, CU_EVENT_DEFAULT));
        !e.empty())
      return failed(e);
  int64_t widest = 1;
  for (const LayerSpec &l : manifest.layers)
    widest = std::max(widest, l.headDim);
  std::vector<float> ones(widest, 1.f);
  if (Error e = s.check("allocating the unit key scale",
                        d.cuMemAlloc(&s.unitKeyScale, widest * sizeof(float)));
      !e.empty())
    return failed(e);
  if (Error e = s.copyIn(s.unitKeyScale, ones.data(), widest * sizeof(float));
      !e.empty())
    return failed(e);
  // K=V layers' own, ones until set: allocated now, so that the kernels a
  // CUDA graph captured read the weights set later.
  s.keyScales.assign(manifest.layers.size(), 0);
  for (const LayerSpec &l : manifest.layers) {
    if (!l.hasKernel() || !l.kEqV || l.cacheOwner() != l.index)
      continue;
    CUdeviceptr &ptr = s.keyScales[l.index];
    if (Error e = s.check("allocating a key scale",
                          d.cuMemAlloc(&ptr, l.headDim * sizeof(float)));
        !e.empty())
      return failed(e);
    if (Error e =
            s.check("copying a key scale",
                    d.cuMemcpyDtoDAsync(ptr, s.unitKeyScale,
                                        l.headDim * sizeof(float), s.own));
        !e.empty())
      return failed(e);
  }
  return backend;
}

Error Backend::setKeyScale(const LayerSpec &l, Operand scale) {
  State &s = *state;
  Driver &d = s.driver;
  d.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/false));
  size_t bytes = l.headDim * sizeof(float);
  HYBRID_CUDA_TRY(s.checkDeviceOperand("scale", scale, size_t(l.headDim)));
  State::CallEnd end{s};
  CUdeviceptr ptr = s.keyScales.at(l.index);
  // In stream order: earlier calls' kernels read the weights before.
  if (!scale.data || scale.onDevice)
    HYBRID_CUDA_TRY(
        s.check("copying a key scale",
                d.cuMemcpyDtoDAsync(
                    ptr, scale.data ? CUdeviceptr(scale.data) : s.unitKeyScale,
                    bytes, s.stream)));
  else
    HYBRID_CUDA_TRY(s.copyIn(ptr, scale.data, bytes));
  return s.check("setting a key scale", d.cuStreamSynchronize(s.stream));
}

int64_t DeviceCache::bytes() const { return keyBytes + valueBytes; }

DeviceCache DeviceCache::sequences(int64_t first, int64_t count) const {
  DeviceCache view = *this;
  view.batch = count;
  view.lengths += first * sizeof(int64_t);
  int64_t keyBytesEach = batch ? keyBytes / batch : 0,
          valueBytesEach = batch ? valueBytes / batch : 0;
  if (keys)
    view.keys += first * keyBytesEach;
  if (values)
    view.values += first * valueBytesEach;
  view.keyBytes = count * keyBytesEach;
  view.valueBytes = count * valueBytesEach;
  return view;
}

double DeviceCache::bytesFor(const LayerSpec &l, int64_t batch, int64_t rows,
                             int64_t mirror) {
  return double(batch) * double(rows + mirror) * double(l.numKvHeads) *
         double((l.kEqV ? 0 : l.headDim) + l.vHeadDim) * 2;
}

Error Backend::prefill(const LayerSpec &l, const KernelSpec &kernel,
                       int64_t batch, int64_t seq, Operand q, Operand k,
                       Operand v, Operand sinks, Operand out,
                       DeviceCache *cache, const DeviceCache *source) {
  State &s = *state;
  Driver &d = s.driver;
  d.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/false));
  HYBRID_CUDA_TRY(s.checkDeviceOperands(l, batch, seq, q, k, v, sinks, out));
  State::CallEnd end{s};
  size_t outCount = batch * seq * l.numHeads * l.vHeadDim;
  DeviceRows sinksRows, outRows;
  if (sinks.data)
    HYBRID_CUDA_TRY(s.input(s.sinksIn, sinks, l.numHeads, sinksRows));
  int64_t splits = 1;
  HYBRID_CUDA_TRY(s.getFlashSplits(l, kernel, batch, seq,
                                   seq - l.firstVisibleKey(seq - 1), splits));
  HYBRID_CUDA_TRY(s.output(s.out, out, outCount, outRows,
                           State::writesBF16Rows(kernel, splits)));
  HYBRID_CUDA_TRY(
      s.check("cuEventRecord", d.cuEventRecord(s.events[0], s.stream)));
  // Where the flash kernel reads the prompt's keys and values: a cache that
  // holds the whole prompt, the layer's own (its rows prepared straight
  // into it: no scratch copy of the prompt's K and V, nor a store of it) or
  // a shared layer's source's (which holds the same prompt); else scratch,
  // of which a ring cache then keeps the last rows, and which K=V layers
  // take (their caches keep no keys).
  const DeviceCache *held = cache && cache->rows > 0 ? cache : source;
  bool inPlace = cache && held && held->rows >= seq && !l.kEqV;
  CUdeviceptr keys = 0, values = 0;
  int64_t rows = seq, ring = seq;
  if (inPlace) {
    HYBRID_CUDA_TRY(
        s.prepareStep(l, kernel, *cache, batch, /*sequences=*/0, seq, q, k, v));
    keys = CUdeviceptr(held->keys);
    values = CUdeviceptr(held->values);
    rows = held->rows + held->mirror;
    ring = held->rows;
  } else {
    std::vector<int64_t> qShape = {batch, seq, l.numHeads, l.headDim},
                         kShape = {batch, seq, l.numKvHeads, l.headDim},
                         vShape = {batch, seq, l.numKvHeads, l.vHeadDim};
    DeviceRows qRows, kRows, vRows;
    HYBRID_CUDA_TRY(s.input(s.qIn, q, batch * seq * l.numHeads * l.headDim,
                            qRows, &kernel));
    HYBRID_CUDA_TRY(s.input(s.kIn, k, batch * seq * l.numKvHeads * l.headDim,
                            kRows, &kernel));
    HYBRID_CUDA_TRY(s.input(s.vIn, v, batch * seq * l.numKvHeads * l.vHeadDim,
                            vRows, &kernel));
    // A prompt starts at position 0 (its cache is empty).
    State::Positions start;
    HYBRID_CUDA_TRY(s.prepare(kernel, kernel.prepareQ, qRows, s.qBf16, qShape,
                              &start, kernel.prepareQBF16));
    HYBRID_CUDA_TRY(s.prepare(kernel, kernel.prepareK, kRows, s.kBf16, kShape,
                              &start, kernel.prepareKBF16, s.keyScaleOf(l)));
    HYBRID_CUDA_TRY(s.prepare(kernel, kernel.prepareV, vRows, s.vBf16, vShape,
                              /*at=*/nullptr));
    keys = s.kBf16.ptr; // as the prepare kernels grew them
    values = s.vBf16.ptr;
  }
  HYBRID_CUDA_TRY(
      s.check("cuEventRecord", d.cuEventRecord(s.events[1], s.stream)));
  std::string flash;
  HYBRID_CUDA_TRY(s.launchFlash(l, kernel, batch, seq, keys, values, rows, seq,
                                0, ring, splits,
                                sinks.data ? &sinksRows : nullptr, outRows,
                                flash, inPlace ? cache : nullptr));
  HYBRID_CUDA_TRY(
      s.check("cuEventRecord", d.cuEventRecord(s.events[2], s.stream)));
  if (!inPlace && cache) {
    // K=V layers' v is their k (the runtime's entry points pass it so).
    if (cache->rows > 0)
      HYBRID_CUDA_TRY(s.storeRows(l, *cache, batch, /*sequences=*/0, seq));
    // After the store kernel, which reads the lengths.
    HYBRID_CUDA_TRY(s.advance(*cache, batch, /*sequences=*/0, seq));
  }
  s.timed(/*prepare=*/true);
  return s.finish(out, outRows, outCount, flash,
                  s.mustWait({q, k, v, sinks, out}));
}

Error Backend::allocate(const LayerSpec &l, int64_t batch, int64_t rows,
                        int64_t mirror, DeviceCache &cache) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  std::string what = "allocating the KV cache of layer " +
                     std::to_string(l.index) + " (" +
                     std::to_string(rows + mirror) + " rows at batch " +
                     std::to_string(batch) + ")";
  auto bytes = [&](int64_t dim, int64_t &n) {
    return !__builtin_mul_overflow(batch, rows + mirror, &n) &&
           !__builtin_mul_overflow(n, l.numKvHeads, &n) &&
           !__builtin_mul_overflow(n, dim * 2, &n);
  };
  // K=V layers' caches keep values only.
  if (!bytes(l.kEqV ? 0 : l.headDim, cache.keyBytes) ||
      !bytes(l.vHeadDim, cache.valueBytes))
    return Error(what + ": more bytes than a size holds",
                 HYBRID_RT_INVALID_ARGUMENT);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/false));
  cache.batch = batch;
  cache.rows = rows;
  cache.mirror = mirror;
  State::CallEnd end{s};
  CUdeviceptr keys = 0, values = 0;
  if (cache.keyBytes > 0) {
    HYBRID_CUDA_TRY(s.check(what, s.driver.cuMemAlloc(&keys, cache.keyBytes)));
    cache.keys = keys;
    HYBRID_CUDA_TRY(s.check(
        what, s.driver.cuMemsetD8Async(keys, 0, cache.keyBytes, s.stream)));
  }
  HYBRID_CUDA_TRY(
      s.check(what, s.driver.cuMemAlloc(&values, cache.valueBytes)));
  cache.values = values;
  return s.check(
      what, s.driver.cuMemsetD8Async(values, 0, cache.valueBytes, s.stream));
}

void Backend::release(DeviceCache &cache) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  s.waitForCalls(); // queued work may still read or write the cache
  if (cache.keys)
    s.driver.cuMemFree(CUdeviceptr(cache.keys));
  if (cache.values)
    s.driver.cuMemFree(CUdeviceptr(cache.values));
  cache = {};
}

Error Backend::allocateLengths(int64_t count, uint64_t &lengths) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/false));
  State::CallEnd end{s};
  CUdeviceptr ptr = 0;
  size_t bytes = std::max<size_t>(1, count) * sizeof(int64_t);
  HYBRID_CUDA_TRY(s.check("allocating the layers' lengths",
                          s.driver.cuMemAlloc(&ptr, bytes)));
  lengths = ptr;
  return s.check("zeroing the layers' lengths",
                 s.driver.cuMemsetD8Async(ptr, 0, bytes, s.stream));
}

void Backend::releaseLengths(uint64_t lengths) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  s.waitForCalls();
  if (lengths)
    s.driver.cuMemFree(CUdeviceptr(lengths));
}

Error Backend::resetLengths(uint64_t lengths, int64_t count) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/true));
  State::CallEnd end{s};
  return s.check("zeroing the layers' lengths",
                 s.driver.cuMemsetD8Async(CUdeviceptr(lengths), 0,
                                          count * sizeof(int64_t), s.stream));
}

Error Backend::zero(Operand out, size_t count) {
  if (!out.onDevice) {
    std::memset(out.data, 0, out.bytes(count));
    return {};
  }
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/true, {out}));
  State::CallEnd end{s};
  return s.check("zeroing output rows",
                 s.driver.cuMemsetD8Async(CUdeviceptr(out.data), 0,
                                          out.bytes(count), s.stream));
}

Error Backend::writeLengths(uint64_t lengths, int64_t count,
                            const int64_t *values) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/false));
  State::CallEnd end{s};
  return s.copyIn(CUdeviceptr(lengths), values, count * sizeof(int64_t));
}

Error Backend::writeLengthsQueued(uint64_t lengths, int64_t count,
                                  const int64_t *values, HostStaging &staging) {
  State &s = *state;
  Driver &d = s.driver;
  d.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/false));
  State::CallEnd end{s};
  std::string what = "writing device lengths through pinned memory";
  size_t bytes = size_t(count) * sizeof(int64_t);
  if (staging.bytes < bytes)
    return Error(what + ": " + std::to_string(bytes) + " bytes through " +
                     std::to_string(staging.bytes) + " of pinned memory",
                 HYBRID_RT_INVALID_ARGUMENT);
  // The previous write's copy has read the memory (a no-op unless the GPU
  // is behind it).
  HYBRID_CUDA_TRY(s.check(what, d.cuEventSynchronize(CUevent(staging.copied))));
  std::memcpy(staging.host, values, bytes);
  HYBRID_CUDA_TRY(
      s.check(what, d.cuMemcpyHtoDAsync(CUdeviceptr(lengths), staging.host,
                                        bytes, s.stream)));
  return s.check(what, d.cuEventRecord(CUevent(staging.copied), s.stream));
}

Error Backend::allocate(HostStaging &staging, size_t bytes) {
  State &s = *state;
  Driver &d = s.driver;
  d.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/false));
  std::string what = "allocating pinned host memory";
  CUevent copied = nullptr;
  HYBRID_CUDA_TRY(
      s.check(what, d.cuEventCreate(&copied, CU_EVENT_DISABLE_TIMING)));
  staging.copied = copied;
  HYBRID_CUDA_TRY(s.check(what, d.cuMemAllocHost(&staging.host, bytes)));
  staging.bytes = bytes;
  return {};
}

void Backend::release(HostStaging &staging) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  if (staging.copied) {
    s.driver.cuEventSynchronize(CUevent(staging.copied));
    s.driver.cuEventDestroy(CUevent(staging.copied));
  }
  if (staging.host)
    s.driver.cuMemFreeHost(staging.host);
  staging = {};
}

Error Backend::gatherSequences(DeviceCache &cache, int64_t batch, int64_t live,
                               const SequenceGather &gather) {
  State &s = *state;
  Driver &d = s.driver;
  d.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/false));
  State::CallEnd end{s};
  std::string what = "reordering the sequences of a KV cache";
  int64_t rowsPerSequence = cache.rows + cache.mirror;
  for (auto [base, bytes] : {std::pair{cache.keys, cache.keyBytes},
                             {cache.values, cache.valueBytes}}) {
    if (!base)
      continue;
    size_t slice = size_t(bytes / batch), row = slice / rowsPerSequence;
    // The live rows, then the mirror rows (a tile's worth at most).
    std::pair<size_t, size_t> ranges[2] = {
        {0, size_t(live) * row},
        {size_t(cache.rows) * row, size_t(cache.mirror) * row}};
    size_t saved = 0;
    for (auto [offset, size] : ranges)
      saved += size;
    HYBRID_CUDA_TRY(s.ensure(s.savedSequences, gather.saved.size() * saved));
    auto copy = [&](CUdeviceptr to, CUdeviceptr from, size_t size) {
      return size == 0
                 ? Error()
                 : s.check(what, d.cuMemcpyDtoDAsync(to, from, size, s.stream));
    };
    for (size_t j = 0; j < gather.saved.size(); ++j) {
      size_t at = j * saved;
      for (auto [offset, size] : ranges) {
        HYBRID_CUDA_TRY(copy(s.savedSequences.ptr + at,
                             base + gather.saved[j] * slice + offset, size));
        at += size;
      }
    }
    for (const SequenceGather::Copy &c : gather.copies) {
      size_t at = c.from * saved;
      for (auto [offset, size] : ranges) {
        CUdeviceptr from = c.fromScratch ? s.savedSequences.ptr + at
                                         : base + c.from * slice + offset;
        HYBRID_CUDA_TRY(copy(base + c.to * slice + offset, from, size));
        at += size;
      }
    }
  }
  return {};
}

Error Backend::readLengths(uint64_t lengths, int64_t count, int64_t *out) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/false));
  HYBRID_CUDA_TRY(
      s.check("reading the layers' lengths back",
              s.driver.cuMemcpyDtoHAsync(out, CUdeviceptr(lengths),
                                         count * sizeof(int64_t), s.stream)));
  return s.check("reading the layers' lengths back",
                 s.driver.cuStreamSynchronize(s.stream));
}

Error Backend::getCapturing(bool &capturing) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  return s.getCaptureStatus(s.stream, capturing);
}

Error Backend::reserveForCapture(const LayerSpec &l, const KernelSpec &kernel,
                                 int64_t batch, int64_t steps, int64_t rows) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/false));
  // The functions a captured step launches, loaded now: a capture then
  // makes no driver call but its launches.
  for (const std::string *symbol : std::initializer_list<const std::string *>{
           &kernel.prepareQ, &kernel.prepareK, &kernel.prepareQBF16,
           &kernel.prepareKBF16, &kernel.prepareV, &kernel.prepareStep,
           &kernel.prepareStepBF16, &kernel.decode, &kernel.decodeBF16,
           &s.storeRowsKernel, &s.advanceLengthKernel, &s.bf16ToF32,
           &s.f32ToBF16}) {
    State::Function f;
    if (!symbol->empty())
      HYBRID_CUDA_TRY(s.function(*symbol, f));
  }
  int64_t splits = 1;
  HYBRID_CUDA_TRY(s.getDecodeSplits(l, kernel, batch, steps, rows, splits));
  int64_t tokens = batch * steps;
  HYBRID_CUDA_TRY(s.ensure(s.qBf16, tokens * l.numHeads * l.headDim * 2));
  HYBRID_CUDA_TRY(s.ensure(s.kBf16, tokens * l.numKvHeads * l.headDim * 2));
  HYBRID_CUDA_TRY(s.ensure(s.vBf16, tokens * l.numKvHeads * l.vHeadDim * 2));
  // f32 rows that bf16 outputs and sinks pass through.
  HYBRID_CUDA_TRY(s.ensure(s.out, tokens * l.numHeads * l.vHeadDim * 4));
  HYBRID_CUDA_TRY(s.ensure(s.sinksIn, l.numHeads * 4));
  HYBRID_CUDA_TRY(s.ensureDecodeCounters(batch * steps * l.numKvHeads));
  HYBRID_CUDA_TRY(s.ensureEntries(batch));
  return s.ensurePartials(l, splits, batch, steps);
}

Error Backend::append(const LayerSpec &l, const KernelSpec &kernel,
                      DeviceCache &cache, int64_t batch, uint64_t sequences,
                      int64_t count, Operand k, Operand v) {
  State &s = *state;
  HYBRID_CUDA_TRY(s.enterRowsCall(l, /*capturable=*/true, batch, count, k, v));
  State::CallEnd end{s};
  HYBRID_CUDA_TRY(s.prepareStep(l, kernel, cache, batch, sequences, count,
                                Operand{}, k, v));
  HYBRID_CUDA_TRY(s.advance(cache, batch, sequences, count));
  return s.waitForRows("appending to the KV cache", k, v);
}

Error Backend::readCache(const LayerSpec &l, const DeviceCache &cache,
                         int64_t batch, int64_t first, int64_t count, Operand k,
                         Operand v) {
  State &s = *state;
  Driver &d = s.driver;
  HYBRID_CUDA_TRY(s.enterRowsCall(l, /*capturable=*/false, batch, count, k, v));
  State::CallEnd end{s};
  std::string what = "reading the KV cache of layer " + std::to_string(l.index);
  int64_t stride = cache.rows + cache.mirror;
  // The positions from row `at` on, wrapping to row 0 once (a ring).
  int64_t at = first % cache.rows, head = std::min(count, cache.rows - at);
  struct Part {
    Operand operand;
    CUdeviceptr base;
    int64_t width;
    DeviceBuffer &narrowRows, &wideRows; // bf16 and f32 staging
  };
  for (const Part &p :
       {Part{k, cache.keys, l.numKvHeads * l.headDim, s.kBf16, s.kIn},
        Part{v, cache.values, l.numKvHeads * l.vHeadDim, s.vBf16, s.vIn}}) {
    if (!p.operand.data)
      continue;
    size_t elements = size_t(batch * count * p.width), row = p.width * 2;
    // The rows in position order, bf16: in place for a bf16 device operand.
    CUdeviceptr rows = CUdeviceptr(p.operand.data);
    if (!p.operand.bf16 || !p.operand.onDevice) {
      HYBRID_CUDA_TRY(s.ensure(p.narrowRows, elements * 2));
      rows = p.narrowRows.ptr;
    }
    auto copy = [&](CUdeviceptr to, CUdeviceptr from, int64_t n) {
      return n == 0 ? Error()
                    : s.check(what,
                              d.cuMemcpyDtoDAsync(to, from, n * row, s.stream));
    };
    for (int64_t b = 0; b < batch; ++b) {
      CUdeviceptr to = rows + b * count * row, from = p.base + b * stride * row;
      HYBRID_CUDA_TRY(copy(to, from + at * row, head));
      HYBRID_CUDA_TRY(copy(to + head * row, from, count - head));
    }
    if (!p.operand.bf16) {
      CUdeviceptr wide = CUdeviceptr(p.operand.data);
      if (!p.operand.onDevice) {
        HYBRID_CUDA_TRY(s.ensure(p.wideRows, elements * 4));
        wide = p.wideRows.ptr;
      }
      HYBRID_CUDA_TRY(s.convert(s.bf16ToF32, rows, wide, elements));
      rows = wide;
    }
    if (!p.operand.onDevice)
      HYBRID_CUDA_TRY(s.check(
          what, d.cuMemcpyDtoHAsync(p.operand.data, rows,
                                    p.operand.bytes(elements), s.stream)));
  }
  return s.waitForRows(what, k, v);
}

Error Backend::writeCache(const LayerSpec &l, const DeviceCache &cache,
                          int64_t batch, int64_t count, Operand k, Operand v) {
  State &s = *state;
  Driver &d = s.driver;
  HYBRID_CUDA_TRY(s.enterRowsCall(l, /*capturable=*/false, batch, count, k, v));
  State::CallEnd end{s};
  std::string what = "writing the KV cache of layer " + std::to_string(l.index);
  // Into kBf16 and vBf16 as they are (bf16) or narrowed, for storeRows.
  for (auto [operand, wideRows, narrowRows, width] :
       {std::tuple<Operand, DeviceBuffer &, DeviceBuffer &, int64_t>{
            k, s.kIn, s.kBf16, l.numKvHeads * l.headDim},
        {v, s.vIn, s.vBf16, l.numKvHeads * l.vHeadDim}}) {
    size_t elements = size_t(batch * count * width);
    HYBRID_CUDA_TRY(s.ensure(narrowRows, elements * 2));
    if (operand.bf16) {
      HYBRID_CUDA_TRY(
          s.check(what, operand.onDevice
                            ? d.cuMemcpyDtoDAsync(narrowRows.ptr,
                                                  CUdeviceptr(operand.data),
                                                  elements * 2, s.stream)
                            : d.cuMemcpyHtoDAsync(narrowRows.ptr, operand.data,
                                                  elements * 2, s.stream)));
      continue;
    }
    DeviceRows rows;
    HYBRID_CUDA_TRY(s.input(wideRows, operand, elements, rows));
    HYBRID_CUDA_TRY(s.convert(s.f32ToBF16, rows.ptr, narrowRows.ptr, elements));
  }
  HYBRID_CUDA_TRY(s.storeRows(l, cache, batch, /*sequences=*/0, count));
  HYBRID_CUDA_TRY(s.advance(cache, batch, /*sequences=*/0, count));
  return s.waitForRows(what, k, v);
}

Error Backend::State::prepareStep(const LayerSpec &l, const KernelSpec &kernel,
                                  DeviceCache &cache, int64_t batch,
                                  CUdeviceptr sequences, int64_t count,
                                  Operand q, Operand k, Operand v) {
  State &s = *this;
  std::vector<int64_t> qShape = {batch, count, l.numHeads, l.headDim},
                       kShape = {batch, count, l.numKvHeads, l.headDim},
                       vShape = {batch, count, l.numKvHeads, l.vHeadDim};
  DeviceRows qRows, kRows, vRows;
  if (q.data) {
    HYBRID_CUDA_TRY(s.input(s.qIn, q, batch * count * l.numHeads * l.headDim,
                            qRows, &kernel));
    HYBRID_CUDA_TRY(
        s.ensure(s.qBf16, batch * count * l.numHeads * l.headDim * 2));
  }
  if (cache.rows > 0) {
    HYBRID_CUDA_TRY(s.input(s.kIn, k, batch * count * l.numKvHeads * l.headDim,
                            kRows, &kernel));
    // K=V: the values are the raw keys.
    if (l.kEqV)
      vRows = kRows;
    else
      HYBRID_CUDA_TRY(s.input(
          s.vIn, v, batch * count * l.numKvHeads * l.vHeadDim, vRows, &kernel));
  }
  const std::string &fused =
      kRows.bf16 ? kernel.prepareStepBF16 : kernel.prepareStep;
  if (cache.rows > 0 && !fused.empty() && vRows.bf16 == kRows.bf16 &&
      (!q.data || qRows.bf16 == kRows.bf16)) {
    int64_t stride = cache.rows + cache.mirror;
    LaunchArgs args;
    args.memref(qRows.ptr, {batch, q.data ? count : 0, l.numHeads, l.headDim});
    args.memref(s.qBf16.ptr,
                {batch, q.data ? count : 0, l.numHeads, l.headDim});
    args.memref(kRows.ptr, kShape);
    args.memref(vRows.ptr, vShape);
    // K=V: the kernel stores values only.
    args.memref(CUdeviceptr(cache.keysOrValues()),
                {cache.batch, stride, l.numKvHeads, l.headDim});
    args.memref(CUdeviceptr(cache.values),
                {cache.batch, stride, l.numKvHeads, l.vHeadDim});
    HYBRID_CUDA_TRY(s.addLengths(args, &cache, batch, sequences));
    args.memref(s.keyScaleOf(l), {l.headDim});
    args.scalar(cache.rows);
    return s.launch(fused, unsigned(batch * count), 1, 1,
                    unsigned(kernel.threads), args);
  }
  Positions at{&cache, sequences};
  if (cache.rows > 0) {
    if (!l.kEqV)
      HYBRID_CUDA_TRY(s.prepare(kernel, kernel.prepareK, kRows, s.kBf16, kShape,
                                &at, kernel.prepareKBF16, s.keyScaleOf(l)));
    HYBRID_CUDA_TRY(s.prepare(kernel, kernel.prepareV, vRows, s.vBf16, vShape,
                              /*at=*/nullptr));
    HYBRID_CUDA_TRY(s.storeRows(l, cache, batch, sequences, count));
  }
  if (!q.data)
    return {};
  return s.prepare(kernel, kernel.prepareQ, qRows, s.qBf16, qShape, &at,
                   kernel.prepareQBF16);
}

Error Backend::State::getDecodeSplits(const LayerSpec &l,
                                      const KernelSpec &kernel, int64_t batch,
                                      int64_t steps, int64_t keys,
                                      int64_t &splits) {
  int64_t items = batch * steps * l.numKvHeads;
  int64_t tiles =
      std::max<int64_t>(1, (keys + kernel.threads - 1) / kernel.threads);
  int resident = 0;
  HYBRID_CUDA_TRY(getResidentCtas(kernel.decode, unsigned(kernel.threads), 0,
                                  /*fallback=*/2, resident));
  int64_t wave = int64_t(multiprocessors) * resident;
  splits = std::clamp<int64_t>((wave + items - 1) / items, 1, tiles);
  if (fixedSplits > 0)
    splits = std::clamp<int64_t>(fixedSplits, 1, tiles);
  return {};
}

Error Backend::decode(const LayerSpec &l, const KernelSpec &kernel,
                      DeviceCache &cache, const DeviceCache &owner,
                      int64_t batch, uint64_t sequences, int64_t position,
                      int64_t longest, int64_t steps, Operand q, Operand k,
                      Operand v, Operand sinks, Operand out) {
  State &s = *state;
  Driver &d = s.driver;
  d.cuCtxSetCurrent(s.context);
  HYBRID_CUDA_TRY(s.enterCall(/*capturable=*/true, {q, k, v, sinks, out}));
  HYBRID_CUDA_TRY(s.checkDeviceOperands(l, batch, steps, q, k, v, sinks, out));
  State::CallEnd end{s};
  bool wait = s.mustWait({q, k, v, sinks, out});
  HYBRID_CUDA_TRY(
      s.prepareStep(l, kernel, cache, batch, sequences, steps, q, k, v));
  std::vector<int64_t> qShape = {batch, steps, l.numHeads, l.headDim};
  DeviceRows sinksRows, outRows;
  if (sinks.data)
    HYBRID_CUDA_TRY(s.input(s.sinksIn, sinks, l.numHeads, sinksRows));
  int64_t total = position + steps;
  size_t outCount = batch * steps * l.numHeads * l.vHeadDim;
  int64_t cacheRows = owner.rows + owner.mirror;

  // Steps of many rows: the flash kernel over the cache in place, from the
  // step's first visible key (relative positions are exact for every mask:
  // chunk starts are multiples of the chunk), its queries the last `steps`
  // of the keys. A range across the ring's end needs a mirror as deep as
  // the kernel's key tiles, or as the ring (the session allocates one):
  // past it, TMA reads zeros and cp.async clamps, for masked keys only.
  // Its key range is a launch parameter, so a capture takes the decode
  // kernel, and so do the steps of sequences at different positions or of
  // a selection (its batch coordinate is the cache's sequence).
  //
  // K=V layers' caches keep values only: the flash kernel reads the range's
  // keys derived (and its values gathered) into scratch first, in position
  // order.
  int64_t firstKey = l.firstVisibleKey(position);
  int64_t numKeys = total - firstKey, firstRow = firstKey % owner.rows;
  bool flashFits = l.kEqV
                       ? !kernel.deriveKV.empty()
                       : firstRow + numKeys <= owner.rows ||
                             owner.mirror >= std::min(kernel.kTile, owner.rows);
  bool uniform = !sequences && batch == owner.batch && position == longest;
  if (prefersFlashStep(l, kernel, batch, steps) && flashFits && uniform &&
      !s.capturing) {
    int64_t splits = 1;
    HYBRID_CUDA_TRY(s.getFlashSplits(
        l, kernel, batch, steps, total - l.firstVisibleKey(total - 1), splits));
    HYBRID_CUDA_TRY(s.output(s.out, out, outCount, outRows,
                             State::writesBF16Rows(kernel, splits)));
    HYBRID_CUDA_TRY(
        s.check("cuEventRecord", d.cuEventRecord(s.events[1], s.stream)));
    CUdeviceptr keys = CUdeviceptr(owner.keys),
                values = CUdeviceptr(owner.values);
    int64_t rows = cacheRows, ringRows = owner.rows;
    if (l.kEqV) {
      HYBRID_CUDA_TRY(s.deriveKeys(l, kernel, owner, batch, firstKey, numKeys));
      keys = s.derivedKeys.ptr;
      values = s.derivedValues.ptr;
      rows = ringRows = numKeys;
      firstRow = 0;
    }
    std::string flash;
    HYBRID_CUDA_TRY(s.launchFlash(l, kernel, batch, steps, keys, values, rows,
                                  numKeys, firstRow, ringRows, splits,
                                  sinks.data ? &sinksRows : nullptr, outRows,
                                  flash, &cache));
    HYBRID_CUDA_TRY(
        s.check("cuEventRecord", d.cuEventRecord(s.events[2], s.stream)));
    s.timed(/*prepare=*/false);
    return s.finish(out, outRows, outCount, flash, wait);
  }

  // Splits of the longest sequence's last query's key range or, captured,
  // of the longest range the cache holds (each CTA's kernel divides the
  // range it finds; splits past its end write empty partials).
  int64_t splits = 1, last = longest + steps;
  HYBRID_CUDA_TRY(s.getDecodeSplits(
      l, kernel, batch, steps,
      s.capturing ? owner.rows : last - l.firstVisibleKey(last - 1), splits));
  HYBRID_CUDA_TRY(s.ensurePartials(l, splits, batch, steps));
  HYBRID_CUDA_TRY(s.ensureDecodeCounters(batch * steps * l.numKvHeads));
  HYBRID_CUDA_TRY(
      s.output(s.out, out, outCount, outRows, !kernel.decodeBF16.empty()));
  if (!s.capturing)
    HYBRID_CUDA_TRY(
        s.check("cuEventRecord", d.cuEventRecord(s.events[1], s.stream)));

  LaunchArgs args;
  args.memref(s.qBf16.ptr, qShape);
  // A kernel deriving keys reads them from the values.
  args.memref(CUdeviceptr(owner.keysOrValues()),
              {owner.batch, cacheRows, l.numKvHeads, l.headDim});
  args.memref(CUdeviceptr(owner.values),
              {owner.batch, cacheRows, l.numKvHeads, l.vHeadDim});
  if (sinks.data)
    args.memref(sinksRows.ptr, {l.numHeads});
  if (kernel.derivesKeys)
    args.memref(s.keyScaleOf(l), {l.headDim});
  s.addPartialArgs(l, splits, batch, steps, args);
  args.memref(outRows.ptr, {batch, steps, l.numHeads, l.vHeadDim});
  args.memref(s.decodeCounters.ptr, {batch * steps * l.numKvHeads + 1});
  HYBRID_CUDA_TRY(s.addLengths(args, &cache, batch, sequences));
  args.scalar(owner.rows);
  // Its last splits merge the partials into the output rows, and advance
  // the lengths (the kernel is the step's last to read them).
  const std::string &decode = outRows.bf16 ? kernel.decodeBF16 : kernel.decode;
  HYBRID_CUDA_TRY(s.launch(decode, unsigned(splits),
                           unsigned(steps * l.numKvHeads), unsigned(batch),
                           unsigned(kernel.threads), args));
  if (!s.capturing)
    HYBRID_CUDA_TRY(
        s.check("cuEventRecord", d.cuEventRecord(s.events[2], s.stream)));
  s.timed(/*prepare=*/false);
  return s.finish(out, outRows, outCount, decode, wait);
}

bool Backend::prefersFlashStep(const LayerSpec &l, const KernelSpec &kernel,
                               int64_t batch, int64_t steps) const {
  const State &s = *state;
  if (s.fixedStepKernel != StepKernel::Automatic)
    return s.fixedStepKernel == StepKernel::Flash;
  return prefersFlashForGpuStep(steps, l.numHeads / l.numKvHeads,
                                batch * l.numKvHeads, kernel.qTile,
                                kernel.qTile * (l.numHeads / l.numKvHeads),
                                s.multiprocessors, !kernel.entrySplit.empty());
}

bool Backend::getMemory(size_t &free, size_t &total) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  return s.driver.cuMemGetInfo &&
         s.driver.cuMemGetInfo(&free, &total) == CUDA_SUCCESS;
}

float Backend::lastPrepareMs() {
  state->readTimes();
  return state->prepareMs;
}

float Backend::lastAttentionMs() {
  state->readTimes();
  return state->attentionMs;
}

Error Backend::setStream(void *stream, bool callerStream) {
  State &s = *state;
  s.driver.cuCtxSetCurrent(s.context);
  CUstream next = callerStream ? static_cast<CUstream>(stream) : s.own;
  bool capturing = false;
  HYBRID_CUDA_TRY(s.getCaptureStatus(next, capturing));
  // The model's work stays in call order: the new stream first waits for
  // what the calls so far queued. A capturing stream cannot wait for work
  // outside its capture; its graph's replays are ordered by the stream
  // they are launched on.
  if (next != s.stream && s.doneRecorded && !capturing)
    HYBRID_CUDA_TRY(
        s.check("making the stream wait for the model's earlier calls",
                s.driver.cuStreamWaitEvent(next, s.done, 0)));
  s.stream = next;
  s.callerStream = callerStream;
  return {};
}
const std::string &Backend::deviceName() const { return state->name; }
