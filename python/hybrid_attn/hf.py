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
the session's. A left-padded batch (prompts of different lengths, as
`generate` batches them) keeps each sequence at its own length: the mask
function register() adds passes the model's padding mask, a prompt's
leading pads are dropped, its tokens prefilled into its own sequence
(`Session.select`), and the steps after run every sequence at once, each
from its own length; the pads' outputs are zeros. Right padding (tokens
hidden after visible ones) is refused. Prompt reuse (a prompt's cache computed once, each
continuation generating from a copy of it) copies the sessions too:
`prefix = attention.save()` beside the model's cache, and
`attention.restore(prefix)` beside each `copy.deepcopy` of it. Needs torch
and transformers.
"""

from __future__ import annotations

import atexit
import contextlib
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
        # Tokens each sequence holds per layer (the layers called so far):
        # layer -> [batch] (a padded batch's sequences differ). Kept here
        # rather than asked of the session (cache_info), which on a GPU
        # session that had a call captured reads the lengths back.
        self.lengths: dict[int, list[int]] = {}
        # Per sequence, the model's position of its first token (a padded
        # prompt's first after its pads: 0 where the model counts from it,
        # as generate does, else the pads'): the session's positions are
        # the model's less it.
        self.offsets: list[int] = []
        # The last call's (position_ids, attention mask, their versions,
        # steps, rows): _rows.
        self._rows_of = None
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
        self.offsets = []
        self._rows_of = None

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
        lengths = {layer: list(n) for layer, n in self.lengths.items()}
        if all(len(set(n)) == 1 for n in self.lengths.values()):
            return {"session": self.session.save(empty), "lengths": lengths,
                    "offsets": list(self.offsets)}
        # Sequences at different lengths (a padded batch): one save each.
        saves = []
        for i in range(self.batch):
            with self._selecting([i]):
                saves.append(self.session.save(empty))
        return {"sequences": saves, "lengths": lengths, "offsets": list(self.offsets)}

    def restore(self, saved: dict) -> None:
        """Puts back what save() gave: the next call goes on from there."""
        sequences = saved.get("sequences")
        batch = saved["session"]["batch"] if sequences is None else len(sequences)
        if self.session is None or batch != self.batch:
            self._new_session(batch)
        if sequences is None:
            self.session.restore(saved["session"])
        for i, one in enumerate(sequences or []):
            with self._selecting([i]):
                self.session.restore(one)
        self.lengths = {layer: list(n) for layer, n in saved["lengths"].items()}
        self.offsets = list(saved["offsets"])
        self._rows_of = None

    def reorder(self, beam_idx) -> None:
        """Sequence i continues sequence beam_idx[i] (beam search; register()
        calls it as the model's cache reorders). Ignored without a session of
        that batch."""
        if self.session is not None and len(beam_idx) == self.batch and self.lengths:
            order = [int(i) for i in (beam_idx.tolist() if hasattr(beam_idx, "tolist")
                                      else beam_idx)]
            self.session.reorder(order)
            self.lengths = {layer: [n[i] for i in order] for layer, n in self.lengths.items()}
            self.offsets = [self.offsets[i] for i in order]

    def _new_session(self, batch: int) -> None:
        self.session = self.schedule.session(batch, self.max_seq, self.max_step_tokens)
        self.batch = batch
        self.offsets = [0] * batch
        if self.cache_scales is None:
            return
        for i, layer in enumerate(self.schedule.layers):
            owns = (layer.get("cache") or {}).get("policy") in ("full", "ring", "chunk")
            if self.cache_scales == "prompt" and owns and layer["causal"]:
                self.session.cache_scales_from_prompt(i)
            elif isinstance(self.cache_scales, dict) and i in self.cache_scales:
                self.session.set_cache_scales(i, *map(float, self.cache_scales[i]))

    @contextlib.contextmanager
    def _selecting(self, sequences: list[int]):
        """The session's calls inside act on `sequences` (all: the whole
        batch, unselected); the whole batch again after."""
        whole = sequences == list(range(self.batch))
        if not whole:
            self.session.select(sequences)
        try:
            yield
        finally:
            if not whole:
                self.session.select(None)

    def _rows(self, position_ids, mask, layer: int, batch: int, steps: int,
              keys: int) -> list[tuple[int, int]]:
        """Each sequence's (model position of its first query after its
        pads, leading pads) in the call: pads from the padding mask that
        register()'s mask function passes (None: no pads), positions from
        the model's position_ids (the queries are their last `steps`; Gemma
        4's shared layers take a prompt's last query only), else from what
        the layer holds (its first call: the keys before the queries)."""
        if not (getattr(mask, "ndim", 0) == 4 and mask.shape[0] == batch
                and mask.shape[3] >= steps):
            mask = None
        if (position_ids is None or getattr(position_ids, "ndim", 0) != 2
                or position_ids.shape[1] < steps
                or position_ids.shape[0] not in (1, batch)):
            position_ids = None
        if position_ids is None and mask is None:
            held = self.lengths.get(layer)
            if held is None or len(held) != batch:
                return [(keys - steps, 0)] * batch
            return [(n + offset, 0) for n, offset in zip(held, self.offsets)]
        # One forward's layers share these: its rows once (a GPU tensor's
        # are copies to the host), unless they changed in place since.
        key = (position_ids, mask, getattr(position_ids, "_version", None),
               getattr(mask, "_version", None), steps)
        cached = self._rows_of
        if (cached is not None and cached[0] is key[0] and cached[1] is key[1]
                and cached[2:5] == key[2:]):
            return cached[5]
        pads = [0] * batch
        if mask is not None:
            hidden = ~_visible_keys(mask)
            # Left padding only: a token hidden after a visible one is right
            # (or interior) padding.
            late = (hidden[:, 1:] & ~hidden[:, :-1]).any(dim=1).tolist()
            if any(late):
                raise HybridError(
                    f"layer {layer}: sequence {late.index(True)}'s attention mask "
                    "hides tokens after visible ones: a right-padded batch? Pad on "
                    "the left (tokenizer.padding_side = \"left\"): hybrid sessions "
                    "drop a prompt's leading pads and take no other mask")
            pads = hidden[:, -steps:].sum(dim=1).tolist()
        if position_ids is None:
            held = self.lengths.get(layer)
            if held is None or len(held) != batch:
                held, offsets = [keys - steps] * batch, [0] * batch
            else:
                offsets = self.offsets
            positions = [list(range(n + offset, n + offset + steps))
                         for n, offset in zip(held, offsets)]
        else:
            positions = position_ids[:, -steps:].tolist()
            positions *= batch // len(positions)  # one row for every sequence
        rows = []
        for i, (p, n) in enumerate(zip(positions, pads)):
            if n == steps:
                raise HybridError(f"layer {layer}: sequence {i}'s queries are all "
                                  "padding (an empty prompt)")
            if position_ids is not None and p[n:] != list(range(p[n], p[n] + steps - n)):
                raise HybridError(
                    f"layer {layer}: sequence {i}'s queries are at positions {p}, "
                    f"not consecutive after its {n} pads: padding that hybrid "
                    "attention was not told of? Pad on the left and run the model "
                    "with the attention implementation register() named (its mask "
                    "function passes the padding)")
            rows.append((p[n], n))
        self._rows_of = key + (rows,)
        return rows

    def _truncate(self, lengths: dict[int, int]) -> None:
        """Sequence i back to lengths[i] in every layer (the model's cache
        went back: rejected drafts, or a new sequence at 0)."""
        if len(lengths) == self.batch and len(set(lengths.values())) == 1:
            self.session.truncate(next(iter(lengths.values())))
        else:
            for length in sorted(set(lengths.values())):
                with self._selecting([i for i, n in lengths.items() if n == length]):
                    self.session.truncate(length)
        for held in self.lengths.values():
            for i, n in lengths.items():
                held[i] = min(held[i], n)
        self.lengths = {layer: n for layer, n in self.lengths.items() if any(n)}

    def __call__(self, module, query, key, value, attention_mask=None, scaling=None,
                 dropout=0.0, **kwargs):
        import torch

        if dropout:
            raise HybridError("hybrid attention does not apply dropout (use model.eval())")
        layer = module.layer_idx
        batch, _, steps, _ = query.shape
        spec = self.schedule.layers[layer]
        shared = (spec.get("cache") or {}).get("policy") == "shared"
        rows = self._rows(kwargs.get("position_ids"), attention_mask, layer, batch, steps,
                          key.shape[2])
        # A sequence whose first query is at position 0, or follows pads,
        # is new: its session positions count from that query.
        new = [position == 0 or pads > 0 for position, pads in rows]
        if self.session is not None and batch != self.batch and self.lengths:
            if not all(new):
                raise HybridError(
                    f"layer {layer}: a batch of {batch} sequences, but the session "
                    f"holds {self.batch} sequences' tokens (call reset() before a "
                    "new batch)")
            self.reset()  # new sequences
        if self.session is None or batch != self.batch:
            self._new_session(batch)
        for i, (position, _) in enumerate(rows):
            if new[i]:
                self.offsets[i] = position
        starts = [position - offset for (position, _), offset in zip(rows, self.offsets)]
        held = self.lengths.get(layer, [0] * batch)
        back = {i: start for i, start in enumerate(starts) if start < held[i]}
        if back:
            self._truncate(back)
            held = self.lengths.get(layer, [0] * batch)
        # Prompts (run as prefills, by their pads: the tokens after them)
        # and steps (one decode of every sequence, each from its length).
        prompts: dict[int, list[int]] = {}
        steppers = []
        for i, (start, (_, pads)) in enumerate(zip(starts, rows)):
            if held[i] == 0 and start == 0:
                prompts.setdefault(pads, []).append(i)
                continue
            if start != held[i] and not shared:
                of = f" (sequence {i})" if batch > 1 else ""
                raise HybridError(
                    f"layer {layer}'s first call brings {steps} queries over "
                    f"{key.shape[2]} keys: its session has not seen the earlier "
                    "tokens (run the whole prompt through hybrid attention)"
                    if held[i] == 0 else
                    f"layer {layer}'s call starts at position {start}{of}, but its "
                    f"session holds {held[i]} tokens: it has not seen the tokens between")
            steppers.append(i)
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
        if prompts or not shared:
            k, v = as_rows(key[:, :, -steps:]), as_rows(value[:, :, -steps:])
        groups = [(sequences, pads, True) for pads, sequences in sorted(prompts.items())]
        if steppers:
            groups.append((steppers, 0, False))
        out = None
        with torch.no_grad():
            for sequences, pads, prompt in groups:
                whole = sequences == list(range(batch)) and pads == 0
                part = lambda x: (x if x is None or whole  # noqa: E731
                                  else x[sequences, pads:].contiguous())
                with self._selecting(sequences):
                    # A shared layer's step is the last `steps` tokens its
                    # source holds (transformers' Gemma 4 runs a prompt's
                    # last query alone through its shared layers).
                    run = self.session.prefill if prompt else self.session.decode
                    result = run(layer, part(q), part(k) if prompt or not shared else None,
                                 part(v) if prompt or not shared else None, sinks)
                if whole:
                    out = result
                    continue
                if out is None:  # the pads' outputs are zeros
                    out = result.new_zeros((batch, steps) + tuple(result.shape[2:]))
                out[sequences, pads:] = result
        self.lengths[layer] = [start + steps - pads for start, (_, pads) in zip(starts, rows)]
        return out.to(query.dtype), None


def _padding_mask(*args, attention_mask=None, q_length=None, kv_length=None, **kwargs):
    """The mask transformers makes for hybrid attention: where the model's
    2D padding mask [B, keys] (True: a token) hides any of its last
    kv_length keys (a padded batch), it as [B, 1, q_length, kv_length]
    (a view: every query's row the same; models slice a mask's queries);
    else None. The schedule's own masks are the sessions'."""
    if getattr(attention_mask, "ndim", 0) != 2:
        return None
    if kv_length is not None:
        attention_mask = attention_mask[:, -kv_length:]
    if bool(attention_mask.all()):
        return None
    batch, keys = attention_mask.shape
    return attention_mask.bool()[:, None, None, :].expand(batch, 1, q_length or 1, keys)


def _visible_keys(mask):
    """[B, keys] bool: the keys some query of a [B, heads, queries, keys]
    mask sees (bool, or additive: 0 where seen); the padding mask where it
    is _padding_mask's (its rows one view) or any causal, sliding or
    chunked mask over a padded batch (a pad is hidden from every query)."""
    import torch

    seen = mask if mask.dtype == torch.bool else mask == 0
    if seen.stride(1) == 0 and seen.stride(2) == 0:
        return seen[:, 0, 0, :]
    return seen.any(dim=2).any(dim=1)


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
    from transformers.masking_utils import AttentionMaskInterface

    for index, layer in enumerate(schedule.layers):
        if (layer.get("cache") or {}).get("latent"):
            raise HybridError(
                f"layer {index} attends over a latent cache (mla_cache=\"latent\"): "
                "transformers' attention modules pass keys and values per head; "
                "compile with mla_cache=\"decompressed\" for them")
    attention = HybridAttention(schedule, max_seq, max_step_tokens, cache_scales)
    AttentionInterface.register(name, attention)
    AttentionMaskInterface.register(name, _padding_mask)
    _registered.add(attention)
    _follow_beam_search()
    # transformers' registry outlives the interpreter's teardown of modules;
    # without this its session and schedule would still be alive when the
    # bindings go, and nanobind would report them as leaked at every exit.
    atexit.register(attention.release)
    return attention
