"""Hugging Face transformers integration: a session as an attention function.

    schedule = hybrid_attn.compile("config.json", max_seq=4096, external_positional=True)
    attention = hybrid_attn.hf.register(schedule, max_seq=4096)   # name "hybrid"
    model.config._attn_implementation = "hybrid"    # or from_pretrained(..., attn_implementation="hybrid")
    ... model(...) / model.generate(...) ...
    attention.reset()                                # before the next sequence

The model's attention modules rotate q and k before calling the attention
function, so the schedule must be compiled with `external_positional=True`.
Each call passes the keys of the model's own cache; the function takes the
new positions (the last S, S = the query length) and keeps its session's
caches by the schedule's policies: the first call of a layer is its prefill,
later calls are decode steps. Needs torch and transformers.
"""

from __future__ import annotations

import atexit
from typing import Optional

import numpy as np

from ._api import HybridError, Schedule, Session


class HybridAttention:
    """The attention function: module, query [B, Hq, S, D], key/value
    [B, Hkv, Skv, D] -> ([B, S, Hq, Dv], None)."""

    def __init__(self, schedule: Schedule, max_seq: int, max_step_tokens: int = 1):
        self.schedule = schedule
        self.max_seq = max_seq
        self.max_step_tokens = max_step_tokens
        self.session: Optional[Session] = None
        # Layers whose prompt the session holds: the next call of one is a
        # step. Kept here rather than asked of the session (cache_info), which
        # on a GPU session that had a call captured reads the lengths back.
        self.prefilled: set[int] = set()

    def reset(self) -> None:
        """Forgets every sequence (call between generations)."""
        self.session = None
        self.prefilled.clear()

    def release(self) -> None:
        """Drops the session and the schedule (no calls after this)."""
        self.reset()
        self.schedule = None

    def __call__(self, module, query, key, value, attention_mask=None, scaling=None,
                 dropout=0.0, **kwargs):
        import torch

        if dropout:
            raise HybridError("hybrid attention does not apply dropout (use model.eval())")
        layer = module.layer_idx
        batch, _, steps, _ = query.shape
        if self.session is None:
            self.session = self.schedule.session(batch, self.max_seq, self.max_step_tokens)
        spec = self.schedule.layers[layer]
        # [B, H, S, D] -> [B, S, H, D]: a copy the layout requires. GPU
        # schedules take bf16 rows as they are; the rest become float32.
        on_gpu = self.schedule.manifest["target"].startswith("cuda:")
        rows_dtype = (torch.bfloat16 if on_gpu and query.dtype == torch.bfloat16
                      else torch.float32)
        as_rows = lambda x: x.detach().transpose(1, 2).to(rows_dtype).contiguous()  # noqa: E731
        q = as_rows(query)
        sinks = kwargs.get("s_aux")
        if sinks is not None:
            sinks = sinks.detach().to(torch.float32).contiguous()
        # A layer's first call is its prompt, unless its queries are only
        # the last of the keys: transformers' Gemma 4 runs a prompt's last
        # query alone through its shared layers, a step that skips the rest.
        seen = layer in self.prefilled
        first = not seen and steps == key.shape[2]
        shared = (spec.get("cache") or {}).get("policy") == "shared"
        if not seen and not first and not shared:
            raise HybridError(
                f"layer {layer}'s first call brings {steps} queries over "
                f"{key.shape[2]} keys: its session has not seen the earlier "
                "tokens (run the whole prompt through hybrid attention, and "
                "call reset() before each new sequence)")
        k = v = None
        if first or not shared:
            k, v = as_rows(key[:, :, -steps:]), as_rows(value[:, :, -steps:])
        with torch.no_grad():
            if first:
                out = self.session.prefill(layer, q, k, v, sinks)
            else:
                out = self.session.decode(layer, q, k, v, sinks)
        self.prefilled.add(layer)
        return out.to(query.dtype), None


def register(schedule: Schedule, max_seq: int, max_step_tokens: int = 1,
             name: str = "hybrid") -> HybridAttention:
    """Registers a HybridAttention with transformers' AttentionInterface under
    `name` and returns it."""
    from transformers import AttentionInterface

    attention = HybridAttention(schedule, max_seq, max_step_tokens)
    AttentionInterface.register(name, attention)
    # transformers' registry outlives the interpreter's teardown of modules;
    # without this its session and schedule would still be alive when the
    # bindings go, and nanobind would report them as leaked at every exit.
    atexit.register(attention.release)
    return attention
