//===- ToolSupport.cpp - What hybrid-run and hybrid-bench share -----------===//

#include "ToolSupport.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Parallel.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <cstdlib>

using namespace hybrid;
using namespace hybrid::tools;
using namespace llvm;

Artifacts::~Artifacts() {
  if (temporary)
    (void)llvm::sys::fs::remove_directories(directory);
}

bool Artifacts::isCompiled(llvm::StringRef input) {
  return llvm::sys::fs::is_directory(input) &&
         llvm::sys::fs::exists(input + "/manifest.json");
}

bool Artifacts::prepare(llvm::StringRef input, const CompileOptions &options) {
  if (isCompiled(input)) {
    // Compiled already: a database would change nothing.
    if (!options.tuningDb.empty()) {
      llvm::WithColor::error(llvm::errs(), "hybrid")
          << "--tuning-db: " << input
          << " holds compiled artifacts; give the config or spec (or pass "
             "the database to hybrid-compile)\n";
      return false;
    }
    directory = input.str();
    return true;
  }
  llvm::SmallString<128> dir;
  if (std::error_code ec =
          llvm::sys::fs::createUniqueDirectory("hybrid-artifacts", dir)) {
    llvm::WithColor::error(llvm::errs(), "hybrid")
        << "cannot create a temporary directory: " << ec.message() << "\n";
    return false;
  }
  directory = dir.str().str();
  temporary = true;
  CompilerContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      context.load(input, options.import);
  return module && emitArtifacts(*module, options, directory);
}

/// splitmix64's output function: a well-mixed 64-bit value of `x`.
static uint64_t mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void hybrid::tools::fillNormal(MutableArrayRef<float> values, uint64_t stream) {
  // Pair p of a stream: one hash of (stream, p) gives two 32-bit uniforms,
  // Box-Muller two independent normals. Each value depends on its index
  // alone, so chunks fill in parallel and every split gives the same
  // numbers (std::normal_distribution over std::mt19937_64, before, took
  // 13 of a 64K-token hybrid-bench run's 18 s, on one thread).
  constexpr size_t kChunkPairs = 1 << 15;
  const uint64_t key = mix(stream + 0x9e3779b97f4a7c15ull);
  size_t pairs = (values.size() + 1) / 2;
  parallelFor(0, (pairs + kChunkPairs - 1) / kChunkPairs, [&](size_t chunk) {
    size_t end = std::min(pairs, (chunk + 1) * kChunkPairs);
    for (size_t p = chunk * kChunkPairs; p < end; ++p) {
      uint64_t bits = mix(key ^ (p * 0x9e3779b97f4a7c15ull));
      // u1 in (0, 1] keeps the logarithm finite; u2 in [0, 1).
      float u1 = float((bits >> 40) + 1) * 0x1p-24f;
      float u2 = float(bits & 0xffffff) * 0x1p-24f;
      float radius = std::sqrt(-2.0f * std::log(u1));
      float angle = 6.28318530717958647692f * u2;
      values[2 * p] = radius * std::cos(angle);
      if (2 * p + 1 < values.size())
        values[2 * p + 1] = radius * std::sin(angle);
    }
  });
}

const LayerInputs &InputGenerator::get(const rt::LayerSpec &layer) {
  if (auto it = made.find(layer.index); it != made.end())
    return it->second;
  LayerInputs in;
  in.qShape = {batch, seq, layer.numHeads, layer.headDim};
  in.kShape = {batch, seq, layer.numKvHeads, layer.headDim};
  in.vShape = {batch, seq, layer.numKvHeads, layer.vHeadDim};
  in.outShape = {batch, seq, layer.numHeads, layer.vHeadDim};
  // One stream per (seed, layer, tensor).
  uint64_t layerStream = (seed * 1000003 + uint64_t(layer.index)) * 4;
  auto fill = [&](std::vector<float> &x, ArrayRef<int64_t> shape,
                  uint64_t tensor) {
    x.resize(shape[0] * shape[1] * shape[2] * shape[3]);
    fillNormal(x, layerStream + tensor);
  };
  fill(in.q, in.qShape, 0);
  if (layer.sourceLayer >= 0 && layer.sourceLayer < int64_t(layers.size()) &&
      layers[layer.sourceLayer].hasKernel()) {
    const LayerInputs &from = get(layers[layer.sourceLayer]);
    in.k = from.k;
    in.v = from.v;
  } else {
    fill(in.k, in.kShape, 1);
    if (layer.kEqV)
      in.v = in.k;
    else if (layer.latent) // the first v_head_dim dims of each key
      for (int64_t row = 0; row < batch * seq * layer.numKvHeads; ++row)
        in.v.insert(in.v.end(), in.k.begin() + row * layer.headDim,
                    in.k.begin() + row * layer.headDim + layer.vHeadDim);
    else
      fill(in.v, in.vShape, 2);
  }
  if (layer.sinks) {
    in.sinks.resize(layer.numHeads);
    fillNormal(in.sinks, layerStream + 3);
  }
  return made.emplace(layer.index, std::move(in)).first->second;
}

std::string hybrid::tools::checkInputMemory(
    const std::vector<const rt::LayerSpec *> &layers, int64_t batch,
    int64_t tokens, StringRef remedy) {
  // Every layer's q, k, v and output, and the copies of one layer a run
  // makes (the slice it passes, --check's reference); in doubles, since the
  // product of options can overflow an int64_t.
  double floats = 0, largest = 0;
  for (const rt::LayerSpec *layer : layers) {
    if (!layer->hasKernel())
      continue;
    double perLayer =
        double(batch) * double(tokens) *
        double(layer->numHeads * (layer->headDim + layer->vHeadDim) +
               layer->numKvHeads * (layer->headDim + layer->vHeadDim));
    floats += perLayer;
    largest = std::max(largest, perLayer);
  }
  floats += 2 * largest;
  double needed = floats * sizeof(float);
  double held = double(hybrid_rt_host_memory_bytes());
  constexpr double gib = 1024.0 * 1024.0 * 1024.0;
  std::string why;
  if (held > 0 && needed > held) {
    why = formatv("more than the {0:f1} GiB of memory this process may use",
                  held / gib);
  } else {
    // Within memory, but a limit (ulimit -v) may still refuse it: the tools
    // are built without exceptions, so ask now rather than abort later
    // (volatile: the compiler may not fold the probe away).
    void *volatile probe = std::malloc(size_t(needed));
    if (probe) {
      std::free(probe);
      return "";
    }
    why = "which cannot be allocated";
  }
  return formatv("{0} tokens at batch {1}: the seeded inputs and outputs of "
                 "{2} layer{3} take {4:f1} GiB, {5}; lower {6}",
                 tokens, batch, layers.size(), layers.size() == 1 ? "" : "s",
                 needed / gib, why, remedy)
      .str();
}

int64_t hybrid::tools::getAllFullCacheBytes(const rt::Manifest &manifest,
                                            int64_t batch, int64_t tokens) {
  int64_t bytes = 0;
  for (const rt::LayerSpec &layer : manifest.layers)
    if (layer.hasKernel())
      bytes += batch * tokens * layer.numKvHeads *
               (layer.headDim + layer.vHeadDim) *
               manifest.getCacheElementBytes(layer.kernel);
  return bytes;
}

std::string hybrid::tools::describeCache(const rt::Manifest &manifest,
                                         int64_t bytes, int64_t batch,
                                         int64_t tokens) {
  int64_t full = getAllFullCacheBytes(manifest, batch, tokens);
  return formatv("cache: {0} bytes ({1}, batch {2}, up to {3} tokens); every "
                 "layer full: {4} bytes; this schedule needs {5:f1}% of that",
                 bytes, manifest.getCacheDtype(), batch, tokens, full,
                 full ? 100.0 * double(bytes) / double(full) : 0.0)
      .str();
}

bool hybrid::tools::writeNpy(const std::string &path, const float *data,
                             const std::vector<int64_t> &shape) {
  std::string dims;
  int64_t count = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ", ";
    count *= d;
  }
  if (shape.size() > 1)
    dims.resize(dims.size() - 1); // "(2, 3)" but "(2,)"
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n', 64-byte aligned.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::FILE *file = std::fopen(path.c_str(), "wb");
  if (!file) {
    llvm::WithColor::error(llvm::errs(), "hybrid")
        << path << ": cannot be written\n";
    return false;
  }
  uint16_t length = uint16_t(header.size());
  unsigned char lengthBytes[2] = {uint8_t(length & 0xff), uint8_t(length >> 8)};
  std::fwrite("\x93NUMPY\x01\x00", 1, 8, file);
  std::fwrite(lengthBytes, 1, 2, file);
  std::fwrite(header.data(), 1, header.size(), file);
  std::fwrite(data, sizeof(float), count, file);
  return std::fclose(file) == 0;
}

/// Positions [begin, begin + count) of `x` ([B, S, H, D]) as a tensor: in
/// place where they are contiguous (batch 1, or every position; the runtime
/// reads its inputs only), else copied into `copy`. (Copying a 64K-token
/// prompt's q, k and v cost 0.8 GB of new pages.)
static hybrid_rt_tensor viewPositions(const std::vector<float> &x,
                                      const std::array<int64_t, 4> &shape,
                                      int64_t begin, int64_t count,
                                      std::vector<float> &copy) {
  std::array<int64_t, 4> part = {shape[0], count, shape[2], shape[3]};
  if (shape[0] == 1 || count == shape[1])
    return rt::view(x.data() + begin * shape[2] * shape[3], part);
  copy = slicePositions(x, shape, begin, count);
  return rt::view(copy.data(), part);
}

LayerSlice::LayerSlice(const rt::LayerSpec &layer, const LayerInputs &in,
                       int64_t begin, int64_t count)
    : out(in.outShape[0] * count * in.outShape[2] * in.outShape[3]) {
  q = viewPositions(in.q, in.qShape, begin, count, qData);
  k = viewPositions(in.k, in.kShape, begin, count, kData);
  // K=V layers' values are their k itself; latent layers' k's first dims,
  // for which they take k too.
  v = layer.kEqV || layer.latent
          ? k
          : viewPositions(in.v, in.vShape, begin, count, vData);
  o = rt::view(out.data(),
               {in.outShape[0], count, in.outShape[2], in.outShape[3]});
  sinks = rt::view(in.sinks.data(), layer.numHeads);
  sinksOrNull = layer.sinks ? &sinks : nullptr;
}

std::vector<float>
hybrid::tools::slicePositions(const std::vector<float> &x,
                              const std::array<int64_t, 4> &shape,
                              int64_t begin, int64_t count) {
  int64_t row = shape[2] * shape[3];
  std::vector<float> part(shape[0] * count * row);
  for (int64_t b = 0; b < shape[0]; ++b)
    std::copy_n(&x[(b * shape[1] + begin) * row], count * row,
                &part[b * count * row]);
  return part;
}

void hybrid::tools::storePositions(std::vector<float> &x,
                                   const std::array<int64_t, 4> &shape,
                                   const std::vector<float> &part,
                                   int64_t begin, int64_t count) {
  int64_t row = shape[2] * shape[3];
  for (int64_t b = 0; b < shape[0]; ++b)
    std::copy_n(&part[b * count * row], count * row,
                &x[(b * shape[1] + begin) * row]);
}

double hybrid::tools::getCallMs(rt::Model &model,
                                std::chrono::steady_clock::time_point start) {
  std::chrono::duration<double, std::milli> host =
      std::chrono::steady_clock::now() - start;
  hybrid_rt_device_time device;
  if (hybrid_rt_device_time_get(model.get(), &device) == HYBRID_RT_OK)
    return device.attention_ms;
  return host.count();
}
