//===- ScheduleSpecTest.cpp - Tests of the schedule spec importer ---------===//
//
// The project's own "hybrid-schedule" format: the examples, scope
// resolution, and every validation rule of docs/ScheduleSpec.md.
//
//===----------------------------------------------------------------------===//

#include "ImporterTestUtil.h"

#include <nlohmann/json.hpp>

using namespace hybrid::spec;
using namespace hybrid::spec::testing;

namespace {

//===----------------------------------------------------------------------===//
// The schedule spec format.
//===----------------------------------------------------------------------===//

TEST(Spec, GemmaStyleExample) {
  LOAD_FILE(spec, examplesDir(), "gemma3-style-pattern.json");
  EXPECT_EQ(spec->modelType, "spec");
  EXPECT_EQ(spec->name, "gemma3_style_1b");
  EXPECT_EQ(spec->hiddenSize, 1152);
  ASSERT_EQ(spec->layers.size(), 26u);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full),
            (std::vector<int64_t>{5, 11, 17, 23}));
  EXPECT_EQ(spec->layers[25].mask.window, 512);
  EXPECT_DOUBLE_EQ(spec->layers[23].positional.theta, 1e6);
  EXPECT_DOUBLE_EQ(spec->layers[0].scale, 0.0625);
}

TEST(Spec, NoPEGlobalExample) {
  LOAD_FILE(spec, examplesDir(), "nope-global-hybrid.json");
  ASSERT_EQ(spec->layers.size(), 24u);
  for (int i = 0; i < 24; ++i) {
    bool global = i % 4 == 3;
    EXPECT_EQ(spec->layers[i].positional.kind,
              global ? PositionalKind::None : PositionalKind::Rope);
    if (!global)
      EXPECT_EQ(spec->layers[i].mask.window, 128);
  }
}

TEST(Spec, FeatureTourExample) {
  LOAD_FILE(spec, examplesDir(), "feature-tour.json");
  ASSERT_EQ(spec->layers.size(), 7u);
  EXPECT_TRUE(spec->layers[0].sinks);
  EXPECT_EQ(spec->layers[0].softcap, 50.0);
  EXPECT_EQ(spec->layers[0].positional.scaling->kind, RopeScalingKind::Yarn);
  EXPECT_EQ(spec->layers[1].mask.chunk, 8192);
  EXPECT_EQ(spec->layers[1].positional.rotaryDim, 64);
  ASSERT_TRUE(spec->layers[2].temperature);
  EXPECT_TRUE(spec->layers[3].kEqV);
  EXPECT_EQ(spec->layers[3].positional.kind, PositionalKind::Proportional);
  EXPECT_EQ(spec->layers[4].kind, LayerKind::Mamba);
  EXPECT_EQ(spec->layers[4].numHeads, 0);
  EXPECT_EQ(spec->layers[4].state->convElements, 25600);
  EXPECT_EQ(spec->layers[5].sharedSource, 0);
  EXPECT_EQ(spec->layers[6].sharedSource, 3);
}

TEST(Spec, ScopesResolveInnermostFirst) {
  auto spec = importOk(
      specDoc(
          "[{\"repeat\": 2, \"window\": 64, \"num_kv_heads\": 4, "
          "\"pattern\": [{\"kind\": \"sliding\"}, {\"kind\": \"full\", "
          "\"num_kv_heads\": 1, \"softcap\": null}, {\"pattern\": "
          "[{\"kind\": \"sliding\", \"window\": 32}]}]}, {\"kind\": \"full\"}]",
          "{" + kHeads +
              ", \"softcap\": 30, \"positional\": {\"type\": "
              "\"rope\", \"theta\": 10000}}"),
      "spec.json");
  ASSERT_TRUE(spec);
  ASSERT_EQ(spec->layers.size(), 7u);
  EXPECT_EQ(spec->layers[0].mask.window, 64); // from the group
  EXPECT_EQ(spec->layers[0].numKVHeads, 4);
  EXPECT_EQ(spec->layers[0].softcap, 30.0);
  EXPECT_EQ(spec->layers[1].numKVHeads, 1);
  EXPECT_FALSE(spec->layers[1].softcap); // null unsets the default
  EXPECT_EQ(spec->layers[2].mask.window, 32);
  EXPECT_EQ(spec->layers[3].mask.window, 64);
  EXPECT_EQ(spec->layers[6].numKVHeads, 2); // defaults again
  EXPECT_DOUBLE_EQ(spec->layers[6].scale, 0.125);
  EXPECT_EQ(spec->name, "model");
}

TEST(Spec, LinearAndHybridLayers) {
  auto spec = importOk(
      specDoc("[{\"kind\": \"linear\", \"state\": {\"recurrent\": 4096, "
              "\"conv\": 128}}, {\"kind\": \"hybrid\", " +
              kHeads +
              ", \"state\": {\"recurrent\": 10}}, {\"kind\": \"linear\", " +
              kHeads + ", \"state\": {\"recurrent\": 8}}]"),
      "spec.json");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[0].numHeads, 0);
  EXPECT_EQ(spec->layers[0].state->convElements, 128);
  EXPECT_EQ(spec->layers[1].numHeads, 8);
  EXPECT_EQ(spec->layers[1].state->convElements, 0);
  EXPECT_EQ(spec->layers[2].headDim, 64);
}

TEST(Spec, MlpLayersMixNoTokens) {
  // Inherited attention fields are ignored on an mlp layer, as on mamba.
  auto spec = importOk(specDoc("[{\"kind\": \"mlp\"}, {\"kind\": \"full\"}]",
                               "{" + kHeads + "}"),
                       "spec.json");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[0].kind, LayerKind::Mlp);
  EXPECT_EQ(spec->layers[0].numHeads, 0);
  EXPECT_FALSE(spec->layers[0].state);
  EXPECT_EQ(spec->layers[1].numHeads, 8);
}

TEST(Spec, ConvLayersKeepTheirInputs) {
  auto spec =
      importOk(specDoc("[{\"kind\": \"conv\", \"state\": {\"conv\": 6144}}]"),
               "spec.json");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[0].kind, LayerKind::Conv);
  EXPECT_EQ(spec->layers[0].state->convElements, 6144);
  EXPECT_EQ(spec->layers[0].state->recurrentElements, 0);
}

TEST(Spec, CausalFlagAndScalings) {
  auto spec = importOk(
      specDoc(
          "[{\"kind\": \"full\", \"causal\": false, " + kHeads +
          ", \"positional\": {\"type\": \"rope\", \"theta\": 500000, "
          "\"scaling\": {\"type\": \"llama3\", \"factor\": 8, "
          "\"low_freq_factor\": 1, \"high_freq_factor\": 4, "
          "\"original_max_position_embeddings\": 8192}}}, {\"kind\": "
          "\"full\", " +
          kHeads +
          ", \"positional\": {\"type\": \"rope\", "
          "\"theta\": 1e4, \"scaling\": {\"type\": \"yarn\", \"factor\": 4, "
          "\"beta_fast\": 16, \"attention_factor\": 1.2, \"truncate\": "
          "false}}}]"),
      "spec.json");
  ASSERT_TRUE(spec);
  EXPECT_FALSE(spec->layers[0].mask.causal);
  EXPECT_EQ(spec->layers[0].positional.scaling->kind, RopeScalingKind::Llama3);
  const RopeScaling &yarn = *spec->layers[1].positional.scaling;
  EXPECT_EQ(yarn.originalMaxPosition, 4096); // the spec's context
  EXPECT_DOUBLE_EQ(*yarn.betaFast, 16.0);
  EXPECT_DOUBLE_EQ(*yarn.attentionFactor, 1.2);
  EXPECT_FALSE(yarn.truncate);
  EXPECT_FALSE(spec->layers[1].positional.interleaved);
}

TEST(Spec, TemperatureOffset) {
  auto spec =
      importOk(specDoc("[{\"kind\": \"full\", " + kHeads +
                       ", \"temperature_tuning\": {\"offset\": 0}}, {\"kind\": "
                       "\"full\", " +
                       kHeads + ", \"temperature_tuning\": {}}]"),
               "spec.json");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[0].temperature->offset, 0);
  EXPECT_EQ(spec->layers[1].temperature->offset, 1); // Llama 4's
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                                ", \"temperature_tuning\": {\"offset\": 2}}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].temperature_tuning.offset': must be 0 "
            "or 1, got 2");
}

TEST(Spec, InterleavedRope) {
  auto spec = importOk(
      specDoc("[{\"kind\": \"full\", " + kHeads +
              ", \"positional\": {\"type\": \"partial\", \"theta\": 1e4, "
              "\"rotary_dim\": 4, \"interleaved\": true}}]"),
      "spec.json");
  ASSERT_TRUE(spec);
  EXPECT_TRUE(spec->layers[0].positional.interleaved);
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                          ", \"positional\": {\"type\": \"none\", "
                          "\"interleaved\": true}}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].positional.interleaved': does not apply "
      "to positional type 'none'");
}

TEST(Spec, RotaryOffset) {
  // MLA's decoupled RoPE: the last 16 of 64 dims rotate.
  auto spec = importOk(
      specDoc("[{\"kind\": \"full\", " + kHeads +
              ", \"positional\": {\"type\": \"partial\", \"theta\": 1e4, "
              "\"rotary_dim\": 16, \"rotary_offset\": 48}}]"),
      "spec.json");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[0].positional.rotaryOffset, 48);
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                          ", \"positional\": {\"type\": \"partial\", "
                          "\"theta\": 1e4, \"rotary_dim\": 16, "
                          "\"rotary_offset\": 50}}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].positional.rotary_offset': must be even "
      "and leave room for rotary_dim (16) in head_dim (64), got 50");
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                          ", \"positional\": {\"type\": \"partial\", "
                          "\"theta\": 1e4, \"rotary_dim\": 16, "
                          "\"rotary_offset\": 3}}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].positional.rotary_offset': must be even "
      "and leave room for rotary_dim (16) in head_dim (64), got 3");
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                          ", \"positional\": {\"type\": \"rope\", "
                          "\"theta\": 1e4, \"rotary_offset\": 4}}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].positional.rotary_offset': does not apply "
      "to positional type 'rope'");
}

TEST(Spec, LatentCaches) {
  auto spec = importOk(specDoc("[{\"kind\": \"full\", " + kHeads +
                               ", \"v_head_dim\": 32, \"latent\": true}]"),
                       "spec.json");
  ASSERT_TRUE(spec);
  EXPECT_TRUE(spec->layers[0].latent);
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                                ", \"v_head_dim\": 96, \"latent\": true}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].latent': needs v_head_dim at most "
            "head_dim (64), got 96");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                                ", \"k_eq_v\": true, \"latent\": true}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].latent': and k_eq_v exclude each "
            "other (a latent cache keeps the keys, a K=V one the values)");
}

TEST(SpecErrors, UnknownKeysNamedWithPath) {
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                                "}, {\"pattern\": [{\"kind\": \"sliding\", "
                                "\"windw\": 3}]}]"),
                        "spec.json"),
            "spec.json: field 'layers[1].pattern[0].windw': unknown field");
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"full\"}]", "", "\"nmae\": \"x\""),
                  "spec.json"),
      "spec.json: field 'nmae': unknown field");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\"}]", "{\"headdim\": 4}"),
                        "spec.json"),
            "spec.json: field 'defaults.headdim': unknown field");
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                          ", \"positional\": {\"type\": \"rope\", "
                          "\"theta\": 1, \"rotary_dim\": 4}}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].positional.rotary_dim': does not apply "
      "to positional type 'rope'");
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                          ", \"positional\": {\"type\": \"rope\", "
                          "\"theta\": 1, \"scaling\": {\"type\": \"linear\", "
                          "\"factor\": 2, \"beta_fast\": 3}}}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].positional.scaling.beta_fast': unknown "
      "field");
}

TEST(SpecErrors, MissingRequiredFields) {
  EXPECT_EQ(importError(specDoc("[{" + kHeads + "}]"), "spec.json"),
            "spec.json: field 'layers[0].kind': missing required field");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"sliding\", " + kHeads + "}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].window': missing required field");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"chunked\", " + kHeads + "}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].chunk': missing required field");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", \"head_dim\": 4}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].num_heads': missing required field");
  EXPECT_EQ(
      importError(specDoc("[{\"pattern\": [{\"kind\": \"full\", "
                          "\"num_heads\": 4}]}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].pattern[0].head_dim': missing required "
      "field");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"mamba\"}]"), "spec.json"),
            "spec.json: field 'layers[0].state': missing required field");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                                ", \"positional\": {\"type\": \"rope\"}}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].positional.theta': missing required "
            "field");
  EXPECT_EQ(importError("{\"format\": \"hybrid-schedule\", \"version\": 1}",
                        "spec.json"),
            "spec.json: field 'layers': missing required field");
  EXPECT_EQ(importError("{\"format\": \"hybrid-schedule\", \"layers\": []}",
                        "spec.json"),
            "spec.json: field 'version': missing required field");
}

TEST(SpecErrors, ValuesOutOfRange) {
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"sliding\", \"window\": 0, " +
                                kHeads + "}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].window': must be a positive integer, "
            "got 0");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"sliding\", \"window\": 8192, " +
                                kHeads + "}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].window': (8192) exceeds "
            "max_position_embeddings (4096)");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", \"repeat\": 0, " +
                                kHeads + "}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].repeat': must be a positive integer, "
            "got 0");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", \"num_heads\": 8, "
                                "\"num_kv_heads\": 3, \"head_dim\": 8}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].num_kv_heads': must divide num_heads "
            "(8), got 3");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", \"num_heads\": 8, "
                                "\"head_dim\": 7, \"positional\": {\"type\": "
                                "\"rope\", \"theta\": 1e4}}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].positional.type': needs an even "
            "head_dim, got 7");
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                          ", \"positional\": {\"type\": \"partial\", "
                          "\"theta\": 1e4, \"rotary_dim\": 64}}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].positional.rotary_dim': gives 64 rotary "
      "dims; partial rotation needs an even count between 2 and head_dim "
      "(64) - 2");
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                          ", \"positional\": {\"type\": \"proportional\", "
                          "\"theta\": 1e4, \"fraction\": 2}}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].positional.fraction': must be at most "
      "1, got 2");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                                ", \"v_head_dim\": 32, \"k_eq_v\": true}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].k_eq_v': needs v_head_dim equal to "
            "head_dim (64), got 32");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"global\"}]"), "spec.json"),
            "spec.json: field 'layers[0].kind': unknown layer kind 'global' "
            "(supported: full, sliding, chunked, linear, mamba, hybrid, mlp, "
            "conv)");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", " + kHeads +
                                ", \"positional\": {\"type\": \"alibi\"}}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].positional.type': unknown positional "
            "type 'alibi' (supported: rope, partial, proportional, none)");
}

TEST(SpecErrors, FieldsThatDoNotApply) {
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"full\", \"window\": 8, " +
                                kHeads + "}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].window': only applies to sliding "
            "layers");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"mamba\", \"num_heads\": 2, "
                                "\"state\": {\"recurrent\": 4}}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].num_heads': does not apply to mamba "
            "layers");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"mlp\", \"positional\": "
                                "{\"type\": \"none\"}}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].positional': does not apply to mlp "
            "layers");
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"mlp\", \"state\": "
                          "{\"recurrent\": 4}}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].state': only applies to linear, mamba, "
      "hybrid and conv layers");
  EXPECT_EQ(
      importError(specDoc("[{\"kind\": \"full\", \"state\": "
                          "{\"recurrent\": 4}, " +
                          kHeads + "}]"),
                  "spec.json"),
      "spec.json: field 'layers[0].state': only applies to linear, mamba, "
      "hybrid and conv layers");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"conv\", \"state\": "
                                "{\"recurrent\": 4, \"conv\": 8}}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].state.recurrent': does not apply to "
            "conv layers");
  EXPECT_EQ(importError(specDoc("[{\"kind\": \"conv\", \"state\": {}}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].state.conv': missing required field");
}

TEST(SpecErrors, SharedSources) {
  std::string sliding = "{\"kind\": \"sliding\", \"window\": 16, " + kHeads;
  EXPECT_EQ(importError(specDoc("[" + sliding + ", \"shared_source\": 1}, " +
                                sliding + "}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].shared_source': must name an earlier "
            "layer (below 0), got 1");
  EXPECT_EQ(importError(specDoc("[" + sliding +
                                "}, {\"kind\": \"sliding\", "
                                "\"window\": 32, " +
                                kHeads + ", \"shared_source\": 0}]"),
                        "spec.json"),
            "spec.json: field 'layers[1].shared_source': names layer 0, whose "
            "mask differs from this layer's");
  EXPECT_EQ(importError(specDoc("[" + sliding + "}, " + sliding +
                                ", \"shared_source\": 0}, " + sliding +
                                ", \"shared_source\": 1}]"),
                        "spec.json"),
            "spec.json: field 'layers[2].shared_source': names layer 1, which "
            "itself reads layer 0's cache; name that layer instead");
  EXPECT_EQ(importError(specDoc("[" + sliding + "}]", "{\"shared_source\": 0}"),
                        "spec.json"),
            "spec.json: field 'defaults.shared_source': applies to one layer; "
            "not allowed in defaults");
  auto ok = importOk(specDoc("[" + sliding + "}, " + sliding +
                             ", \"shared_source\": 0, \"repeat\": 3}]"),
                     "spec.json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->layers[3].sharedSource, 0);
}

TEST(SpecErrors, DocumentLevel) {
  EXPECT_EQ(importError("{\"format\": \"hybrid-schedule\", \"version\": 2, "
                        "\"layers\": []}",
                        "spec.json"),
            "spec.json: field 'version': unsupported version 2 (supported: 1)");
  EXPECT_EQ(importError(specDoc("[]"), "spec.json"),
            "spec.json: field 'layers': must not be empty");
  EXPECT_EQ(importError(specDoc("[3]"), "spec.json"),
            "spec.json: field 'layers[0]': must be an object, got 3");
  EXPECT_EQ(importError(
                specDoc("[{\"kind\": \"full\"}]", "", "\"name\": \"my model\""),
                "spec.json"),
            "spec.json: field 'name': must be an identifier "
            "([A-Za-z_][A-Za-z0-9_]*), got 'my model'");
  EXPECT_EQ(importError(specDoc("[{\"pattern\": []}]"), "spec.json"),
            "spec.json: field 'layers[0].pattern': must not be empty");
  EXPECT_EQ(importError(specDoc("[{\"repeat\": 1000000, \"kind\": \"full\", " +
                                kHeads + "}]"),
                        "spec.json"),
            "spec.json: field 'layers[0].repeat': expands the schedule past "
            "65536 layers");
  std::string deep = "{\"kind\": \"full\", " + kHeads + "}";
  for (int i = 0; i < 40; ++i)
    deep = "{\"pattern\": [" + deep + "]}";
  std::string err = importError(specDoc("[" + deep + "]"), "spec.json");
  EXPECT_NE(err.find("nests deeper than 32 levels"), std::string::npos) << err;
}

TEST(Spec, ImportScheduleSpecDirectly) {
  nlohmann::json doc = nlohmann::json::parse(
      specDoc("[{\"kind\": \"full\", " + kHeads + "}]"), nullptr, false);
  auto spec = importScheduleSpec(doc, "direct.json");
  ASSERT_TRUE(static_cast<bool>(spec)) << llvm::toString(spec.takeError());
  EXPECT_EQ(spec->layers.size(), 1u);
  nlohmann::json hfDoc = nlohmann::json::parse(hf("llama", ""), nullptr, false);
  auto hfSpec = importHFConfig(hfDoc, "direct.json");
  ASSERT_TRUE(static_cast<bool>(hfSpec)) << llvm::toString(hfSpec.takeError());
  EXPECT_EQ(hfSpec->layers.size(), 4u);
}

} // namespace
