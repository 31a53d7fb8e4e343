//===- hybrid-import-fuzzer.cpp - libFuzzer entry for the importers -------===//
//
// Feeds arbitrary bytes to importModel. Besides crashes and sanitizer reports,
// it traps when an accepted model breaks an invariant the rest of the
// compiler relies on, so "imported but nonsensical" counts as a finding too.
// Built and run by utils/run-fuzzer.sh.
//
//===----------------------------------------------------------------------===//

#include "hybrid/Import/Importer.h"

#include <cmath>
#include <cstddef>
#include <cstdint>

using namespace hybrid::spec;

static void check(bool condition) {
  if (!condition)
    __builtin_trap();
}

static void checkLayer(const ModelSpec &spec, size_t index) {
  const LayerSpec &layer = spec.layers[index];
  bool headed = attends(layer.kind) ||
                (layer.kind == LayerKind::Linear && layer.numHeads > 0);
  if (headed) {
    check(layer.numHeads > 0 && layer.numKVHeads > 0);
    check(layer.numHeads % layer.numKVHeads == 0);
    check(layer.headDim > 0 && layer.vHeadDim > 0);
    check(std::isfinite(layer.scale) && layer.scale > 0);
  }
  if (!hasHeads(layer.kind))
    check(layer.numHeads == 0 && layer.headDim == 0);
  if (layer.kind == LayerKind::Sliding)
    check(layer.mask.kind == MaskKind::SlidingWindow && layer.mask.window &&
          *layer.mask.window > 0);
  if (layer.kind == LayerKind::Chunked)
    check(layer.mask.kind == MaskKind::Chunked && layer.mask.chunk &&
          *layer.mask.chunk > 0);
  const Positional &pos = layer.positional;
  if (pos.kind != PositionalKind::None) {
    check(std::isfinite(pos.theta) && pos.theta > 0);
    check(layer.headDim > 0 && layer.headDim % 2 == 0);
  }
  if (pos.kind == PositionalKind::Partial)
    check(pos.rotaryDim && *pos.rotaryDim > 0 && *pos.rotaryDim % 2 == 0 &&
          *pos.rotaryDim < layer.headDim);
  if (pos.kind == PositionalKind::Proportional)
    check(pos.fraction && *pos.fraction > 0 && *pos.fraction <= 1);
  if (pos.scaling)
    check(std::isfinite(pos.scaling->factor) && pos.scaling->factor > 0);
  if (layer.softcap)
    check(std::isfinite(*layer.softcap) && *layer.softcap > 0);
  if (layer.sharedSource) {
    check(*layer.sharedSource >= 0 &&
          static_cast<size_t>(*layer.sharedSource) < index);
    check(!spec.layers[*layer.sharedSource].sharedSource);
  }
  check(hasState(layer.kind) == layer.state.has_value());
  if (layer.state)
    check(layer.state->recurrentElements >= 0 &&
          layer.state->convElements >= 0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<ModelSpec> spec = importModel(text, "fuzz.json");
  if (!spec) {
    std::string message = llvm::toString(spec.takeError());
    // One message, naming the file, never empty.
    check(llvm::StringRef(message).starts_with("fuzz.json"));
    return 0;
  }
  check(!spec->layers.empty() && spec->layers.size() <= (1u << 16));
  check(!spec->name.empty());
  for (size_t i = 0; i < spec->layers.size(); ++i)
    checkLayer(*spec, i);
  return 0;
}
