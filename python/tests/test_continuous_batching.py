"""Continuous batching (Session.select): sequences of one session at their own
lengths, against one batch-1 session per sequence fed the same tokens."""
import re

import numpy as np
import pytest

import hybrid_attn
from test_hybrid_attn import K_EQ_V_SPEC, LATENT_SPEC, SPEC, inputs

# SPEC's layers: a ring (window 8), full with sinks and soft-cap, a chunk
# cache (16, NoPE) and a layer reading layer 0's cache.
SHARED = 3


@pytest.fixture(scope="module")
def schedule():
    return hybrid_attn.compile(SPEC, max_seq=256)


def sequence_data(rng, schedule, length):
    """q, k, v of every layer for one sequence (batch 1); K=V and latent
    layers' v None (their values are k, or its first dims); layers reading
    another's cache with its k and v."""
    data = {}
    for i, layer in enumerate(schedule.layers):
        q, k, v = inputs(rng, layer, 1, length)
        cache = layer["cache"]
        if cache["policy"] == "shared":
            k, v = data[cache["source_layer"]][1:]
        data[i] = (q, k, None if cache["k_eq_v"] or cache["latent"] else v)
    return data


class Served:
    """A session of `batch` sequences driven as a server drives one (prefill a
    request into a free sequence, step the live ones, free finished ones),
    each call checked against a batch-1 session per sequence ("solo") given
    the same tokens at the same positions, to `rtol` and `atol` (a rounding
    apart on CPUs; GPU prompts split keys by the batch they run at, and
    their probabilities round to bf16 per split). A selection's -1 entries
    are padding, given random rows: their outputs must be zeros, and they
    change no sequence."""

    def __init__(self, schedule, batch, max_seq, step, seed, rtol=1e-5, atol=1e-6):
        self.schedule, self.max_seq = schedule, max_seq
        self.rtol, self.atol = rtol, atol
        self.rng = np.random.default_rng(seed)
        self.session = schedule.session(batch, max_seq, max_step_tokens=step)
        self.solo = [schedule.session(1, max_seq, max_step_tokens=step) for _ in range(batch)]
        self.data = [sequence_data(self.rng, schedule, max_seq) for _ in range(batch)]
        self.length = [0] * batch
        self.sinks = {i: self.rng.standard_normal(layer["num_heads"], np.float32)
                      for i, layer in enumerate(schedule.layers) if layer["sinks"]}
        self.shared = [layer["cache"]["policy"] == "shared" for layer in schedule.layers]

    def _rows(self, b, layer, start, count):
        return tuple(None if x is None else np.ascontiguousarray(x[:, start:start + count])
                     for x in self.data[b][layer])

    def _padding_rows(self, layer, count):
        return tuple(None if x is None else
                     self.rng.standard_normal((1, count) + x.shape[2:]).astype(np.float32)
                     for x in self.data[0][layer])

    def _call(self, sequences, method, count):
        """`method` ("prefill" or "decode") of `count` tokens per sequence
        on every layer, the selection's rows stacked in its order."""
        order = list(range(len(self.length))) if sequences is None else sequences
        self.session.select(sequences)
        for layer in self.data[0]:
            rows = [self._padding_rows(layer, count) if b < 0 else
                    self._rows(b, layer, self.length[b] if method == "decode" else 0, count)
                    for b in order]
            if method == "decode" and self.shared[layer]:  # queries only
                rows = [r[:1] + (None, None) for r in rows]
            stacked = [None if parts[0] is None else np.concatenate(parts)
                       for parts in zip(*rows)]
            out = getattr(self.session, method)(layer, *stacked, self.sinks.get(layer))
            for j, b in enumerate(order):
                if b < 0:
                    assert not out[j].any(), \
                        f"{method} layer {layer}: padding entry {j}'s output"
                    continue
                solo = getattr(self.solo[b], method)(layer, *rows[j], self.sinks.get(layer))
                # A step splits each sequence's keys by its share of the
                # call's keys, a session of its own by its own: a rounding
                # apart.
                np.testing.assert_allclose(out[j:j + 1], solo, rtol=self.rtol, atol=self.atol,
                                           err_msg=f"{method} layer {layer} sequence {b}")
        for b in order:
            if b >= 0:
                self.length[b] = count if method == "prefill" else self.length[b] + count

    def prefill(self, sequences, count):
        self._call(sequences, "prefill", count)

    def step(self, sequences, count):
        self._call(sequences, "decode", count)

    def truncate(self, sequences, length):
        self.session.select(sequences)
        self.session.truncate(length)
        for b in filter(lambda b: b >= 0, sequences):
            self.solo[b].truncate(length)
            self.length[b] = min(self.length[b], length)

    def free(self, b):
        """Sequence b's request finished: its next one has new tokens."""
        self.truncate([b], 0)
        self.data[b] = sequence_data(self.rng, self.schedule, self.max_seq)

    def check_caches(self, sequences, layers):
        """Each sequence's rows of these layers' caches are its own
        session's, bit for bit."""
        for b in sequences:
            self.session.select([b])
            for layer in layers:
                for ours, theirs in zip(self.session.read_cache(layer),
                                        self.solo[b].read_cache(layer)):
                    np.testing.assert_array_equal(ours, theirs,
                                                  err_msg=f"layer {layer} sequence {b}")
        self.session.select(None)

    def check_lengths(self):
        for b, length in enumerate(self.length):
            self.session.select([b])
            assert [self.session.cache_info(i)["length"] for i in self.data[b]] == \
                [length] * len(self.data[b]), b
        self.session.select(None)


def test_sequences_at_their_own_lengths(schedule):
    """Requests arrive, generate and finish at different times in one session
    of 4 sequences: every layer kind's outputs are each sequence's own
    session's, through ring wrap-arounds, chunk boundaries, a shared layer's
    skipped tokens, a rollback of one sequence and steps of the whole batch
    at four different lengths."""
    served = Served(schedule, batch=4, max_seq=64, step=4, seed=11)
    served.prefill([2], 7)
    served.prefill([0, 1], 12)  # one batch: consecutive, at one length
    for _ in range(3):
        served.step([0, 1, 2], 1)
    served.prefill([3], 20)
    served.step([1, 3, 0, 2], 3)  # four lengths, out of order
    served.free(1)
    served.prefill([1], 5)
    served.truncate([0], served.length[0] - 2)  # two drafts rejected
    served.check_lengths()
    for _ in range(4):
        served.step(None, 2)  # the whole batch, at four lengths
    served.check_lengths()
    assert served.length == [24, 13, 21, 31]
    served.check_caches(range(4), range(SHARED))


def check_padding_entries(served):
    """Selections padded with -1 (as a CUDA graph's batch is kept full):
    prompts and steps beside padding, padding first, padding alone, a
    truncation through it; every sequence its own session's, its cache
    rows too, the padding changing none."""
    served.prefill([2, -1, 0], 7)
    served.step([0, -1, 2, -1], 1)
    served.step([-1, -1, 2, 0], 3)
    served.prefill([-1, 1], 5)
    served.step([-1, -1], 1)
    served.step([-1], 4)  # a flash step, of padding alone
    served.step([1, 0, 2, -1], 2)
    served.truncate([-1, 0], served.length[0] - 1)
    served.step([0, 1, 2, -1], 1)
    served.check_lengths()
    assert served.length == [13, 8, 14, 0]
    served.check_caches(range(3), range(SHARED))


def test_padding_entries(schedule):
    check_padding_entries(Served(schedule, batch=4, max_seq=64, step=4, seed=21))


@pytest.mark.parametrize("spec, kv_dtype", [(SPEC, "f32"), (SPEC, "bf16"), (SPEC, "f8"),
                                             (K_EQ_V_SPEC, "f32"), (K_EQ_V_SPEC, "f8"),
                                             (LATENT_SPEC, "f32"), (LATENT_SPEC, "f8")],
                         ids=["f32", "bf16", "f8", "k_eq_v", "k_eq_v-f8", "latent",
                              "latent-f8"])
def test_every_cache_at_its_own_length(spec, kv_dtype):
    """Narrow caches, K=V layers (values only, keys derived as the decode
    kernel reads them) and latent layers (keys only, values read from them)
    at four lengths: steps of all four (one dispatch of
    every slice's work items, each slice's keys split by its share) and of
    three out of order, then steps of 32 tokens (the flash kernel: one
    dispatch of every slice's items; K=V layers' slice after slice), each
    sequence's outputs its own session's. The full layers' keys split (more
    than 4 key tiles of 64) 1 to 3 ways by the sequence's share of a step."""
    schedule = hybrid_attn.compile(spec, max_seq=1024, kv_dtype=kv_dtype)
    served = Served(schedule, batch=4, max_seq=1024, step=32, seed=13)
    for b, n in enumerate((5, 300, 40, 700)):
        served.prefill([b], n)
    for _ in range(3):
        served.step(None, 1)
    served.step([3, 1, 0], 2)
    served.step(None, 32)
    served.check_lengths()
    assert served.length == [42, 337, 75, 737]


def test_one_length_is_one_batch(schedule):
    """Selected sequences at one length, consecutive in the batch, run as one
    batch: sequences 0-2 of 4 give a batch-3 session's outputs bit for bit
    (steps split their keys by the batch they run at)."""
    rng = np.random.default_rng(12)
    data = [sequence_data(rng, schedule, 9) for _ in range(3)]
    sinks = {1: rng.standard_normal(4, np.float32)}
    stacked = {layer: tuple(np.concatenate(parts) for parts in zip(*(d[layer] for d in data)))
               for layer in data[0]}
    outs = []
    for batch, select in ((3, None), (4, [0, 1, 2])):
        session = schedule.session(batch, 16, max_step_tokens=2)
        session.select(select)
        for layer, (q, k, v) in stacked.items():
            outs.append(session.prefill(layer, q[:, :7], k[:, :7], v[:, :7], sinks.get(layer)))
        for layer, (q, k, v) in stacked.items():
            rows = (q[:, 7:9],) + ((None, None) if layer == SHARED else (k[:, 7:9], v[:, 7:9]))
            outs.append(session.decode(layer, *(None if x is None else np.ascontiguousarray(x)
                                                for x in rows), sinks.get(layer)))
    for a, b in zip(outs[:8], outs[8:]):
        np.testing.assert_array_equal(a, b)


def test_restore_a_prefix_into_one_sequence(schedule):
    check_restore_a_prefix(schedule)


def check_restore_a_prefix(schedule, **tolerance):
    """Prefix caching while others generate: a saved prompt prefix restored
    into a free sequence goes on as the same prefix restored into a session
    of its own, the other sequences undisturbed."""
    served = Served(schedule, batch=3, max_seq=48, step=2, seed=13, **tolerance)
    served.prefill([0, 1], 10)
    prefix = schedule.session(1, 48, max_step_tokens=2)
    prefix_data = sequence_data(served.rng, schedule, 48)
    for layer, (q, k, v) in prefix_data.items():
        prefix.prefill(layer, q[:, :17], k[:, :17], v[:, :17], served.sinks.get(layer))
    saved = prefix.save()
    served.session.select([2])
    served.session.restore(saved)
    served.solo[2].restore(saved)
    served.data[2], served.length[2] = prefix_data, 17
    served.step([2, 0, 1], 2)
    served.step(None, 1)
    served.check_lengths()
    # A save of the selected sequences is theirs.
    served.session.select([2])
    again = served.session.save()
    assert again["batch"] == 1
    np.testing.assert_array_equal(again["layers"][1]["v"],
                                  served.solo[2].save()["layers"][1]["v"])


def test_selection_errors(schedule):
    session = schedule.session(4, 16, max_step_tokens=2)
    for sequences, message in (
            ([0, 4], r"sequences\[1\] is 4, outside the batch \[0, 4\) \(-1: padding\)"),
            ([-2], r"sequences\[0\] is -2, outside the batch \[0, 4\)"),
            ([2, 0, 2], r"sequences\[2\] is 2, as sequences\[0\] is: a selection names "
                        "each sequence once"),
            ([0, 1, 2, 3, 0], "5 sequences of a batch of 4")):
        with pytest.raises(hybrid_attn.HybridError, match="hybrid_rt_session_select: " + message):
            session.select(sequences)
    assert session.selected is None  # a refused selection changes nothing
    rng = np.random.default_rng(14)
    q, k, v = inputs(rng, schedule.layers[0], 2, 6)
    session.select([1])
    session.prefill(0, q[:1], k[:1], v[:1])
    session.select([3, 1])
    with pytest.raises(hybrid_attn.HybridError, match=re.escape(
            "hybrid_rt_session_prefill: layer 0, sequence 1 already holds 6 tokens")):
        session.prefill(0, q, k, v)
    session.select([1, 3])
    with pytest.raises(hybrid_attn.HybridError, match=re.escape(
            "hybrid_rt_session_prefill: layer 0, sequence 1 already holds 6 tokens")):
        session.prefill(0, q, k, v)
    # Nothing ran for sequence 3: every check passes before any slice runs.
    session.select([3])
    assert session.cache_info(0)["length"] == 0
    session.select([1, 3])
    with pytest.raises(hybrid_attn.HybridError, match=re.escape("q has shape [4, 1, 4, 64], expected [2, 1, 4, 64]")):
        session.decode(0, *inputs(rng, schedule.layers[0], 4, 1))
    # A step past max_seq for one sequence is refused for all.
    session.select([3])
    session.prefill(0, *inputs(rng, schedule.layers[0], 1, 15))
    session.select([1, 3])
    with pytest.raises(hybrid_attn.HybridError, match=re.escape(
            "hybrid_rt_session_decode: layer 0, sequence 3: 15 + 2 tokens exceed the "
            "session's max_seq 16")):
        session.decode(0, *inputs(rng, schedule.layers[0], 2, 2))
    session.select([1])
    assert session.cache_info(0)["length"] == 6
    # Unselected, the batch's calls name the sequences that stand apart.
    session.select(None)
    with pytest.raises(hybrid_attn.HybridError, match=re.escape(
            "hybrid_rt_session_decode: layer 0, sequence 3: 15 + 2 tokens exceed")):
        session.decode(0, *inputs(rng, schedule.layers[0], 4, 2))


def test_f8_scales_of_a_restore_into_one_sequence():
    """f8 caches keep one pair of scales per layer: a restore into one
    sequence while another holds tokens sets the scales they hold (allowed),
    never others (refused)."""
    spec = dict(SPEC, layers=SPEC["layers"][:2])
    schedule = hybrid_attn.compile(spec, max_seq=64, kv_dtype="f8")
    rng = np.random.default_rng(15)
    session = schedule.session(2, 32)
    for layer in range(2):
        session.set_cache_scales(layer, 0.5, 0.25)
    prefix = schedule.session(1, 32)
    for layer in range(2):
        prefix.set_cache_scales(layer, 0.5, 0.25)
    data = [sequence_data(rng, schedule, 9) for _ in range(2)]
    sinks = rng.standard_normal(4, np.float32)
    for layer in range(2):
        prefix.prefill(layer, *data[0][layer], sinks if layer == 1 else None)
    session.select([0])
    for layer in range(2):
        session.prefill(layer, *data[1][layer], sinks if layer == 1 else None)
    session.select([1])
    session.restore(prefix.save())
    np.testing.assert_array_equal(session.read_cache(0)[1], prefix.read_cache(0)[1])
    with pytest.raises(hybrid_attn.HybridError, match=re.escape(
            "layer 0's cache holds 9 tokens stored at its current scales: set scales while it "
            "is empty (after create or reset), or to those it holds")):
        session.set_cache_scales(0, 1.0, 1.0)


def test_f8_k_eq_v_restore_into_one_sequence():
    """A K=V layer's f8 cache keeps values only, its keys derived at the
    values' scale (from the prompt here): a save of one sequence restores
    into another while the first holds tokens (found by fuzz-session
    --lanes: the scales it set were compared with unused key rows')."""
    schedule = hybrid_attn.compile(K_EQ_V_SPEC, max_seq=64, kv_dtype="f8")
    rng = np.random.default_rng(16)
    session = schedule.session(2, 32)
    session.cache_scales_from_prompt(0, 100.0, 100.0)
    q, k, _ = inputs(rng, schedule.layers[0], 1, 9)
    session.select([0])
    session.prefill(0, q, k, None)
    saved = session.save()
    session.select([1])
    session.restore(saved)
    assert session.cache_scales(0) == saved["layers"][0]["scales"]
    np.testing.assert_array_equal(session.read_cache(0)[1], saved["layers"][0]["v"])
