"""hybrid_attn against a NumPy reference: compile, prefill, decode, caches,
no copies, errors."""
import os
import re
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest

import hybrid_attn
from bfloat16 import BFloat16Array
from reference import attention, cache_rounding, rope

SPEC = {
    "format": "hybrid-schedule", "version": 1, "name": "pytest", "hidden_size": 256,
    "max_position_embeddings": 4096,
    "defaults": {"num_heads": 4, "num_kv_heads": 2, "head_dim": 64,
                 "positional": {"type": "rope", "theta": 10000}},
    "layers": [
        {"kind": "sliding", "window": 8},
        {"kind": "full", "softcap": 20.0, "sinks": True},
        {"kind": "chunked", "chunk": 16, "positional": {"type": "none"}},
        {"kind": "sliding", "window": 8, "shared_source": 0},
    ],
}


@pytest.fixture(scope="module")
def schedule():
    return hybrid_attn.compile(SPEC, max_seq=256)


def inputs(rng, layer, batch, length):
    q = rng.standard_normal((batch, length, layer["num_heads"], layer["head_dim"]), np.float32)
    k = rng.standard_normal((batch, length, layer["num_kv_heads"], layer["head_dim"]), np.float32)
    v = rng.standard_normal((batch, length, layer["num_kv_heads"], layer["v_head_dim"]), np.float32)
    return q, k, v


def relative_error(out, ref):
    return np.abs(out - ref).max() / np.abs(ref).max()


def test_compile_reports_schedule(schedule):
    kinds = [layer["kind"] for layer in schedule.layers]
    assert kinds == ["sliding", "full", "chunked", "sliding"]
    assert schedule.layers[0]["cache"]["policy"] == "ring"
    assert schedule.layers[3]["cache"]["policy"] == "shared"
    assert schedule.cache_plan["storage"] == "f32"
    assert schedule.cache_plan["total"] < schedule.cache_plan["all_full_baseline"]
    assert "hybrid.schedule @pytest" in schedule.ir
    assert "func.func @pytest_sliding_l0_decode" in schedule.kernels_ir


# Steps of 32 tokens are chunked prefill (the flash kernel over the caches).
@pytest.mark.parametrize("step", [1, 3, 32])
def test_prefill_then_decode_match_reference(schedule, step):
    rng = np.random.default_rng(step)
    batch, prompt, steps = 2, 21, 6
    total = prompt + steps * step
    session = schedule.session(batch, total, max_step_tokens=step)
    sinks = rng.standard_normal(4, np.float32)
    data = {i: inputs(rng, layer, batch, total) for i, layer in enumerate(schedule.layers)}
    data[3] = (data[3][0],) + data[0][1:]  # the shared layer reads layer 0's k, v
    outs = {i: np.zeros((batch, total, 4, 64), np.float32) for i in data}
    layer_sinks = {1: sinks}
    for i, (q, k, v) in data.items():
        outs[i][:, :prompt] = session.prefill(i, q[:, :prompt], k[:, :prompt], v[:, :prompt],
                                              layer_sinks.get(i))
    for s in range(steps):
        at = slice(prompt + s * step, prompt + (s + 1) * step)
        for i, (q, k, v) in data.items():
            shared = i == 3
            outs[i][:, at] = session.decode(i, np.ascontiguousarray(q[:, at]),
                                            None if shared else np.ascontiguousarray(k[:, at]),
                                            None if shared else np.ascontiguousarray(v[:, at]),
                                            layer_sinks.get(i))
    for i, (q, k, v) in data.items():
        ref = attention(schedule.layers[i], q, k, v, layer_sinks.get(i))
        assert relative_error(outs[i], ref) < 1e-4, i
    assert session.cache_info(0)["rows"] == 8 + step - 1  # the ring
    assert session.cache_info(3)["bytes"] == 0  # shared: no storage
    assert session.cache_info(0)["length"] == total
    session.reset()
    assert session.cache_info(0)["length"] == 0


# Caches of bf16 and f16 (half the bytes of f32) and f8 (E4M3FN, a quarter).
NARROW_CACHES = {"bf16": 2, "f16": 2, "f8": 4}  # f32's bytes per theirs


@pytest.fixture(scope="module", params=sorted(NARROW_CACHES))
def narrow_schedule(request):
    return request.param, hybrid_attn.compile(SPEC, max_seq=256, kv_dtype=request.param)


# Steps of 1 token run the decode kernel, of 32 the flash kernel's twin over
# the narrow cache.
@pytest.mark.parametrize("step", [1, 32])
def test_narrow_caches(schedule, narrow_schedule, step):
    """kv_dtype="bf16", "f16" or "f8": caches of fewer bytes; prompts attend
    in f32 as before, steps over keys and values rounded as the cache holds them
    (ml_dtypes rounds the reference's: to nearest even)."""
    dtype, narrow = narrow_schedule
    fraction = NARROW_CACHES[dtype]
    assert narrow.cache_plan["storage"] == dtype
    rng = np.random.default_rng(10 + step)
    batch, prompt, steps = 2, 21, 4
    total = prompt + steps * step
    layer = narrow.layers[1]  # full, soft-cap, sinks, RoPE
    q, k, v = inputs(rng, layer, batch, total)
    sinks = rng.standard_normal(4, np.float32)
    ref = attention(layer, q, k, v, sinks)
    cached = attention(layer, q, k, v, sinks, cached=cache_rounding(dtype))
    sessions = [s.session(batch, total, max_step_tokens=step) for s in (schedule, narrow)]
    assert sessions[1].cache_info(1)["bytes"] * fraction == sessions[0].cache_info(1)["bytes"]
    session = sessions[1]
    out = session.prefill(1, q[:, :prompt], k[:, :prompt], v[:, :prompt], sinks)
    assert relative_error(out, ref[:, :prompt]) < 1e-4
    for s in range(steps):
        at = slice(prompt + s * step, prompt + (s + 1) * step)
        out = session.decode(1, *(np.ascontiguousarray(x[:, at]) for x in (q, k, v)), sinks)
        # Keys the kernels rotate in f32 and the reference in f64 may round
        # an ulp apart (hybrid-rt-check's tolerances); the rounding itself
        # moves rows by far more than f32's error.
        assert relative_error(out, cached[:, at]) < {"bf16": 1e-3, "f16": 1e-3,
                                                     "f8": 1e-2}[dtype], (s, dtype)
        assert relative_error(out, ref[:, at]) > 1e-5, (s, dtype)


def nan_outputs(schedules, layer, step, steps=3):
    """Which outputs of `layer` are NaN in a session of each schedule, over
    a prompt and `steps` steps of `step` tokens with a NaN in a step's key
    (kv head 1) and in a prompt's value (kv head 0)."""
    rng = np.random.default_rng(5)
    batch, prompt = 2, 21
    total = prompt + steps * step
    q, k, v = inputs(rng, schedules[0].layers[layer], batch, total)
    k[0, prompt + 1, 1, 5] = np.nan
    v[1, prompt - 3, 0, 60] = np.nan
    outs = []
    for s in schedules:
        session = s.session(batch, total, max_step_tokens=step)
        out = [session.prefill(layer, q[:, :prompt], k[:, :prompt], v[:, :prompt])]
        for i in range(steps):
            at = slice(prompt + i * step, prompt + (i + 1) * step)
            out.append(session.decode(layer, *(np.ascontiguousarray(x[:, at]) for x in (q, k, v))))
        outs.append(np.isnan(np.concatenate(out, axis=1)))
    return outs


@pytest.mark.parametrize("step", [1, 32])
def test_narrow_caches_keep_nans(schedule, narrow_schedule, step):
    """A NaN key or value element read from a narrow cache is a NaN, as
    from an f32 one (E4M3FN keeps them at S.1111.111; the f8 decode kernel
    checks each row for them): the rows whose window sees it are NaN, the
    others not."""
    wide, narrow = nan_outputs([schedule, narrow_schedule[1]], 0, step)  # sliding window 8
    assert wide.any() and not wide.all()
    np.testing.assert_array_equal(narrow, wide)


GQA4_SPEC = dict(SPEC, name="pytest_gqa4", defaults=dict(SPEC["defaults"], num_heads=8),
                 layers=[{"kind": "sliding", "window": 8}, {"kind": "full"}])


@pytest.mark.parametrize("layer", [0, 1])
def test_f8_score_blocks_keep_nans(layer):
    """With GQA 4 the f8 decode kernel's scores pass takes 4 keys at once,
    their rows checked for NaN codes together, and the keys a block does not
    fill one at a time: NaNs reach the same rows as from an f32 cache."""
    wide, narrow = nan_outputs([hybrid_attn.compile(GQA4_SPEC, max_seq=64),
                                hybrid_attn.compile(GQA4_SPEC, max_seq=64, kv_dtype="f8")],
                               layer, step=1, steps=6)
    assert wide[:, 21:].any() and not wide[:, 21:].all()
    np.testing.assert_array_equal(narrow, wide)


def run_session(session, layers, data, prompt, steps, step, sinks=None, shared=()):
    """Prompt then `steps` steps of `step` tokens through `layers` (in order;
    data[i] = q, k, v, where a K=V layer's v is its k, and a `shared` layer's
    k and v its source's, which its steps leave out); each layer's outputs
    [B, prompt + steps * step, Hq, Dv]."""
    sinks = sinks or {}

    def positions(i, at):
        q, k, v = (np.ascontiguousarray(x[:, at]) for x in data[i])
        if i in shared and at.start:
            k = v = None
        return q, k, k if data[i][2] is data[i][1] else v

    outs = {i: [session.prefill(i, *positions(i, slice(0, prompt)), sinks.get(i))]
            for i in layers}
    for s in range(steps):
        at = slice(prompt + s * step, prompt + (s + 1) * step)
        for i in layers:
            outs[i].append(session.decode(i, *positions(i, at), sinks.get(i)))
    return {i: np.concatenate(out, axis=1) for i, out in outs.items()}


@pytest.fixture(scope="module")
def f8_schedule():
    return hybrid_attn.compile(SPEC, max_seq=256, kv_dtype="f8")


# Keys and values of magnitude 1e-3 (queries 1e3: the same scores), where
# E4M3FN's subnormals (below 2^-6) keep at most 3 significant bits unscaled.
@pytest.mark.parametrize("step", [1, 32])
def test_f8_cache_scales(f8_schedule, step):
    """set_cache_scales: f8 caches store keys / k_scale and values / v_scale,
    and steps read them back times the scales: they match the reference
    over keys and values rounded so, not the unscaled ones, and keep f8's
    4 significant bits whatever the magnitude. A layer reading another's
    cache reads it at that layer's scales."""
    rng = np.random.default_rng(30 + step)
    batch, prompt, steps = 2, 21, 3
    total = prompt + steps * step
    data = {}
    for i in (0, 1):
        q, k, v = inputs(rng, f8_schedule.layers[i], batch, total)
        data[i] = (q * 1e3, k * 1e-3, v * 1e-3)
    data[3] = (rng.standard_normal(data[0][0].shape, np.float32) * 1e3, *data[0][1:])
    sinks = {1: rng.standard_normal(4, np.float32)}
    outs = {}
    for scaled in (False, True):
        session = f8_schedule.session(batch, total, max_step_tokens=step)
        scales = {}
        for i in (0, 1):
            k, v = data[i][1:]
            # Rotation grows a key element by up to sqrt(2).
            scales[i] = ((1.5 * float(np.abs(k).max()) / 448, float(np.abs(v).max()) / 448)
                         if scaled else (1.0, 1.0))
            session.set_cache_scales(i, *scales[i])
            assert session.cache_scales(i) == pytest.approx(scales[i], rel=1e-7)
        assert session.cache_scales(3) == session.cache_scales(0)
        outs[scaled] = run_session(session, (0, 1, 3), data, prompt, steps, step, sinks,
                                   shared=(3,))
        for i, source in ((0, 0), (1, 1), (3, 0)):
            layer = f8_schedule.layers[i]
            q, k, v = data[i]
            args = (layer, q, k, v, sinks.get(i))
            ref = attention(*args)
            cached = attention(*args, cached=cache_rounding("f8", scales[source][1]),
                               cached_keys=cache_rounding("f8", scales[source][0]))
            out, at = outs[scaled][i], slice(prompt, total)
            assert relative_error(out[:, :prompt], ref[:, :prompt]) < 1e-4, i
            assert relative_error(out[:, at], cached[:, at]) < 1e-2, (i, scaled)
            if scaled:
                unscaled = attention(*args, cached=cache_rounding("f8"))
                assert relative_error(out[:, at], unscaled[:, at]) > 0.1, i
                # Measured 0.03-0.07 scaled, 0.36-0.85 unscaled.
                error = relative_error(out[:, at], ref[:, at])
                assert error < 0.15, i
                assert relative_error(outs[False][i][:, at], ref[:, at]) > 4 * error, i


def test_f8_cache_scales_from_prompt(f8_schedule):
    """cache_scales_from_prompt: the tokens that enter an empty cache set its
    scales, keys' (rotated) largest magnitude over k_target, values' over
    v_target; steps then read the cache at them. Each prompt after a reset
    sets them anew, until set_cache_scales."""
    from reference import rope
    rng = np.random.default_rng(40)
    batch, prompt, steps = 2, 21, 3
    total = prompt + steps
    session = f8_schedule.session(batch, total)
    for i in (0, 1):
        session.cache_scales_from_prompt(i, 300.0, 50.0)
    for magnitude in (1e-3, 1e2):
        data = {}
        for i in (0, 1):
            q, k, v = inputs(rng, f8_schedule.layers[i], batch, total)
            data[i] = (q / magnitude, k * magnitude, v * magnitude)
        data[3] = (rng.standard_normal(data[0][0].shape, np.float32) / magnitude, *data[0][1:])
        sinks = {1: rng.standard_normal(4, np.float32)}
        session.reset()
        outs = run_session(session, (0, 1, 3), data, prompt, steps, 1, sinks, shared=(3,))
        for i, source in ((0, 0), (1, 1), (3, 0)):
            layer = f8_schedule.layers[i]
            q, k, v = data[i]
            rotated = rope(k[:, :prompt].astype(np.float64), np.arange(prompt),
                           layer["positional"])
            expected = (np.abs(rotated).max() / 300, np.abs(v[:, :prompt]).max() / 50)
            scales = session.cache_scales(i)
            assert scales == pytest.approx(expected, rel=1e-6), (i, magnitude)
            args = (layer, q, k, v, sinks.get(i))
            cached = attention(*args, cached=cache_rounding("f8", scales[1]),
                               cached_keys=cache_rounding("f8", scales[0]))
            at = slice(prompt, total)
            assert relative_error(outs[i][:, at], cached[:, at]) < 1e-2, (i, magnitude)
            assert relative_error(outs[i][:, at], attention(*args)[:, at]) < 0.15, i
    session.reset()
    session.set_cache_scales(0, 0.5, 0.25)
    run_session(session, (0,), data, prompt, 0, 1)
    assert session.cache_scales(0) == (0.5, 0.25)
    for bad in (0.0, 449.0, float("nan")):
        with pytest.raises(hybrid_attn.HybridError,
                           match=r"layer 1: k_target is .*; a target magnitude lies in "
                                 r"\(0, 448\], E4M3FN's range"):
            f8_schedule.session(1, 8).cache_scales_from_prompt(1, bad, 100.0)


def test_f8_cache_scales_errors(schedule, f8_schedule):
    """Scales are positive and finite, for f8 caches the layer keeps, set
    while they are empty; they stay through resets."""
    session = f8_schedule.session(1, 32)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(hybrid_attn.HybridError,
                           match=r"layer 1: v_scale is .*; a cache scale is positive and finite"):
            session.set_cache_scales(1, 1.0, bad)
    with pytest.raises(hybrid_attn.HybridError,
                       match="layer 3 reads layer 0's cache, at that layer's scales: set them there"):
        session.set_cache_scales(3, 2.0, 2.0)
    rng = np.random.default_rng(6)
    q, k, v = inputs(rng, f8_schedule.layers[0], 1, 5)
    session.set_cache_scales(0, 0.5, 0.25)
    session.prefill(0, q, k, v)
    with pytest.raises(hybrid_attn.HybridError,
                       match="layer 0's cache holds 5 tokens stored at its current scales: set "
                             r"scales while it is empty \(after create or reset\)"):
        session.set_cache_scales(0, 1.0, 1.0)
    session.reset()
    assert session.cache_scales(0) == (0.5, 0.25)
    session.set_cache_scales(0, 1.0, 1.0)
    bidirectional = hybrid_attn.compile(
        dict(SPEC, name="bidirectional", layers=[{"kind": "full", "causal": False}]),
        max_seq=32, kv_dtype="f8")
    with pytest.raises(hybrid_attn.HybridError,
                       match="layer 0 is bidirectional: no step reads its cache"):
        bidirectional.session(1, 32).set_cache_scales(0, 1.0, 1.0)
    with pytest.raises(hybrid_attn.HybridError,
                       match=r"layer 0: cache scales apply to f8 caches \(hybrid-compile --kv-dtype "
                             r"f8 for a CPU\); this layer's holds f32"):
        schedule.session(1, 32).set_cache_scales(0, 1.0, 1.0)


def test_f8_cache_scales_k_eq_v():
    """K=V layers keep one tensor, the values, from which keys are derived:
    one scale, which the layer reading their cache reads too (the decode
    kernel, and the flash kernel over keys derived into scratch)."""
    schedule = hybrid_attn.compile(K_EQ_V_SPEC, max_seq=64, kv_dtype="f8")
    rng = np.random.default_rng(8)
    batch, prompt = 2, 13
    session = schedule.session(batch, prompt + 17, max_step_tokens=16)
    with pytest.raises(hybrid_attn.HybridError,
                       match=r"layer 0 keeps its values only \(K=V\), from which keys are "
                             "derived: k_scale 0.5.* must equal v_scale 0.25"):
        session.set_cache_scales(0, 0.5, 0.25)
    q, k, _ = inputs(rng, schedule.layers[0], batch, prompt + 17)
    k *= 1e-3
    scale = float(np.abs(k).max()) / 448
    session.set_cache_scales(0, scale, scale)
    q1 = rng.standard_normal(q.shape, np.float32)
    data = {0: (q, k, k), 1: (q1, k, k)}
    out = run_session(session, (0, 1), data, prompt, 1, 1, shared=(1,))
    # A step of 16 tokens: the flash kernel over keys derived into scratch.
    at = slice(prompt + 1, prompt + 17)
    steps = [session.decode(0, np.ascontiguousarray(q[:, at]), np.ascontiguousarray(k[:, at])),
             session.decode(1, np.ascontiguousarray(q1[:, at]))]
    out = {i: np.concatenate([out[i], step], axis=1) for i, step in enumerate(steps)}
    for i, queries in enumerate((q, q1)):
        cached = attention(schedule.layers[i], queries, k, k, cached=cache_rounding("f8", scale))
        assert relative_error(out[i][:, prompt:], cached[:, prompt:]) < 1e-2, i
        assert relative_error(out[i][:, prompt:],
                              attention(schedule.layers[i], queries, k, k,
                                        cached=cache_rounding("f8"))[:, prompt:]) > 0.1, i


def test_f8_k_eq_v_scales_from_prompt_restore():
    """A K=V layer's keys derive from its values, at their scale: scales
    from the prompt report one scale for both (the key cache has none of
    its own), and a save restores at it."""
    schedule = hybrid_attn.compile(K_EQ_V_SPEC, max_seq=64, kv_dtype="f8")
    rng = np.random.default_rng(15)
    batch, prompt = 2, 9
    session = schedule.session(batch, 16)
    session.cache_scales_from_prompt(0, 100, 50)
    q, k, _ = inputs(rng, schedule.layers[0], batch, prompt + 1)
    session.prefill(0, q[:, :prompt], k[:, :prompt], None)
    k_scale, v_scale = session.cache_scales(0)
    assert k_scale == v_scale == pytest.approx(np.abs(k[:, :prompt]).max() / 50, rel=1e-6)
    assert session.cache_scales(1) == (k_scale, v_scale)
    restored = schedule.session(batch, 16)
    restored.restore(session.save())
    step = [np.ascontiguousarray(x[:, prompt:]) for x in (q, k)]
    np.testing.assert_array_equal(session.decode(0, *step), restored.decode(0, *step))


def check_shared_layer_skips_tokens(schedule, tolerance):
    """SPEC's shared layer 3 reads layer 0's cache: after a prompt of 21
    through layer 0, a step of 2 queries on layer 3 is the last 2 of the 21
    (the 19 before are skipped, as transformers' Gemma 4 runs its shared
    layers); its next step follows on. A step past what the source holds, or
    one repeating tokens, is refused."""
    rng = np.random.default_rng(3)
    batch, prompt = 2, 21
    session = schedule.session(batch, prompt + 1, max_step_tokens=2)
    q, k, v = inputs(rng, schedule.layers[0], batch, prompt + 1)
    session.prefill(0, q[:, :prompt], k[:, :prompt], v[:, :prompt])
    ref = attention(schedule.layers[3], q, k, v)
    out = session.decode(3, np.ascontiguousarray(q[:, prompt - 2:prompt]))
    assert relative_error(out, ref[:, prompt - 2:prompt]) < tolerance
    assert session.cache_info(3)["length"] == prompt
    with pytest.raises(RuntimeError, match="reads layer 0's cache, which holds 21 tokens, "
                                           "not 22: run the source layer's step first"):
        session.decode(3, np.ascontiguousarray(q[:, prompt:]))
    at = slice(prompt, prompt + 1)
    session.decode(0, *(np.ascontiguousarray(x[:, at]) for x in (q, k, v)))
    out = session.decode(3, np.ascontiguousarray(q[:, at]))
    assert relative_error(out, ref[:, at]) < tolerance


def test_shared_layer_skips_tokens(schedule):
    check_shared_layer_skips_tokens(schedule, 1e-4)


def step_every_layer(session, data, at, sinks):
    """One decode call per SPEC layer for positions `at` of data[i] = q, k,
    v (the shared layer 3 passes its queries only); the outputs."""
    def rows(x):
        return np.ascontiguousarray(x[:, at])
    return {i: session.decode(i, rows(q), *((None, None) if i == 3 else (rows(k), rows(v))),
                              sinks.get(i))
            for i, (q, k, v) in data.items()}


def spec_data(rng, schedule, batch, length):
    """q, k, v of every SPEC layer; the shared layer 3 with layer 0's k, v."""
    data = {i: inputs(rng, layer, batch, length) for i, layer in enumerate(schedule.layers)}
    data[3] = (data[3][0],) + data[0][1:]
    return data


def check_reorder(schedule, tolerance, step):
    """Beam search: after a prompt and 2 one-token steps of 3 sequences,
    sequence i continues sequence order[i] for 2 steps of `step` tokens,
    order [2, 0, 0] (two beams of one prefix, one dropped): every SPEC
    layer (ring, full with sinks, chunk, shared) attends over its new prefix
    as the reference over the gathered tokens does (steps of 8 run GPUs'
    flash kernel: its first reads from ring row 9 of 15, through the mirror
    rows past them, keys of the prefix)."""
    rng = np.random.default_rng(5)
    batch, prompt, before = 3, 29, 2
    cut, order = prompt + before, [2, 0, 0]
    total = cut + 2 * step
    session = schedule.session(batch, total, max_step_tokens=step)
    sinks = {1: rng.standard_normal(4, np.float32)}
    data = spec_data(rng, schedule, batch, total)
    outs = {i: [session.prefill(i, *(x[:, :prompt] for x in d), sinks.get(i))]
            for i, d in data.items()}
    ends = list(range(prompt + 1, cut + 1)) + list(range(cut + step, total + 1, step))
    for start, end in zip([prompt] + ends, ends):
        if start == cut:
            session.reorder(np.array(order))
        for i, out in step_every_layer(session, data, slice(start, end), sinks).items():
            outs[i].append(out)
    for i, (q, k, v) in data.items():
        out = np.concatenate(outs[i], axis=1)
        ref = attention(schedule.layers[i], q, k, v, sinks.get(i))
        assert relative_error(out[:, :cut], ref[:, :cut]) < tolerance, i
        q, k, v = (np.concatenate([x[order, :cut], x[:, cut:]], axis=1) for x in (q, k, v))
        ref = attention(schedule.layers[i], q, k, v, sinks.get(i))
        assert relative_error(out[:, cut:], ref[:, cut:]) < tolerance, i


@pytest.mark.parametrize("step", [1, 8])
def test_reorder(schedule, step):
    check_reorder(schedule, 1e-4, step)


def check_truncate(schedule, tolerance):
    """Speculative decoding: after a prompt of 21, a step of 4 drafted
    tokens of which the first is accepted; truncate(22) forgets the other
    3, and steps of the true tokens go on from position 22 in every SPEC
    layer (a ring of 8 + 3 rows, chunk, shared) as the reference over the
    accepted tokens says. Going back further than the ring holds is refused
    before any layer changes."""
    rng = np.random.default_rng(6)
    batch, prompt, drafted, accepted, total = 2, 21, 4, 1, 27
    session = schedule.session(batch, 64, max_step_tokens=drafted)
    sinks = {1: rng.standard_normal(4, np.float32)}
    data = spec_data(rng, schedule, batch, total)
    drafts = spec_data(rng, schedule, batch, drafted)
    keep = prompt + accepted
    for i in data:  # the accepted draft is the true token
        drafts[i] = tuple(np.concatenate([x[:, prompt:keep], d[:, accepted:]], axis=1)
                          for x, d in zip(data[i], drafts[i]))
    for i, d in data.items():
        session.prefill(i, *(x[:, :prompt] for x in d), sinks.get(i))
    verified = step_every_layer(session, drafts, slice(0, drafted), sinks)
    with pytest.raises(RuntimeError, match=re.escape(
            "hybrid_rt_session_truncate: layer 0: a step at position 10 sees keys "
            "from position 3, and the ring cache (11 rows) holds positions from 14 on: "
            "truncate to 21 or later")):
        session.truncate(10)
    assert [session.cache_info(i)["length"] for i in data] == [prompt + drafted] * 4
    session.truncate(keep)
    assert [session.cache_info(i)["length"] for i in data] == [keep] * 4
    session.truncate(keep + 1)  # nothing past the length to forget
    outs = {i: [out[:, :accepted]] for i, out in verified.items()}
    for position in range(keep, total):
        for i, out in step_every_layer(session, data, slice(position, position + 1),
                                       sinks).items():
            outs[i].append(out)
    for i, (q, k, v) in data.items():
        ref = attention(schedule.layers[i], q, k, v, sinks.get(i))
        assert relative_error(np.concatenate(outs[i], axis=1), ref[:, prompt:]) < tolerance, i


def test_truncate(schedule):
    check_truncate(schedule, 1e-4)


def test_reorder_and_truncate_errors(schedule):
    session = schedule.session(2, 32)
    for order, message in (([0], "an order of 1 sequences for a batch of 2"),
                           ([0, 2], r"order\[1\] is 2, not a sequence of the batch \[0, 2\)")):
        with pytest.raises(RuntimeError, match="hybrid_rt_session_reorder: " + message):
            session.reorder(order)
    with pytest.raises(RuntimeError, match="hybrid_rt_session_truncate: length -1 is negative"):
        session.truncate(-1)


def check_read_cache(schedule, tolerance):
    """After a prompt of 21 and 3 steps, every SPEC layer with a cache
    holds the positions its policy keeps (ring: the last 8 + 2 - 1 of 24,
    chunk: 16 + 2 - 1, full: all), and read_cache gives them back: values as
    they came, keys rotated by the layer's RoPE (the chunked layer has
    none). Positions it does not hold, and the shared layer, are refused."""
    rng = np.random.default_rng(9)
    batch, prompt, total = 2, 21, 24
    session = schedule.session(batch, 64, max_step_tokens=2)
    data = spec_data(rng, schedule, batch, total)
    sinks = {1: rng.standard_normal(4, np.float32)}
    for i, d in data.items():
        session.prefill(i, *(x[:, :prompt] for x in d), sinks.get(i))
    for position in range(prompt, total):
        step_every_layer(session, data, slice(position, position + 1), sinks)
    for i, held in ((0, 15), (1, 0), (2, 7)):
        info = session.cache_info(i)
        assert (info["first_held"], info["length"]) == (held, total), i
        k, v = session.read_cache(i)
        assert k.shape == (batch, total - held, 2, 64) and v.shape == k.shape, i
        _, keys, values = data[i]
        pos = schedule.layers[i].get("positional") or {"type": "none"}
        if pos["type"] != "none":
            keys = rope(keys.astype(np.float64), np.arange(total), pos)
        assert relative_error(v, values[:, held:]) <= tolerance, i
        assert relative_error(k, keys[:, held:]) <= tolerance, i
        k, v = session.read_cache(i, first=held + 1, count=2)
        assert relative_error(v, values[:, held + 1:held + 3]) <= tolerance, i
    assert session.cache_info(3)["first_held"] == 15
    with pytest.raises(RuntimeError, match=re.escape(
            "hybrid_rt_session_cache_read: layer 0: positions [14, 24), but its ring cache "
            "(9 rows) holds [15, 24)")):
        session.read_cache(0, first=14)
    with pytest.raises(RuntimeError, match=re.escape(
            "hybrid_rt_session_cache_read: layer 3 has no cache of its own (policy shared): "
            "it reads layer 0's")):
        session.read_cache(3, first=15, count=1, out=(np.empty((2, 1, 2, 64), np.float32),) * 2)


def test_read_cache(schedule):
    check_read_cache(schedule, 1e-6)


def check_save_restore(schedule, tolerance, empty=None, batches=((2, 2), (1, 3))):
    """A session saved after a prompt and 2 steps (into arrays from
    `empty`, if given) and restored into a new one (every layer's held rows,
    the ring's and chunk's from a position past 0) goes on exactly as the
    first does, bit for bit; a save of one sequence fills every sequence of
    a larger batch (a shared prompt prefix), whose steps match within
    `tolerance` (a batch of 3 may split the keys or pick kernels
    differently). `batches`: (saved, restored) batch pairs."""
    rng = np.random.default_rng(10)
    prompt, before, after, step = 21, 2, 3, 2
    total = prompt + before + after * step
    sinks = {1: rng.standard_normal(4, np.float32)}

    def run(session, data, start, end, step):
        outs = {i: [] for i in data}
        for at in range(start, end, step):
            for i, out in step_every_layer(session, data, slice(at, at + step), sinks).items():
                outs[i].append(out)
        return {i: np.concatenate(o, axis=1) for i, o in outs.items()}


    for batch, restored_batch in batches:
        data = spec_data(rng, schedule, batch, total)
        first = schedule.session(batch, 64, max_step_tokens=step)
        for i, d in data.items():
            first.prefill(i, *(x[:, :prompt] for x in d), sinks.get(i))
        run(first, data, prompt, prompt + before, 1)
        saved = first.save(empty)
        assert sorted(saved["layers"]) == [0, 1, 2]
        assert saved["layers"][0]["first"] == prompt + before - 9
        second = schedule.session(restored_batch, 64, max_step_tokens=step)
        second.restore(saved)
        assert [second.cache_info(i)["length"] for i in range(3)] == [prompt + before] * 3
        expected = run(first, data, prompt + before, total, step)
        repeated = {i: tuple(np.repeat(x, restored_batch // batch, axis=0) for x in d)
                    for i, d in data.items()}
        got = run(second, repeated, prompt + before, total, step)
        for i in data:
            for b in range(restored_batch):
                if batch == restored_batch:
                    np.testing.assert_array_equal(got[i][b], expected[i][b], err_msg=str(i))
                else:
                    assert relative_error(got[i][b], expected[i][0]) < tolerance, i


def test_save_restore(schedule):
    check_save_restore(schedule, 1e-6)
    # Into arrays of the caller's (a pool of buffers, say).
    check_save_restore(schedule, 1e-6, lambda shape: np.full(shape, np.nan, np.float32))


def test_save_restore_f8(f8_schedule):
    """f8 caches round-trip exactly at their scales: what a restored
    session holds reads back as it was read, and its steps match."""
    rng = np.random.default_rng(11)
    batch, prompt = 2, 19
    layer = f8_schedule.layers[0]
    session = f8_schedule.session(batch, 32)
    session.cache_scales_from_prompt(0)
    q, k, v = inputs(rng, layer, batch, prompt + 1)
    session.prefill(0, q[:, :prompt], k[:, :prompt], v[:, :prompt])
    saved = session.save()
    restored = f8_schedule.session(batch, 32)
    restored.cache_scales_from_prompt(0)  # set_cache_scales in restore ends it
    restored.restore(saved)
    assert restored.cache_scales(0) == session.cache_scales(0) != (1.0, 1.0)
    for a, b in zip(session.read_cache(0), restored.read_cache(0)):
        np.testing.assert_array_equal(a, b)
    step = [np.ascontiguousarray(x[:, prompt:]) for x in (q, k, v)]
    np.testing.assert_array_equal(session.decode(0, *step), restored.decode(0, *step))


def test_write_cache_errors(schedule):
    """Writes go at the layer's length, or into an empty cache from a
    position the layer's next step looks no further back than (SPEC's ring
    of window 8 holds 9 rows at steps of 2); a step of its shared reader
    looking back further is refused; K=V layers take values only; the
    shared layer has no cache."""
    rng = np.random.default_rng(12)
    session = schedule.session(2, 64, max_step_tokens=2)
    k, v = (rng.standard_normal((2, 9, 2, 64), np.float32) for _ in range(2))
    with pytest.raises(RuntimeError, match=re.escape(
            "hybrid_rt_session_cache_write: layer 1: the cache would hold positions from 3 "
            "on, but its step at position 7 sees keys from position 0: write from position 0 "
            "or earlier")):
        session.write_cache(1, k[:, :4], v[:, :4], first=3)
    with pytest.raises(RuntimeError, match=re.escape(
            "layer 0: the cache would hold positions from 6 on, but its step at position 10 "
            "sees keys from position 3: write from position 3 or earlier")):
        session.write_cache(0, k[:, :4], v[:, :4], first=6)
    # A layer reading the cache checks its own steps: the shared layer 3 may
    # step 2 tokens back, past where the ring was written from.
    session.write_cache(0, k[:, :8], v[:, :8], first=6)
    q = rng.standard_normal((2, 2, 4, 64), np.float32)
    with pytest.raises(RuntimeError, match=re.escape(
            "hybrid_rt_session_decode: layer 3: a step at position 12 sees keys from position "
            "5, but the ring cache of layer 0 holds positions from 6 on")):
        session.decode(3, q)
    session.decode(3, q[:, :1])  # at 13, from 6
    session.reset()
    session.write_cache(0, k, v, first=5)
    assert session.cache_info(0)["first_held"] == 5
    session.write_cache(0, k[:, :2], v[:, :2])
    assert [session.cache_info(0)[key] for key in ("first_held", "length")] == [7, 16]
    with pytest.raises(RuntimeError, match=re.escape(
            "layer 0: position 3, but it holds 16 tokens: write from position 16 on (into an "
            "empty cache, from any position)")):
        session.write_cache(0, k, v, first=3)
    with pytest.raises(RuntimeError, match=re.escape(
            "layer 0: v has shape [2, 3, 2, 64], expected [2, 9, 2, 64]")):
        session.write_cache(0, k, v[:, :3])
    with pytest.raises(RuntimeError, match="layer 3 has no cache of its own"):
        session.write_cache(3, k, v)
    with pytest.raises(RuntimeError, match="position -1 is negative"):
        schedule.session(2, 64).write_cache(0, k, v, first=-1)
    with pytest.raises(RuntimeError, match=re.escape(
            "20 + 9 tokens exceed the session's max_seq 24")):
        schedule.session(2, 24).write_cache(2, k, v, first=20)
    # A chunk cache restored from its chunk's start holds nothing before it.
    session.write_cache(2, k[:, :2], v[:, :2], first=16)
    assert session.cache_info(2)["first_held"] == 16
    np.testing.assert_array_equal(session.read_cache(2)[1], v[:, :2])


def test_cache_rows_of_k_eq_v_layers():
    """K=V layers keep values only: read_cache gives k None, write_cache
    takes none, and a restored session steps as the saved one."""
    schedule = hybrid_attn.compile(K_EQ_V_SPEC, max_seq=64)
    rng = np.random.default_rng(13)
    batch, prompt = 2, 11
    session = schedule.session(batch, 32)
    q, k, _ = inputs(rng, schedule.layers[0], batch, prompt + 1)
    session.prefill(0, q[:, :prompt], k[:, :prompt], None)
    held_k, held_v = session.read_cache(0)
    assert held_k is None
    np.testing.assert_array_equal(held_v, k[:, :prompt])
    with pytest.raises(RuntimeError, match=re.escape(
            "layer 0 keeps its values only (K=V), from which its keys are derived: pass "
            "k = NULL")):
        session.write_cache(0, k, k)
    restored = schedule.session(batch, 32)
    restored.restore(session.save())
    step = [np.ascontiguousarray(x[:, prompt:]) for x in (q, k)]
    np.testing.assert_array_equal(session.decode(0, *step), restored.decode(0, *step))


# A K=V layer with RoPE, and a layer reading its cache.
K_EQ_V_SPEC = dict(SPEC, name="keqv", layers=[{"kind": "full", "k_eq_v": True},
                                              {"kind": "full", "k_eq_v": True,
                                               "shared_source": 0}])


def check_key_scale(schedule, tolerance):
    """A K=V layer's values are its k, and it attends with keys that are k
    times its key scale, rotated: prompt and steps, and for the layer reading
    its cache too. Other layers refuse a key scale."""
    rng = np.random.default_rng(4)
    batch, prompt, steps = 2, 13, 3
    layer = schedule.layers[0]
    scale = rng.uniform(0.5, 1.5, layer["head_dim"]).astype(np.float32)
    q, k, _ = inputs(rng, layer, batch, prompt + steps)
    q1 = rng.standard_normal(q.shape, np.float32)
    schedule.set_key_scale(0, scale)
    try:
        session = schedule.session(batch, prompt + steps)
        outs = [np.zeros(q.shape, np.float32) for _ in range(2)]
        before = slice(0, prompt)
        kb = k[:, before]
        outs[0][:, before] = session.prefill(0, q[:, before], kb, kb)  # v: k itself
        outs[1][:, before] = session.prefill(1, q1[:, before], kb, None)
        for t in range(prompt, prompt + steps):
            at = slice(t, t + 1)
            kt = np.ascontiguousarray(k[:, at])
            outs[0][:, at] = session.decode(0, np.ascontiguousarray(q[:, at]), kt, kt)
            outs[1][:, at] = session.decode(1, np.ascontiguousarray(q1[:, at]))
        for i, queries in enumerate((q, q1)):
            ref = attention(schedule.layers[i], queries, k * scale, k)
            assert relative_error(outs[i], ref) < tolerance, i
        # The unscaled keys would have given another result.
        assert relative_error(outs[0], attention(layer, q, k, k)) > 0.1
        with pytest.raises(hybrid_attn.HybridError,
                           match="layer 1 reads layer 0's cache and takes its key scale"):
            schedule.set_key_scale(1, scale)
        with pytest.raises(hybrid_attn.HybridError,
                           match=r"scale has shape \[3\], expected \[64\]"):
            schedule.set_key_scale(0, scale[:3])
    finally:
        schedule.set_key_scale(0, None)
    session = schedule.session(batch, prompt)
    with pytest.raises(hybrid_attn.HybridError,
                       match="v must be null or k itself: a K=V layer's values are its k"):
        session.prefill(0, q[:, before], kb, kb.copy())
    out = session.prefill(0, q[:, before], kb, None)
    assert relative_error(out, attention(layer, q[:, before], kb, kb)) < tolerance


def test_key_scale():
    check_key_scale(hybrid_attn.compile(K_EQ_V_SPEC, max_seq=64), 1e-4)


def check_key_scale_reaches_cached_tokens(schedule, tolerance):
    """A K=V layer's cache holds its values, keys being derived as they are
    read: a key scale set during a session applies to the tokens cached
    before it too."""
    rng = np.random.default_rng(5)
    batch, prompt, steps = 1, 11, 3
    layer = schedule.layers[0]
    scale = rng.uniform(0.5, 1.5, layer["head_dim"]).astype(np.float32)
    q, k, _ = inputs(rng, layer, batch, prompt + steps)
    session = schedule.session(batch, prompt + steps)
    session.prefill(0, q[:, :prompt], k[:, :prompt], None)
    schedule.set_key_scale(0, scale)
    try:
        out = np.stack([session.decode(0, np.ascontiguousarray(q[:, t:t + 1]),
                                       np.ascontiguousarray(k[:, t:t + 1]),
                                       None)[:, 0]
                        for t in range(prompt, prompt + steps)], axis=1)
    finally:
        schedule.set_key_scale(0, None)
    ref = attention(layer, q, k * scale, k)[:, prompt:]
    assert relative_error(out, ref) < tolerance
    # Keys scaled only from the step on would have given another result.
    stale = np.concatenate([k[:, :prompt], k[:, prompt:] * scale], axis=1)
    assert relative_error(out, attention(layer, q, stale, k)[:, prompt:]) > 0.05


def test_key_scale_reaches_cached_tokens():
    check_key_scale_reaches_cached_tokens(
        hybrid_attn.compile(K_EQ_V_SPEC, max_seq=64), 1e-4)


def test_key_scale_only_for_k_eq_v_layers(schedule):
    with pytest.raises(hybrid_attn.HybridError,
                       match=r"layer 0 keeps its keys apart from its values \(not k_eq_v\)"):
        schedule.set_key_scale(0, np.ones(64, np.float32))


def test_arrays_are_used_in_place(schedule):
    rng = np.random.default_rng(0)
    session = schedule.session(1, 2048)
    q, k, v = inputs(rng, schedule.layers[0], 1, 2048)
    out = np.empty((1, 2048, 4, 64), np.float32)
    tracemalloc.start()
    result = session.prefill(0, q, k, v, out=out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result is out  # written in place
    assert peak < q.nbytes // 4, peak  # no input was copied (q alone is 2 MiB)


def test_non_contiguous_inputs_are_accepted(schedule):
    rng = np.random.default_rng(1)
    session = schedule.session(1, 64)
    q, k, v = inputs(rng, schedule.layers[0], 1, 64)
    q_strided = np.asfortranarray(q)  # a copy is what the layout requires
    out = session.prefill(0, q_strided, k, v)
    ref = attention(schedule.layers[0], q, k, v)
    assert relative_error(out, ref) < 1e-4


def test_errors_are_exceptions_with_the_runtime_message(schedule):
    rng = np.random.default_rng(2)
    session = schedule.session(2, 16)
    q, k, v = inputs(rng, schedule.layers[0], 2, 10)
    with pytest.raises(hybrid_attn.HybridError, match=r"k has shape \[2, 10, 1, 64\], expected \[2, 10, 2, 64\]"):
        session.prefill(0, q, k[:, :, :1].copy(), v)
    with pytest.raises(hybrid_attn.HybridError, match="q must be a rank-4 .* tensor, got rank 3"):
        session.prefill(0, q[0], k, v)
    with pytest.raises(hybrid_attn.HybridError, match="sinks given, but the layer has no sinks"):
        session.prefill(0, q, k, v, np.zeros(4, np.float32))
    session.prefill(0, q, k, v)
    q1, k1, v1 = inputs(rng, schedule.layers[0], 2, 7)
    with pytest.raises(hybrid_attn.HybridError, match="a step of 7 tokens, the session takes 1 to 1"):
        session.decode(0, q1, k1, v1)
    session.decode(3, q1[:, :1].copy(), None, None)  # the prompt's last query
    with pytest.raises(hybrid_attn.HybridError, match="reads layer 0's cache"):
        session.decode(3, q1[:, :1].copy(), None, None)
    with pytest.raises(hybrid_attn.HybridError, match="layers\\[0\\].window"):
        hybrid_attn.compile({**SPEC, "layers": [{"kind": "sliding", "window": 0}]})
    with pytest.raises(hybrid_attn.HybridError, match="cannot open input file"):
        hybrid_attn.compile("/nonexistent/config.json")


def test_load_runs_artifacts_without_the_compiler(schedule, tmp_path, monkeypatch):
    """Kernels compiled once (here, or on a build machine) are served where
    only the runtime is: load() never calls hybrid-compile."""
    built = hybrid_attn.compile(SPEC, max_seq=256, output_dir=str(tmp_path / "kernels"))

    def no_compiler():
        raise AssertionError("load() ran hybrid-compile")
    monkeypatch.setattr(hybrid_attn._api, "_find_compiler", no_compiler)
    loaded = hybrid_attn.load(tmp_path / "kernels")
    assert loaded.layers == built.layers and loaded.cache_plan == built.cache_plan
    assert "func.func @pytest_sliding_l0_decode" in loaded.kernels_ir
    rng = np.random.default_rng(5)
    q, k, v = inputs(rng, loaded.layers[1], 1, 19)
    sinks = rng.standard_normal(4).astype(np.float32)
    out = loaded.session(1, 19).prefill(1, q, k, v, sinks)
    assert relative_error(out, attention(loaded.layers[1], q, k, v, sinks)) < 1e-4
    with pytest.raises(hybrid_attn.HybridError, match="loaded from its artifacts has no source"):
        loaded.ir
    with pytest.raises(hybrid_attn.HybridError, match="no manifest.json"):
        hybrid_attn.load(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text('{"version": 1}')
    with pytest.raises(hybrid_attn.HybridError, match=r"manifest.json: version"):
        hybrid_attn.load(tmp_path / "bad")


class DLPackOnly:
    """A tensor known only through the DLPack protocol (as PyTorch's are)."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def test_dlpack_tensors_are_viewed_not_copied(schedule):
    rng = np.random.default_rng(4)
    session = schedule.session(1, 32)
    q, k, v = inputs(rng, schedule.layers[2], 1, 32)
    seen = hybrid_attn._api._as_array(DLPackOnly(q), "q")
    assert np.shares_memory(seen, q)  # a view of the producer's memory
    out = session.prefill(2, DLPackOnly(q), DLPackOnly(k), DLPackOnly(v))
    assert relative_error(out, attention(schedule.layers[2], q, k, v)) < 1e-4


def test_torch_tensors_without_copies(schedule):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    session = schedule.session(1, 32)
    q, k, v = (torch.from_numpy(x) for x in inputs(rng, schedule.layers[2], 1, 32))
    out = session.prefill(2, q, k, v)
    assert isinstance(out, torch.Tensor)
    ref = attention(schedule.layers[2], q.numpy(), k.numpy(), v.numpy())
    assert relative_error(out.numpy(), ref) < 1e-4


def test_dtypes_and_outputs(schedule):
    rng = np.random.default_rng(5)
    session = schedule.session(1, 16)
    layer = schedule.layers[2]
    q, k, v = inputs(rng, layer, 1, 16)
    ref = attention(layer, q, k, v)
    # float64 NumPy inputs are copied to float32 once.
    out = session.prefill(2, q.astype(np.float64), k, v)
    assert out.dtype == np.float32 and relative_error(out, ref) < 1e-4
    # bfloat16 operands are for GPU schedules: the runtime says so.
    out16 = BFloat16Array(np.zeros_like(q))
    with pytest.raises(hybrid_attn.HybridError,
                       match="q has dtype bf16, but the runtime takes f32 tensors on CPUs"):
        session.prefill(2, BFloat16Array(q), BFloat16Array(k), BFloat16Array(v), out=out16)
    with pytest.raises(TypeError, match="out: pass an output array for BFloat16Array inputs"):
        session.prefill(2, BFloat16Array(q), BFloat16Array(k), BFloat16Array(v))
    # A DLPack dtype neither NumPy nor the runtime takes (16-bit complex) is
    # a TypeError naming the operand.
    with pytest.raises(TypeError, match=r"k: elements must be float32, bfloat16 or float16 \(code 5, 16 bits\)"):
        session.prefill(2, q, BFloat16Array(k, code=5), v)
    with pytest.raises(TypeError, match="q: elements must be real, got complex64"):
        session.prefill(2, q.astype(np.complex64), k, v)
    with pytest.raises(TypeError, match="q: expected a NumPy array or a DLPack tensor, got None"):
        session.decode(2, None, k[:, :1], v[:, :1])
    # Caches that cannot exist are an error, not a crash: OutOfMemoryError,
    # a HybridError and a MemoryError (a server may retry smaller).
    more = r"the caches take [\d.]+ GiB, more than the [\d.]+ GiB of memory this process may use"
    with pytest.raises(hybrid_attn.OutOfMemoryError,
                       match="batch 1, max_seq 1000000000000: " + more) as error:
        schedule.session(1, 10**12)
    assert isinstance(error.value, hybrid_attn.HybridError)
    assert isinstance(error.value, MemoryError)
    with pytest.raises(hybrid_attn.OutOfMemoryError, match=f"batch {2**62}, max_seq 64: " + more):
        schedule.session(2**62, 64)
    # An output the kernels cannot write in place is refused, never copied
    # (the results would go to the copy).
    with pytest.raises(TypeError):
        session.prefill(2, q, k, v, out=np.zeros(q.shape, np.float64))
    with pytest.raises(TypeError):
        session.prefill(2, q, k, v, out=np.zeros(q.shape[::-1], np.float32).T)


def check_threads_take_turns(schedule, layer, calls):
    """Two threads, each with a session of `schedule`, prefill `layer`
    `calls` times (the GIL is released during calls): the runtime runs calls
    on one model one at a time, so every result is the single-threaded one
    (before, the shared thread pool deadlocked)."""
    spec = schedule.layers[layer]
    data = [inputs(np.random.default_rng(seed), spec, 2, 40) for seed in range(2)]
    expected = [schedule.session(2, 64).prefill(layer, *d) for d in data]
    mismatches = [0, 0]

    def work(i):
        for _ in range(calls):
            out = schedule.session(2, 64).prefill(layer, *data[i])
            mismatches[i] += not np.array_equal(out, expected[i])

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "calls from two threads hang"
    assert mismatches == [0, 0]


def test_calls_from_threads_take_turns(schedule):
    check_threads_take_turns(schedule, 2, 50)


def test_failed_session_leaks_nothing(schedule):
    # A session whose caches cannot be allocated keeps no reference to its
    # model: nanobind reports leaked instances at exit.
    script = (
        "import hybrid_attn\n"
        f"schedule = hybrid_attn.load({schedule.artifacts_dir!r})\n"
        "try:\n"
        "    schedule.session(1, 10**12)\n"
        "except hybrid_attn.HybridError:\n"
        "    pass\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "leaked" not in done.stderr, done.stderr


def test_allocation_failures_are_errors(schedule):
    # A prefill whose scratch copy of q, or a session whose caches, cannot be
    # allocated (an address-space limit just above what the process holds)
    # fail with an error; no exception may cross the C API.
    script = f"""
import resource, numpy as np, hybrid_attn
schedule = hybrid_attn.load({schedule.artifacts_dir!r})
layer = schedule.layers[0]
batch, seq = 512, 256
session = schedule.session(batch, seq)
q = np.ones((batch, seq, layer["num_heads"], layer["head_dim"]), np.float32)
k = np.ones((batch, seq, layer["num_kv_heads"], layer["head_dim"]), np.float32)
v = np.ones((batch, seq, layer["num_kv_heads"], layer["v_head_dim"]), np.float32)
out = np.zeros((batch, seq, layer["num_heads"], layer["v_head_dim"]), np.float32)
with open("/proc/self/status") as f:
    held = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (held + q.nbytes // 2, resource.RLIM_INFINITY))
try:
    session.prefill(0, q, k, v, out=out)
except hybrid_attn.HybridError as e:
    print(e)
try:
    schedule.session(1, 10**5)  # 100 MiB for the full layer
except hybrid_attn.HybridError as e:
    print(e)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "hybrid_rt_session_prefill: out of host memory" in done.stdout, done.stdout + done.stderr
    assert re.search(r"layer 1: 100000 cache rows at batch 1 \(\d+ MiB\) cannot be allocated",
                     done.stdout), done.stdout + done.stderr


# Latent caches (MLA absorbed): one KV head of 48 dims whose first 32 are the
# values and last 16 rotate (interleaved pairs); a sliding layer of GQA 2; a
# layer reading the first one's cache.
LATENT_SPEC = dict(SPEC, name="latent", defaults={
    "num_heads": 4, "num_kv_heads": 1, "head_dim": 48, "v_head_dim": 32, "latent": True,
    "positional": {"type": "partial", "theta": 10000, "rotary_dim": 16,
                   "rotary_offset": 32, "interleaved": True}},
    layers=[{"kind": "full"}, {"kind": "sliding", "window": 8, "num_kv_heads": 2},
            {"kind": "full", "shared_source": 0}])


@pytest.mark.parametrize("step", [1, 3, 32])
def test_latent_layers_match_reference(step):
    """A latent layer's values are its keys' first v_head_dim dims: callers
    pass v None or k itself, the cache keeps the keys alone, and prompts and
    steps (decode and flash kernels) give the reference's attention with
    those values."""
    schedule = hybrid_attn.compile(LATENT_SPEC, max_seq=256)
    assert [layer["cache"]["latent"] for layer in schedule.layers] == [True] * 3
    rng = np.random.default_rng(21)
    batch, prompt, steps = 2, 37, 3
    total = prompt + steps * step
    data = {}
    for i, layer in enumerate(schedule.layers):
        q, k, _ = inputs(rng, layer, batch, total)
        data[i] = (q, k, k)
    data[2] = (data[2][0], data[0][1], data[0][1])
    session = schedule.session(batch, total, max_step_tokens=step)
    outs = run_session(session, [0, 1, 2], data, prompt, steps, step, shared=(2,))
    for i, layer in enumerate(schedule.layers):
        q, k, _ = data[i]
        ref = attention(layer, q, k, k[..., :layer["v_head_dim"]])
        assert relative_error(outs[i], ref) < 1e-4, i
    # Values of their own would have given another result.
    q, k, _ = data[0]
    other = rng.standard_normal(k[..., :32].shape, np.float32)
    assert relative_error(outs[0], attention(schedule.layers[0], q, k, other)) > 0.1
    info = session.cache_info(0)
    assert info["latent"] and not info["k_eq_v"]
    assert info["bytes"] == batch * total * 48 * 4  # the keys alone, f32


def test_cache_rows_of_latent_layers():
    """Latent layers keep keys only: read_cache gives v None (k rotated past
    the values, which it holds as given), write_cache takes none, a v other
    than k is refused, and a restored session steps as the saved one."""
    schedule = hybrid_attn.compile(LATENT_SPEC, max_seq=64)
    rng = np.random.default_rng(22)
    batch, prompt = 2, 11
    session = schedule.session(batch, 32)
    q, k, v = inputs(rng, schedule.layers[0], batch, prompt + 1)
    with pytest.raises(hybrid_attn.HybridError, match=re.escape(
            "v must be null or k itself: a latent layer's values are the first "
            "v_head_dim dims of its k")):
        session.prefill(0, q[:, :prompt], k[:, :prompt], v[:, :prompt])
    session.prefill(0, q[:, :prompt], k[:, :prompt], None)
    held_k, held_v = session.read_cache(0)
    assert held_v is None
    np.testing.assert_array_equal(held_k[..., :32], k[:, :prompt, :, :32])
    assert np.abs(held_k[..., 32:] - k[:, :prompt, :, 32:]).max() > 0.1  # rotated
    with pytest.raises(RuntimeError, match=re.escape(
            "layer 0 keeps its keys only (latent), whose first v_head_dim dims are "
            "its values: pass v = NULL")):
        session.write_cache(0, held_k, held_k[..., :32])
    restored = schedule.session(batch, 32)
    restored.restore(session.save())
    step = [np.ascontiguousarray(x[:, prompt:]) for x in (q, k)]
    np.testing.assert_array_equal(session.decode(0, *step), restored.decode(0, *step))
