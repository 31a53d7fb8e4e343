//===- ManifestTest.cpp - Reading manifests and counting mask pairs -------===//

#include "hybrid-rt/Manifest.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

using namespace hybrid::rt;

namespace {
/// loadManifest of `text` as a directory's manifest.json (a fresh
/// directory, removed afterwards).
bool loadText(const std::string &text, Manifest &manifest, std::string &error) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / "hybrid-rt-test-XXXXXX";
  std::string pattern = dir.string();
  if (!mkdtemp(pattern.data())) {
    error = "cannot create a directory in " + dir.parent_path().string();
    return false;
  }
  std::ofstream(pattern + "/manifest.json") << text;
  bool loaded = loadManifest(pattern, manifest, error);
  std::filesystem::remove_all(pattern);
  return loaded;
}

const char *kValid = R"({
  "version": 15, "target": "cpu", "library": "libkernels.so",
  "model_type": "test", "name": "t", "num_layers": 2,
  "kernels": {"attn0": {"entry": "_mlir_ciface_attn0",
    "prepare_q": "_mlir_ciface_attn0_prepare_q", "prepare_k": null,
    "num_heads": 4, "num_kv_heads": 2, "head_dim": 64, "v_head_dim": 64,
    "sinks": false, "window": 5, "chunk": null, "causal": true,
    "q_tile": 16, "k_tile": 64}},
  "resources": {"_mlir_ciface_attn0": {"registers": 168, "stack_bytes": 0,
    "spill_store_bytes": 8, "spill_load_bytes": 4,
    "static_shared_bytes": 0}},
  "layers": [
    {"index": 0, "kind": "sliding", "window": 5, "chunk": null,
     "causal": true, "num_heads": 4, "num_kv_heads": 2, "head_dim": 64,
     "v_head_dim": 64, "scale": 0.125, "softcap": null, "sinks": false,
     "temperature_tuning": null, "positional": {"type": "none"},
     "cache": {"policy": "ring", "source_layer": null, "k_eq_v": false},
     "kernel": "attn0"},
    {"index": 1, "kind": "mamba", "kernel": null}
  ]})";
} // namespace

TEST(Manifest, ReadsLayersAndKernels) {
  Manifest m;
  std::string error;
  ASSERT_TRUE(loadText(kValid, m, error)) << error;
  ASSERT_EQ(m.layers.size(), 2u);
  EXPECT_EQ(m.layers[0].window, 5);
  EXPECT_EQ(m.layers[0].cachePolicy, "ring");
  EXPECT_FALSE(m.layers[1].hasKernel());
  EXPECT_EQ(m.kernels.at("attn0").qTile, 16);
  EXPECT_TRUE(m.kernels.at("attn0").prepareK.empty());
  const FunctionResources &r = m.resources.at("_mlir_ciface_attn0");
  EXPECT_EQ(r.registers, 168);
  EXPECT_EQ(r.spillStoreBytes, 8);
  EXPECT_EQ(r.spillLoadBytes, 4);
}

TEST(Manifest, ErrorsNameTheField) {
  struct Case {
    std::string from, to, message;
  } cases[] = {
      {"\"v_head_dim\": 64, \"scale\"", "\"v_head_dim\": \"x\", \"scale\"",
       "layers[0].v_head_dim: expected an integer"},
      {"\"sliding\", \"window\": 5", "\"sliding\", \"window\": 5.5",
       "layers[0].window: expected an integer"},
      {"\"version\": 15", "\"version\": 14",
       "version: this runtime reads version 15, not 14 (artifacts of an older "
       "hybrid-compile: compile them again)"},
      {"\"version\": 15", "\"version\": 16",
       "version: this runtime reads version 15, not 16"},
      {"\"kernel\": \"attn0\"", "\"kernel\": \"attn9\"",
       "layers[0].kernel: 'attn9' is not in kernels"},
      {"{\"type\": \"none\"}",
       "{\"type\": \"partial\", \"theta\": 10000, \"rotary_dim\": -16}",
       "layers[0].positional.rotary_dim: must be even, 0 to head_dim (64)"},
      {"{\"type\": \"none\"}", "{\"type\": \"rope\", \"theta\": 0}",
       "layers[0].positional.theta: must be positive"},
      {"{\"type\": \"none\"}", "{\"type\": \"alibi\"}",
       "layers[0].positional.type: unknown positional type 'alibi'"},
      {"\"q_tile\": 16", "\"q_tile\": 0", "kernels.attn0.q_tile"},
      {"\"k_tile\": 64}", "\"k_tile\": 64, \"derives_keys\": true}",
       "kernels.attn0.derives_keys: only a decode kernel derives keys"},
      {"\"k_tile\": 64}", "\"k_tile\": 64, \"derive_kv\": \"d\"}",
       "kernels.attn0.derive_kv: only a kernel that derives keys "
       "(derives_keys) has it"},
      {"\"k_tile\": 64}", "\"k_tile\": 64, \"cache_dtype\": \"f64\"}",
       "kernels.attn0.cache_dtype: must be f32, bf16, f16 or f8, not 'f64'"},
      {"\"k_tile\": 64}", "\"k_tile\": 64, \"steps\": \"s\"}",
       "kernels.attn0.steps: only kernels of bf16, f16 or f8 caches that "
       "store keys have their own flash kernel for steps"},
      {"\"k_tile\": 64}",
       "\"k_tile\": 64, \"decode\": \"d\", \"decode_combine\": \"c\", "
       "\"decode_q_tile\": 8, \"cache_dtype\": \"bf16\"}",
       "kernels.attn0.steps: a kernel of bf16 caches needs the flash kernel "
       "over them for steps of many tokens"},
      {"\"k_tile\": 64}",
       "\"k_tile\": 64, \"decode\": \"d\", \"decode_combine\": \"c\", "
       "\"decode_q_tile\": 8, \"cache_dtype\": \"f8\"}",
       "kernels.attn0.steps: a kernel of f8 caches needs the flash kernel "
       "over them for steps of many tokens"},
      {"\"head_dim\": 64,\n     \"v_head_dim\": 64, \"scale\"",
       "\"head_dim\": 0,\n     \"v_head_dim\": 64, \"scale\"",
       "layers[0].head_dim: must be positive"},
      {"\"sliding\", \"window\": 5", "\"sliding\", \"window\": -5",
       "layers[0].window: must be positive or null"},
      // The kernel keeps the window it was compiled for; the ring would not.
      {"\"sliding\", \"window\": 5", "\"sliding\", \"window\": 3",
       "layers[0].kernel: the mask differs from kernels.attn0's"},
      {"\"policy\": \"ring\"", "\"policy\": \"circular\"",
       "layers[0].cache.policy: unknown policy 'circular'"},
      {"\"policy\": \"ring\"", "\"policy\": \"chunk\"",
       "layers[0].cache.policy: a chunk cache needs a causal chunked mask"},
      {"\"policy\": \"ring\"", "\"policy\": \"none\"",
       "layers[0].cache.policy: an attention layer needs a cache, got none"},
      {"\"policy\": \"ring\", \"source_layer\": null",
       "\"policy\": \"shared\", \"source_layer\": 0",
       "layers[0].cache.source_layer: must name an earlier layer"},
      {"\"source_layer\": null", "\"source_layer\": 0",
       "layers[0].cache.source_layer: only a shared cache has one"},
      {"\"registers\": 168", "\"registers\": \"many\"",
       "resources._mlir_ciface_attn0.registers: expected an integer"},
      {"\"causal\": true, \"num_heads\": 4, \"num_kv_heads\": 2",
       "\"causal\": true, \"num_heads\": 4, \"num_kv_heads\": 3",
       "layers[0].num_kv_heads: must divide num_heads"},
  };
  for (const Case &c : cases) {
    std::string text = kValid;
    size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    Manifest m;
    std::string error;
    EXPECT_FALSE(loadText(text, m, error)) << c.to;
    EXPECT_NE(error.find(c.message), std::string::npos) << error;
  }
  Manifest m;
  std::string error;
  EXPECT_FALSE(loadText("{\"version\": ", m, error));
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  EXPECT_FALSE(loadManifest("/nonexistent", m, error));
  EXPECT_NE(error.find("cannot be read"), std::string::npos) << error;
}

TEST(Manifest, GPUKernelsNeedLaunchFields) {
  auto replaced = [](std::string text, const std::string &from,
                     const std::string &to) {
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  std::string gpu = replaced(kValid, "\"cpu\"", "\"cuda:sm_90a\"");
  std::string withFields =
      replaced(gpu, "\"k_tile\": 64",
               "\"k_tile\": 64, \"prepare_v\": \"attn0_prepare_v\", "
               "\"threads\": 128, \"value_slices\": 2");
  Manifest m;
  std::string error;
  ASSERT_TRUE(loadText(withFields, m, error)) << error;
  EXPECT_EQ(m.kernels.at("attn0").threads, 128);
  // Artifacts from before flash_threads launch every kernel alike.
  EXPECT_EQ(m.kernels.at("attn0").flashThreads, 128);
  EXPECT_EQ(m.kernels.at("attn0").valueSlices, 2);
  std::string eightWarps = replaced(withFields, "\"threads\": 128",
                                    "\"threads\": 128, \"flash_threads\": 256");
  ASSERT_TRUE(loadText(eightWarps, m, error)) << error;
  EXPECT_EQ(m.kernels.at("attn0").flashThreads, 256);
  // Each text is refused with an error naming the field.
  auto expectRefused = [&](const std::string &text,
                           const std::string &message) {
    EXPECT_FALSE(loadText(text, m, error));
    EXPECT_NE(error.find(message), std::string::npos) << error;
  };
  expectRefused(replaced(withFields, "\"threads\": 128",
                         "\"threads\": 128, \"flash_threads\": 100"),
                "kernels.attn0.flash_threads: must be a positive multiple of "
                "32");
  expectRefused(replaced(withFields, "\"threads\": 128",
                         "\"threads\": 128, \"shared_bytes\": -1"),
                "kernels.attn0.shared_bytes: must be 0 to 2^30");
  expectRefused(gpu, "kernels.attn0.threads: a GPU kernel needs a positive "
                     "block size");
  expectRefused(
      replaced(withFields, "\"value_slices\": 2", "\"value_slices\": 3"),
      "kernels.attn0.value_slices: must be a positive divisor of v_head_dim");
  // A split-K twin writes partials only the decode combine kernel merges.
  expectRefused(replaced(withFields, "\"threads\": 128",
                         "\"threads\": 128, \"entry_split\": "
                         "\"attn0_split\""),
                "kernels.attn0.entry_split: a split-K flash kernel needs "
                "decode_combine");
  // Step kernels store a decode step's rows: a layer without decode has
  // no steps.
  expectRefused(replaced(withFields, "\"threads\": 128",
                         "\"threads\": 128, \"prepare_step\": "
                         "\"attn0_prepare_step\""),
                "kernels.attn0.prepare_step: step kernels belong to layers "
                "with a decode kernel");
  expectRefused(replaced(withFields, "\"threads\": 128",
                         "\"threads\": 128, \"decode_combine_bf16\": "
                         "\"attn0_decode_combine_bf16\""),
                "kernels.attn0.decode_combine_bf16: step kernels belong to "
                "layers with a decode kernel");
  expectRefused(replaced(withFields, "\"threads\": 128",
                         "\"threads\": 128, \"decode_bf16\": "
                         "\"attn0_decode_bf16\""),
                "kernels.attn0.decode_bf16: step kernels belong to layers "
                "with a decode kernel");
}

// A shared layer reads an earlier layer's cache as its own.
TEST(Manifest, SharedCachesReadACacheOfTheirShape) {
  // Layer 2 reads `source`'s cache; `edit` changes it (and the kernels).
  auto withReader =
      [](int64_t source,
         const std::function<void(nlohmann::json &, nlohmann::json &)> &edit) {
        nlohmann::json manifest = nlohmann::json::parse(kValid);
        nlohmann::json reader = manifest["layers"][0];
        reader["index"] = 2;
        reader["cache"]["policy"] = "shared";
        reader["cache"]["source_layer"] = source;
        edit(reader, manifest["kernels"]);
        manifest["layers"].push_back(reader);
        return manifest.dump();
      };
  auto same = [](nlohmann::json &, nlohmann::json &) {};
  Manifest m;
  std::string error;
  ASSERT_TRUE(loadText(withReader(0, same), m, error)) << error;
  EXPECT_EQ(m.layers[2].cachePolicy, "shared");
  EXPECT_EQ(m.layers[2].sourceLayer, 0);
  auto expectRefused = [&](const std::string &text,
                           const std::string &message) {
    EXPECT_FALSE(loadText(text, m, error));
    EXPECT_NE(error.find("layers[2].cache.source_layer: " + message),
              std::string::npos)
        << error;
  };
  expectRefused(withReader(1, same), "layer 1 stores no cache of its own");
  // A K=V reader (on a kernel deriving keys) of a cache with keys.
  expectRefused(withReader(0,
                           [](nlohmann::json &reader, nlohmann::json &kernels) {
                             nlohmann::json &k = kernels["attn1"];
                             k = kernels["attn0"];
                             k["decode"] = "_mlir_ciface_attn1_decode";
                             k["decode_combine"] = "_mlir_ciface_attn1_combine";
                             k["decode_q_tile"] = 1;
                             k["derives_keys"] = true;
                             reader["cache"]["k_eq_v"] = true;
                             reader["kernel"] = "attn1";
                           }),
                "layer 0 caches keys and values of another shape");
  // A wider window than the source's ring keeps (on a kernel of its own).
  expectRefused(withReader(0,
                           [](nlohmann::json &reader, nlohmann::json &kernels) {
                             kernels["attn1"] = kernels["attn0"];
                             kernels["attn1"]["window"] = 6;
                             reader["window"] = 6;
                             reader["kernel"] = "attn1";
                           }),
                "layer 0 has another mask");
}

// Caches of K=V layers keep values only: a decode kernel reading their keys
// would read nothing, one deriving them must belong to a K=V layer.
TEST(Manifest, KEqVDecodeKernelsDeriveKeys) {
  auto edited = [](bool kEqV, bool derivesKeys) {
    nlohmann::json manifest = nlohmann::json::parse(kValid);
    nlohmann::json &kernel = manifest["kernels"]["attn0"];
    kernel["decode"] = "_mlir_ciface_attn0_decode";
    kernel["decode_combine"] = "_mlir_ciface_attn0_decode_combine";
    kernel["decode_q_tile"] = 1;
    kernel["derives_keys"] = derivesKeys;
    manifest["layers"][0]["cache"]["k_eq_v"] = kEqV;
    return manifest.dump();
  };
  Manifest m;
  std::string error;
  EXPECT_TRUE(loadText(edited(true, true), m, error)) << error;
  EXPECT_TRUE(loadText(edited(false, false), m, error)) << error;
  EXPECT_FALSE(loadText(edited(true, false), m, error));
  EXPECT_NE(error.find("layers[0].kernel: kernels.attn0 reads cached keys, "
                       "but the layer's cache keeps values only (k_eq_v)"),
            std::string::npos)
      << error;
  EXPECT_FALSE(loadText(edited(false, true), m, error));
  EXPECT_NE(error.find("layers[0].kernel: kernels.attn0 derives keys from "
                       "values, but the layer caches its keys"),
            std::string::npos)
      << error;
}

// The closed-form pair count agrees with counting visible() one by one.
TEST(Manifest, VisiblePairsMatchTheMask) {
  for (bool causal : {true, false})
    for (auto [window, chunk] : {std::pair<int64_t, int64_t>{0, 0},
                                 {1, 0},
                                 {7, 0},
                                 {0, 1},
                                 {0, 5},
                                 {0, 64}})
      for (auto [nq, nk] : {std::pair<int64_t, int64_t>{1, 1},
                            {7, 7},
                            {1, 50},
                            {13, 40},
                            {203, 203}}) {
        LayerSpec l;
        l.causal = causal;
        l.window = window;
        l.chunk = chunk;
        int64_t expected = 0;
        for (int64_t pq = nk - nq; pq < nk; ++pq)
          for (int64_t pk = 0; pk < nk; ++pk)
            expected += l.visible(pq, pk);
        EXPECT_EQ(l.countVisiblePairs(nq, nk), expected)
            << causal << " w" << window << " c" << chunk << " " << nq << "/"
            << nk;
      }
}

// Latent layers keep keys only: their kernels must read the values from the
// keys' rows, and only theirs do.
TEST(Manifest, LatentKernelsReadValuesFromKeys) {
  auto edited = [](bool latent, bool valuesInKeys) {
    nlohmann::json manifest = nlohmann::json::parse(kValid);
    manifest["kernels"]["attn0"]["values_in_keys"] = valuesInKeys;
    manifest["layers"][0]["cache"]["latent"] = latent;
    return manifest.dump();
  };
  Manifest m;
  std::string error;
  EXPECT_TRUE(loadText(edited(true, true), m, error)) << error;
  EXPECT_TRUE(m.layers[0].latent);
  EXPECT_TRUE(m.kernels.at("attn0").valuesInKeys);
  EXPECT_FALSE(loadText(edited(true, false), m, error));
  EXPECT_NE(error.find("layers[0].kernel: kernels.attn0 reads cached values, "
                       "but the layer's cache keeps keys only (latent)"),
            std::string::npos)
      << error;
  EXPECT_FALSE(loadText(edited(false, true), m, error));
  EXPECT_NE(error.find("layers[0].kernel: kernels.attn0 reads values from "
                       "the keys, but the layer caches its values"),
            std::string::npos)
      << error;
  nlohmann::json both = nlohmann::json::parse(edited(true, true));
  both["layers"][0]["cache"]["k_eq_v"] = true;
  EXPECT_FALSE(loadText(both.dump(), m, error));
  EXPECT_NE(error.find("layers[0].cache.latent: needs v_head_dim at most "
                       "head_dim, and no k_eq_v"),
            std::string::npos)
      << error;
}
