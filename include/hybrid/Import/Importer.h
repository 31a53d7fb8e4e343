//===- Importer.h - Model descriptions to ModelSpec -------------*- C++ -*-===//
//
// Front end of the compiler: reads a Hugging Face `config.json` or the
// project's own schedule spec (docs/ScheduleSpec.md) and produces a plain
// ModelSpec. Every failure is one llvm::Error whose message names the file,
// the JSON field path and, for syntax errors, the line and column.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_IMPORT_IMPORTER_H
#define HYBRID_IMPORT_IMPORTER_H

#include "hybrid/Import/ModelSpec.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <nlohmann/json_fwd.hpp>

namespace hybrid::spec {

/// Choices a Hugging Face config leaves to the engine.
struct ImportOptions {
  /// Multi-head latent attention (DeepSeek V2/V3 and their descendants) in
  /// the absorbed form: one KV head of kv_lora_rank + qk_rope_head_dim dims
  /// whose first kv_lora_rank are the values, kept in a latent cache (the
  /// caller absorbs W_UK into the queries and W_UV into the outputs). Else
  /// decompressed per head, as transformers' attention modules compute it.
  bool latentMla = false;
};

/// Imports a Hugging Face config.json (model_type-driven) or the project's own
/// spec (recognised by "format": "hybrid-schedule"). fileName is used only in
/// messages.
llvm::Expected<ModelSpec> importModel(llvm::StringRef jsonText,
                                      llvm::StringRef fileName,
                                      const ImportOptions &options = {});

/// Imports a parsed Hugging Face config. Multimodal configs are read through
/// their `text_config`. A config without `max_position_embeddings` yields
/// maxPositionEmbeddings = 0: the caller must then ask for `--max-seq`.
llvm::Expected<ModelSpec> importHFConfig(const nlohmann::json &config,
                                         llvm::StringRef fileName,
                                         const ImportOptions &options = {});

/// Imports a parsed schedule spec (`"format": "hybrid-schedule"`).
llvm::Expected<ModelSpec> importScheduleSpec(const nlohmann::json &spec,
                                             llvm::StringRef fileName);

} // namespace hybrid::spec

#endif // HYBRID_IMPORT_IMPORTER_H
