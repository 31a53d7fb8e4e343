"""Hugging Face transformers integration: a session as an attention function.

    schedule = hybrid_attn.compile("config.json", max_seq=4096, external_positional=True)
    attention = hybrid_attn.hf.register(schedule, max_seq=4096)   # name "hybrid"
    model.config._attn_implementation = "hybrid"    # or from_pretrained(..., attn_implementation="hybrid")
    ... model(...) / model.generate(...) ...

The model's attention modules rotate q and k before calling the attention
function, so the schedule must be compiled with `external_positional=True`.
Each call passes the keys of the model's own cache; the function takes the
new positions (the last S, S = the query length) and keeps its session's
caches by the schedule's policies: the first call of a layer is its prefill,
later calls are decode steps. The queries' positions (the `position_ids`
the model passes) keep the session in step with the model's cache: a call
at position 0 starts a new sequence (a new batch size makes a new session),
one before what a layer holds takes every layer back there (assisted
generation and other speculative decoding drop rejected drafts from the
model's cache), and beam search's reordering of the model's cache reorders
the session's. Prompt reuse (a prompt's cache computed once, each
continuation generating from a copy of it) copies the sessions too:
`prefix = attention.save()` beside the model's cache, and
`attention.restore(prefix)` beside each `copy.deepcopy` of it. Needs torch
and transformers.
"""

from __future__ import annotations

import atexit
import weakref
from typing import Optional, Union

from ._api import HybridError, Schedule, Session

# Every HybridAttention that register() made: beam search reorders their
# sessions with the model's cache (transformers' Cache.reorder_cache).
_registered: "weakref.WeakSet[HybridAttention]" = weakref.WeakSet()


class HybridAttention:
    """The attention function: module, query [B, Hq, S, D], key/value
    [B, Hkv, Skv, D] -> ([B, S, Hq, Dv], None).

    `cache_scales` (f8 schedules): "prompt" sets each cache's scales from
    its prompt (vLLM's targets, 200 and 100), a dict {layer: (k_scale,
    v_scale)} sets those (e.g. an FP8 checkpoint's), for every session."""

    def __init__(self, schedule: Schedule, max_seq: int, max_step_tokens: int = 1,
                 cache_scales: Union[None, str, dict] = None):
        self.schedule = schedule
        self.max_seq = max_seq
        self.max_step_tokens = max_step_tokens
        self.cache_scales = cache_scales
        self.session: Optional[Session] = None
        self.batch = 0
        # Tokens the session holds per layer (the layers called so far).
        # Kept here rather than asked of the session (cache_info), which on a
        # GPU session that had a call captured reads the lengths back.
        self.lengths: dict[int, int] = {}
        # The CUDA device of the model's tensors (None: host tensors), where
        # save() keeps the caches.
        self.device = None
        if cache_scales not in (None, "prompt") and not isinstance(cache_scales, dict):
            raise HybridError(f"cache_scales: expected None, \"prompt\" or a dict of "
                              f"layer -> (k_scale, v_scale), got {cache_scales!r}")

    def reset(self) -> None:
        """Forgets every sequence (a call at position 0 does it too)."""
        self.session = None
        self.lengths.clear()

    def release(self) -> None:
        """Drops the session and the schedule (no calls after this)."""
        self.reset()
        self.schedule = None

    def save(self) -> dict:
        """The session's caches (Session.save) and how far each layer got:
        restore() puts them back, as copy.deepcopy of the model's cache does
        for its own (transformers' prompt reuse: a prompt's cache computed
        once, each continuation generating from a copy of it). A model on a
        GPU keeps them there, in the caches' bf16."""
        if self.session is None or not self.lengths:
            raise HybridError("save: the session holds no tokens yet (run the prompt first)")
        empty = None
        if self.device is not None:
            import torch

            empty = lambda shape: torch.empty(shape, dtype=torch.bfloat16,  # noqa: E731
                                              device=self.device)
        return {"session": self.session.save(empty), "lengths": dict(self.lengths)}

    def restore(self, saved: dict) -> None:
        """Puts back what save() gave: the next call goes on from there."""
        batch = saved["session"]["batch"]
        if self.session is None or batch != self.batch:
            self._new_session(batch)
        self.session.restore(saved["session"])
        self.lengths = dict(saved["lengths"])

    def reorder(self, beam_idx) -> None:
        """Sequence i continues sequence beam_idx[i] (beam search; register()
        calls it as the model's cache reorders). Ignored without a session of
        that batch."""
        if self.session is not None and len(beam_idx) == self.batch and self.lengths:
            self.session.reorder(beam_idx)

    def _new_session(self, batch: int) -> None:
        self.session = self.schedule.session(batch, self.max_seq, self.max_step_tokens)
        self.batch = batch
        if self.cache_scales is None:
            return
        for i, layer in enumerate(self.schedule.layers):
            owns = (layer.get("cache") or {}).get("policy") in ("full", "ring", "chunk")
            if self.cache_scales == "prompt" and owns and layer["causal"]:
                self.session.cache_scales_from_prompt(i)
            elif isinstance(self.cache_scales, dict) and i in self.cache_scales:
                self.session.set_cache_scales(i, *map(float, self.cache_scales[i]))

    def _start(self, position_ids, layer: int, steps: int, keys: int) -> int:
        """The position of the call's first query: from the model's
        position_ids (one row per sequence: they advance together; the
        queries are their last `steps`, Gemma 4's shared layers taking a
        prompt's last query only), else what the layer holds (its first
        call: the keys before the queries)."""
        if (position_ids is None or getattr(position_ids, "ndim", 0) != 2
                or position_ids.shape[1] < steps):
            return self.lengths.get(layer, keys - steps)
        starts = position_ids[:, -steps]
        if bool((starts != starts[0]).any()):
            raise HybridError(
                f"layer {layer}: the sequences start at different positions "
                f"({starts.tolist()}): a padded batch? Hybrid sessions advance "
                "every sequence together and take no attention mask: pass "
                "sequences of one length, unpadded")
        return int(starts[0])

    def __call__(self, module, query, key, value, attention_mask=None, scaling=None,
                 dropout=0.0, **kwargs):
        import torch

        if dropout:
            raise HybridError("hybrid attention does not apply dropout (use model.eval())")
        layer = module.layer_idx
        batch, _, steps, _ = query.shape
        spec = self.schedule.layers[layer]
        shared = (spec.get("cache") or {}).get("policy") == "shared"
        start = self._start(kwargs.get("position_ids"), layer, steps, key.shape[2])
        held = self.lengths.get(layer, 0)
        if start < held:
            # The model's cache went back (rejected drafts, or a new
            # sequence at 0): so does every layer's.
            self.session.truncate(start)
            self.lengths = {i: min(n, start) for i, n in self.lengths.items() if min(n, start)}
            held = self.lengths.get(layer, 0)
        if self.session is None or not self.lengths and batch != self.batch:
            self._new_session(batch)
        elif batch != self.batch:
            raise HybridError(f"layer {layer}: a batch of {batch} sequences, but the "
                              f"session holds {self.batch} sequences' tokens (call "
                              "reset() before a new batch)")
        prompt = held == 0 and start == 0
        if not prompt and start != held and not shared:
            raise HybridError(
                f"layer {layer}'s first call brings {steps} queries over "
                f"{key.shape[2]} keys: its session has not seen the earlier "
                "tokens (run the whole prompt through hybrid attention)" if held == 0 else
                f"layer {layer}'s call starts at position {start}, but its session "
                f"holds {held} tokens: it has not seen the tokens between")
        # [B, H, S, D] -> [B, S, H, D]: a copy the layout requires. GPU
        # schedules take bf16 rows as they are; the rest become float32.
        on_gpu = self.schedule.manifest["target"].startswith("cuda:")
        self.device = query.device if on_gpu and query.is_cuda else None
        rows_dtype = (torch.bfloat16 if on_gpu and query.dtype == torch.bfloat16
                      else torch.float32)
        as_rows = lambda x: x.detach().transpose(1, 2).to(rows_dtype).contiguous()  # noqa: E731
        q = as_rows(query)
        sinks = kwargs.get("s_aux")
        if sinks is not None:
            sinks = sinks.detach().to(torch.float32).contiguous()
        k = v = None
        if prompt or not shared:
            k, v = as_rows(key[:, :, -steps:]), as_rows(value[:, :, -steps:])
        with torch.no_grad():
            if prompt:
                out = self.session.prefill(layer, q, k, v, sinks)
            else:
                # A shared layer's step is the last `steps` tokens its source
                # holds (transformers' Gemma 4 runs a prompt's last query
                # alone through its shared layers).
                out = self.session.decode(layer, q, k, v, sinks)
        self.lengths[layer] = start + steps
        return out.to(query.dtype), None


def _follow_beam_search() -> None:
    """Makes transformers' Cache.reorder_cache (beam search, after each
    step) reorder the registered attentions' sessions too: the attention
    function never sees the model's cache."""
    from transformers import cache_utils

    cache = cache_utils.Cache
    if getattr(cache.reorder_cache, "_hybrid_follows", False):
        return
    original = cache.reorder_cache

    def reorder_cache(self, beam_idx):
        original(self, beam_idx)
        for attention in list(_registered):
            attention.reorder(beam_idx)

    reorder_cache._hybrid_follows = True
    cache.reorder_cache = reorder_cache


def register(schedule: Schedule, max_seq: int, max_step_tokens: int = 1,
             name: str = "hybrid",
             cache_scales: Union[None, str, dict] = None) -> HybridAttention:
    """Registers a HybridAttention with transformers' AttentionInterface under
    `name` and returns it. `max_step_tokens`: the most tokens a call after
    the prompt brings (assisted generation: num_assistant_tokens + 1).
    Beam search reorders every registered attention's session of the beams'
    batch (run one such model at a time)."""
    from transformers import AttentionInterface

    attention = HybridAttention(schedule, max_seq, max_step_tokens, cache_scales)
    AttentionInterface.register(name, attention)
    _registered.add(attention)
    _follow_beam_search()
    # transformers' registry outlives the interpreter's teardown of modules;
    # without this its session and schedule would still be alive when the
    # bindings go, and nanobind would report them as leaked at every exit.
    atexit.register(attention.release)
    return attention
