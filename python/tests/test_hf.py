"""The transformers integration: a tiny random Gemma 3 (5 sliding layers, a
global one) runs prefill and greedy decoding through hybrid attention and
gives the logits of transformers' own eager attention."""
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hybrid_attn  # noqa: E402
import hybrid_attn.hf  # noqa: E402


def tiny_gemma3(tmp_path):
    config = transformers.Gemma3TextConfig(
        vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=8,
        max_position_embeddings=256, query_pre_attn_scalar=16)
    torch.manual_seed(0)
    model = transformers.Gemma3ForCausalLM(config).eval()
    config.save_pretrained(tmp_path)
    return model, os.path.join(tmp_path, "config.json")


def test_gemma3_prefill_and_decode_match_eager(tmp_path):
    model, config_path = tiny_gemma3(tmp_path)
    with open(config_path) as f:
        assert json.load(f)["model_type"] == "gemma3_text"
    schedule = hybrid_attn.compile(config_path, max_seq=64, external_positional=True)
    assert [l["kind"] for l in schedule.layers] == ["sliding"] * 5 + ["full"]
    attention = hybrid_attn.hf.register(schedule, max_seq=64)

    ids = torch.randint(0, 97, (2, 21))
    results = {}
    for implementation in ("eager", "hybrid"):
        model.config._attn_implementation = implementation
        attention.reset()
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=6, do_sample=False,
                                 output_logits=True, return_dict_in_generate=True)
        results[implementation] = (out.sequences, torch.stack(out.logits))
    (eager_ids, eager_logits), (ids_hybrid, hybrid_logits) = results["eager"], results["hybrid"]
    assert torch.equal(eager_ids, ids_hybrid)
    error = (hybrid_logits - eager_logits).abs().max() / eager_logits.abs().max()
    assert error < 1e-4, float(error)
    # The ring of the sliding layers stays at the window.
    assert attention.session.cache_info(0)["rows"] == 8
    assert attention.session.cache_info(0)["length"] == 21 + 5
