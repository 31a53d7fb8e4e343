//===- Manifest.cpp - What the runtime needs to run compiled kernels -----===//

#include "hybrid/Export/Manifest.h"
#include "hybrid/Export/Summary.h"
#include "hybrid/Tuning/GPUKernelVariant.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace hybrid;
using json = nlohmann::ordered_json;

/// The C entry point `llvm.emit_c_interface` gives `symbol`.
static std::string entryPoint(StringRef symbol) {
  return ("_mlir_ciface_" + symbol).str();
}

json hybrid::buildManifest(ModuleOp module, ScheduleOp schedule,
                           StringRef library, StringRef target) {
  json summary = buildSummary(schedule);
  json kernels = json::object();
  // CPU kernels are C-interface functions of the module; GPU kernels are
  // PTX entries of its gpu.module.
  Operation *scope = module;
  for (auto kernels : module.getOps<gpu::GPUModuleOp>())
    scope = kernels;
  bool onGPU = scope != module.getOperation();
  SymbolTable symbols(scope);
  auto entry = [&](const std::string &symbol) -> json {
    if (!symbols.lookup(symbol))
      return nullptr;
    return onGPU ? symbol : entryPoint(symbol);
  };
  for (json &layer : summary["layers"]) {
    if (!layer.contains("kernel")) {
      layer["kernel"] = nullptr;
      continue;
    }
    std::string symbol = layer["kernel"];
    if (kernels.contains(symbol))
      continue;
    Operation *func = symbols.lookup(symbol);
    auto tile = [&](StringRef name) {
      auto attr = func->getAttrOfType<IntegerAttr>(name);
      return attr ? attr.getInt() : 0;
    };
    Operation *decode = symbols.lookup(symbol + "_decode");
    kernels[symbol] = {
        {"entry", entry(symbol)},
        {"prepare_q", entry(symbol + "_prepare_q")},
        {"prepare_k", entry(symbol + "_prepare_k")},
        {"num_heads", layer["num_heads"]},
        {"num_kv_heads", layer["num_kv_heads"]},
        {"head_dim", layer["head_dim"]},
        {"v_head_dim", layer["v_head_dim"]},
        {"sinks", layer["sinks"]},
        {"window", layer["window"]},
        {"chunk", layer["chunk"]},
        {"causal", layer["causal"]},
        {"q_tile", tile("hybrid.q_tile")},
        {"k_tile", tile("hybrid.k_tile")},
        {"decode", entry(symbol + "_decode")},
        {"decode_combine", entry(symbol + "_decode_combine")},
        {"decode_q_tile",
         decode ? decode->getAttrOfType<IntegerAttr>("hybrid.q_tile").getInt()
                : 0}};
    if (decode && decode->hasAttr(kKEqVAttrName))
      kernels[symbol]["derives_keys"] = true;
    if (func->hasAttr(kLatentAttrName))
      kernels[symbol]["values_in_keys"] = true;
    if (!onGPU && decode) {
      // The element type of the caches the decode kernel reads (its k), and
      // for narrower ones the flash kernel over them (null: steps of many
      // tokens over an f32 cache run the prompt's kernel, `entry`).
      Type cache =
          cast<MemRefType>(cast<func::FuncOp>(decode).getArgumentTypes()[1])
              .getElementType();
      kernels[symbol]["cache_dtype"] = cache.isF32()    ? "f32"
                                       : cache.isBF16() ? "bf16"
                                       : cache.isF16()  ? "f16"
                                                        : "f8";
      kernels[symbol]["steps"] = entry(symbol + "_steps");
    }
    if (onGPU) {
      json &kernel = kernels[symbol];
      kernel["prepare_v"] = entry(symbol + "_prepare_v");
      // bf16 operands go to these as they are (values: copied).
      kernel["prepare_q_bf16"] = entry(symbol + "_prepare_q_bf16");
      kernel["prepare_k_bf16"] = entry(symbol + "_prepare_k_bf16");
      // bf16 outputs: the flash kernel's twin writing bf16 rows.
      kernel["entry_out_bf16"] = entry(symbol + "_out_bf16");
      // Causal layers: the flash kernel's split-K twin, writing partials for
      // decode_combine (null: none).
      kernel["entry_split"] = entry(symbol + "_split");
      // Causal layers: a session step's queries, keys and values prepared
      // (the keys and values into the cache) in one kernel, from f32 or
      // bf16 rows; the combine kernel's twin writing bf16 rows.
      kernel["prepare_step"] = entry(symbol + "_prepare_step");
      kernel["prepare_step_bf16"] = entry(symbol + "_prepare_step_bf16");
      kernel["decode_combine_bf16"] = entry(symbol + "_decode_combine_bf16");
      // Causal layers: the decode kernel's twin writing bf16 rows (GPU
      // decode kernels merge their splits themselves: decode_combine, and
      // its twin, merge the split-K flash kernel's).
      kernel["decode_bf16"] = entry(symbol + "_decode_bf16");
      // K=V layers (derives_keys): keys derived from a value cache range
      // for flash steps.
      if (kernel.contains("derives_keys"))
        kernel["derive_kv"] = entry(symbol + "_derive_kv");
      // The flash kernel's CTA may be larger than the others' (--warps 8).
      auto threads = [&](StringRef name) {
        return cast<gpu::GPUFuncOp>(symbols.lookup(name))
            .getKnownBlockSizeAttr()[0];
      };
      kernel["threads"] = threads(symbol + "_prepare_q");
      kernel["flash_threads"] = threads(symbol);
      // Dynamic shared memory the flash kernel launches with.
      kernel["shared_bytes"] = tile("hybrid.shared_bytes");
      kernel["value_slices"] = tile("hybrid.value_slices");
      // The flash kernel takes K and V tensor maps (TMA) after its memrefs.
      if (func->hasAttr("hybrid.tma"))
        kernel["tma"] = true;
      // How it was built: a tuning database's "gpu" object (docs/Tuning.md).
      if (auto variant =
              func->getAttrOfType<GPUKernelAttr>("hybrid.gpu_kernel"))
        kernel["gpu_kernel"] = GPUKernelVariant::get(variant).toJSON();
    }
  }
  // Version 2: CPU flash kernels take their query positions per work item;
  // 3: a CPU decode work item covers every kv head and decode_q_tile
  // positions; 4: CPU flash kernels take the key count and the first key's
  // row (ring caches); 5: so do GPU flash kernels, with the ring's rows, and
  // GPU decode kernels take the ring's rows (caches hold mirror rows); 6:
  // each kernel states its mask (window, chunk, causal); 7: TMA flash
  // kernels take their tensor maps by value; 8: GPU prepare and decode
  // kernels read the first position from a device length, and the cache
  // kernels store rows and advance it; 9: GPU combine kernels advance it
  // too (they take the length and a count); 10: K=V layers have kernels of
  // their own, whose CPU decode kernel derives keys from cached values; 11:
  // so does their GPU decode kernel (derive_kv for flash steps); 13: CPU
  // kernels state their caches' element type (cache_dtype: f32, bf16 or,
  // since, f16 and f8), and narrow ones come with a flash kernel over them
  // (steps).
  json manifest = {{"version", 15},
                   {"target", target.str()},
                   {"library", library.str()},
                   {"model_type", summary["model_type"]},
                   {"name", summary["name"]},
                   {"num_layers", summary["num_layers"]},
                   {"kernels", std::move(kernels)},
                   {"layers", std::move(summary["layers"])}};
  // GPU modules carry elementwise conversions for bf16 tensors at the API,
  // and the kernels that keep sessions' caches and lengths: each a table of
  // kernel names by role.
  for (auto [attr, key] : {std::pair{"hybrid.conversions", "conversions"},
                           {"hybrid.cache_kernels", "cache_kernels"}}) {
    auto roles = scope->getAttrOfType<DictionaryAttr>(attr);
    if (!roles)
      continue;
    json table = json::object();
    for (NamedAttribute entry : roles)
      table[entry.getName().str()] =
          cast<StringAttr>(entry.getValue()).getValue().str();
    manifest[key] = std::move(table);
  }
  if (summary.contains("kv_cache_bytes"))
    manifest["kv_cache_bytes"] = std::move(summary["kv_cache_bytes"]);
  return manifest;
}
