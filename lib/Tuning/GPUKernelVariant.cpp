//===- GPUKernelVariant.cpp - A GPU flash kernel's variant as values ------===//

#include "hybrid/Tuning/GPUKernelVariant.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <tuple>

using namespace mlir;
using namespace hybrid;
using json = nlohmann::ordered_json;

GPUKernelVariant GPUKernelVariant::get(GPUKernelAttr attr) {
  GPUKernelVariant v;
  v.tensorCores = attr.getTensorCores();
  v.tma = attr.getTma();
  v.warps = attr.getWarps();
  v.warpRows = attr.getWarpRows();
  v.stages = attr.getStages();
  v.softmaxOverlap = attr.getSoftmaxOverlap();
  v.warpSpecialized = attr.getWarpSpecialized();
  v.pingPong = attr.getPingPong();
  v.rescaleThreshold = attr.getRescaleThreshold();
  v.minCtasPerSM = attr.getMinCtasPerSm();
  v.valueSlice = attr.getValueSlice();
  return v;
}

GPUKernelAttr GPUKernelVariant::getAttr(
    MLIRContext *context,
    llvm::function_ref<InFlightDiagnostic()> emitError) const {
  return GPUKernelAttr::getChecked(
      emitError, context, tensorCores, tma, warps, warpRows, stages,
      softmaxOverlap, warpSpecialized, pingPong, Real(rescaleThreshold),
      minCtasPerSM, valueSlice);
}

std::string GPUKernelVariant::getName() const {
  std::string name = getTensorCoresName(tensorCores).str();
  if (tma)
    name += ".tma";
  if (stages > 1)
    name += ".s" + std::to_string(stages);
  if (softmaxOverlap)
    name += ".overlap";
  if (warpSpecialized)
    name += ".ws";
  if (pingPong)
    name += ".pp";
  name += ".w" + std::to_string(warps);
  if (warpRows != 16)
    name += ".r" + std::to_string(warpRows);
  if (rescaleThreshold != 8) {
    std::string threshold;
    llvm::raw_string_ostream(threshold) << llvm::format("%g", rescaleThreshold);
    name += ".t" + threshold;
  }
  if (minCtasPerSM)
    name += ".m" + std::to_string(minCtasPerSM);
  if (valueSlice != 256)
    name += ".v" + std::to_string(valueSlice);
  return name;
}

json GPUKernelVariant::toJSON() const {
  return {{"tensor_cores", getTensorCoresName(tensorCores)},
          {"tma", tma},
          {"warps", warps},
          {"warp_rows", warpRows},
          {"stages", stages},
          {"softmax_overlap", softmaxOverlap},
          {"warp_specialized", warpSpecialized},
          {"ping_pong", pingPong},
          {"rescale_threshold", rescaleThreshold},
          {"min_ctas_per_sm", minCtasPerSM},
          {"value_slice", valueSlice}};
}

std::optional<GPUKernelVariant>
GPUKernelVariant::fromJSON(const json &object, const std::string &path,
                           std::string &error) {
  auto bad = [&](const std::string &field, const std::string &what) {
    error = path + field + ": " + what;
    return std::nullopt;
  };
  if (!object.is_object())
    return bad("", "not an object");
  for (auto &[key, value] : object.items())
    if (!llvm::is_contained({"tensor_cores", "tma", "warps", "warp_rows",
                             "stages", "softmax_overlap", "warp_specialized",
                             "ping_pong", "rescale_threshold",
                             "min_ctas_per_sm", "value_slice"},
                            key))
      return bad("." + key, "not a field of a kernel variant");
  GPUKernelVariant v;
  if (object.contains("tensor_cores")) {
    const json &name = object["tensor_cores"];
    std::optional<TensorCores> tensorCores =
        name.is_string() ? parseTensorCoresName(name.get<std::string>())
                         : std::nullopt;
    if (!tensorCores)
      return bad(".tensor_cores", "not \"mma.sync\" or \"wgmma\"");
    v.tensorCores = *tensorCores;
  }
  for (auto [key, field] : {std::pair{"tma", &v.tma},
                            std::pair{"softmax_overlap", &v.softmaxOverlap},
                            std::pair{"warp_specialized", &v.warpSpecialized},
                            std::pair{"ping_pong", &v.pingPong}})
    if (object.contains(key)) {
      if (!object[key].is_boolean())
        return bad(std::string(".") + key, "not a boolean");
      *field = object[key];
    }
  for (auto [key, field, least] :
       {std::tuple{"warps", &v.warps, 1},
        std::tuple{"warp_rows", &v.warpRows, 1},
        std::tuple{"stages", &v.stages, 1},
        std::tuple{"min_ctas_per_sm", &v.minCtasPerSM, 0},
        std::tuple{"value_slice", &v.valueSlice, 1}})
    if (object.contains(key)) {
      if (!object[key].is_number_integer() ||
          object[key].get<int64_t>() < least)
        return bad(std::string(".") + key,
                   least ? "not a positive integer" : "not an integer >= 0");
      *field = object[key];
    }
  if (object.contains("rescale_threshold")) {
    if (!object["rescale_threshold"].is_number())
      return bad(".rescale_threshold", "not a number");
    v.rescaleThreshold = object["rescale_threshold"];
  }
  return v;
}

bool GPUKernelVariant::operator==(const GPUKernelVariant &o) const {
  return tensorCores == o.tensorCores && tma == o.tma && warps == o.warps &&
         warpRows == o.warpRows && stages == o.stages &&
         softmaxOverlap == o.softmaxOverlap &&
         warpSpecialized == o.warpSpecialized && pingPong == o.pingPong &&
         rescaleThreshold == o.rescaleThreshold &&
         minCtasPerSM == o.minCtasPerSM && valueSlice == o.valueSlice;
}
