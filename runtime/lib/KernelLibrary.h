//===- KernelLibrary.h - The compiled kernels of one schedule ---*- C++ -*-===//
//
// dlopens the shared object a manifest names and resolves each kernel's C
// entry points. Kernels take MLIR's C-interface memref descriptors
// (`llvm.emit_c_interface`): {allocated, aligned, offset, sizes, strides}.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_KERNELLIBRARY_H
#define HYBRID_RT_LIB_KERNELLIBRARY_H

#include "hybrid-rt/Manifest.h"

#include <cstdint>
#include <map>
#include <string>

namespace hybrid::rt {

template <int Rank> struct MemRefDescriptor {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[Rank];
  int64_t strides[Rank];
};
using Tensor5 = MemRefDescriptor<5>;
using Tensor4 = MemRefDescriptor<4>;
using Tensor1 = MemRefDescriptor<1>;

/// A dense row-major view of `data` with `Rank` dims.
template <int Rank>
MemRefDescriptor<Rank> makeTensor(const float *data, const int64_t *shape) {
  auto *p = const_cast<float *>(data);
  MemRefDescriptor<Rank> t{p, p, 0, {}, {}};
  int64_t stride = 1;
  for (int i = Rank - 1; i >= 0; --i) {
    t.sizes[i] = shape[i];
    t.strides[i] = stride;
    stride *= shape[i];
  }
  return t;
}
inline Tensor4 makeTensor4(const float *data, const int64_t shape[4]) {
  return makeTensor<4>(data, shape);
}

/// `K_prepare_q` / `K_prepare_k`: rows [begin, end) of B*S.
using PrepareFn = void (*)(Tensor4 *in, Tensor4 *out, int64_t firstPosition,
                           int64_t begin, int64_t end);
/// `K`: queries at key positions numKeys - Sq..., key position j in row
/// (firstRow + j) % rows of k and v [B, rows, Hkv, *]; `tile` query
/// positions per work item (at most the manifest's q_tile), work items
/// [begin, end) of B * Hkv * ceil(Sq / tile).
using AttentionFn = void (*)(Tensor4 *q, Tensor4 *k, Tensor4 *v, Tensor4 *out,
                             int64_t numKeys, int64_t firstRow, int64_t tile,
                             int64_t begin, int64_t end);
using AttentionWithSinksFn = void (*)(Tensor4 *q, Tensor4 *k, Tensor4 *v,
                                      Tensor1 *sinks, Tensor4 *out,
                                      int64_t numKeys, int64_t firstRow,
                                      int64_t tile, int64_t begin, int64_t end);

/// `K_decode`: queries at `position`..., keys and values in a cache of
/// capacity rows (row = position % capacity); work items [begin, end) of
/// B * ceil(T / decode_q_tile) * numSplits (every head in each) write
/// partial results [split, B, T, Hq(, Dv)].
using DecodeFn = void (*)(Tensor4 *q, Tensor4 *k, Tensor4 *v,
                          Tensor5 *partialOut, Tensor4 *partialMax,
                          Tensor4 *partialSum, int64_t position,
                          int64_t numSplits, int64_t begin, int64_t end);
using DecodeWithSinksFn = void (*)(Tensor4 *q, Tensor4 *k, Tensor4 *v,
                                   Tensor1 *sinks, Tensor5 *partialOut,
                                   Tensor4 *partialMax, Tensor4 *partialSum,
                                   int64_t position, int64_t numSplits,
                                   int64_t begin, int64_t end);
/// `K_decode_combine`: rows [begin, end) of B * T.
/// K=V kernels' decode: k is the cached values, from which it derives the
/// keys (times `keyScale` [D], rotated).
using DecodeDerivedFn = void (*)(Tensor4 *q, Tensor4 *k, Tensor4 *v,
                                 Tensor1 *keyScale, Tensor5 *partialOut,
                                 Tensor4 *partialMax, Tensor4 *partialSum,
                                 int64_t position, int64_t numSplits,
                                 int64_t begin, int64_t end);
using DecodeDerivedWithSinksFn = void (*)(
    Tensor4 *q, Tensor4 *k, Tensor4 *v, Tensor1 *sinks, Tensor1 *keyScale,
    Tensor5 *partialOut, Tensor4 *partialMax, Tensor4 *partialSum,
    int64_t position, int64_t numSplits, int64_t begin, int64_t end);
using CombineFn = void (*)(Tensor5 *partialOut, Tensor4 *partialMax,
                           Tensor4 *partialSum, Tensor4 *out, int64_t begin,
                           int64_t end);

struct KernelEntryPoints {
  PrepareFn prepareQ = nullptr;
  PrepareFn prepareK = nullptr; // null: the layer does not rotate keys
  AttentionFn attention = nullptr;
  AttentionWithSinksFn attentionWithSinks = nullptr;
  DecodeFn decode = nullptr; // both null: no decode (bidirectional layers)
  DecodeWithSinksFn decodeWithSinks = nullptr;
  DecodeDerivedFn decodeDerived = nullptr; // K=V: one of these instead
  DecodeDerivedWithSinksFn decodeDerivedWithSinks = nullptr;
  CombineFn combine = nullptr;
  // Narrower caches (bf16, f16, f8): the flash kernel over them (one of these;
  // both null for f32 caches and K=V layers).
  AttentionFn steps = nullptr;
  AttentionWithSinksFn stepsWithSinks = nullptr;
};

class KernelLibrary {
public:
  KernelLibrary() = default;
  ~KernelLibrary();
  KernelLibrary(const KernelLibrary &) = delete;
  KernelLibrary &operator=(const KernelLibrary &) = delete;

  /// Opens manifest.dir/manifest.library and resolves every kernel.
  bool load(const Manifest &manifest, std::string &error);
  const KernelEntryPoints &get(const std::string &kernel) const {
    return kernels.at(kernel);
  }

private:
  void *handle = nullptr;
  std::map<std::string, KernelEntryPoints> kernels;
};

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_KERNELLIBRARY_H
