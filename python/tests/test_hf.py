"""The transformers integration: tiny random models of every family the
importer knows run prefill and greedy decoding through hybrid attention and
give the logits of transformers' own eager attention (Gemma 3: 5 sliding
layers and a global one, with the cache of the sliding ones checked too);
beam search, assisted generation, new sequences without reset(), f8
cache scales and left-padded batches (each sequence at its own length)
through it. Needs torch and transformers (skipped without
them)."""
import contextlib
import copy
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hybrid_attn  # noqa: E402
import hybrid_attn.hf  # noqa: E402
from teacher_forcing import prompt_and_step_logits  # noqa: E402

# A small model: 4 query heads of dim 16 over 2 kv heads.
SMALL = dict(vocab_size=97, hidden_size=64, intermediate_size=128,
             num_attention_heads=4, num_key_value_heads=2, head_dim=16,
             max_position_embeddings=256)


def save(tmp_path, config, model_class):
    torch.manual_seed(0)
    model = model_class(config).eval()
    config.save_pretrained(tmp_path)
    return model, os.path.join(tmp_path, "config.json")


def generate_both(model, attention):
    """Greedy generation of 6 tokens after a 21-token prompt (batch 2), with
    eager attention and with hybrid attention: (ids, logits) of each."""
    ids = torch.randint(0, 97, (2, 21))
    results = {}
    for implementation in ("eager", "hybrid"):
        model.config._attn_implementation = implementation
        attention.reset()
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=6, do_sample=False,
                                 output_logits=True, return_dict_in_generate=True)
        results[implementation] = (out.sequences, torch.stack(out.logits))
    return results["eager"], results["hybrid"]


def assert_same(eager, hybrid):
    (eager_ids, eager_logits), (hybrid_ids, hybrid_logits) = eager, hybrid
    assert torch.equal(eager_ids, hybrid_ids)
    error = (hybrid_logits - eager_logits).abs().max() / eager_logits.abs().max()
    assert error < 1e-4, float(error)


def test_gemma3_prefill_and_decode_match_eager(tmp_path):
    config = transformers.Gemma3TextConfig(
        **SMALL, num_hidden_layers=6, sliding_window=8, query_pre_attn_scalar=16)
    model, config_path = save(tmp_path, config, transformers.Gemma3ForCausalLM)
    with open(config_path) as f:
        assert json.load(f)["model_type"] == "gemma3_text"
    schedule = hybrid_attn.compile(config_path, max_seq=64, external_positional=True)
    assert [l["kind"] for l in schedule.layers] == ["sliding"] * 5 + ["full"]
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    assert_same(*generate_both(model, attention))
    # The ring of the sliding layers stays at the window.
    assert attention.session.cache_info(0)["rows"] == 8
    assert attention.session.cache_info(0)["length"] == 21 + 5


def test_step_without_the_prompt_is_refused(tmp_path):
    """A prompt run with another attention, then a step through hybrid
    attention: its sessions never saw the prompt, so the step is refused
    rather than attending to itself alone."""
    config = transformers.LlamaConfig(**SMALL, num_hidden_layers=2)
    model, config_path = save(tmp_path, config, transformers.LlamaForCausalLM)
    schedule = hybrid_attn.compile(config_path, max_seq=64, external_positional=True)
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    ids = torch.randint(0, 97, (1, 9))
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        out = model(ids[:, :8], use_cache=True)
    model.config._attn_implementation = "hybrid"
    name = "cache" if "cache" in out else "past_key_values"
    with pytest.raises(hybrid_attn.HybridError,
                       match=r"layer 0's first call brings 1 queries over 9 keys: its "
                             r"session has not seen the earlier tokens"):
        with torch.no_grad():
            model(ids[:, 8:], use_cache=True, **{name: out[name]})


def families():
    """(name, config, model class, layer kinds) per family."""
    t = transformers
    no_head_dim = {k: v for k, v in SMALL.items() if k != "head_dim"}
    moe = dict(num_local_experts=4, num_experts_per_tok=2)
    newer = []
    if hasattr(t, "Gemma3nTextConfig"):
        # KV-shared layers (the last three), AltUp and per-layer inputs
        # around the attention.
        newer.append(
            ("gemma3n", t.Gemma3nTextConfig(
                **{k: v for k, v in SMALL.items() if k != "intermediate_size"},
                intermediate_size=[128] * 6, num_hidden_layers=6,
                sliding_window=8,
                layer_types=(["sliding_attention"] * 2 + ["full_attention"]) * 2,
                num_kv_shared_layers=3, hidden_size_per_layer_input=8,
                vocab_size_per_layer_input=97, laurel_rank=4,
                altup_num_inputs=2, activation_sparsity_pattern=[0.0] * 6),
             t.Gemma3nForCausalLM, ["sliding", "sliding", "full"] * 2))
    if hasattr(t, "Qwen3NextConfig"):
        # Gated DeltaNet layers (transformers' own) around a gated full
        # attention layer.
        newer.append(
            ("qwen3_next", t.Qwen3NextConfig(
                **SMALL, num_hidden_layers=4, linear_num_value_heads=2,
                linear_num_key_heads=2, linear_key_head_dim=16,
                linear_value_head_dim=16, num_experts=2, num_experts_per_tok=1,
                moe_intermediate_size=32, shared_expert_intermediate_size=32),
             t.Qwen3NextForCausalLM, ["linear"] * 3 + ["full"]))
    if hasattr(t, "Gemma4TextConfig"):
        # K=V global layers (the caller's keys rotated, its values not: kept
        # apart) of their own head dim and KV heads (transformers 5 saves
        # them as per_layer_config), the last three layers sharing caches.
        newer.append(
            ("gemma4", t.Gemma4TextConfig(
                **SMALL, num_hidden_layers=9, sliding_window=8,
                layer_types=(["sliding_attention"] * 2 + ["full_attention"]) * 3,
                global_head_dim=32, num_global_key_value_heads=1,
                attention_k_eq_v=True, num_kv_shared_layers=3,
                hidden_size_per_layer_input=0),
             t.Gemma4ForCausalLM, ["sliding", "sliding", "full"] * 3))
    sliding = "sliding_attention"
    for config, model_class, fields in [
            # Layer schedules from each config class's own defaults where
            # no layer_types is given: here every fourth layer global.
            ("Olmo3Config", "Olmo3ForCausalLM",
             dict(num_hidden_layers=4, sliding_window=8)),
            # Global layers without positional encoding.
            ("Exaone4Config", "Exaone4ForCausalLM",
             dict(num_hidden_layers=4, sliding_window=8)),
            # Dense MLPs: its grouped sigmoid routing turns bf16 rounding
            # of the attention into other experts (GPU logits off by 7e-2).
            ("ExaoneMoeConfig", "ExaoneMoeForCausalLM",
             dict(num_hidden_layers=4, sliding_window=8, mlp_layer_types=["dense"] * 4,
                  pad_token_id=0, bos_token_id=1, eos_token_id=2)),
            # Every fourth layer NoPE, and sliding.
            ("SmolLM3Config", "SmolLM3ForCausalLM",
             dict(num_hidden_layers=4, use_sliding_window=True, sliding_window=8,
                  pad_token_id=0)),
            ("MinistralConfig", "MinistralForCausalLM",
             dict(num_hidden_layers=3, sliding_window=8,
                  layer_types=[sliding, "full_attention", sliding])),
            # Llama 3 scaled RoPE by default; layers 0 and 4 global.
            ("CwmConfig", "CwmForCausalLM", dict(num_hidden_layers=5, sliding_window=8)),
            # Global layers without positional encoding, gated outputs.
            ("AfmoeConfig", "AfmoeForCausalLM",
             dict(num_hidden_layers=4, sliding_window=8, global_attn_every_n_layers=2,
                  moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2,
                  num_shared_experts=1, num_dense_layers=1)),
            # Soft-capping and query_pre_attn_scalar, as Gemma 2.
            ("VaultGemmaConfig", "VaultGemmaForCausalLM",
             dict(num_hidden_layers=4, sliding_window=8, query_pre_attn_scalar=16)),
            # Sinks on every layer, the attention multiplier as the scale,
            # a RoPE base per layer (0: NoPE).
            ("GraniteSWAConfig", "GraniteSWAForCausalLM",
             dict(num_hidden_layers=5, sliding_window=8, attention_multiplier=0.3,
                  layer_rope_theta=[10000, 0, 500000, 10000, 0])),
            # Keys of dim 32, values of 16; sliding layers with twice the KV
            # heads and sinks; partial RoPE of per-type bases; layers 0, 5
            # global (dense MLPs: see Exaone MoE).
            ("MiMoV2FlashConfig", "MiMoV2FlashForCausalLM",
             dict(num_hidden_layers=6, sliding_window=8, num_key_value_heads=1,
                  head_dim=32, v_head_dim=16, mlp_layer_types=["dense"] * 6)),
            # Yarn and queries scaled by 1 + 0.1 ln(1 + floor(p / 8)) (from
            # position 8 on here), every layer sliding.
            ("Ministral3Config", "Ministral3ForCausalLM",
             dict(num_hidden_layers=2, sliding_window=8, rope_parameters=dict(
                 rope_type="yarn", rope_theta=1e6, factor=4.0,
                 original_max_position_embeddings=8, beta_fast=32.0, beta_slow=1.0,
                 mscale=1.0, mscale_all_dim=1.0, llama_4_scaling_beta=0.1))),
            # Two dense-MLP layers first, full and rotating; then Cohere 2's
            # pattern (NoPE global layers), interleaved RoPE, experts.
            ("Cohere2MoeConfig", "Cohere2MoeForCausalLM",
             dict(num_hidden_layers=6, sliding_window=8, first_k_dense_replace=2,
                  num_experts=4, num_experts_per_tok=2, intermediate_size=32,
                  prefix_dense_intermediate_size=64, pad_token_id=None,
                  eos_token_id=None)),
            # Gated DeltaNet and gated full attention, as Qwen3-Next.
            ("Qwen3_5TextConfig", "Qwen3_5ForCausalLM",
             dict(num_hidden_layers=4, linear_num_key_heads=2, linear_num_value_heads=4,
                  linear_key_head_dim=8, linear_value_head_dim=8)),
    ]:
        if hasattr(t, config):
            made = getattr(t, config)(**{**SMALL, **fields})
            kinds = (["sliding"] * made.num_hidden_layers if config == "Ministral3Config"
                     else [{"sliding_attention": "sliding", "full_attention": "full",
                            "linear_attention": "linear"}[k] for k in made.layer_types])
            newer.append((made.model_type, made, getattr(t, model_class), kinds))
    mamba2 = dict(mamba_n_heads=8, mamba_d_state=16, mamba_chunk_size=8)
    if hasattr(t, "BambaConfig"):
        # Mamba-2 layers (transformers' own) and attention with half the
        # head rotating.
        newer.append(("bamba", t.BambaConfig(**no_head_dim, num_hidden_layers=4,
                                             attn_layer_indices=[1, 3], **mamba2),
                      t.BambaForCausalLM, ["mamba", "full"] * 2))
    if hasattr(t, "GraniteMoeHybridConfig"):
        # Granite 4.0-H: Mamba-2 and attention layers (RoPE on here; NoPE by
        # default), the attention multiplier as the scale.
        newer.append(("granitemoehybrid", t.GraniteMoeHybridConfig(
            **no_head_dim, num_hidden_layers=4, layer_types=["mamba", "attention"] * 2,
            position_embedding_type="rope", attention_multiplier=0.3,
            shared_intermediate_size=64, **moe, **mamba2),
            t.GraniteMoeHybridForCausalLM, ["mamba", "full"] * 2))
    if hasattr(t, "OlmoHybridConfig"):
        # Gated DeltaNet layers (transformers' own) and a full attention
        # layer with q/k norms over the whole projection.
        newer.append(("olmo_hybrid", t.OlmoHybridConfig(
            **no_head_dim, num_hidden_layers=4, linear_num_key_heads=2,
            linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=8,
            pad_token_id=None, eos_token_id=None),
            t.OlmoHybridForCausalLM, ["linear"] * 3 + ["full"]))
    if hasattr(t, "NemotronHConfig"):
        # Nemotron-H: Mamba-2, NoPE attention, and MLP and MoE blocks that
        # mix no tokens (layers of their own in the schedule).
        newer.append(("nemotron_h", t.NemotronHConfig(
            **{k: v for k, v in SMALL.items() if k != "max_position_embeddings"},
            hybrid_override_pattern="M*-EM*", mamba_num_heads=8, mamba_head_dim=16,
            ssm_state_size=16, n_groups=2, chunk_size=8, n_routed_experts=4,
            num_experts_per_tok=2, moe_intermediate_size=32,
            moe_shared_expert_intermediate_size=32, pad_token_id=None),
            t.NemotronHForCausalLM, ["mamba", "full", "mlp", "mlp", "mamba", "full"]))
    if hasattr(t, "Lfm2Config"):
        # LFM2: gated short convolutions (transformers' own) and attention
        # with q/k norms.
        newer.append(("lfm2", t.Lfm2Config(
            **no_head_dim, num_hidden_layers=4, full_attn_idxs=[1, 3],
            pad_token_id=None, eos_token_id=None),
            t.Lfm2ForCausalLM, ["conv", "full"] * 2))
    if hasattr(t, "Dots1Config"):
        # Qwen 2's rule without use_sliding_window: layers from
        # max_window_layers on slide.
        newer.append(("dots1", t.Dots1Config(
            **SMALL, num_hidden_layers=3, sliding_window=8, max_window_layers=1,
            n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
            n_shared_experts=1, first_k_dense_replace=1, pad_token_id=None,
            eos_token_id=None),
            t.Dots1ForCausalLM, ["full"] + ["sliding"] * 2))
    if hasattr(t, "Step3p7Config"):
        # Step 3.5's language model (in Step 3.7's VLM): sliding layers with
        # twice the query heads, per-layer RoPE bases and rotating fractions,
        # query_pre_attn_scalar as the scale, gated outputs.
        sliding = ["sliding_attention"] * 3
        newer.append(("step3p5", t.Step3p7Config(
            text_config=dict(
                SMALL, num_hidden_layers=4, layer_types=sliding + ["full_attention"],
                sliding_window=8, num_sliding_attention_heads=8,
                rope_theta=[1e4] * 3 + [5e5], partial_rotary_factors=[0.5] * 3 + [1.0],
                query_pre_attn_scalar=32, pad_token_id=96, eos_token_id=None,
                moe_intermediate_size=32, n_routed_experts=4, num_experts_per_tok=2,
                share_expert_dim=32, mlp_layer_types=["dense", "sparse"] * 2),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                               num_attention_heads=2, image_size=28, patch_size=14)),
            t.Step3p7ForConditionalGeneration, ["sliding"] * 3 + ["full"]))
    # Multi-head latent attention, decompressed per head as transformers
    # computes it: queries and keys of 24 dims without RoPE then 8 rotating
    # ones (interleaved pairs unless rope_interleave is false), values of 16,
    # every head its own keys and values.
    mla_shape = dict(no_head_dim, num_key_value_heads=SMALL["num_attention_heads"])
    mla_shape.update(num_hidden_layers=2, kv_lora_rank=16, qk_nope_head_dim=24,
                     qk_rope_head_dim=8, v_head_dim=16, pad_token_id=None,
                     eos_token_id=None, bos_token_id=None)
    mla_experts = dict(n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                       first_k_dense_replace=1, n_group=1, topk_group=1)
    for name, config, model_class, fields in [
            # Yarn: mscale_all_dim's square in the scale.
            ("deepseek_v3", "DeepseekV3Config", "DeepseekV3ForCausalLM",
             dict(q_lora_rank=32, **mla_experts, rope_parameters=dict(
                 rope_type="yarn", rope_theta=10000.0, factor=4.0,
                 original_max_position_embeddings=32, mscale=1.0,
                 mscale_all_dim=1.0))),
            # Complex-number RoPE; queries straight from the hidden state.
            ("deepseek_v2", "DeepseekV2Config", "DeepseekV2ForCausalLM",
             dict(q_lora_rank=None, **mla_experts)),
            ("youtu", "YoutuConfig", "YoutuForCausalLM",
             dict(q_lora_rank=32, rope_interleave=False))]:
        if hasattr(t, config):
            newer.append((name, getattr(t, config)(**mla_shape, **fields),
                          getattr(t, model_class), ["full"] * 2))
    if hasattr(t, "LongcatFlashConfig"):
        # Two MLA sublayers per block, q and the latent scaled by their LoRA
        # ranks outside the attention.
        longcat = {k: v for k, v in mla_shape.items() if k != "num_hidden_layers"}
        newer.append(("longcat_flash", t.LongcatFlashConfig(
            **longcat, num_layers=1, head_dim=8, q_lora_rank=32, n_routed_experts=4,
            moe_topk=2, zero_expert_num=2, expert_ffn_hidden_size=32),
            t.LongcatFlashForCausalLM, ["full"] * 2))
    if hasattr(t, "KimiLinearConfig"):
        # Kimi Delta Attention layers (transformers' own) and a NoPE MLA
        # layer, listed 1-indexed.
        newer.append(("kimi_linear", t.KimiLinearConfig(
            **mla_shape, linear_attn_config=dict(
                full_attn_layers=[2], kda_layers=[1], num_heads=2, head_dim=16,
                short_conv_kernel_size=4),
            num_local_experts=4, num_experts_per_tok=2, moe_intermediate_size=32),
            t.KimiLinearForCausalLM, ["linear", "full"]))
    if hasattr(t, "BailingHybridConfig"):
        # KDA layers of the attention heads and head_dim, then an MLA layer
        # with a per-head output gate.
        bailing = dict(mla_shape, head_dim=16, layer_group_size=2, num_local_experts=4,
                       num_experts_per_tok=2, moe_intermediate_size=32,
                       first_k_dense_replace=1, n_group=1, topk_group=1, num_mtp_layers=0)
        newer.append(("bailing_hybrid", t.BailingHybridConfig(**bailing),
                      t.BailingHybridForCausalLM, ["linear", "full"]))
    newer.append(("starcoder2", t.Starcoder2Config(**no_head_dim, num_hidden_layers=2,
                                                   sliding_window=8),
                  t.Starcoder2ForCausalLM, ["sliding"] * 2))
    for name, config, model_class, fields in [
            # Half of each head rotating (partial_rotary_factor's default),
            # in interleaved pairs.
            ("glm", "GlmConfig", "GlmForCausalLM", dict(pad_token_id=None, eos_token_id=None)),
            ("glm4", "Glm4Config", "Glm4ForCausalLM", dict(pad_token_id=None, eos_token_id=None)),
            # Half of each head rotating in rotate-half pairs, q/k norms,
            # experts after a dense layer.
            ("glm4_moe", "Glm4MoeConfig", "Glm4MoeForCausalLM",
             dict(use_qk_norm=True, n_routed_experts=4, num_experts_per_tok=2,
                  moe_intermediate_size=32, first_k_dense_replace=1, n_group=1,
                  topk_group=1)),
            # q/k norms over the whole projection.
            ("olmo2", "Olmo2Config", "Olmo2ForCausalLM", {}),
            # The attention multiplier as the scale.
            ("granite", "GraniteConfig", "GraniteForCausalLM",
             dict(attention_multiplier=0.3)),
            ("granitemoe", "GraniteMoeConfig", "GraniteMoeForCausalLM",
             dict(attention_multiplier=0.3, **moe)),
            ("granitemoeshared", "GraniteMoeSharedConfig", "GraniteMoeSharedForCausalLM",
             dict(attention_multiplier=0.3, shared_intermediate_size=64, **moe)),
            # Llama's attention: q/k norms over the projection (OLMoE with
            # clipped q/k/v, FlexOLMo with a base of 500000 by default).
            ("olmoe", "OlmoeConfig", "OlmoeForCausalLM",
             dict(clip_qkv=8.0, num_experts=4, num_experts_per_tok=2)),
            ("flex_olmo", "FlexOlmoConfig", "FlexOlmoForCausalLM",
             dict(num_experts=4, num_experts_per_tok=2, pad_token_id=None,
                  eos_token_id=None)),
            ("arcee", "ArceeConfig", "ArceeForCausalLM", {}),
            ("jais2", "Jais2Config", "Jais2ForCausalLM",
             dict(pad_token_id=None, eos_token_id=None)),
            # Half of each head rotating, from the checkpoints' rotary_dim.
            ("minimax_m2", "MiniMaxM2Config", "MiniMaxM2ForCausalLM",
             dict(rotary_dim=8, pad_token_id=None, eos_token_id=None, **moe)),
            # Interleaved pairs over the whole head.
            ("ernie4_5", "Ernie4_5Config", "Ernie4_5ForCausalLM",
             dict(pad_token_id=None, eos_token_id=None)),
            ("ernie4_5_moe", "Ernie4_5_MoeConfig", "Ernie4_5_MoeForCausalLM",
             dict(pad_token_id=None, eos_token_id=None, moe_num_experts=4, moe_k=2,
                  moe_intermediate_size=32, moe_layer_start_index=1)),
            # Plain full attention with defaults of their own.
            ("seed_oss", "SeedOssConfig", "SeedOssForCausalLM",
             dict(pad_token_id=None, eos_token_id=None)),
            ("solar_open", "SolarOpenConfig", "SolarOpenForCausalLM",
             dict(pad_token_id=None, eos_token_id=None, n_routed_experts=4,
                  num_experts_per_tok=2, moe_intermediate_size=32)),
            ("hy_v3", "HYV3Config", "HYV3ForCausalLM",
             dict(pad_token_id=None, eos_token_id=None, num_experts=4,
                  num_experts_per_tok=2, moe_intermediate_size=32)),
            # Llama 3 scaled RoPE of base 12e6 when the config states none.
            ("apertus", "ApertusConfig", "ApertusForCausalLM",
             dict(pad_token_id=None, eos_token_id=None)),
            ("apertus1p5_text", "Apertus1p5TextConfig", "Apertus1p5TextForCausalLM",
             dict(pad_token_id=None, eos_token_id=None)),
            # GLM-4.5's attention with the whole head rotating by default.
            ("sarvam_moe", "SarvamMoEConfig", "Glm4MoeForCausalLM",
             dict(n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                  first_k_dense_replace=1, n_group=1, topk_group=1, pad_token_id=None,
                  eos_token_id=None))]:
        if hasattr(t, config):
            newer.append((name, getattr(t, config)(**SMALL, num_hidden_layers=2, **fields),
                          getattr(t, model_class), ["full"] * 2))
    return newer + [
        ("llama", t.LlamaConfig(**SMALL, num_hidden_layers=2),
         t.LlamaForCausalLM, ["full"] * 2),
        ("mistral", t.MistralConfig(**SMALL, num_hidden_layers=2, sliding_window=8),
         t.MistralForCausalLM, ["sliding"] * 2),
        ("qwen2", t.Qwen2Config(**SMALL, num_hidden_layers=2),
         t.Qwen2ForCausalLM, ["full"] * 2),
        ("qwen3", t.Qwen3Config(**SMALL, num_hidden_layers=2),
         t.Qwen3ForCausalLM, ["full"] * 2),
        ("phi3", t.Phi3Config(**no_head_dim, num_hidden_layers=2, pad_token_id=0),
         t.Phi3ForCausalLM, ["full"] * 2),
        # Soft-capping, alternating sliding and global layers.
        ("gemma2", t.Gemma2Config(**SMALL, num_hidden_layers=4, sliding_window=8,
                                  query_pre_attn_scalar=16),
         t.Gemma2ForCausalLM, ["sliding", "full"] * 2),
        # Global layers without positional encoding.
        ("cohere2", t.Cohere2Config(**no_head_dim, num_hidden_layers=4,
                                    sliding_window=8),
         t.Cohere2ForCausalLM, ["sliding"] * 3 + ["full"]),
        # Attention sinks.
        ("gpt_oss", t.GptOssConfig(**SMALL, num_hidden_layers=4, sliding_window=8,
                                   **moe),
         t.GptOssForCausalLM, ["sliding", "full"] * 2),
        # Chunked attention, NoPE global layers with temperature tuning.
        # Mamba layers (transformers' own) and attention layers without
        # positional encoding.
        ("jamba", t.JambaConfig(**no_head_dim, num_hidden_layers=4,
                                attn_layer_period=2, attn_layer_offset=1,
                                expert_layer_period=2, num_experts=2,
                                mamba_d_state=8, mamba_expand=2,
                                use_mamba_kernels=False),
         t.JambaForCausalLM, ["mamba", "full"] * 2),
        ("llama4_text", t.Llama4TextConfig(**SMALL, num_hidden_layers=4,
                                           attention_chunk_size=8,
                                           num_local_experts=2,
                                           intermediate_size_mlp=128),
         t.Llama4ForCausalLM, ["chunked"] * 3 + ["full"]),
    ]


@pytest.mark.parametrize("name,config,model_class,kinds", families(),
                         ids=[f[0] for f in families()])
def test_family_matches_eager(tmp_path, name, config, model_class, kinds):
    model, config_path = save(tmp_path, config, model_class)
    schedule = hybrid_attn.compile(config_path, max_seq=64, external_positional=True)
    assert [l["kind"] for l in schedule.layers] == kinds
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    assert_same(*generate_both(model, attention))


@pytest.mark.parametrize("name,config,model_class,kinds", families(),
                         ids=[f[0] for f in families()])
def test_family_padded_batch_matches_eager(tmp_path, name, config, model_class, kinds):
    """Every family over a left-padded batch (prompts of 21, 16 and 8
    tokens; Gemma 4 slices the mask's queries for its shared layers):
    generate's tokens and logits are eager attention's."""
    model, config_path = save(tmp_path, config, model_class)
    schedule = hybrid_attn.compile(config_path, max_seq=64, external_positional=True)
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    ids, mask = padded_prompts()
    results = generate_padded(model, attention, ids, mask, max_new_tokens=6,
                              output_logits=True)
    assert_same(*((r.sequences, torch.stack(r.logits)) for r in results.values()))


def teacher_forced_error(model, attention, hybrid_context=contextlib.nullcontext):
    """max |hybrid - eager| / max |eager| of the logits of a prompt of 15
    and 6 decode steps (batch 2; the model's cache fed back, the next tokens
    given); the hybrid run inside `hybrid_context()`."""
    ids = torch.randint(0, 97, (2, 21))
    logits = {}
    for implementation in ("eager", "hybrid"):
        model.config._attn_implementation = implementation
        attention.reset()
        with (hybrid_context() if implementation == "hybrid"
              else contextlib.nullcontext()):
            logits[implementation] = prompt_and_step_logits(model, ids, 15)
    eager = logits["eager"]
    return float((logits["hybrid"] - eager).abs().max() / eager.abs().max())


@contextlib.contextmanager
def rotation_left_to_the_kernels(model_class):
    """transformers' RoPE function of the model's module made the identity,
    so its attention modules pass q and k unrotated, as the runtime's own
    positional mode takes them (and Ministral 3's query scaling, which the
    kernels apply too, one)."""
    import sys
    module = sys.modules[model_class.__module__]
    names = [n for n in ("apply_rotary_pos_emb", "apply_rotary_emb",
                         "apply_rotary_pos_emb_interleave",
                         "get_llama_4_attn_scale") if hasattr(module, n)]
    saved = {n: getattr(module, n) for n in names}

    def identity(*args, **kwargs):
        # (q, k, cos, sin) -> (q, k); (x, cos, sin) -> x (Gemma 3n, Gemma 4):
        # cos has a dim fewer than x.
        if len(args) > 1 and args[1].ndim == args[0].ndim:
            return args[0], args[1]
        return args[0]

    def unscaled(position_ids, *args):
        return torch.ones_like(position_ids, dtype=torch.float32)[:, None, :, None]

    try:
        for n in saved:
            setattr(module, n, unscaled if n == "get_llama_4_attn_scale" else identity)
        yield
    finally:
        for n, f in saved.items():
            setattr(module, n, f)


@pytest.mark.parametrize("target", ["cpu"] + (["cuda:sm_80"] if os.environ.get(
    "HYBRID_CUDA_DRIVER") else []))
@pytest.mark.parametrize("name,config,model_class,kinds", families(),
                         ids=[f[0] for f in families()])
def test_family_positional_in_the_kernels_matches_eager(tmp_path, name, config,
                                                       model_class, kinds, target):
    """The importer's positional encodings, end to end: the schedule compiled
    with RoPE in the kernels (each family's theta, scaling, partial and
    interleaved rotation, NoPE layers), transformers' own rotation turned
    off, gives eager attention's logits over a prompt and decode steps (GPU
    artifacts: at bf16 tolerance)."""
    if name == "gemma4":
        pytest.skip("Gemma 4's K=V layers take their k_norm weight as the key "
                    "scale (test_gemma4_k_eq_v_layer_with_its_k_norm_weight)")
    config = copy.deepcopy(config)
    if name == "llama4_text":
        # Its NoPE layers' query temperature is applied by transformers
        # outside the rotation: the kernels would apply it twice.
        config.attn_temperature_tuning = False
    model, config_path = save(tmp_path, config, model_class)
    schedule = hybrid_attn.compile(config_path, max_seq=64, target=target)
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    error = teacher_forced_error(model, attention,
                                 lambda: rotation_left_to_the_kernels(model_class))
    assert error < (1e-4 if target == "cpu" else 5e-2), error


@pytest.mark.skipif(not hasattr(transformers, "Gemma4TextConfig"),
                    reason="transformers without Gemma 4")
@pytest.mark.parametrize("target", ["cpu"] + (["cuda:sm_80"] if os.environ.get(
    "HYBRID_CUDA_DRIVER") else []))
def test_gemma4_k_eq_v_layer_with_its_k_norm_weight(tmp_path, target):
    """A Gemma 4 K=V global layer in the runtime's own positional mode (K=V
    kept: one projection passed): given q_norm(q_proj(x)), the values
    v_norm(k_proj(x)) as k and k_norm's weight (not ones: trained) as the key
    scale, its prompt and decode steps give transformers' attention output."""
    _, config, model_class, _ = next(f for f in families() if f[0] == "gemma4")
    model, config_path = save(tmp_path, config, model_class)
    layer = 2  # the first global layer, which keeps its cache
    attn = model.model.layers[layer].self_attn
    assert attn.use_alternative_attention
    with torch.no_grad():
        attn.k_norm.weight.uniform_(0.5, 1.5)
    seen = {}
    attn.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(x=kwargs["hidden_states"]),
        with_kwargs=True)
    attn.o_proj.register_forward_pre_hook(lambda module, args: seen.update(out=args[0]))
    ids = torch.randint(0, 97, (2, 19))
    with torch.no_grad():
        model.config._attn_implementation = "eager"
        model(ids)
        x = seen["x"]
        shape = (*x.shape[:-1], -1, attn.head_dim)
        q = attn.q_norm(attn.q_proj(x).view(shape)).numpy()
        k = attn.v_norm(attn.k_proj(x).view(shape)).numpy()
        expected = seen["out"].view(*x.shape[:-1], -1, attn.head_dim).numpy()
    schedule = hybrid_attn.compile(config_path, max_seq=64, target=target)
    assert schedule.layers[layer]["cache"]["k_eq_v"]
    schedule.set_key_scale(layer, attn.k_norm.weight.detach())
    session = schedule.session(2, 19)
    prompt = 15
    out = [session.prefill(layer, q[:, :prompt].copy(), k[:, :prompt].copy(), None)]
    for t in range(prompt, 19):
        out.append(session.decode(layer, q[:, t:t + 1].copy(), k[:, t:t + 1].copy()))
    error = np.abs(np.concatenate(out, axis=1) - expected).max() / np.abs(expected).max()
    assert error < (1e-4 if target == "cpu" else 5e-2), float(error)


@pytest.mark.skipif(not os.environ.get("HYBRID_CUDA_DRIVER"),
                    reason="HYBRID_CUDA_DRIVER not set")
@pytest.mark.parametrize("name,config,model_class,kinds", families(),
                         ids=[f[0] for f in families()])
def test_family_on_gpu_artifacts_matches_eager(tmp_path, name, config, model_class,
                                               kinds):
    """The same models through GPU artifacts (the tensor-core kernels, under
    HYBRID_CUDA_DRIVER: the PTX emulator, or libcuda) on host tensors: a
    prompt of 15 and 6 decode steps (the model's cache fed back, the next
    tokens given), logits at bf16 tolerance (Gemma 4's unscaled scores make
    bf16 rounding of q, k and v alone move them by up to 4e-2)."""
    model, config_path = save(tmp_path, config, model_class)
    schedule = hybrid_attn.compile(config_path, max_seq=64, external_positional=True,
                                   target="cuda:sm_80")
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    error = teacher_forced_error(model, attention)
    assert error < 5e-2, error


def gemma3(tmp_path, **compile_options):
    """A tiny Gemma 3 (5 sliding layers of window 8, a global one) and its
    schedule."""
    config = transformers.Gemma3TextConfig(
        **SMALL, num_hidden_layers=6, sliding_window=8, query_pre_attn_scalar=16)
    model, config_path = save(tmp_path, config, transformers.Gemma3ForCausalLM)
    return model, hybrid_attn.compile(config_path, max_seq=64, external_positional=True,
                                      **compile_options)


def test_beam_search_matches_eager(tmp_path):
    """Beam search (3 beams of 2 prompts): transformers reorders its cache
    after each step and the sessions' caches follow (register() hooks
    Cache.reorder_cache); same sequences and scores as eager attention."""
    model, schedule = gemma3(tmp_path)
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    orders = []
    reorder = attention.reorder
    attention.reorder = lambda beam_idx: (orders.append(beam_idx.tolist()), reorder(beam_idx))
    ids = torch.randint(0, 97, (2, 21))
    results = {}
    for implementation in ("eager", "hybrid"):
        model.config._attn_implementation = implementation
        with torch.no_grad():
            results[implementation] = model.generate(
                ids, max_new_tokens=8, num_beams=3, do_sample=False,
                output_scores=True, return_dict_in_generate=True)
    assert torch.equal(results["eager"].sequences, results["hybrid"].sequences)
    torch.testing.assert_close(results["hybrid"].sequences_scores,
                               results["eager"].sequences_scores, rtol=1e-4, atol=1e-5)
    # Beams took others' prefixes (not the identity) at some steps.
    assert any(order != list(range(6)) for order in orders), orders


def test_assisted_generation_matches_greedy(tmp_path):
    """Assisted generation: a draft model proposes 3 tokens, the model
    verifies them in one step of 4 and drops the rejected ones from its
    cache; the sessions go back with it (the position_ids of the next call),
    ring caches included, and the tokens are greedy decoding's."""
    model, schedule = gemma3(tmp_path)
    torch.manual_seed(1)
    assistant = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**SMALL, num_hidden_layers=1)).eval()
    assistant.generation_config.num_assistant_tokens = 3
    assistant.generation_config.num_assistant_tokens_schedule = "constant"
    attention = hybrid_attn.hf.register(schedule, max_seq=64, max_step_tokens=4)
    truncations = []
    ids = torch.randint(0, 97, (1, 21))
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        greedy = model.generate(ids, max_new_tokens=12, do_sample=False)
    model.config._attn_implementation = "hybrid"
    with torch.no_grad():
        model.generate(ids, max_new_tokens=1, do_sample=False)  # makes the session
        truncate = attention.session.truncate
        attention.session.truncate = lambda n: (truncations.append(n), truncate(n))
        assisted = model.generate(ids, max_new_tokens=12, do_sample=False,
                                  assistant_model=assistant)
    assert torch.equal(assisted, greedy)
    assert [n for n in truncations if n > 0], truncations  # drafts were rejected


def test_new_sequences_need_no_reset(tmp_path):
    """A call at position 0 starts a new sequence: generations of other
    prompts and batch sizes one after another, without reset()."""
    model, schedule = gemma3(tmp_path)
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    for batch, length in ((2, 21), (1, 13), (3, 9)):
        ids = torch.randint(0, 97, (batch, length))
        outputs = {}
        for implementation in ("eager", "hybrid"):
            model.config._attn_implementation = implementation
            with torch.no_grad():
                outputs[implementation] = model.generate(
                    ids, max_new_tokens=5, do_sample=False, output_logits=True,
                    return_dict_in_generate=True)
        assert torch.equal(outputs["eager"].sequences, outputs["hybrid"].sequences)
        eager, hybrid = (torch.stack(outputs[i].logits) for i in ("eager", "hybrid"))
        assert (hybrid - eager).abs().max() / eager.abs().max() < 1e-4


def test_prompt_reuse_with_save_and_restore(tmp_path):
    """transformers' prompt reuse: a prompt's cache computed once and each
    continuation generated from a copy of it; save() and restore() do the
    same for the sessions (after a continuation the rings no longer hold the
    keys a step at the prompt's end sees, so going back by truncation is
    refused). Same tokens and logits as eager attention."""
    model, schedule = gemma3(tmp_path)
    attention = hybrid_attn.hf.register(schedule, max_seq=64, max_step_tokens=8)
    prompt = torch.randint(0, 97, (1, 21))
    continuations = [torch.randint(0, 97, (1, 5)) for _ in range(2)]
    results = {}
    for implementation in ("eager", "hybrid"):
        model.config._attn_implementation = implementation
        results[implementation] = []
        with torch.no_grad():
            prompt_cache = model(prompt, use_cache=True).past_key_values
            prefix = attention.save() if implementation == "hybrid" else None
            for continuation in continuations:
                if prefix:
                    attention.restore(prefix)
                out = model.generate(torch.cat([prompt, continuation], dim=1),
                                     past_key_values=copy.deepcopy(prompt_cache),
                                     max_new_tokens=6, do_sample=False, output_logits=True,
                                     return_dict_in_generate=True)
                results[implementation].append(out)
    for eager, hybrid in zip(results["eager"], results["hybrid"]):
        assert_same((eager.sequences, torch.stack(eager.logits)),
                    (hybrid.sequences, torch.stack(hybrid.logits)))
    # Without the restore, the second continuation cannot go back.
    with pytest.raises(hybrid_attn.HybridError, match="truncate to .* or later"):
        with torch.no_grad():
            model.generate(torch.cat([prompt, continuations[0]], dim=1),
                           past_key_values=copy.deepcopy(prompt_cache), max_new_tokens=1,
                           do_sample=False)


def padded_prompts(batch=3, length=21, pads=(0, 5, 13)):
    """Left-padded prompts (pad id 0), as a tokenizer pads a batch for
    generate: (ids, attention_mask)."""
    ids = torch.randint(1, 97, (batch, length))
    mask = torch.ones_like(ids)
    for i, n in enumerate(pads):
        ids[i, :n] = 0
        mask[i, :n] = 0
    return ids, mask


def generate_padded(model, attention, ids, mask, implementations=("eager", "hybrid"),
                    **options):
    """generate's output per attention implementation."""
    results = {}
    for implementation in implementations:
        model.config._attn_implementation = implementation
        if attention is not None:
            attention.reset()
        with torch.no_grad():
            results[implementation] = model.generate(
                ids, attention_mask=mask, do_sample=False, pad_token_id=0,
                return_dict_in_generate=True, **options)
    return results


@pytest.mark.parametrize("target", ["cpu"] + (["cuda:sm_80"] if os.environ.get(
    "HYBRID_CUDA_DRIVER") else []))
def test_padded_batch_matches_eager(tmp_path, target):
    """A left-padded batch (prompts of 21, 16 and 8 tokens: 8 is the
    sliding window's) keeps each sequence at its own length: its pads
    dropped, each prompt prefilled into its own sequence, every step of all
    three at once; same tokens and logits as eager attention, which masks
    the pads. The sliding layers' rings hold each sequence's own tokens."""
    model, schedule = gemma3(tmp_path, target=target)
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    ids, mask = padded_prompts()
    if target == "cpu":
        results = generate_padded(model, attention, ids, mask, max_new_tokens=6,
                                  output_logits=True)
        assert_same(*((r.sequences, torch.stack(r.logits)) for r in results.values()))
    else:
        # bf16 tensor cores: greedy tokens may part from eager's, so eager
        # attention scores hybrid's tokens (one forward, the pads masked).
        hybrid = generate_padded(model, attention, ids, mask, ("hybrid",),
                                 max_new_tokens=6, output_logits=True)["hybrid"]
        full = torch.cat([mask, torch.ones(3, 6, dtype=mask.dtype)], dim=1)
        model.config._attn_implementation = "eager"
        with torch.no_grad():
            eager = model(hybrid.sequences, attention_mask=full,
                          position_ids=(full.cumsum(dim=1) - 1).clamp(min=0)).logits
        eager = eager[:, ids.shape[1] - 1:-1].transpose(0, 1)
        error = (torch.stack(hybrid.logits) - eager).abs().max() / eager.abs().max()
        assert error < 5e-2, float(error)
    session = attention.session
    for i, length in enumerate((21, 16, 8)):
        session.select([i])
        assert session.cache_info(0)["length"] == length + 6 - 1
        assert session.cache_info(5)["length"] == length + 6 - 1
    session.select(None)
    assert attention.lengths[0] == [26, 21, 13]


def test_padded_batch_beam_search_matches_eager(tmp_path):
    """Beam search over a left-padded batch: the beams' sequences stand at
    their prompts' lengths, and a reordering moves each length with its
    rows."""
    model, schedule = gemma3(tmp_path)
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    ids, mask = padded_prompts(batch=2, pads=(0, 9))
    results = generate_padded(model, attention, ids, mask, max_new_tokens=8, num_beams=3,
                              output_scores=True)
    eager, hybrid = results["eager"], results["hybrid"]
    assert torch.equal(eager.sequences, hybrid.sequences)
    torch.testing.assert_close(hybrid.sequences_scores, eager.sequences_scores,
                               rtol=1e-4, atol=1e-5)
    # Beams reorder within a prompt's; across prompts, lengths move too.
    before = list(attention.lengths[0])
    order = [5, 4, 3, 2, 1, 0]
    attention.reorder(torch.tensor(order))
    assert attention.lengths[0] == [before[i] for i in order]
    for i in range(6):
        attention.session.select([i])
        assert attention.session.cache_info(0)["length"] == attention.lengths[0][i]
    attention.session.select(None)


def test_padded_prompt_reuse_with_save_and_restore(tmp_path):
    """save() of a padded batch's sessions (sequences at different
    lengths: one save each) and restore() before each continuation. The
    prompt's forward takes generate's position_ids (counted from each
    prompt's first token), as its continuations do."""
    model, schedule = gemma3(tmp_path)
    attention = hybrid_attn.hf.register(schedule, max_seq=64, max_step_tokens=8)
    ids, mask = padded_prompts(batch=2, pads=(0, 6))
    continuations = [torch.randint(1, 97, (2, 4)) for _ in range(2)]
    results = {}
    for implementation in ("eager", "hybrid"):
        model.config._attn_implementation = implementation
        attention.reset()
        results[implementation] = []
        with torch.no_grad():
            positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
            prompt_cache = model(ids, attention_mask=mask, position_ids=positions,
                                 use_cache=True).past_key_values
            prefix = attention.save() if implementation == "hybrid" else None
            for continuation in continuations:
                if prefix:
                    assert "sequences" in prefix  # one save per sequence
                    attention.restore(prefix)
                out = model.generate(
                    torch.cat([ids, continuation], dim=1),
                    attention_mask=torch.cat([mask, torch.ones_like(continuation)], dim=1),
                    past_key_values=copy.deepcopy(prompt_cache), max_new_tokens=5,
                    do_sample=False, pad_token_id=0, output_logits=True,
                    return_dict_in_generate=True)
                results[implementation].append(out)
    for eager, hybrid in zip(results["eager"], results["hybrid"]):
        assert_same((eager.sequences, torch.stack(eager.logits)),
                    (hybrid.sequences, torch.stack(hybrid.logits)))


def test_padded_forward_matches_eager(tmp_path):
    """One forward of a left-padded batch without position_ids (scoring
    prompts: the model counts positions from the pads): each prompt's
    logits are eager attention's, the pads' ignored."""
    model, schedule = gemma3(tmp_path)
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    ids, mask = padded_prompts()
    logits = {}
    for implementation in ("eager", "hybrid"):
        model.config._attn_implementation = implementation
        attention.reset()
        with torch.no_grad():
            logits[implementation] = model(ids, attention_mask=mask).logits
    real = mask.bool()
    eager, hybrid = logits["eager"][real], logits["hybrid"][real]
    assert (hybrid - eager).abs().max() / eager.abs().max() < 1e-4
    assert attention.offsets == [0, 5, 13]
    assert attention.lengths[0] == [21, 16, 8]


def test_right_padded_batch_is_refused(tmp_path):
    """Right padding puts pads after a prompt's tokens, at positions that
    do not follow them: refused (the sessions take no attention mask)
    rather than attending to the pads."""
    model, schedule = gemma3(tmp_path)
    hybrid_attn.hf.register(schedule, max_seq=64)
    model.config._attn_implementation = "hybrid"
    ids = torch.randint(1, 97, (2, 9))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    with pytest.raises(hybrid_attn.HybridError,
                       match=r"layer 0: sequence 0's attention mask hides tokens after "
                             r"visible ones: a right-padded batch\?"):
        with torch.no_grad():
            model(ids, attention_mask=mask)


def test_f8_cache_scales(tmp_path):
    """f8 schedules: register(cache_scales=) gives every session the scales,
    from each prompt or as given; the steps' logits stay near eager
    attention's (f8's 4 significant bits)."""
    model, schedule = gemma3(tmp_path, kv_dtype="f8")
    ids = torch.randint(0, 97, (2, 21))
    model.config._attn_implementation = "eager"
    eager = prompt_and_step_logits(model, ids, 15)
    errors = {}
    for scales in ("prompt", {0: (0.5, 0.25)}, None):
        attention = hybrid_attn.hf.register(schedule, max_seq=64, cache_scales=scales)
        model.config._attn_implementation = "hybrid"
        hybrid = prompt_and_step_logits(model, ids, 15)
        errors[str(scales)] = float((hybrid - eager).abs().max() / eager.abs().max())
        held = attention.session.cache_scales(0)
        if scales == "prompt":
            assert held != (1.0, 1.0)
        else:
            assert held == (scales or {0: (1.0, 1.0)})[0]
    assert max(errors.values()) < 0.1, errors
    with pytest.raises(hybrid_attn.HybridError, match="cache_scales: expected None"):
        hybrid_attn.hf.register(schedule, max_seq=64, cache_scales=2.0)


def test_another_batch_mid_sequence_is_refused(tmp_path):
    """A call of another batch size while the session holds a sequence
    (not at position 0, which would start a new one) is refused."""
    model, schedule = gemma3(tmp_path)
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    model.config._attn_implementation = "hybrid"
    with torch.no_grad():
        model.generate(torch.randint(0, 97, (2, 21)), max_new_tokens=1, do_sample=False)
    q, kv = torch.zeros(1, 4, 1, 16), torch.zeros(1, 2, 22, 16)
    with pytest.raises(hybrid_attn.HybridError,
                       match=r"layer 0: a batch of 1 sequences, but the session holds 2 "
                             r"sequences' tokens \(call reset\(\) before a new batch\)"):
        attention(model.model.layers[0].self_attn, q, kv, kv,
                  position_ids=torch.tensor([[21]]))


def test_padding_the_attention_cannot_place_is_refused(tmp_path):
    """Positions that do not follow each other after a sequence's pads
    (padding that no mask announced), and a prompt of pads alone, are
    refused before the session runs anything."""
    model, schedule = gemma3(tmp_path)
    attention = hybrid_attn.hf.register(schedule, max_seq=64)
    module = model.model.layers[0].self_attn
    q, kv = torch.zeros(1, 4, 4, 16), torch.zeros(1, 2, 4, 16)
    with pytest.raises(hybrid_attn.HybridError,
                       match=r"layer 0: sequence 0's queries are at positions \[0, 0, 0, 1\], "
                             r"not consecutive after its 0 pads: padding that hybrid "
                             r"attention was not told of\?"):
        attention(module, q, kv, kv, position_ids=torch.tensor([[0, 0, 0, 1]]))
    hidden = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    with pytest.raises(hybrid_attn.HybridError,
                       match=r"layer 0: sequence 0's queries are all padding"):
        attention(module, q, kv, kv, attention_mask=hidden,
                  position_ids=torch.tensor([[0, 0, 0, 0]]))
    assert attention.session is None


@pytest.mark.skipif(not hasattr(transformers, "DeepseekV3Config"),
                    reason="transformers without DeepSeek V3")
def test_deepseek_v3_latent_cache_matches_eager(tmp_path):
    """The absorbed form (mla_cache="latent"): each query's no-RoPE part
    times W_UK attends to the cached latent (kv_lora_rank dims, which are
    also the values), its rotating part to the shared k_rot after it; the
    outputs times W_UV. A layer's prompt and decode steps give transformers'
    eager attention (yarn's mscale in the scale, interleaved RoPE), its
    cache one row of kv_lora_rank + qk_rope_head_dim per token."""
    t = transformers
    nope, rope, rank, v_dim, heads = 24, 8, 24, 16, 4
    config = t.DeepseekV3Config(
        **{k: v for k, v in SMALL.items() if k != "head_dim"} | dict(num_key_value_heads=heads),
        num_hidden_layers=1, kv_lora_rank=rank, q_lora_rank=32, qk_nope_head_dim=nope,
        qk_rope_head_dim=rope, v_head_dim=v_dim, first_k_dense_replace=1,
        pad_token_id=None, eos_token_id=None, bos_token_id=None,
        rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                             original_max_position_embeddings=32, mscale=1.0,
                             mscale_all_dim=1.0))
    model, config_path = save(tmp_path, config, t.DeepseekV3ForCausalLM)
    model.config._attn_implementation = "eager"
    attn = model.model.layers[0].self_attn
    schedule = hybrid_attn.compile(config_path, max_seq=64, mla_cache="latent")
    layer = schedule.layers[0]
    assert (layer["num_kv_heads"], layer["head_dim"], layer["v_head_dim"]) == (1, 32, 24)
    with pytest.raises(hybrid_attn.HybridError, match="layer 0 attends over a latent cache"):
        hybrid_attn.hf.register(schedule, max_seq=64)

    batch, prompt, steps = 2, 13, 4
    total = prompt + steps
    torch.manual_seed(0)
    x = torch.randn(batch, total, SMALL["hidden_size"])
    positions = torch.arange(total)[None].expand(batch, total)
    mask = torch.full((total, total), float("-inf")).triu(1)[None, None]
    with torch.no_grad():
        expected, _ = attn(x, model.model.rotary_emb(x, positions), mask)
        q = attn.q_b_proj(attn.q_a_layernorm(attn.q_a_proj(x)))
        q_nope, q_rot = q.view(batch, total, heads, nope + rope).split([nope, rope], -1)
        latent, k_rot = attn.kv_a_proj_with_mqa(x).split([rank, rope], -1)
        latent = attn.kv_a_layernorm(latent)
        w = attn.kv_b_proj.weight.view(heads, nope + v_dim, rank)
        queries = torch.cat([torch.einsum("bshn,hnr->bshr", q_nope, w[:, :nope]), q_rot], -1)
        keys = torch.cat([latent, k_rot], -1)[:, :, None]
    queries, keys = queries.numpy(), keys.numpy()
    session = schedule.session(batch, total)
    outs = [session.prefill(0, queries[:, :prompt], keys[:, :prompt], None)]
    for p in range(prompt, total):
        outs.append(session.decode(0, np.ascontiguousarray(queries[:, p:p + 1]),
                                   np.ascontiguousarray(keys[:, p:p + 1])))
    assert session.cache_info(0)["bytes"] == batch * total * (rank + rope) * 4
    with torch.no_grad():
        values = torch.einsum("bshr,hvr->bshv", torch.from_numpy(np.concatenate(outs, 1)),
                              w[:, nope:])
        out = attn.o_proj(values.reshape(batch, total, heads * v_dim))
    error = float((out - expected).abs().max() / expected.abs().max())
    assert error < 1e-4, error
