//===- ImporterTest.cpp - Tests of the Hugging Face importer --------------===//
//
// Every family rule of the Hugging Face importer, on the shared real configs,
// on test/Import/configs and on small inline configs, and every error class.
// ScheduleSpecTest.cpp covers the project's own format.
//
//===----------------------------------------------------------------------===//

#include "ImporterTestUtil.h"

#include <nlohmann/json.hpp>

#include <cmath>

using namespace hybrid::spec;
using namespace hybrid::spec::testing;

namespace {

//===----------------------------------------------------------------------===//
// The shared real configs.
//===----------------------------------------------------------------------===//

TEST(HFShared, Gemma3OneBillion) {
  LOAD_FILE(spec, sharedDir(), "gemma-3-1b-it.json");
  EXPECT_EQ(spec->modelType, "gemma3_text");
  EXPECT_EQ(spec->name, "gemma3_text");
  EXPECT_EQ(spec->hiddenSize, 1152);
  EXPECT_EQ(spec->maxPositionEmbeddings, 32768);
  ASSERT_EQ(spec->layers.size(), 26u);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full),
            (std::vector<int64_t>{5, 11, 17, 23}));
  const LayerSpec &local = spec->layers[0];
  EXPECT_EQ(local.mask.kind, MaskKind::SlidingWindow);
  EXPECT_EQ(local.mask.window, 512);
  EXPECT_TRUE(local.mask.causal);
  EXPECT_EQ(local.positional.kind, PositionalKind::Rope);
  EXPECT_DOUBLE_EQ(local.positional.theta, 1e4);
  EXPECT_FALSE(local.positional.scaling);
  const LayerSpec &global = spec->layers[5];
  EXPECT_EQ(global.mask.kind, MaskKind::Full);
  EXPECT_FALSE(global.mask.window);
  EXPECT_DOUBLE_EQ(global.positional.theta, 1e6);
  for (const LayerSpec &layer : spec->layers) {
    EXPECT_EQ(layer.numHeads, 4);
    EXPECT_EQ(layer.numKVHeads, 1);
    EXPECT_EQ(layer.headDim, 256);
    EXPECT_EQ(layer.vHeadDim, 256);
    EXPECT_DOUBLE_EQ(layer.scale, 1.0 / 16.0); // query_pre_attn_scalar 256
    EXPECT_FALSE(layer.softcap);
    EXPECT_FALSE(layer.sinks);
  }
}

TEST(HFShared, Gemma3MultimodalUsesTextConfig) {
  LOAD_FILE(spec, sharedDir(), "gemma-3-27b-it.json");
  EXPECT_EQ(spec->modelType, "gemma3");
  ASSERT_EQ(spec->layers.size(), 62u);
  EXPECT_EQ(spec->hiddenSize, 5376);
  EXPECT_EQ(spec->maxPositionEmbeddings, 131072);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full).size(), 10u);
  // Linear RoPE scaling x8 applies to the global layers only.
  const LayerSpec &global = spec->layers[5];
  ASSERT_TRUE(global.positional.scaling);
  EXPECT_EQ(global.positional.scaling->kind, RopeScalingKind::Linear);
  EXPECT_DOUBLE_EQ(global.positional.scaling->factor, 8.0);
  EXPECT_DOUBLE_EQ(global.positional.theta, 1e6);
  EXPECT_FALSE(spec->layers[0].positional.scaling);
  EXPECT_EQ(spec->layers[0].mask.window, 1024);
  EXPECT_DOUBLE_EQ(spec->layers[0].scale, 1.0 / std::sqrt(168.0));
  EXPECT_EQ(spec->layers[0].numKVHeads, 16);
}

TEST(HFShared, Gemma4ProportionalRopeAndSharedCaches) {
  LOAD_FILE(spec, sharedDir(), "gemma-4-e4b.json");
  ASSERT_EQ(spec->layers.size(), 42u);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full),
            (std::vector<int64_t>{5, 11, 17, 23, 29, 35, 41}));
  const LayerSpec &global = spec->layers[5];
  EXPECT_EQ(global.headDim, 512); // global_head_dim
  EXPECT_EQ(global.positional.kind, PositionalKind::Proportional);
  EXPECT_DOUBLE_EQ(*global.positional.fraction, 0.25);
  EXPECT_DOUBLE_EQ(global.positional.theta, 1e6);
  EXPECT_FALSE(global.kEqV); // attention_k_eq_v is false
  const LayerSpec &local = spec->layers[0];
  EXPECT_EQ(local.headDim, 256);
  EXPECT_EQ(local.positional.kind, PositionalKind::Rope);
  EXPECT_DOUBLE_EQ(local.positional.theta, 1e4);
  for (const LayerSpec &layer : spec->layers)
    EXPECT_DOUBLE_EQ(layer.scale, 1.0);
  // The last 18 layers read the last non-shared layer of their type.
  for (int i = 0; i < 24; ++i)
    EXPECT_FALSE(spec->layers[i].sharedSource) << i;
  for (int i = 24; i < 42; ++i)
    EXPECT_EQ(spec->layers[i].sharedSource,
              spec->layers[i].kind == LayerKind::Full ? 23 : 22)
        << i;
}

TEST(HFShared, MistralEveryLayerSliding) {
  LOAD_FILE(spec, sharedDir(), "mistral-7b-v0.1.json");
  ASSERT_EQ(spec->layers.size(), 32u);
  for (const LayerSpec &layer : spec->layers) {
    EXPECT_EQ(layer.kind, LayerKind::Sliding);
    EXPECT_EQ(layer.mask.window, 4096);
    EXPECT_EQ(layer.headDim, 128); // 4096 / 32
    EXPECT_EQ(layer.numKVHeads, 8);
    EXPECT_DOUBLE_EQ(layer.scale, 1.0 / std::sqrt(128.0));
    EXPECT_DOUBLE_EQ(layer.positional.theta, 1e4);
  }
}

TEST(HFShared, Phi3Sliding2047) {
  LOAD_FILE(spec, sharedDir(), "phi-3-mini-4k-instruct.json");
  ASSERT_EQ(spec->layers.size(), 32u);
  EXPECT_EQ(spec->layers[0].kind, LayerKind::Sliding);
  EXPECT_EQ(spec->layers[0].mask.window, 2047);
  EXPECT_EQ(spec->layers[0].headDim, 96);
  EXPECT_EQ(spec->layers[31].mask.window, 2047);
}

TEST(HFShared, Qwen3NextLinearAndPartialRope) {
  LOAD_FILE(spec, sharedDir(), "qwen3-next-80b-a3b.json");
  ASSERT_EQ(spec->layers.size(), 48u);
  std::vector<int64_t> full = indicesOf(*spec, LayerKind::Full);
  ASSERT_EQ(full.size(), 12u);
  EXPECT_EQ(full.front(), 3);
  EXPECT_EQ(full.back(), 47);
  const LayerSpec &attn = spec->layers[3];
  EXPECT_EQ(attn.numHeads, 16);
  EXPECT_EQ(attn.numKVHeads, 2);
  EXPECT_EQ(attn.headDim, 256);
  EXPECT_EQ(attn.positional.kind, PositionalKind::Partial);
  EXPECT_EQ(attn.positional.rotaryDim, 64); // 256 * 0.25
  EXPECT_DOUBLE_EQ(attn.positional.theta, 1e7);
  EXPECT_FALSE(attn.state);
  const LayerSpec &linear = spec->layers[0];
  EXPECT_EQ(linear.kind, LayerKind::Linear);
  EXPECT_EQ(linear.numHeads, 32);   // value heads
  EXPECT_EQ(linear.numKVHeads, 16); // key heads
  EXPECT_EQ(linear.headDim, 128);
  EXPECT_EQ(linear.vHeadDim, 128);
  EXPECT_EQ(linear.positional.kind, PositionalKind::None);
  ASSERT_TRUE(linear.state);
  EXPECT_EQ(linear.state->recurrentElements, 32 * 128 * 128);
  EXPECT_EQ(linear.state->convElements, (2 * 16 * 128 + 32 * 128) * 4);
}

TEST(HFShared, JambaAttentionEveryEighth) {
  LOAD_FILE(spec, sharedDir(), "jamba-v0.1.json");
  ASSERT_EQ(spec->layers.size(), 32u);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full),
            (std::vector<int64_t>{4, 12, 20, 28}));
  const LayerSpec &attn = spec->layers[4];
  EXPECT_EQ(attn.positional.kind, PositionalKind::None); // Jamba has no RoPE
  EXPECT_EQ(attn.numHeads, 32);
  EXPECT_EQ(attn.numKVHeads, 8);
  EXPECT_EQ(attn.mask.kind, MaskKind::Full);
  EXPECT_FALSE(attn.state);
  const LayerSpec &mamba = spec->layers[0];
  EXPECT_EQ(mamba.kind, LayerKind::Mamba);
  EXPECT_EQ(mamba.numHeads, 0);
  EXPECT_EQ(mamba.headDim, 0);
  ASSERT_TRUE(mamba.state);
  EXPECT_EQ(mamba.state->recurrentElements, 2 * 4096 * 16);
  EXPECT_EQ(mamba.state->convElements, 2 * 4096 * 4);
}

//===----------------------------------------------------------------------===//
// test/Import/configs: published configs of the other families.
//===----------------------------------------------------------------------===//

TEST(HFConfigs, Llama31WithLlama3Scaling) {
  LOAD_FILE(spec, testConfigDir(), "llama.json");
  ASSERT_EQ(spec->layers.size(), 32u);
  for (const LayerSpec &layer : spec->layers) {
    EXPECT_EQ(layer.kind, LayerKind::Full);
    EXPECT_EQ(layer.mask.kind, MaskKind::Full);
  }
  const Positional &pos = spec->layers[0].positional;
  EXPECT_EQ(pos.kind, PositionalKind::Rope);
  EXPECT_DOUBLE_EQ(pos.theta, 500000.0);
  ASSERT_TRUE(pos.scaling);
  EXPECT_EQ(pos.scaling->kind, RopeScalingKind::Llama3);
  EXPECT_DOUBLE_EQ(pos.scaling->factor, 8.0);
  EXPECT_DOUBLE_EQ(*pos.scaling->lowFreqFactor, 1.0);
  EXPECT_DOUBLE_EQ(*pos.scaling->highFreqFactor, 4.0);
  EXPECT_EQ(pos.scaling->originalMaxPosition, 8192);
}

TEST(HFConfigs, MixtralNullWindowIsFull) {
  LOAD_FILE(spec, testConfigDir(), "mixtral.json");
  ASSERT_EQ(spec->layers.size(), 32u);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full).size(), 32u);
  EXPECT_DOUBLE_EQ(spec->layers[0].positional.theta, 1e6);
}

TEST(HFConfigs, Qwen2SlidingFromMaxWindowLayers) {
  LOAD_FILE(spec, testConfigDir(), "qwen2.json");
  ASSERT_EQ(spec->layers.size(), 28u);
  for (int i = 0; i < 28; ++i)
    EXPECT_EQ(spec->layers[i].kind,
              i >= 21 ? LayerKind::Sliding : LayerKind::Full)
        << i;
  EXPECT_EQ(spec->layers[27].mask.window, 32768);
  EXPECT_EQ(spec->layers[0].headDim, 128);
}

TEST(HFConfigs, Qwen3PlainAndYarn) {
  LOAD_FILE(plain, testConfigDir(), "qwen3.json");
  ASSERT_EQ(plain->layers.size(), 36u);
  EXPECT_EQ(indicesOf(*plain, LayerKind::Full).size(), 36u);
  EXPECT_FALSE(plain->layers[0].positional.scaling);
  EXPECT_EQ(plain->layers[0].headDim, 128);

  LOAD_FILE(yarn, testConfigDir(), "qwen3-yarn.json");
  const std::optional<RopeScaling> &scaling =
      yarn->layers[0].positional.scaling;
  ASSERT_TRUE(scaling);
  EXPECT_EQ(scaling->kind, RopeScalingKind::Yarn);
  EXPECT_DOUBLE_EQ(scaling->factor, 4.0);
  EXPECT_EQ(scaling->originalMaxPosition, 32768);
  EXPECT_DOUBLE_EQ(*scaling->betaFast, 32.0);
  EXPECT_DOUBLE_EQ(*scaling->betaSlow, 1.0);
  EXPECT_FALSE(scaling->attentionFactor);
  EXPECT_TRUE(scaling->truncate);
}

TEST(HFConfigs, Gemma2AlternatesWithSoftcap) {
  LOAD_FILE(spec, testConfigDir(), "gemma2.json");
  ASSERT_EQ(spec->layers.size(), 42u);
  for (int i = 0; i < 42; ++i) {
    const LayerSpec &layer = spec->layers[i];
    EXPECT_EQ(layer.kind, i % 2 == 0 ? LayerKind::Sliding : LayerKind::Full);
    EXPECT_EQ(layer.softcap, 50.0);
    EXPECT_DOUBLE_EQ(layer.scale, 1.0 / 16.0);
  }
  EXPECT_EQ(spec->layers[0].mask.window, 4096);
}

TEST(HFConfigs, Gemma3nSharedCachesAndUnitScale) {
  LOAD_FILE(spec, testConfigDir(), "gemma3n.json");
  ASSERT_EQ(spec->layers.size(), 35u);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full),
            (std::vector<int64_t>{4, 9, 14, 19, 24, 29, 34}));
  for (int i = 0; i < 20; ++i)
    EXPECT_FALSE(spec->layers[i].sharedSource) << i;
  for (int i = 20; i < 35; ++i)
    EXPECT_EQ(spec->layers[i].sharedSource,
              spec->layers[i].kind == LayerKind::Full ? 19 : 18)
        << i;
  EXPECT_DOUBLE_EQ(spec->layers[0].scale, 1.0);
  EXPECT_EQ(spec->layers[0].mask.window, 512);
  EXPECT_DOUBLE_EQ(spec->layers[0].positional.theta, 1e4);
  EXPECT_DOUBLE_EQ(spec->layers[4].positional.theta, 1e6);
}

TEST(HFConfigs, Cohere2NoPEOnGlobalLayers) {
  LOAD_FILE(spec, testConfigDir(), "cohere2.json");
  ASSERT_EQ(spec->layers.size(), 32u);
  for (int i = 0; i < 32; ++i) {
    const LayerSpec &layer = spec->layers[i];
    bool global = (i + 1) % 4 == 0;
    EXPECT_EQ(layer.kind, global ? LayerKind::Full : LayerKind::Sliding) << i;
    EXPECT_EQ(layer.positional.kind,
              global ? PositionalKind::None : PositionalKind::Rope)
        << i;
  }
  EXPECT_DOUBLE_EQ(spec->layers[0].positional.theta, 50000.0);
  EXPECT_EQ(spec->layers[0].mask.window, 4096);
}

TEST(HFConfigs, GptOssSinksAndYarnWithoutTruncation) {
  LOAD_FILE(spec, testConfigDir(), "gpt_oss.json");
  ASSERT_EQ(spec->layers.size(), 24u);
  for (int i = 0; i < 24; ++i) {
    const LayerSpec &layer = spec->layers[i];
    EXPECT_EQ(layer.kind, i % 2 == 0 ? LayerKind::Sliding : LayerKind::Full);
    EXPECT_TRUE(layer.sinks);
    EXPECT_EQ(layer.headDim, 64);
    EXPECT_EQ(layer.numHeads, 64);
    EXPECT_EQ(layer.numKVHeads, 8);
  }
  EXPECT_EQ(spec->layers[0].mask.window, 128);
  const std::optional<RopeScaling> &scaling =
      spec->layers[1].positional.scaling;
  ASSERT_TRUE(scaling);
  EXPECT_EQ(scaling->kind, RopeScalingKind::Yarn);
  EXPECT_DOUBLE_EQ(scaling->factor, 32.0);
  EXPECT_EQ(scaling->originalMaxPosition, 4096);
  EXPECT_FALSE(scaling->truncate);
  EXPECT_DOUBLE_EQ(spec->layers[1].positional.theta, 150000.0);
}

TEST(HFConfigs, Llama4ChunkedRopeAndNoPETemperature) {
  LOAD_FILE(spec, testConfigDir(), "llama4.json");
  ASSERT_EQ(spec->layers.size(), 48u);
  for (int i = 0; i < 48; ++i) {
    const LayerSpec &layer = spec->layers[i];
    bool nope = (i + 1) % 4 == 0; // empty no_rope_layers: interval 4
    EXPECT_EQ(layer.kind, nope ? LayerKind::Full : LayerKind::Chunked) << i;
    if (nope) {
      EXPECT_EQ(layer.positional.kind, PositionalKind::None);
      ASSERT_TRUE(layer.temperature); // attn_temperature_tuning: 4
      EXPECT_DOUBLE_EQ(layer.temperature->floorScale, 8192.0);
      EXPECT_DOUBLE_EQ(layer.temperature->attnScale, 0.1);
    } else {
      EXPECT_EQ(layer.mask.chunk, 8192);
      EXPECT_EQ(layer.positional.kind, PositionalKind::Rope);
      EXPECT_FALSE(layer.temperature);
      ASSERT_TRUE(layer.positional.scaling);
      EXPECT_EQ(layer.positional.scaling->kind, RopeScalingKind::Llama3);
    }
  }
}

TEST(HFConfigs, Zamba2HybridBlocks) {
  LOAD_FILE(spec, testConfigDir(), "zamba2.json");
  ASSERT_EQ(spec->layers.size(), 54u);
  std::vector<int64_t> hybrid = indicesOf(*spec, LayerKind::Hybrid);
  EXPECT_EQ(hybrid, (std::vector<int64_t>{6, 12, 18, 24, 30, 36, 42, 47, 51}));
  const LayerSpec &h = spec->layers[6];
  EXPECT_EQ(h.numHeads, 32);
  EXPECT_EQ(h.headDim, 160); // 2 * 2560 / 32
  EXPECT_DOUBLE_EQ(h.scale, 1.0 / std::sqrt(80.0));
  EXPECT_EQ(h.positional.kind, PositionalKind::Rope); // use_mem_rope
  ASSERT_TRUE(h.state);
  // Mamba-2: d_inner 5120 = 80 heads x 64; d_state 64; one group; d_conv 4.
  EXPECT_EQ(h.state->recurrentElements, 80 * 64 * 64);
  EXPECT_EQ(h.state->convElements, (5120 + 2 * 64) * 4);
  EXPECT_EQ(spec->layers[0].kind, LayerKind::Mamba);
  EXPECT_EQ(spec->layers[0].state->recurrentElements, 80 * 64 * 64);
}

TEST(HFConfigs, FalconH1AllHybrid) {
  LOAD_FILE(spec, testConfigDir(), "falcon_h1.json");
  ASSERT_EQ(spec->layers.size(), 24u);
  for (const LayerSpec &layer : spec->layers) {
    EXPECT_EQ(layer.kind, LayerKind::Hybrid);
    EXPECT_EQ(layer.numHeads, 8);
    EXPECT_EQ(layer.numKVHeads, 2);
    EXPECT_EQ(layer.headDim, 128);
    EXPECT_DOUBLE_EQ(layer.positional.theta, 1e11);
    ASSERT_TRUE(layer.state);
    EXPECT_EQ(layer.state->recurrentElements, 48 * 64 * 256);
    EXPECT_EQ(layer.state->convElements, (3072 + 2 * 256) * 4);
  }
}

TEST(HFConfigs, MiniMaxLightningAndSoftmax) {
  LOAD_FILE(spec, testConfigDir(), "minimax.json");
  ASSERT_EQ(spec->layers.size(), 80u);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full).size(), 10u);
  const LayerSpec &softmax = spec->layers[7];
  EXPECT_EQ(softmax.kind, LayerKind::Full);
  EXPECT_EQ(softmax.positional.kind, PositionalKind::Partial);
  EXPECT_EQ(softmax.positional.rotaryDim, 64);
  EXPECT_DOUBLE_EQ(softmax.positional.theta, 1e7);
  const LayerSpec &lightning = spec->layers[0];
  EXPECT_EQ(lightning.kind, LayerKind::Linear);
  EXPECT_EQ(lightning.numHeads, 64);
  EXPECT_EQ(lightning.numKVHeads, 64);
  EXPECT_DOUBLE_EQ(lightning.scale, 1.0);
  ASSERT_TRUE(lightning.state);
  EXPECT_EQ(lightning.state->recurrentElements, 64 * 128 * 128);
  EXPECT_EQ(lightning.state->convElements, 0);
}

//===----------------------------------------------------------------------===//
// Family rules on small inline configs.
//===----------------------------------------------------------------------===//

TEST(HFRules, LayerTypesWinOverLegacyFields) {
  auto spec =
      importOk(hf("mistral", "\"sliding_window\": 1024, \"layer_types\": "
                             "[\"full_attention\", \"sliding_attention\", "
                             "\"full_attention\", \"full_attention\"]"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Sliding), (std::vector<int64_t>{1}));
  EXPECT_EQ(spec->layers[1].mask.window, 1024);
}

TEST(HFRules, GenericMultimodalWrapperUsesTextModelType) {
  // An unknown wrapper whose text_config names a family we support.
  auto spec =
      importOk("{\"model_type\": \"my-vlm\", \"text_config\": "
               "{\"model_type\": \"mistral\", \"num_hidden_layers\": 2, "
               "\"hidden_size\": 256, \"num_attention_heads\": 4, "
               "\"sliding_window\": 64}}");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->modelType, "my-vlm");
  EXPECT_EQ(spec->name, "my_vlm"); // sanitised symbol name
  EXPECT_EQ(spec->hiddenSize, 256);
  EXPECT_EQ(spec->layers[1].mask.window, 64);
}

TEST(HFRules, LegacyLayerTypeNames) {
  auto spec =
      importOk(hf("jamba", "\"layer_types\": [\"mamba\", \"attention\", "
                           "\"linear_attention\", \"full_attention\"]"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[0].kind, LayerKind::Mamba);
  EXPECT_EQ(spec->layers[1].kind, LayerKind::Full);
  EXPECT_EQ(spec->layers[2].kind, LayerKind::Mamba); // remapped mamba
  EXPECT_EQ(spec->layers[3].kind, LayerKind::Full);
}

TEST(HFRules, LlamaAllFullWithDefaults) {
  auto spec = importOk(hf("llama", ""));
  ASSERT_TRUE(spec);
  for (const LayerSpec &layer : spec->layers) {
    EXPECT_EQ(layer.kind, LayerKind::Full);
    EXPECT_EQ(layer.headDim, 64); // 512 / 8
    EXPECT_DOUBLE_EQ(layer.positional.theta, 1e4);
    EXPECT_DOUBLE_EQ(layer.scale, 0.125);
  }
  auto mha = importOk("{\"model_type\": \"llama\", \"num_hidden_layers\": 1, "
                      "\"hidden_size\": 256, \"num_attention_heads\": 4}");
  ASSERT_TRUE(mha);
  EXPECT_EQ(mha->layers[0].numKVHeads, 4);
  EXPECT_EQ(mha->maxPositionEmbeddings, 0); // the caller must ask --max-seq
}

TEST(HFRules, MistralDefaultWindowAndMixtralNone) {
  auto mistral = importOk(hf("mistral", ""));
  ASSERT_TRUE(mistral);
  EXPECT_EQ(mistral->layers[0].kind, LayerKind::Sliding);
  EXPECT_EQ(mistral->layers[0].mask.window, 4096); // MistralConfig default
  auto mixtral = importOk(hf("mixtral", ""));
  ASSERT_TRUE(mixtral);
  EXPECT_EQ(mixtral->layers[0].kind, LayerKind::Full);
  auto phi3 = importOk(hf("phi3", "\"sliding_window\": 2047"));
  ASSERT_TRUE(phi3);
  EXPECT_EQ(phi3->layers[3].mask.window, 2047);
}

TEST(HFRules, WindowLargerThanContextIsKept) {
  auto spec = importOk(hf("mistral", "\"sliding_window\": 100000"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[0].mask.window, 100000);
}

TEST(HFRules, QwenSlidingNeedsUseSlidingWindow) {
  auto off = importOk(hf("qwen2", "\"sliding_window\": 1024, "
                                  "\"max_window_layers\": 1"));
  ASSERT_TRUE(off);
  EXPECT_EQ(indicesOf(*off, LayerKind::Full).size(), 4u);
  auto on =
      importOk(hf("qwen3", "\"sliding_window\": 1024, \"use_sliding_window\": "
                           "true, \"max_window_layers\": 1"));
  ASSERT_TRUE(on);
  EXPECT_EQ(indicesOf(*on, LayerKind::Sliding),
            (std::vector<int64_t>{1, 2, 3}));
  auto nullWindow = importOk(hf("qwen2", "\"sliding_window\": null, "
                                         "\"use_sliding_window\": true, "
                                         "\"max_window_layers\": 0"));
  ASSERT_TRUE(nullWindow);
  EXPECT_EQ(indicesOf(*nullWindow, LayerKind::Full).size(), 4u);
}

TEST(HFRules, QwenMoeRulesFollowTransformers) {
  // Qwen2-MoE alternates below max_window_layers; Qwen3-MoE slides everywhere.
  auto q2 = importOk(hf("qwen2_moe", "\"sliding_window\": 1024, "
                                     "\"use_sliding_window\": true, "
                                     "\"max_window_layers\": 3"));
  ASSERT_TRUE(q2);
  EXPECT_EQ(indicesOf(*q2, LayerKind::Sliding), (std::vector<int64_t>{0, 2}));
  auto q3 = importOk(hf("qwen3_moe", "\"sliding_window\": 1024, "
                                     "\"use_sliding_window\": true"));
  ASSERT_TRUE(q3);
  EXPECT_EQ(indicesOf(*q3, LayerKind::Sliding).size(), 4u);
}

TEST(HFRules, Gemma3DefaultsAndPatternField) {
  auto spec = importOk(hf("gemma3_text", "", 12));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full), (std::vector<int64_t>{5, 11}));
  EXPECT_EQ(spec->layers[0].mask.window, 4096);
  EXPECT_EQ(spec->layers[0].headDim, 256); // Gemma3TextConfig default
  EXPECT_DOUBLE_EQ(spec->layers[0].positional.theta, 1e4);
  EXPECT_DOUBLE_EQ(spec->layers[5].positional.theta, 1e6);
  auto pattern = importOk(hf("gemma3_text",
                             "\"sliding_window_pattern\": 3, "
                             "\"sliding_window\": 8",
                             6));
  ASSERT_TRUE(pattern);
  EXPECT_EQ(indicesOf(*pattern, LayerKind::Full), (std::vector<int64_t>{2, 5}));
}

TEST(HFRules, Gemma3BidirectionalEncoder) {
  auto spec = importOk(hf("gemma3_text",
                          "\"use_bidirectional_attention\": true, "
                          "\"sliding_window\": 512",
                          6));
  ASSERT_TRUE(spec);
  EXPECT_FALSE(spec->layers[0].mask.causal);
  EXPECT_EQ(spec->layers[0].mask.window, 257); // transformers' half width
  EXPECT_FALSE(spec->layers[5].mask.causal);
}

TEST(HFRules, Gemma3nDefaultsEveryFifthAndFifteenShared) {
  auto spec = importOk(hf("gemma3n_text", "", 20));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full),
            (std::vector<int64_t>{4, 9, 14, 19}));
  // 15 shared layers by default: layers 5.. read layer 3 (sliding) or 4.
  EXPECT_FALSE(spec->layers[4].sharedSource);
  EXPECT_EQ(spec->layers[5].sharedSource, 3);
  EXPECT_EQ(spec->layers[9].sharedSource, 4);
}

TEST(HFRules, Gemma4KEqVAndForcedLastFull) {
  auto spec = importOk(
      hf("gemma4_text",
         "\"layer_types\": [\"sliding_attention\", \"full_attention\", "
         "\"sliding_attention\", \"sliding_attention\"], \"head_dim\": 64, "
         "\"global_head_dim\": 128, \"attention_k_eq_v\": true, "
         "\"num_global_key_value_heads\": 1, \"num_kv_shared_layers\": 1"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[3].kind, LayerKind::Full); // forced full
  const LayerSpec &global = spec->layers[1];
  EXPECT_TRUE(global.kEqV);
  EXPECT_EQ(global.numKVHeads, 1);
  EXPECT_EQ(global.headDim, 128);
  EXPECT_EQ(global.positional.kind, PositionalKind::Proportional); // default
  EXPECT_FALSE(spec->layers[0].kEqV);
  EXPECT_EQ(spec->layers[0].numKVHeads, 2);
  EXPECT_EQ(spec->layers[3].sharedSource, 1);
}

TEST(HFRules, PerLayerConfigOverridesHeadShapes) {
  // transformers 5 saves Gemma 4's global layers this way: no
  // global_head_dim (its default of 512 must not apply), and a stated one is
  // ignored as transformers ignores it.
  auto gemma4 = importOk(
      hf("gemma4_text",
         "\"layer_types\": [\"sliding_attention\", \"full_attention\", "
         "\"sliding_attention\", \"full_attention\"], \"head_dim\": 64, "
         "\"global_head_dim\": 512, \"attention_k_eq_v\": true, "
         "\"per_layer_config\": {\"1\": {\"head_dim\": 128, "
         "\"num_key_value_heads\": 1}}"));
  ASSERT_TRUE(gemma4);
  EXPECT_EQ(gemma4->layers[1].headDim, 128);
  EXPECT_EQ(gemma4->layers[1].numKVHeads, 1);
  EXPECT_TRUE(gemma4->layers[1].kEqV);
  EXPECT_EQ(gemma4->layers[3].headDim, 64); // no override: the global one
  EXPECT_EQ(gemma4->layers[3].numKVHeads, 2);
  EXPECT_EQ(gemma4->layers[0].headDim, 64);

  // Any family; feed-forward overrides change no attention.
  auto llama = importOk(
      hf("llama", "\"per_layer_config\": {\"0\": {\"num_attention_heads\": 4, "
                  "\"num_key_value_heads\": 1, \"head_dim\": 32, "
                  "\"intermediate_size\": 100, \"skip\": [\"mlp\"]}, "
                  "\"2\": {\"intermediate_size\": 7}}"));
  ASSERT_TRUE(llama);
  EXPECT_EQ(llama->layers[0].numHeads, 4);
  EXPECT_EQ(llama->layers[0].numKVHeads, 1);
  EXPECT_EQ(llama->layers[0].headDim, 32);
  EXPECT_DOUBLE_EQ(llama->layers[0].scale, 1.0 / std::sqrt(32.0));
  EXPECT_EQ(llama->layers[1].numHeads, 8);
  EXPECT_EQ(llama->layers[2].headDim, 64);
}

TEST(HFRules, Cohere2DefaultPatternFour) {
  auto spec = importOk(hf("cohere2", "\"sliding_window\": 64", 8));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(spec->layers[3].positional.kind, PositionalKind::None);
}

TEST(HFRules, GptOssDefaults) {
  auto spec = importOk(hf("gpt_oss", "\"head_dim\": 64"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Sliding), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(spec->layers[0].mask.window, 128);
  ASSERT_TRUE(spec->layers[0].positional.scaling); // default YaRN
  EXPECT_EQ(spec->layers[0].positional.scaling->kind, RopeScalingKind::Yarn);
  EXPECT_FALSE(spec->layers[0].positional.scaling->truncate);
  EXPECT_TRUE(spec->layers[3].sinks);
}

TEST(HFRules, Llama4NoRopeListAndTemperature) {
  auto spec = importOk(hf("llama4_text", "\"no_rope_layers\": [1, 0, 1, 0], "
                                         "\"attention_chunk_size\": 2048, "
                                         "\"attn_temperature_tuning\": false"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[0].kind, LayerKind::Chunked);
  EXPECT_EQ(spec->layers[0].mask.chunk, 2048);
  EXPECT_EQ(spec->layers[1].kind, LayerKind::Full);
  EXPECT_EQ(spec->layers[1].positional.kind, PositionalKind::None);
  EXPECT_FALSE(spec->layers[1].temperature);

  auto tuned = importOk(hf("llama4_text", "\"no_rope_layer_interval\": 2, "
                                          "\"floor_scale\": 4096, "
                                          "\"attn_scale\": 0.2"));
  ASSERT_TRUE(tuned);
  EXPECT_EQ(indicesOf(*tuned, LayerKind::Full), (std::vector<int64_t>{1, 3}));
  ASSERT_TRUE(tuned->layers[1].temperature);
  EXPECT_DOUBLE_EQ(tuned->layers[1].temperature->floorScale, 4096.0);
  EXPECT_DOUBLE_EQ(tuned->layers[1].temperature->attnScale, 0.2);
  EXPECT_EQ(tuned->layers[0].mask.chunk, 8192); // Llama4TextConfig default
}

TEST(HFRules, MinistralAndStarcoder2Windows) {
  auto ministral = importOk(hf("ministral", ""));
  ASSERT_TRUE(ministral);
  EXPECT_EQ(indicesOf(*ministral, LayerKind::Sliding),
            (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(ministral->layers[0].mask.window, 4096); // MinistralConfig's
  auto starcoder = importOk(hfBare("starcoder2"));
  ASSERT_TRUE(starcoder);
  EXPECT_EQ(indicesOf(*starcoder, LayerKind::Full),
            (std::vector<int64_t>{0, 1}));       // no window by default
  EXPECT_EQ(starcoder->layers[0].numKVHeads, 2); // Starcoder2Config's
  EXPECT_EQ(starcoder->layers[0].headDim, 64);
}

TEST(HFRules, Exaone4GlobalNoPEOnlyWithAWindow) {
  auto hybrid = importOk(hf("exaone4", "", 8));
  ASSERT_TRUE(hybrid);
  EXPECT_EQ(indicesOf(*hybrid, LayerKind::Full), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(hybrid->layers[0].mask.window, 4096);
  EXPECT_EQ(hybrid->layers[0].positional.kind, PositionalKind::Rope);
  EXPECT_EQ(hybrid->layers[3].positional.kind, PositionalKind::None);
  auto full = importOk(hf("exaone_moe", "\"sliding_window\": null"));
  ASSERT_TRUE(full);
  EXPECT_EQ(indicesOf(*full, LayerKind::Full),
            (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(full->layers[3].positional.kind, PositionalKind::Rope);
  auto noKVHeads =
      importOk("{\"model_type\": \"exaone4\", \"num_hidden_layers\": 4, "
               "\"hidden_size\": 4096, \"num_attention_heads\": 64}");
  ASSERT_TRUE(noKVHeads);
  EXPECT_EQ(noKVHeads->layers[0].numKVHeads, 32); // Exaone4Config's
}

TEST(HFRules, SmolLM3SlidesItsNoPELayers) {
  auto spec = importOk(hf("smollm3",
                          "\"use_sliding_window\": true, "
                          "\"sliding_window\": 64",
                          8));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Sliding), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(spec->layers[3].positional.kind, PositionalKind::None);
  EXPECT_EQ(spec->layers[0].kind, LayerKind::Full);
  EXPECT_DOUBLE_EQ(spec->layers[0].positional.theta, 2e6);
}

TEST(HFRules, AfmoeVaultGemmaAndCwmDefaults) {
  auto afmoe = importOk(hf("afmoe", "", 8));
  ASSERT_TRUE(afmoe);
  EXPECT_EQ(indicesOf(*afmoe, LayerKind::Full), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(afmoe->layers[0].mask.window, 1024);
  EXPECT_EQ(afmoe->layers[0].headDim, 128);
  EXPECT_EQ(afmoe->layers[3].positional.kind, PositionalKind::None);
  auto vault = importOk(hf("vaultgemma", ""));
  ASSERT_TRUE(vault);
  EXPECT_EQ(indicesOf(*vault, LayerKind::Sliding),
            (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(vault->layers[0].softcap, 50.0);
  EXPECT_DOUBLE_EQ(vault->layers[0].scale, 1.0 / 16); // query_pre_attn_scalar
  auto cwm = importOk(hf("cwm",
                         "\"rope_scaling\": {\"rope_type\": "
                         "\"linear\", \"factor\": 2}",
                         5));
  ASSERT_TRUE(cwm);
  EXPECT_EQ(indicesOf(*cwm, LayerKind::Full), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(cwm->layers[1].mask.window, 8192);
  // A legacy rope_scaling replaces CwmConfig's default, theta included.
  EXPECT_EQ(cwm->layers[0].positional.scaling->kind, RopeScalingKind::Linear);
  EXPECT_DOUBLE_EQ(cwm->layers[0].positional.theta, 1e6);
  auto cwmNull = importOk(hf("cwm", "\"rope_scaling\": null"));
  ASSERT_TRUE(cwmNull);
  EXPECT_EQ(cwmNull->layers[0].positional.scaling->kind,
            RopeScalingKind::Llama3);
}

TEST(HFRules, GraniteSwaThetaPerLayer) {
  auto spec =
      importOk(hf("granite_swa", "\"layer_rope_theta\": [0, 1e4, 5e5, 1e4], "
                                 "\"attention_multiplier\": 0.25"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full), (std::vector<int64_t>{0}));
  EXPECT_EQ(spec->layers[1].mask.window, 128);
  EXPECT_EQ(spec->layers[0].positional.kind, PositionalKind::None);
  EXPECT_DOUBLE_EQ(spec->layers[2].positional.theta, 5e5);
  EXPECT_DOUBLE_EQ(spec->layers[3].scale, 0.25);
  EXPECT_TRUE(spec->layers[3].sinks);
  auto plain = importOk(hf("granitemoe_swa", "\"rope_theta\": 1e6"));
  ASSERT_TRUE(plain);
  EXPECT_DOUBLE_EQ(plain->layers[0].positional.theta, 1e6);
  EXPECT_DOUBLE_EQ(plain->layers[0].scale, 1.0); // not 1 / sqrt(head_dim)
  EXPECT_EQ(
      importError(hf("granite_swa", "\"layer_rope_theta\": [1, -1, 1, 1]")),
      "config.json: field 'layer_rope_theta[1]': must be a RoPE base, or "
      "0 for NoPE, got -1");
}

TEST(HFRules, BambaLayersAndHalfRotation) {
  auto spec = importOk(hf("bamba", "\"attn_layer_indices\": [1, 3], "
                                   "\"partial_rotary_factor\": 1.0"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(indicesOf(*spec, LayerKind::Mamba), (std::vector<int64_t>{0, 2}));
  // BambaConfig overwrites the top-level factor with 0.5.
  EXPECT_EQ(spec->layers[1].positional.rotaryDim, 32);
  // Mamba-2 defaults: 128 heads of 2 * 512 / 128, d_state 256, d_conv 4.
  ASSERT_TRUE(spec->layers[0].state);
  EXPECT_EQ(spec->layers[0].state->recurrentElements, 128 * 8 * 256);
  EXPECT_EQ(spec->layers[0].state->convElements, (1024 + 2 * 256) * 4);
  auto stated = importOk(
      hf("bamba", "\"attn_layer_indices\": [0], \"rope_parameters\": "
                  "{\"rope_theta\": 1e4, \"partial_rotary_factor\": 0.25}"));
  ASSERT_TRUE(stated);
  EXPECT_EQ(stated->layers[0].positional.rotaryDim, 16);
  // Without the list every layer is Mamba-2; KV heads default to 8, and an
  // explicit null means the query heads.
  const char *base = "{\"model_type\": \"bamba\", \"num_hidden_layers\": 2, "
                     "\"hidden_size\": 512, \"num_attention_heads\": 16, "
                     "\"attn_layer_indices\": [1]";
  auto kv = importOk(std::string(base) + "}");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->layers[1].numKVHeads, 8);
  auto mha = importOk(std::string(base) + ", \"num_key_value_heads\": null}");
  ASSERT_TRUE(mha);
  EXPECT_EQ(mha->layers[1].numKVHeads, 16);
  auto none = importOk(hf("bamba", ""));
  ASSERT_TRUE(none);
  EXPECT_EQ(indicesOf(*none, LayerKind::Mamba).size(), 4u);
  EXPECT_EQ(importError(hf("bamba", "\"attn_layer_indices\": [1, 4]")),
            "config.json: field 'attn_layer_indices[1]': must be a layer index "
            "below num_hidden_layers (4), got 4");
}

TEST(HFRules, GraniteMoeHybridRopeOnlyWhenAsked) {
  auto spec = importOk(hf("granitemoehybrid",
                          "\"layers_block_type\": [\"mamba\", \"attention\", "
                          "\"linear_attention\", \"full_attention\"], "
                          "\"attention_multiplier\": 0.0078125, "
                          "\"mamba_n_heads\": 16, \"mamba_d_head\": 64"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(spec->layers[1].positional.kind, PositionalKind::None);
  EXPECT_DOUBLE_EQ(spec->layers[1].scale, 0.0078125);
  ASSERT_TRUE(spec->layers[2].state);
  EXPECT_EQ(spec->layers[2].state->recurrentElements, 16 * 64 * 256);
  auto rope = importOk(hf("granitemoehybrid",
                          "\"layer_types\": [\"mamba\", \"attention\", "
                          "\"mamba\", \"attention\"], "
                          "\"position_embedding_type\": \"rope\", "
                          "\"rope_theta\": 5e4"));
  ASSERT_TRUE(rope);
  EXPECT_EQ(rope->layers[3].positional.kind, PositionalKind::Rope);
  EXPECT_DOUBLE_EQ(rope->layers[3].positional.theta, 5e4);
  EXPECT_DOUBLE_EQ(rope->layers[3].scale, 1.0); // attention_multiplier's
  auto mambas = importOk(hf("granitemoehybrid", ""));
  ASSERT_TRUE(mambas);
  EXPECT_EQ(indicesOf(*mambas, LayerKind::Mamba).size(), 4u);
  EXPECT_EQ(importError(hf("granitemoehybrid", "\"mamba_d_head\": 16")),
            "config.json: field 'mamba_d_head': must equal the Mamba inner "
            "size / mamba_n_heads (8), got 16");
  EXPECT_EQ(
      importError(hf("granitemoehybrid",
                     "\"layer_types\": [\"mamba\", \"sliding_attention\", "
                     "\"mamba\", \"attention\"]")),
      "config.json: field 'layer_types[1]': layer type "
      "'sliding_attention' is not supported by model type "
      "'granitemoehybrid'");
}

TEST(HFRules, OlmoHybridDefaults) {
  auto spec = importOk(hf("olmo_hybrid", "", 8));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full), (std::vector<int64_t>{3, 7}));
  const LayerSpec &linear = spec->layers[0];
  EXPECT_EQ(linear.numHeads, 8);
  EXPECT_EQ(linear.numKVHeads, 8);
  EXPECT_EQ(linear.headDim, 48); // int(0.75 * 512 / 8)
  EXPECT_EQ(linear.vHeadDim, 96);
  EXPECT_EQ(spec->layers[3].positional.kind, PositionalKind::Rope);
  EXPECT_DOUBLE_EQ(spec->layers[3].positional.theta, 1e4);
  // Fewer than four layers: the last one is full.
  auto two = importOk(hf("olmo_hybrid", "", 2));
  ASSERT_TRUE(two);
  EXPECT_EQ(indicesOf(*two, LayerKind::Full), (std::vector<int64_t>{1}));
  // A null rope_theta, at the top level or in rope_parameters: NoPE.
  for (const char *nope :
       {"\"rope_theta\": null",
        "\"rope_parameters\": {\"rope_theta\": null, \"rope_type\": "
        "\"default\"}"}) {
    auto off = importOk(hf("olmo_hybrid", nope));
    ASSERT_TRUE(off) << nope;
    EXPECT_EQ(off->layers[3].positional.kind, PositionalKind::None) << nope;
  }
  EXPECT_EQ(importError(hf("olmo_hybrid", "", 1)),
            "config.json: field 'num_hidden_layers': gives no "
            "linear_attention layer; olmo_hybrid needs both kinds");
  EXPECT_EQ(importError(hf("olmo_hybrid",
                           "\"layer_types\": [\"linear_attention\", "
                           "\"linear_attention\", \"linear_attention\", "
                           "\"linear_attention\"]")),
            "config.json: field 'layer_types': gives no full_attention "
            "layer; olmo_hybrid needs both kinds");
  EXPECT_EQ(importError(hf("olmo_hybrid", "\"linear_num_key_heads\": 1024")),
            "config.json: field 'linear_num_key_heads': leaves no key head "
            "dim (0.75 * hidden_size / 1024); set 'linear_key_head_dim'");
}

TEST(HFRules, NemotronHBlocks) {
  const std::string base =
      "{\"model_type\": \"nemotron_h\", \"hidden_size\": 512, "
      "\"num_attention_heads\": 8";
  auto spec = importOk(base + ", \"hybrid_override_pattern\": \"M-M*-E\"}");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers.size(), 6u);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Mamba), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full), (std::vector<int64_t>{3}));
  EXPECT_EQ(indicesOf(*spec, LayerKind::Mlp), (std::vector<int64_t>{1, 4, 5}));
  // NoPE attention of head dim 128 (not hidden / heads) over 8 KV heads.
  const LayerSpec &full = spec->layers[3];
  EXPECT_EQ(full.positional.kind, PositionalKind::None);
  EXPECT_EQ(full.headDim, 128);
  EXPECT_EQ(full.numKVHeads, 8);
  EXPECT_FALSE(spec->layers[1].state);
  // Mamba-2 defaults: 128 heads of 64, d_state 128, 8 groups, d_conv 4.
  ASSERT_TRUE(spec->layers[0].state);
  EXPECT_EQ(spec->layers[0].state->recurrentElements, 128 * 64 * 128);
  EXPECT_EQ(spec->layers[0].state->convElements, (8192 + 2 * 8 * 128) * 4);
  // Older field names win over the new ones.
  auto legacy = importOk(base + ", \"hybrid_override_pattern\": \"M*\", "
                                "\"n_groups\": 2, \"mamba_n_groups\": 1, "
                                "\"mamba_d_conv\": 2, \"conv_kernel\": 8}");
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->layers[0].state->convElements, (8192 + 2 * 128) * 2);
  // A list wins over the pattern; without either, the class's four blocks.
  auto listed = importOk(base + ", \"layers_block_type\": [\"mamba\", "
                                "\"moe\", \"attention\"], "
                                "\"hybrid_override_pattern\": \"M\"}");
  ASSERT_TRUE(listed);
  EXPECT_EQ(indicesOf(*listed, LayerKind::Mlp), (std::vector<int64_t>{1}));
  auto plain = importOk(base + "}");
  ASSERT_TRUE(plain);
  EXPECT_EQ(indicesOf(*plain, LayerKind::Mlp), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(importError(base + ", \"layers_block_type\": []}"),
            "config.json: field 'layers_block_type': must list 1 to 65536 "
            "layers, got 0");
  EXPECT_EQ(importError(base + ", \"hybrid_override_pattern\": \"M*x\"}"),
            "config.json: field 'hybrid_override_pattern': has 'x' at "
            "position 2 (expected M: Mamba-2, *: attention, -: MLP, E: MoE)");
  EXPECT_EQ(importError(base + ", \"hybrid_override_pattern\": \"M*\", "
                               "\"num_hidden_layers\": 52}"),
            "config.json: field 'num_hidden_layers': is 52 but the layer "
            "schedule has 2 layers");
  EXPECT_EQ(importError(hf("llama", "\"layer_types\": [\"full_attention\", "
                                    "\"mlp\", \"full_attention\", "
                                    "\"full_attention\"]")),
            "config.json: field 'layer_types[1]': layer type 'mlp' is not "
            "supported by model type 'llama'");
}

TEST(HFRules, Cohere2MoeDensePrefixRotates) {
  auto spec =
      importOk(hf("cohere2_moe",
                  "\"first_k_dense_replace\": 1, \"sliding_window_pattern\": "
                  "2, \"rope_theta\": 5e4, \"rope_scaling\": {\"rope_type\": "
                  "\"yarn\", \"factor\": 4.0}"));
  ASSERT_TRUE(spec);
  // The dense layer is full and rotates; the rest counts from 0 again.
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(spec->layers[0].positional.kind, PositionalKind::Rope);
  EXPECT_TRUE(spec->layers[0].positional.interleaved);
  EXPECT_DOUBLE_EQ(spec->layers[0].positional.theta, 5e4);
  EXPECT_FALSE(spec->layers[0].positional.scaling); // rope_scaling unused
  EXPECT_EQ(spec->layers[2].positional.kind, PositionalKind::None);
  EXPECT_EQ(spec->layers[1].mask.window, 4096);
  EXPECT_EQ(spec->layers[1].headDim, 128);
  // mlp_layer_types, when stated, says which layers are dense.
  const std::string types =
      "\"layer_types\": [\"sliding_attention\", \"full_attention\", "
      "\"sliding_attention\", \"full_attention\"], ";
  auto listed = importOk(
      hf("cohere2_moe", types + "\"mlp_layer_types\": [\"sparse\", \"dense\", "
                                "\"sparse\", \"sparse\"]"));
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->layers[1].positional.kind, PositionalKind::Rope);
  EXPECT_EQ(listed->layers[3].positional.kind, PositionalKind::None);
  // Another prefix pattern turns the forced rotation off.
  auto patterned = importOk(
      hf("cohere2_moe", types + "\"mlp_layer_types\": [\"sparse\", \"dense\", "
                                "\"sparse\", \"sparse\"], "
                                "\"prefix_dense_sliding_window_pattern\": 2"));
  ASSERT_TRUE(patterned);
  EXPECT_EQ(patterned->layers[1].positional.kind, PositionalKind::None);
  EXPECT_EQ(
      importError(hf("cohere2_moe", "\"mlp_layer_types\": [\"dense\", \"moe\", "
                                    "\"sparse\", \"sparse\"]")),
      "config.json: field 'mlp_layer_types[1]': must be 'dense' or "
      "'sparse', got 'moe'");
  EXPECT_EQ(importError(hf("cohere2_moe", "\"first_k_dense_replace\": 5")),
            "config.json: field 'first_k_dense_replace': must be at most "
            "num_hidden_layers (4), got 5");
}

TEST(HFRules, Lfm2ShortConvolutions) {
  auto spec = importOk(hf("lfm2", "\"full_attn_idxs\": [1, 3], "
                                  "\"conv_L_cache\": 3"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Conv), (std::vector<int64_t>{0, 2}));
  // The conv state is the last conv_L_cache inputs of width hidden_size.
  ASSERT_TRUE(spec->layers[0].state);
  EXPECT_EQ(spec->layers[0].state->recurrentElements, 0);
  EXPECT_EQ(spec->layers[0].state->convElements, 512 * 3);
  EXPECT_EQ(spec->layers[0].numHeads, 0);
  const LayerSpec &full = spec->layers[1];
  EXPECT_EQ(full.positional.kind, PositionalKind::Rope);
  EXPECT_DOUBLE_EQ(full.positional.theta, 1e6);
  EXPECT_EQ(full.headDim, 64);
  // layer_types wins; without either every layer attends.
  auto typed = importOk(hf("lfm2_moe", "\"layer_types\": [\"conv\", \"conv\", "
                                       "\"full_attention\", \"conv\"]"));
  ASSERT_TRUE(typed);
  EXPECT_EQ(indicesOf(*typed, LayerKind::Full), (std::vector<int64_t>{2}));
  auto plain = importOk(hf("lfm2", ""));
  ASSERT_TRUE(plain);
  EXPECT_EQ(indicesOf(*plain, LayerKind::Full).size(), 4u);
  EXPECT_EQ(importError(hf("lfm2_moe", "")),
            "config.json: field 'layer_types': missing required field");
  EXPECT_EQ(importError(hf("lfm2", "\"full_attn_idxs\": [4]")),
            "config.json: field 'full_attn_idxs[0]': must be a layer index "
            "below num_hidden_layers (4), got 4");
}

TEST(HFRules, MiMoV2FlashDefaults) {
  auto spec =
      importOk("{\"model_type\": \"mimo_v2_flash\", \"num_hidden_layers\": 6, "
               "\"hidden_size\": 4096, \"num_attention_heads\": 64}");
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full), (std::vector<int64_t>{0, 5}));
  const LayerSpec &sliding = spec->layers[1], &full = spec->layers[5];
  EXPECT_EQ(sliding.mask.window, 129);
  EXPECT_EQ(sliding.numKVHeads, 8);
  EXPECT_EQ(full.numKVHeads, 4);
  EXPECT_EQ(full.headDim, 192);
  EXPECT_EQ(full.vHeadDim, 128);
  EXPECT_TRUE(sliding.sinks);
  EXPECT_FALSE(full.sinks);
  EXPECT_EQ(full.positional.rotaryDim, 64); // int(192 * 0.334)
  EXPECT_DOUBLE_EQ(full.positional.theta, 5e6);
  EXPECT_DOUBLE_EQ(sliding.positional.theta, 1e4);
  auto sized = importOk(hf("mimo_v2_flash", "\"sliding_window_size\": 32"));
  ASSERT_TRUE(sized);
  EXPECT_EQ(sized->layers[1].mask.window, 33);
}

TEST(HFRules, GlmGraniteAndOlmo2Defaults) {
  // GLM: head dim 128 and 2 KV heads by default, half of each head rotating
  // in interleaved pairs unless a factor is stated.
  auto glm = importOk(hfBare("glm4"));
  ASSERT_TRUE(glm);
  const LayerSpec &layer = glm->layers[0];
  EXPECT_EQ(layer.headDim, 128);
  EXPECT_EQ(layer.numKVHeads, 2);
  EXPECT_EQ(layer.positional.kind, PositionalKind::Partial);
  EXPECT_EQ(layer.positional.rotaryDim, 64);
  EXPECT_TRUE(layer.positional.interleaved);
  auto stated = importOk(hf("glm", "\"partial_rotary_factor\": 0.25"));
  ASSERT_TRUE(stated);
  EXPECT_EQ(stated->layers[0].positional.rotaryDim, 32); // 128 * 0.25
  // GLM-4.5: 8 KV heads, head_dim from hidden_size, rotate-half pairs.
  auto moe = importOk(hfBare("glm4_moe"));
  ASSERT_TRUE(moe);
  EXPECT_EQ(moe->layers[0].numKVHeads, 8);
  EXPECT_EQ(moe->layers[0].headDim, 64);
  EXPECT_EQ(moe->layers[0].positional.rotaryDim, 32);
  EXPECT_FALSE(moe->layers[0].positional.interleaved);
  EXPECT_EQ(
      importError(hf("glm4_moe", "\"layer_types\": [\"full_attention\", "
                                 "\"sliding_attention\", "
                                 "\"full_attention\", \"full_attention\"]")),
      "config.json: field 'layer_types[1]': layer type "
      "'sliding_attention' is not supported by model type 'glm4_moe'");
  // Granite: the attention multiplier (default 1) is the scale.
  auto granite = importOk(hf("granitemoe", ""));
  ASSERT_TRUE(granite);
  EXPECT_DOUBLE_EQ(granite->layers[0].scale, 1.0);
  // OLMo 2 is Llama's attention; a partial factor is refused as there.
  auto olmo = importOk(hf("olmo2", ""));
  ASSERT_TRUE(olmo);
  EXPECT_EQ(olmo->layers[0].positional.kind, PositionalKind::Rope);
  EXPECT_DOUBLE_EQ(olmo->layers[0].scale, 1.0 / 8.0); // head dim 64
  EXPECT_EQ(importError(hf("olmo2", "\"partial_rotary_factor\": 0.5")),
            "config.json: field 'partial_rotary_factor': must be 1 for "
            "model_type 'olmo2', whose attention rotates the whole head "
            "(transformers ignores the field), got 0.5");
}

TEST(HFRules, FullAttentionFamiliesDefaults) {
  // Head dim 128, 8 KV heads and a base of each config class's own when
  // the config states none.
  for (auto [type, theta] : {std::pair<const char *, double>{"minimax_m2", 5e6},
                             {"seed_oss", 1e4},
                             {"solar_open", 1e6},
                             {"hy_v3", 11158840.0}}) {
    auto spec = importOk(hfBare(type));
    ASSERT_TRUE(spec) << type;
    EXPECT_EQ(spec->layers[0].headDim, 128) << type;
    EXPECT_EQ(spec->layers[0].numKVHeads, 8) << type;
    EXPECT_EQ(spec->layers[0].positional.kind, PositionalKind::Rope) << type;
    EXPECT_DOUBLE_EQ(spec->layers[0].positional.theta, theta) << type;
  }
  // MiniMax-M2's rotary_dim, unless a factor is stated.
  auto m2 = importOk(hf("minimax_m2", "\"rotary_dim\": 64"));
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->layers[0].positional.rotaryDim, 64);
  auto factor = importOk(
      hf("minimax_m2", "\"rotary_dim\": 64, \"partial_rotary_factor\": 0.25"));
  ASSERT_TRUE(factor);
  EXPECT_EQ(factor->layers[0].positional.rotaryDim, 32); // 128 * 0.25
  EXPECT_EQ(importError(hf("minimax_m2", "\"rotary_dim\": 256")),
            "config.json: field 'rotary_dim': must be at most the head dim "
            "(128), got 256");
  // ERNIE 4.5: interleaved pairs, base 500000; the dense model's head dim
  // 128 and 2 KV heads, the MoE's hidden / heads and 4.
  auto ernie = importOk(hf("ernie4_5", "\"num_key_value_heads\": null"));
  ASSERT_TRUE(ernie);
  EXPECT_TRUE(ernie->layers[0].positional.interleaved);
  EXPECT_DOUBLE_EQ(ernie->layers[0].positional.theta, 500000.0);
  EXPECT_EQ(ernie->layers[0].headDim, 128);
  auto ernieMoe = importOk(hfBare("ernie4_5_moe"));
  ASSERT_TRUE(ernieMoe);
  EXPECT_EQ(ernieMoe->layers[0].headDim, 64);
  EXPECT_EQ(ernieMoe->layers[0].numKVHeads, 4);
  // FlexOLMo's base; OLMoE's is Llama's.
  auto flex = importOk(hf("flex_olmo", ""));
  ASSERT_TRUE(flex);
  EXPECT_DOUBLE_EQ(flex->layers[0].positional.theta, 500000.0);
  auto olmoe = importOk(hf("olmoe", ""));
  ASSERT_TRUE(olmoe);
  EXPECT_DOUBLE_EQ(olmoe->layers[0].positional.theta, 1e4);
  // EXAONE 4.5's language model is EXAONE 4.0's (text_config
  // exaone4_5_text, which transformers reads as exaone4).
  auto exaone = importOk(
      "{\"model_type\": \"exaone4_5\", \"text_config\": {\"model_type\": "
      "\"exaone4_5_text\", \"num_hidden_layers\": 8, \"hidden_size\": 512, "
      "\"num_attention_heads\": 8, \"num_key_value_heads\": 2}}");
  ASSERT_TRUE(exaone);
  EXPECT_EQ(indicesOf(*exaone, LayerKind::Full), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(exaone->layers[3].positional.kind, PositionalKind::None);
}

TEST(HFRules, Step3p5SlidingHeadsAndLists) {
  const char *types = "\"layer_types\": [\"sliding_attention\", "
                      "\"full_attention\", \"sliding_attention\", "
                      "\"full_attention\"], \"sliding_window\": 16";
  // Without a window or lists: head dim 128, 8 KV heads, the scale from
  // query_pre_attn_scalar.
  auto plain = importOk(hf(
      "step3p5", std::string(types) + ", \"query_pre_attn_scalar\": 64, "
                                      "\"num_sliding_attention_heads\": 16"));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->layers[0].numHeads, 16);
  EXPECT_EQ(plain->layers[1].numHeads, 8);
  EXPECT_DOUBLE_EQ(plain->layers[1].scale, 0.125);
  // A scalar rope_theta for every layer.
  auto scalar =
      importOk(hf("step3p5", std::string(types) + ", \"rope_theta\": 2e5"));
  ASSERT_TRUE(scalar);
  EXPECT_DOUBLE_EQ(scalar->layers[0].positional.theta, 2e5);
  EXPECT_EQ(
      importError(hf("step3p5", std::string(types) +
                                    ", \"num_sliding_attention_heads\": 5")),
      "config.json: field 'num_sliding_attention_heads': must be a multiple "
      "of the KV heads (2), got 5");
  EXPECT_EQ(
      importError(hf("step3p5", std::string(types) +
                                    ", \"attention_other_setting\": "
                                    "{\"num_attention_heads\": 1000000}")),
      "config.json: field 'attention_other_setting.num_attention_heads': "
      "must be at most 65536, got 1000000");
  EXPECT_EQ(importError(hf("step3p5", std::string(types) +
                                          ", \"rope_theta\": [1e4, 1e4]")),
            "config.json: field 'rope_theta': has 2 entries but "
            "'num_hidden_layers' is 4");
  EXPECT_EQ(importError(hf("step3p5",
                           std::string(types) +
                               ", \"partial_rotary_factors\": [0, 1, 1, 1]")),
            "config.json: field 'partial_rotary_factors[0]': must be a "
            "positive number, got 0");
  EXPECT_EQ(importError(hf("step3p5", std::string(types) +
                                          ", \"use_bidirectional_attention\": "
                                          "true")),
            "config.json: field 'use_bidirectional_attention': is not "
            "supported for step3p5 (its sliding layers would see keys ahead)");
  // Step 3.7's sparse layers (a lightning indexer) are not supported.
  EXPECT_EQ(
      importError(hf("step3p5", "\"layer_types\": [\"minimax_m3_sparse\", "
                                "\"full_attention\", "
                                "\"full_attention\", \"full_attention\"]")),
      "config.json: field 'layer_types[0]': unknown layer type "
      "'minimax_m3_sparse' (supported: full_attention, "
      "sliding_attention, chunked_attention, linear_attention, mamba, "
      "attention, hybrid, mlp, moe, conv)");
}

TEST(HFRules, ApertusDots1AndSarvamDefaults) {
  // Apertus: Llama 3 scaled RoPE of base 12e6 unless the config states its
  // RoPE; a top-level rope_theta alone does not replace the dictionary's.
  auto apertus = importOk(hf("apertus1p5_text", "\"rope_theta\": 1e4"));
  ASSERT_TRUE(apertus);
  const Positional &pos = apertus->layers[0].positional;
  EXPECT_DOUBLE_EQ(pos.theta, 12e6);
  ASSERT_TRUE(pos.scaling);
  EXPECT_EQ(pos.scaling->kind, RopeScalingKind::Llama3);
  EXPECT_DOUBLE_EQ(pos.scaling->factor, 8.0);
  // dots.llm1: layers from max_window_layers (62) on slide under its 4096
  // window, with no use_sliding_window; 32 KV heads.
  auto dots = importOk(hfBare("dots1", 64, 32));
  ASSERT_TRUE(dots);
  EXPECT_EQ(indicesOf(*dots, LayerKind::Sliding),
            (std::vector<int64_t>{62, 63}));
  EXPECT_EQ(dots->layers[63].mask.window, 4096);
  EXPECT_EQ(dots->layers[0].numKVHeads, 32);
  auto unwindowed = importOk(hf("dots1", "\"sliding_window\": null, "
                                         "\"max_window_layers\": 0"));
  ASSERT_TRUE(unwindowed);
  EXPECT_TRUE(indicesOf(*unwindowed, LayerKind::Sliding).empty());
  // Sarvam MoE runs GLM-4.5's attention with the whole head rotating by
  // default; head dim 64, 4 KV heads, base 8e6.
  auto sarvam = importOk(hfBare("sarvam_moe"));
  ASSERT_TRUE(sarvam);
  EXPECT_EQ(sarvam->layers[0].headDim, 64);
  EXPECT_EQ(sarvam->layers[0].numKVHeads, 4);
  EXPECT_EQ(sarvam->layers[0].positional.kind, PositionalKind::Rope);
  EXPECT_DOUBLE_EQ(sarvam->layers[0].positional.theta, 8e6);
  auto half = importOk(hf("sarvam_moe", "\"partial_rotary_factor\": 0.5"));
  ASSERT_TRUE(half);
  EXPECT_EQ(half->layers[0].positional.rotaryDim, 32); // 64 * 0.5
}

TEST(HFRules, MlaDecompressedPerHead) {
  // DeepSeek V3's defaults: heads of 128 + 64 dims, the last 64 rotating in
  // interleaved pairs, values of 128; keys and values for every head.
  auto v3 = importOk(hfBare("deepseek_v3"));
  ASSERT_TRUE(v3);
  const LayerSpec &l = v3->layers[0];
  EXPECT_EQ(l.headDim, 192);
  EXPECT_EQ(l.vHeadDim, 128);
  EXPECT_EQ(l.numKVHeads, 8);
  EXPECT_EQ(l.positional.kind, PositionalKind::Partial);
  EXPECT_EQ(l.positional.rotaryDim, 64);
  EXPECT_EQ(l.positional.rotaryOffset, 128);
  EXPECT_TRUE(l.positional.interleaved);
  EXPECT_DOUBLE_EQ(l.positional.theta, 1e4);
  EXPECT_DOUBLE_EQ(l.scale, 1.0 / std::sqrt(192.0));
  // Kimi K2's yarn: the scale takes get_mscale(factor, mscale_all_dim)^2,
  // the rotation's attention factor mscale / mscale_all_dim; a hub head_dim
  // (vLLM's latent width) changes nothing.
  auto k2 = importOk(
      hf("kimi_k2", "\"num_key_value_heads\": 8, \"head_dim\": 576, "
                    "\"qk_nope_head_dim\": 32, \"qk_rope_head_dim\": 16, "
                    "\"v_head_dim\": 48, \"rope_theta\": 50000, "
                    "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 32, "
                    "\"original_max_position_embeddings\": 4096, "
                    "\"beta_fast\": 1, \"beta_slow\": 1, \"mscale\": 1, "
                    "\"mscale_all_dim\": 1}"));
  ASSERT_TRUE(k2);
  const LayerSpec &k = k2->layers[0];
  EXPECT_EQ(k.headDim, 48);
  EXPECT_EQ(k.vHeadDim, 48);
  EXPECT_EQ(k.positional.rotaryOffset, 32);
  double m = 0.1 * std::log(32.0) + 1;
  EXPECT_DOUBLE_EQ(k.scale, m * m / std::sqrt(48.0));
  ASSERT_TRUE(k.positional.scaling);
  EXPECT_DOUBLE_EQ(*k.positional.scaling->attentionFactor, 1.0);
  EXPECT_DOUBLE_EQ(*k.positional.scaling->betaFast, 1.0);
  // rope_interleave false: rotate-half pairs; DeepSeek V2 ignores the flag.
  auto halves = importOk(hf("youtu", "\"num_key_value_heads\": 8, "
                                     "\"rope_interleave\": false"));
  ASSERT_TRUE(halves);
  EXPECT_FALSE(halves->layers[0].positional.interleaved);
  auto v2 = importOk(hf("deepseek_v2", "\"num_key_value_heads\": 8, "
                                       "\"rope_interleave\": false"));
  ASSERT_TRUE(v2);
  EXPECT_TRUE(v2->layers[0].positional.interleaved);
  // Sarvam's checkpoints name their yarn deepseek_yarn.
  auto sarvam =
      importOk(hf("sarvam_mla", "\"num_key_value_heads\": 8, \"rope_scaling\": "
                                "{\"type\": \"deepseek_yarn\", \"factor\": 4, "
                                "\"original_max_position_embeddings\": 2048}"));
  ASSERT_TRUE(sarvam);
  EXPECT_EQ(sarvam->layers[0].positional.scaling->kind, RopeScalingKind::Yarn);
  EXPECT_EQ(importError(hf("deepseek_v3", "\"rope_scaling\": {\"type\": "
                                          "\"deepseek_yarn\", \"factor\": 4}")),
            "config.json: field 'num_key_value_heads': must equal "
            "num_attention_heads (8) for model_type 'deepseek_v3', whose "
            "latent attention gives every head its keys and values, got 2");
  EXPECT_EQ(importError(hf("deepseek_v3", "\"num_key_value_heads\": 8, "
                                          "\"rope_scaling\": {\"type\": "
                                          "\"deepseek_yarn\", \"factor\": 4}")),
            "config.json: field 'rope_scaling.type': unsupported rope type "
            "'deepseek_yarn' (supported: default, linear, llama3, yarn, "
            "proportional)");
  EXPECT_EQ(importError(hf("deepseek_v3", "\"num_key_value_heads\": 8, "
                                          "\"qk_rope_head_dim\": 7")),
            "config.json: field 'qk_rope_head_dim': must be even for rotary "
            "embeddings, got 7");
  // Kimi K2.5 wraps Kimi K2's text config.
  auto k25 = importOk("{\"model_type\": \"kimi_k25\", \"text_config\": " +
                      hf("kimi_k2", "\"num_key_value_heads\": 8") + "}");
  ASSERT_TRUE(k25);
  EXPECT_EQ(k25->layers[0].positional.rotaryOffset, 128);
}

TEST(HFRules, MlaHybridsAndLongcat) {
  // Kimi Linear: 1-indexed layer lists, NoPE MLA layers scaled by
  // qk_head_dim^-0.5, KDA layers of linear_attn_config's shape.
  auto kimi = importOk(
      hf("kimi_linear",
         "\"num_key_value_heads\": 8, \"linear_attn_config\": "
         "{\"full_attn_layers\": [2, 4], \"kda_layers\": [1, 3], "
         "\"num_heads\": 4, \"head_dim\": 32, \"short_conv_kernel_size\": 3}, "
         "\"model_max_length\": 65536"));
  ASSERT_TRUE(kimi);
  EXPECT_EQ(indicesOf(*kimi, LayerKind::Full), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(kimi->maxPositionEmbeddings, 65536);
  const LayerSpec &mla = kimi->layers[1];
  EXPECT_EQ(mla.headDim, 192);
  EXPECT_EQ(mla.vHeadDim, 128);
  EXPECT_EQ(mla.positional.kind, PositionalKind::None);
  EXPECT_DOUBLE_EQ(mla.scale, 1.0 / std::sqrt(192.0));
  const LayerSpec &kda = kimi->layers[0];
  EXPECT_EQ(kda.numHeads, 4);
  EXPECT_EQ(kda.headDim, 32);
  ASSERT_TRUE(kda.state);
  EXPECT_EQ(kda.state->recurrentElements, 4 * 32 * 32);
  EXPECT_EQ(kda.state->convElements, 3 * 4 * 32 * 3);
  // Without both lists: every 4th layer from layer 4 (0-indexed).
  auto fallback = importOk(hf("kimi_linear", "\"num_key_value_heads\": 8", 9));
  ASSERT_TRUE(fallback);
  EXPECT_EQ(indicesOf(*fallback, LayerKind::Full),
            (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(
      importError(hf("kimi_linear",
                     "\"num_key_value_heads\": 8, \"linear_attn_config\": "
                     "{\"full_attn_layers\": [4], \"kda_layers\": [0, 1, 2]}")),
      "config.json: field 'linear_attn_config.kda_layers[0]': must be a "
      "layer number from 1 to num_hidden_layers (4), got 0");
  EXPECT_EQ(
      importError(hf("kimi_linear",
                     "\"num_key_value_heads\": 8, \"linear_attn_config\": "
                     "{\"full_attn_layers\": [4], \"kda_layers\": [1, 2]}")),
      "config.json: field 'linear_attn_config.kda_layers': and "
      "full_attn_layers leave layer 3 (1-indexed) without a kind");
  // Ling 3: every 6th layer MLA (interleaved RoPE of base 6e6), the others
  // KDA with the attention heads and head_dim.
  auto ling = importOk(hf("bailing_hybrid",
                          "\"num_key_value_heads\": 8, "
                          "\"head_dim\": 64",
                          12));
  ASSERT_TRUE(ling);
  EXPECT_EQ(indicesOf(*ling, LayerKind::Full), (std::vector<int64_t>{5, 11}));
  EXPECT_EQ(ling->layers[5].headDim, 192);
  EXPECT_TRUE(ling->layers[5].positional.interleaved);
  EXPECT_DOUBLE_EQ(ling->layers[5].positional.theta, 6e6);
  EXPECT_EQ(ling->layers[0].numHeads, 8);
  EXPECT_EQ(ling->layers[0].headDim, 64);
  EXPECT_EQ(ling->layers[0].state->convElements, 3 * 8 * 64 * 4);
  // LongCat-Flash: two MLA sublayers per block, base 1e7, always
  // interleaved.
  auto longcat =
      importOk("{\"model_type\": \"longcat_flash\", \"num_layers\": 3, "
               "\"hidden_size\": 512, \"num_attention_heads\": 8}");
  ASSERT_TRUE(longcat);
  ASSERT_EQ(longcat->layers.size(), 6u);
  EXPECT_DOUBLE_EQ(longcat->layers[5].positional.theta, 1e7);
  EXPECT_TRUE(longcat->layers[5].positional.interleaved);
  EXPECT_EQ(longcat->layers[5].positional.rotaryOffset, 128);
  EXPECT_EQ(importError("{\"model_type\": \"longcat_flash\", \"num_layers\": "
                        "3, \"num_hidden_layers\": 4, \"hidden_size\": 512, "
                        "\"num_attention_heads\": 8}"),
            "config.json: field 'num_hidden_layers': must be twice num_layers "
            "(3), got 4");
  EXPECT_EQ(
      importError("{\"model_type\": \"longcat_flash\", \"num_layers\": "
                  "40000, \"hidden_size\": 512, \"num_attention_heads\": 8}"),
      "config.json: field 'num_layers': must be at most 32768, got 40000");
  // A KDA state past int64, named where its size is read.
  EXPECT_EQ(
      importError(hf("kimi_linear",
                     "\"num_key_value_heads\": 8, \"linear_attn_config\": "
                     "{\"head_dim\": 4000000000}",
                     5)),
      "config.json: field 'linear_attn_config.head_dim': makes the "
      "recurrent state size overflow");
  EXPECT_EQ(importError(hf("bailing_hybrid",
                           "\"num_key_value_heads\": 8, "
                           "\"short_conv_kernel_size\": "
                           "40000000000000000",
                           6)),
            "config.json: field 'short_conv_kernel_size': makes the recurrent "
            "state size overflow");
}

TEST(HFRules, MlaLatentOption) {
  // The absorbed form: one KV head of kv_lora_rank + qk_rope_head_dim dims,
  // the latent's as values, RoPE after them; the scale stays qk_head_dim's.
  ImportOptions latent;
  latent.latentMla = true;
  auto v3 = importModel(hfBare("deepseek_v3"), "config.json", latent);
  ASSERT_TRUE(bool(v3)) << llvm::toString(v3.takeError());
  const LayerSpec &l = v3->layers[0];
  EXPECT_TRUE(l.latent);
  EXPECT_EQ(l.numKVHeads, 1);
  EXPECT_EQ(l.headDim, 576);
  EXPECT_EQ(l.vHeadDim, 512);
  EXPECT_EQ(l.positional.rotaryDim, 64);
  EXPECT_EQ(l.positional.rotaryOffset, 512);
  EXPECT_DOUBLE_EQ(l.scale, 1.0 / std::sqrt(192.0));
  // Kimi Linear's NoPE MLA layers stay NoPE; its KDA layers are untouched.
  auto kimi = importModel(
      hf("kimi_linear", "\"num_key_value_heads\": 8, \"kv_lora_rank\": 256", 5),
      "config.json", latent);
  ASSERT_TRUE(bool(kimi)) << llvm::toString(kimi.takeError());
  EXPECT_EQ(kimi->layers[0].kind, LayerKind::Linear);
  EXPECT_FALSE(kimi->layers[0].latent);
  EXPECT_TRUE(kimi->layers[4].latent);
  EXPECT_EQ(kimi->layers[4].headDim, 256 + 64);
  EXPECT_EQ(kimi->layers[4].positional.kind, PositionalKind::None);
  // Without the option, the decompressed form.
  auto plain = importOk(hfBare("deepseek_v3"));
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->layers[0].latent);
}

TEST(HFErrors, KnownFamiliesTheKernelsCannotCompute) {
  EXPECT_EQ(importError(hfBare("deepseek_v32")),
            "config.json: field 'model_type': model type 'deepseek_v32' is "
            "not supported: its attention is sparse: an indexer keeps the top "
            "index_topk keys of each query (DeepSeek sparse attention)");
  EXPECT_EQ(importError(hfBare("nanochat")),
            "config.json: field 'model_type': model type 'nanochat' is not "
            "supported: its RoPE turns the other way (rotate_half gives "
            "cat(x2, -x1))");
  // A wrapper's language model, named at its own path.
  EXPECT_EQ(importError("{\"model_type\": \"kimi_k25\", \"text_config\": " +
                        hfBare("deepseek_v32") + "}"),
            "config.json: field 'text_config.model_type': model type "
            "'deepseek_v32' is not supported: its attention is sparse: an "
            "indexer keeps the top index_topk keys of each query (DeepSeek "
            "sparse attention)");
}

TEST(HFRules, Ministral3QueryScaling) {
  auto spec = importOk(hf("ministral3", "\"sliding_window\": 4096"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Sliding),
            (std::vector<int64_t>{0, 1, 2, 3}));
  ASSERT_TRUE(spec->layers[2].temperature);
  EXPECT_DOUBLE_EQ(spec->layers[2].temperature->floorScale, 16384.0);
  EXPECT_EQ(spec->layers[2].temperature->offset, 0);
  EXPECT_EQ(spec->layers[2].positional.scaling->kind, RopeScalingKind::Yarn);
  auto unscaled = importOk(
      hf("ministral3", "\"rope_parameters\": {\"rope_type\": \"yarn\", "
                       "\"factor\": 4, \"original_max_position_embeddings\": "
                       "1024, \"llama_4_scaling_beta\": 0}"));
  ASSERT_TRUE(unscaled);
  EXPECT_FALSE(unscaled->layers[0].temperature);
  EXPECT_EQ(importError(hf("ministral3", "\"rope_parameters\": {\"rope_type\": "
                                         "\"default\", \"rope_theta\": 1e6}")),
            "config.json: field 'rope_parameters.llama_4_scaling_beta': "
            "missing required field");
}

TEST(HFRules, Qwen3NextDefaults) {
  auto spec = importOk(hf("qwen3_next", "", 8));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Full), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(spec->layers[3].positional.rotaryDim, 64); // 256 * 0.25
}

TEST(HFRules, RopeParametersKeyedAndFlat) {
  auto keyed = importOk(hf(
      "gemma3_text",
      "\"rope_parameters\": {\"sliding_attention\": {\"rope_type\": "
      "\"default\", "
      "\"rope_theta\": 20000}, \"full_attention\": {\"rope_type\": \"linear\", "
      "\"factor\": 4.0, \"rope_theta\": 2000000}}, \"sliding_window\": 16",
      6));
  ASSERT_TRUE(keyed);
  EXPECT_DOUBLE_EQ(keyed->layers[0].positional.theta, 20000.0);
  EXPECT_FALSE(keyed->layers[0].positional.scaling);
  EXPECT_DOUBLE_EQ(keyed->layers[5].positional.theta, 2e6);
  EXPECT_EQ(keyed->layers[5].positional.scaling->kind, RopeScalingKind::Linear);

  auto flat =
      importOk(hf("llama", "\"rope_parameters\": {\"rope_type\": \"yarn\", "
                           "\"factor\": 2.0, \"rope_theta\": 1e6, "
                           "\"mscale\": 1.0, \"mscale_all_dim\": 0.5}"));
  ASSERT_TRUE(flat);
  const Positional &pos = flat->layers[0].positional;
  EXPECT_DOUBLE_EQ(pos.theta, 1e6);
  EXPECT_EQ(pos.scaling->kind, RopeScalingKind::Yarn);
  EXPECT_EQ(pos.scaling->originalMaxPosition, 8192); // max_position_embeddings
  double expected = (0.1 * std::log(2.0) + 1) / (0.05 * std::log(2.0) + 1);
  EXPECT_NEAR(*pos.scaling->attentionFactor, expected, 1e-12);
}

TEST(HFRules, PartialRotaryFactor) {
  auto spec = importOk(hf("phi3", "\"partial_rotary_factor\": 0.75"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[0].positional.kind, PositionalKind::Partial);
  EXPECT_EQ(spec->layers[0].positional.rotaryDim, 48); // 64 * 0.75
  // A family whose attention rotates the whole head: transformers ignores
  // the factor, so a partial one is refused rather than guessed.
  EXPECT_EQ(importError(hf("llama", "\"partial_rotary_factor\": 0.5")),
            "config.json: field 'partial_rotary_factor': must be 1 for "
            "model_type 'llama', whose attention rotates the whole head "
            "(transformers ignores the field), got 0.5");
  EXPECT_EQ(importError(hf("mistral", "\"rope_parameters\": {\"rope_type\": "
                                      "\"default\", \"rope_theta\": 1e4, "
                                      "\"partial_rotary_factor\": 0.25}")),
            "config.json: field 'rope_parameters.partial_rotary_factor': "
            "must be 1 for model_type 'mistral', whose attention rotates the "
            "whole head (transformers ignores the field), got 0.25");
  auto whole = importOk(hf("llama", "\"partial_rotary_factor\": 1.0"));
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->layers[0].positional.kind, PositionalKind::Rope);
  // MiMo-V2-Flash's rotary embedding defaults a layer type's factor.
  auto mimo = importOk(hf(
      "mimo_v2_flash",
      "\"head_dim\": 192, \"rope_parameters\": {\"full_attention\": "
      "{\"rope_theta\": 5e6}, \"sliding_attention\": {\"rope_theta\": 1e4}}"));
  ASSERT_TRUE(mimo);
  EXPECT_EQ(mimo->layers[0].positional.rotaryDim, 64); // int(192 * 0.334)
}

TEST(HFRules, MiniMaxLegacyAttnTypeList) {
  auto spec = importOk(hf("minimax", "\"attn_type_list\": [0, 0, 0, 1]"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(indicesOf(*spec, LayerKind::Linear),
            (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(spec->layers[3].kind, LayerKind::Full);
  auto byDefault = importOk(hf("minimax", ""));
  ASSERT_TRUE(byDefault);
  EXPECT_EQ(indicesOf(*byDefault, LayerKind::Full),
            (std::vector<int64_t>{0, 2}));
}

TEST(HFRules, Zamba2WithoutMemRopeIsNoPE) {
  auto spec = importOk(hf("zamba2", "\"layers_block_type\": [\"mamba\", "
                                    "\"hybrid\", \"mamba\", \"hybrid\"]"));
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->layers[1].kind, LayerKind::Hybrid);
  EXPECT_EQ(spec->layers[1].positional.kind, PositionalKind::None);
  EXPECT_EQ(spec->layers[1].headDim, 128); // 2 * 512 / 8
}

//===----------------------------------------------------------------------===//
// Error classes.
//===----------------------------------------------------------------------===//

TEST(HFErrors, MalformedJSONHasLineAndColumn) {
  EXPECT_EQ(
      importError("{\n  \"model_type\": \"llama\",\n  \"hidden_size\": ,\n}"),
      "config.json:3:18: malformed JSON: syntax error while parsing value "
      "- unexpected ','; expected '[', '{', or a literal");
  EXPECT_EQ(importError(""), "config.json:1:1: malformed JSON: syntax error "
                             "while parsing value - unexpected end of input; "
                             "expected '[', '{', or a literal");
  // The column is the byte that broke the literal; nlohmann's echo of the
  // input ("last read: ...") is dropped.
  EXPECT_EQ(importError("{\"a\": tru}", "x.json"),
            "x.json:1:10: malformed JSON: syntax error while parsing value - "
            "invalid literal");
}

TEST(HFErrors, TopLevelMustBeObject) {
  EXPECT_EQ(importError("[1, 2]"),
            "config.json: top-level value must be a JSON object, got an array");
}

TEST(HFErrors, UnknownOrMissingModelType) {
  std::string err = importError("{\"model_type\": \"foo\"}");
  EXPECT_EQ(err.rfind("config.json: field 'model_type': unknown model type "
                      "'foo' (supported: llama, ",
                      0),
            0u)
      << err;
  EXPECT_EQ(importError("{\"hidden_size\": 4}"),
            "config.json: field 'model_type': missing required field");
}

TEST(HFErrors, UnknownLayerType) {
  EXPECT_EQ(
      importError(hf("gemma3_text", "\"layer_types\": [\"sliding_attention\", "
                                    "\"foo\", \"full_attention\", "
                                    "\"full_attention\"]")),
      "config.json: field 'layer_types[1]': unknown layer type 'foo' "
      "(supported: full_attention, sliding_attention, chunked_attention, "
      "linear_attention, mamba, attention, hybrid, mlp, moe, conv)");
  EXPECT_EQ(importError(hf("llama", "\"layer_types\": [\"mamba\", "
                                    "\"full_attention\", \"full_attention\", "
                                    "\"full_attention\"]")),
            "config.json: field 'layer_types[0]': layer type 'mamba' is not "
            "supported by model type 'llama'");
}

TEST(HFErrors, LayerTypesWrongLength) {
  std::string types = "[";
  for (int i = 0; i < 20; ++i)
    types += std::string(i ? ", " : "") + "\"sliding_attention\"";
  types += "]";
  EXPECT_EQ(importError(hf("gemma3_text", "\"layer_types\": " + types, 26)),
            "config.json: field 'layer_types': has 20 entries but "
            "'num_hidden_layers' is 26");
}

TEST(HFErrors, WindowAndPatternMustBePositive) {
  EXPECT_EQ(importError("{\"model_type\": \"gemma3\", \"text_config\": "
                        "{\"num_hidden_layers\": 26, \"hidden_size\": 1152, "
                        "\"num_attention_heads\": 4, \"sliding_window\": 0}}"),
            "config.json: field 'text_config.sliding_window': must be a "
            "positive integer, got 0");
  EXPECT_EQ(importError(hf("gemma3_text", "\"sliding_window_pattern\": 0")),
            "config.json: field 'sliding_window_pattern': must be a positive "
            "integer, got 0");
  EXPECT_EQ(importError(hf("gemma2", "\"sliding_window\": null")),
            "config.json: field 'sliding_window': must be a positive integer, "
            "got null");
  EXPECT_EQ(importError(hf("mistral", "\"sliding_window\": -4")),
            "config.json: field 'sliding_window': must be a positive integer, "
            "got -4");
}

TEST(HFErrors, HeadsNotDivisible) {
  EXPECT_EQ(importError(hf("llama", "\"num_key_value_heads\": 3")),
            "config.json: field 'num_key_value_heads': must divide "
            "num_attention_heads (8), got 3");
  EXPECT_EQ(
      importError("{\"model_type\": \"llama\", \"num_hidden_layers\": 1, "
                  "\"hidden_size\": 500, \"num_attention_heads\": 8}"),
      "config.json: field 'hidden_size': (500) does not give a whole head "
      "dim over num_attention_heads (8)");
  EXPECT_EQ(
      importError(hf("qwen3_next", "\"linear_num_key_heads\": 5")),
      "config.json: field 'linear_num_value_heads': must be a multiple of "
      "linear_num_key_heads (5), got 32");
}

TEST(HFErrors, MissingRequiredField) {
  EXPECT_EQ(importError("{\"model_type\": \"llama\", \"hidden_size\": 8, "
                        "\"num_attention_heads\": 2}"),
            "config.json: field 'num_hidden_layers': missing required field");
  EXPECT_EQ(importError("{\"model_type\": \"llama4\", \"text_config\": "
                        "{\"num_hidden_layers\": 2, \"hidden_size\": 8}}"),
            "config.json: field 'text_config.num_attention_heads': missing "
            "required field");
  EXPECT_EQ(importError(hf("falcon_h1", "")),
            "config.json: field 'rope_theta': missing required field");
  EXPECT_EQ(importError(hf("llama4_text", "\"attention_chunk_size\": null")),
            "config.json: field 'attention_chunk_size': must be a positive "
            "integer, got null");
}

TEST(HFErrors, WrongTypesAndRanges) {
  EXPECT_EQ(
      importError(hf("llama", "\"hidden_size\": \"big\""))
          .find("config.json: field 'hidden_size': must be a positive integer, "
                "got 'big'"),
      0u);
  EXPECT_EQ(
      importError("{\"model_type\": \"llama\", \"num_hidden_layers\": 4.5, "
                  "\"hidden_size\": 8, \"num_attention_heads\": 2}"),
      "config.json: field 'num_hidden_layers': must be a positive integer, "
      "got 4.5");
  EXPECT_EQ(
      importError("{\"model_type\": \"llama\", \"num_hidden_layers\": "
                  "1000000, \"hidden_size\": 8, \"num_attention_heads\": 2}"),
      "config.json: field 'num_hidden_layers': must be at most 65536, got "
      "1000000");
  EXPECT_EQ(importError("{\"model_type\": 7}"),
            "config.json: field 'model_type': must be a string, got 7");
  EXPECT_EQ(importError(hf("gemma3_text", "\"text_config\": 3")),
            "config.json: field 'text_config': must be an object, got 3");
}

TEST(HFErrors, UnsupportedRope) {
  EXPECT_EQ(
      importError(hf("llama", "\"rope_scaling\": {\"rope_type\": "
                              "\"dynamic\", \"factor\": 2.0}")),
      "config.json: field 'rope_scaling.rope_type': unsupported rope type "
      "'dynamic' (supported: default, linear, llama3, yarn, proportional)");
  EXPECT_EQ(
      importError(hf("phi3", "\"rope_scaling\": {\"type\": \"longrope\", "
                             "\"long_factor\": [1.0]}")),
      "config.json: field 'rope_scaling.type': unsupported rope type "
      "'longrope' (supported: default, linear, llama3, yarn, proportional)");
  EXPECT_EQ(
      importError(hf("llama", "\"rope_scaling\": {\"factor\": 2.0}")),
      "config.json: field 'rope_scaling.rope_type': missing required field");
  EXPECT_EQ(
      importError(hf("llama", "\"rope_scaling\": {\"rope_type\": "
                              "\"llama3\", \"factor\": 8.0}")),
      "config.json: field 'rope_scaling.low_freq_factor': missing required "
      "field");
  EXPECT_EQ(importError(hf("llama", "\"rope_scaling\": {\"rope_type\": "
                                    "\"linear\", \"factor\": 0}")),
            "config.json: field 'rope_scaling.factor': must be a positive "
            "number, got 0");
  EXPECT_EQ(
      importError(hf("llama", "\"head_dim\": 63")),
      "config.json: field 'head_dim': must be even for rotary embeddings, "
      "got 63");
  EXPECT_EQ(
      importError(hf("llama", "\"partial_rotary_factor\": 1.5")),
      "config.json: field 'partial_rotary_factor': must be at most 1, got "
      "1.5");
  EXPECT_EQ(
      importError(hf("gemma3_text", "\"rope_parameters\": "
                                    "{\"full_attention\": {\"rope_theta\": "
                                    "1e6}}")),
      "config.json: field 'rope_parameters.sliding_attention': missing "
      "required field");
}

TEST(HFErrors, ContradictoryFamilyFields) {
  EXPECT_EQ(importError(hf("jamba", "\"attn_layer_period\": 4, "
                                    "\"attn_layer_offset\": 4")),
            "config.json: field 'attn_layer_offset': must be smaller than "
            "attn_layer_period (4), got 4");
  EXPECT_EQ(importError(hf("gemma3n_text", "\"num_kv_shared_layers\": 4")),
            "config.json: field 'num_kv_shared_layers': must be smaller than "
            "num_hidden_layers (4), got 4");
  EXPECT_EQ(importError(hf("gemma4_text",
                           "\"layer_types\": [\"sliding_attention\", "
                           "\"sliding_attention\", \"sliding_attention\", "
                           "\"full_attention\"], \"num_kv_shared_layers\": 1")),
            "config.json: field 'num_kv_shared_layers': makes layer 3 "
            "(full_attention) share the cache of an earlier layer of its type, "
            "but none precedes layer 3");
  EXPECT_EQ(
      importError(hf("zamba2", "")),
      "config.json: field 'layers_block_type': missing, and transformers' "
      "default schedule has 54 layers but 'num_hidden_layers' is 4");
  EXPECT_EQ(importError(hf("llama4_text", "\"no_rope_layers\": [1, 2, 1, 0]")),
            "config.json: field 'no_rope_layers[1]': must be 0 (NoPE) or 1 "
            "(RoPE), got 2");
  EXPECT_EQ(importError(hf("gemma4_text", "\"use_bidirectional_attention\": "
                                          "\"sometimes\"")),
            "config.json: field 'use_bidirectional_attention': must be 'all', "
            "'vision' or null, got 'sometimes'");
  EXPECT_EQ(importError(hf("falcon_h1", "\"rope_theta\": 1e4, \"mamba_d_ssm\": "
                                        "1000, \"mamba_n_heads\": 7")),
            "config.json: field 'mamba_n_heads': must divide the Mamba inner "
            "size (1000 from 'mamba_d_ssm'), got 7");
}

TEST(HFErrors, PerLayerConfig) {
  // (per_layer_config, the error after "config.json: field ").
  const std::pair<std::string, std::string> cases[] = {
      {R"({"4": {}})", "'per_layer_config.4': must be a layer index below "
                       "num_hidden_layers (4)"},
      {R"({"one": {}})", "'per_layer_config.one': must be a layer index below "
                         "num_hidden_layers (4)"},
      {R"({"1": {"sliding_window": 128}})",
       "'per_layer_config.1.sliding_window': a per-layer value of this field "
       "is not supported (a layer may override head_dim, num_attention_heads "
       "and num_key_value_heads, and its feed-forward fields)"},
      {R"({"0": {"skip": ["self_attn"]}})",
       "'per_layer_config.0.skip': skips a layer's attention (or names no "
       "sub-layer): not supported"},
      // transformers pads the indices of longer models ("05").
      {R"({"02": {"num_key_value_heads": 3}})",
       "'per_layer_config.02.num_key_value_heads': must divide "
       "num_attention_heads (8), got 3"},
      {R"({"2": {"head_dim": -4}})",
       "'per_layer_config.2.head_dim': must be a positive integer, got -4"},
  };
  for (const auto &[overrides, message] : cases)
    EXPECT_EQ(importError(hf("llama", "\"per_layer_config\": " + overrides)),
              "config.json: field " + message);
}

TEST(HFErrors, UnknownFormat) {
  EXPECT_EQ(importError("{\"format\": \"onnx\"}", "spec.json"),
            "spec.json: field 'format': unknown format 'onnx' (expected "
            "'hybrid-schedule')");
}

TEST(HFErrors, HostileInputsDoNotCrash) {
  std::string deep(100000, '[');
  EXPECT_NE(importError(deep).find("malformed JSON"), std::string::npos);
  std::string nested = std::string(50000, '[') + std::string(50000, ']');
  EXPECT_EQ(importError(nested),
            "config.json: top-level value must be a JSON object, got an array");
  EXPECT_NE(importError(hf("llama", "\"hidden_size\": 1e400")), "<no error>");
  EXPECT_NE(
      importError(hf("falcon_h1", "\"rope_theta\": 1e4, \"mamba_d_ssm\": "
                                  "4611686018427387904, \"mamba_n_heads\": "
                                  "1, \"mamba_d_state\": 4611686018427387904")),
      "<no error>");
}

} // namespace
