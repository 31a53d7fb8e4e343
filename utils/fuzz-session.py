#!/usr/bin/env python3
"""Stateful fuzzing of hybrid_attn sessions: random prefill, decode, reset,
reorder (beam search), truncate (speculative decoding), save and restore
(into a new session) and cache_info calls,
valid or with one thing wrong, checked against the NumPy reference and
against what the session must still hold.

Compiles test/Runtime/Inputs/caches.json (every cache policy: ring, chunk,
shared, K=V with RoPE, proportional RoPE and NoPE, sinks), masks.json
(every mask, bidirectional ones too) and k-eq-v-windows.json (K=V layers
with ring and chunk caches) for the CPU and, when the build has the
PTX emulator, for cuda:sm_80. Each case opens one of them in a fresh Python
process, makes a session of random batch, max_seq and max_step_tokens, and
makes a few dozen random calls. A call is either valid (the right layer
state, shapes, sinks, step size and room), or has one thing wrong that the
session must refuse (a layer out of range, a wrong dimension or rank, a
missing or extra k/v or sinks, an empty or too large step, no room left, a
second prefill, a shared layer ahead of its source (one behind it skips the
tokens between), an output of the wrong dtype or layout, an order of the
wrong length or with an entry outside the batch, a negative length, a
truncation past what a ring or chunk cache still holds), or has inputs the
package converts (float64, float16, integers, Fortran order, strided views).

A case passes when every valid or converted call returns the reference's
output (max|out - ref| / max|ref| within 1e-4 on the CPU; on the GPU 2e-2,
its caches and operands being bf16; for the CPU's bf16, f16 and f8 caches,
targets cpu-bf16, cpu-f16 and cpu-f8, the reference rounds the keys and
values steps read as the caches hold them, within 1e-3, 1e-3 and 1e-2) and
every wrong call
raises HybridError, TypeError or ValueError and
leaves every layer's cache as it was (later calls check that too). A crash,
a hang, a wrong result, a refused valid call or an accepted wrong one is a
finding, kept in DIR/findings/case-N/repro.sh.

  utils/fuzz-session.py [--cases N | --minutes M] [--seed S] [--dir DIR]
                        [--calls C] [--timeout SECONDS]
                        [--schedules caches.json,masks.json,...]
                        [--targets cpu,cpu-bf16,cpu-f16,cpu-f8,cuda:sm_80]
                        [--threads T | --lanes L]

With --threads T, a case makes T sessions of one model, each making its own
random calls from a thread of its own (the calls take turns on the model's
lock, and share its kernels and GPU scratch); each is checked as if alone.

With --lanes L, a case makes one session whose sequences L
lanes share (continuous batching): each lane owns 1 to 3 of them
(consecutive or not, in the batch's order or not) and makes its own random
calls on them from a thread of its own, Session.select() first, as if it
were a session of its own (a reset is a truncate(0) of its sequences, a
reorder gathers them only, a save is restored into them); the lanes stand
at different lengths, and each is checked as if alone. Lanes' valid decode
steps of one layer and token count that come within a few milliseconds of
each other run as one call on all their sequences, each at its own length,
as a server steps its live requests (every sequence of a layer with sinks
takes the layer's sinks then; the summary counts those calls).

`test/Python/fuzz-session.test` runs a few cases with a fixed seed.
"""
import os
import random
import shlex
import subprocess
import sys

import fuzzing

ROOT = fuzzing.ROOT
SCHEDULES = ["caches.json", "masks.json", "k-eq-v-windows.json"]
MAX_SEQ = 160
# CPU targets: their caches' element type, and the tolerance of steps over
# them against the reference over rounded keys and values (see
# hybrid-rt-check: f32-rotated keys may round an ulp from f64-rotated ones).
CPU_TARGETS = {"cpu": ("f32", 1e-4), "cpu-bf16": ("bf16", 1e-3),
               "cpu-f16": ("f16", 1e-3), "cpu-f8": ("f8", 1e-2)}
# What a finding's repro.sh sets: the package, the emulator and, for a
# sanitized package (utils/sanitize-runtime.sh), the sanitizers.
REPRO_ENVIRONMENT = ("PYTHONPATH", "HYBRID_CUDA_DRIVER", "LD_PRELOAD", "ASAN_OPTIONS",
                     "UBSAN_OPTIONS", "TSAN_OPTIONS")
# Thread i of a case runs the calls of seed + i * THREAD_SEED_STRIDE.
THREAD_SEED_STRIDE = 1_000_003


# --------------------------------------------------------------------------
# The case: one session and its calls, in a process of its own.
# --------------------------------------------------------------------------

class Finding(Exception):
    pass


def choose_options(rng):
    """A session's max_seq and max_step_tokens."""
    return (rng.choice([1, 7, 33, 64, 65, 100, MAX_SEQ]),
            rng.choice([1, 1, 2, 3, 8, 17]))


def source_of(layers, i):
    """The layer whose cache layer i reads (itself, unless shared)."""
    cache = layers[i]["cache"]
    return cache["source_layer"] if cache["policy"] == "shared" else i


def run_calls(schedule, seed, calls, tolerance, cache_dtype, print=print, lane=None):
    """A session's random calls (a lane's, of a session lanes share, with
    `lane`); (calls that ran, calls refused)."""
    import numpy as np

    import hybrid_attn
    from reference import attention, cache_rounding

    rng = random.Random(seed)
    data = np.random.default_rng(seed)
    layers = schedule.layers
    if lane is None:
        batch = rng.choice([1, 1, 2, 3])
        max_seq, max_step = choose_options(rng)
        session = schedule.session(batch, max_seq, max_step)
        new_session = schedule.session
        print(f"session(batch={batch}, max_seq={max_seq}, max_step_tokens={max_step})")
    else:
        session, batch, max_seq, max_step = lane, lane.batch, lane.max_seq, lane.max_step
        new_session = lane.again  # a restore goes back into its sequences
        print(f"lane of sequences {lane.sequences} (max_seq={max_seq}, "
              f"max_step_tokens={max_step})")
    step_limit = min(max_step, max_seq)

    def source(i):
        return source_of(layers, i)

    # K=V layers' key scales: the same for every thread of a case (they share
    # the model).
    scales = {}
    for i, layer in enumerate(layers):
        if layer["cache"]["k_eq_v"] and source(i) == i:
            scales[i] = np.random.default_rng(i).uniform(0.5, 1.5, layer["head_dim"]).astype(
                np.float32)
            schedule.set_key_scale(i, scales[i])

    if lane is None:  # the lanes' session has them set once
        set_f8_scales(session, layers, rng, cache_dtype, print)

    # Tokens each layer has seen, and the keys and values of the layers that
    # keep their own (a shared layer reads its source's).
    lengths = [0] * len(layers)
    # The most tokens each layer held since it was empty, as of the last
    # truncation (which leaves rows past its length that overwrote older ones).
    reached = [0] * len(layers)
    history = {}

    def tensors(i, count):
        layer, at = layers[i], lengths[i]
        shape = (batch, count)
        q = data.standard_normal(shape + (layer["num_heads"], layer["head_dim"]), np.float32)
        k = data.standard_normal(shape + (layer["num_kv_heads"], layer["head_dim"]), np.float32)
        v = k if layer["cache"]["k_eq_v"] else data.standard_normal(
            shape + (layer["num_kv_heads"], layer["v_head_dim"]), np.float32)
        if source(i) != i and source(i) in history:
            held_k, held_v = history[source(i)]
            if held_k.shape[1] >= at + count:
                k = held_k[:, at:at + count]
                v = k if layer["cache"]["k_eq_v"] else held_v[:, at:at + count]
        sinks = None
        if layer["sinks"]:  # a lane's: the layer's, so that lanes' steps join
            sinks = (np.random.default_rng(i).standard_normal(layer["num_heads"], np.float32)
                     if lane is not None else
                     data.standard_normal(layer["num_heads"], np.float32))
        return q, k, v, sinks

    def check_lengths(what):
        for i in range(len(layers)):
            held = session.cache_info(i)["length"]
            if held != lengths[i]:
                raise Finding(f"{what}: layer {i} holds {held} tokens, expected {lengths[i]}")

    def as_float32(x):
        return None if x is None else np.asarray(x, np.float32)

    ran = refused = 0
    for call in range(calls):
        i = rng.randrange(len(layers))
        layer = layers[i]
        at = lengths[i]
        prefill = at == 0 and rng.random() < 0.7 or rng.random() < 0.1
        shared = source(i) != i
        limit = max_seq if prefill else step_limit
        count = rng.randint(1, limit)
        # Mostly calls that can succeed: within the room left, and a shared
        # layer's tokens up to its source's.
        if not prefill and rng.random() < 0.9:
            count = rng.randint(1, max(1, min(limit, max_seq - at)))
        if shared and 1 <= lengths[source(i)] - at <= limit and rng.random() < 0.8:
            count = lengths[source(i)] - at
        q, k, v, sinks = tensors(i, count)
        # Why the call, as made, must be refused (the layer's state).
        if prefill:
            why = ("a second prefill" if at else
                   "the source is not prefilled to this length" if shared and
                   lengths[source(i)] != count else None)
        else:
            why = ("bidirectional: no decode" if not layer["causal"] else
                   "no room" if at + count > max_seq else
                   "the source has not run this step" if shared and
                   lengths[source(i)] < at + count else None)
            # A step of a shared layer reads its source's last tokens; the
            # keys it sees (but for its own tokens) must be held: a cache
            # restored from a later position holds none before it.
            position = lengths[source(i)] - count if shared else at
            first = first_key_seen(layer, position)
            held = session.cache_info(source(i))["first_held"]
            if why is None and (shared or first < position) and first < held:
                why = f"the step at {position} sees {first}, its cache holds from {held} on"
        keys_given = prefill or not shared
        args = {"q": q, "k": k if keys_given else None, "v": v if keys_given else None,
                "sinks": sinks, "out": None}
        index, change = i, "none"
        if rng.random() < 0.3:
            change, refuse = mutate(rng, np, args, layer, prefill, shared, step_limit,
                                    max_seq)
            if change.startswith("layer "):
                index = int(change.split()[1])
            if refuse:
                why = why or change
        name = "prefill" if prefill else "decode"
        what = (f"call {call}: {name}(layer {index}, {count} tokens at {at}), "
                f"change: {change}")
        # A lane's valid steps may run with other lanes' (Lane.step).
        joinable = lane is not None and not prefill and why is None and change == "none"
        print(what, flush=True)
        try:
            if joinable:
                out, partners = lane.step(index, **args)
                if partners:
                    print(f"  ran in one call with lanes {partners}", flush=True)
            else:
                out = (session.prefill if prefill else session.decode)(index, **args)
        except (hybrid_attn.HybridError, TypeError, ValueError) as error:
            if why is None:
                raise Finding(f"{what}: refused a valid call: {error}")
            if not str(error).strip():
                raise Finding(f"{what}: an error without a message")
            check_lengths(f"{what}, refused ({error})")
            refused += 1
            continue
        if why is not None:
            raise Finding(f"{what}: accepted, though {why}")
        # The reference sees what was passed, as the package converts it.
        q, k, v, sinks = (as_float32(args[n]) for n in ("q", "k", "v", "sinks"))
        if layer["cache"]["k_eq_v"] and k is not None:
            v = k  # the values of a K=V layer (v None or k itself)
        if not shared:
            if not prefill and i in history:  # a first decode starts one
                k, v = (np.concatenate([held, x], axis=1)
                        for held, x in zip(history[i], (k, v)))
            history[i] = (k, v)
        elif not prefill:
            # The last `count` tokens the source holds (tokens between are
            # skipped).
            at = lengths[source(i)] - count
            k, v = (x[:, :at + count] for x in history[source(i)])
        lengths[i] = at + count
        scale = scales.get(source(i), 1)  # its keys: the values times it
        # Steps attend over the cache, whose keys and values may be rounded
        # (divided by their scales, and read back times them).
        rounded = {}
        if not prefill and cache_dtype != "f32":
            k_scale, v_scale = session.cache_scales(source(i))
            rounded = {"cached": cache_rounding(cache_dtype, v_scale),
                       "cached_keys": cache_rounding(cache_dtype, k_scale)}
        ref = attention(layer, q, k, v, sinks, key_scale=scale, **rounded)
        error = np.abs(np.asarray(out, np.float64) - ref).max() / np.abs(ref).max()
        if not error <= tolerance:
            raise Finding(f"{what}: relative error {error:.3g} > {tolerance}")
        check_lengths(what)
        ran += 1
        between = rng.random()
        if between < 0.04:
            session.reset()
            lengths = [0] * len(layers)
            reached = [0] * len(layers)
            history = {}
            print("reset")
            check_lengths("reset")
        elif between < 0.08:
            refused += reorder(session, rng, batch, history, check_lengths, print)
        elif between < 0.12:
            refused += truncate(session, rng, layers, lengths, reached, history, source,
                                step_limit, check_lengths, print)
        elif between < 0.15:
            session = save_restore(new_session, session, (batch, max_seq, max_step),
                                   lengths, print)
            check_lengths("save and restore")
    print(f"{ran} ran, {refused} refused")
    return ran, refused


def set_f8_scales(session, layers, rng, cache_dtype, print):
    """f8 caches' scales, for half the sessions from 1e-3 (most elements
    saturate) to 1e2 (most are subnormals) per layer keeping a cache, for a
    quarter from each prompt (targets 10 to 448); set while empty, they stay
    through resets. The reference reads them back at each call."""
    import numpy as np
    scales_from = rng.choice(["none", "set", "set", "prompt"]) if cache_dtype == "f8" else "none"
    for i, layer in enumerate(layers):
        if scales_from == "none" or source_of(layers, i) != i or not layer["causal"]:
            continue
        if scales_from == "prompt":
            targets = (rng.uniform(10, 448), rng.uniform(10, 448))
            session.cache_scales_from_prompt(i, *targets)
            print(f"layer {i}: cache scales from the prompt, targets {targets}")
            continue
        v_scale = 10 ** rng.uniform(-3, 2)
        k_scale = v_scale if layer["cache"]["k_eq_v"] else 10 ** rng.uniform(-3, 2)
        session.set_cache_scales(i, k_scale, v_scale)
        held = session.cache_scales(i)
        if held != tuple(float(np.float32(x)) for x in (k_scale, v_scale)):
            raise Finding(f"layer {i}: cache scales {held}, set {(k_scale, v_scale)}")
        print(f"layer {i}: cache scales {held}")


def expect_refusal(call, why, what, check_lengths):
    """Makes `call`; 1 if it was refused (as `why`, if not None, says it
    must be, changing no layer's length), else 0."""
    import hybrid_attn
    try:
        call()
    except (hybrid_attn.HybridError, TypeError, ValueError) as error:
        if why is None:
            raise Finding(f"{what}: refused a valid call: {error}")
        check_lengths(f"{what}, refused ({error})")
        return 1
    if why is not None:
        raise Finding(f"{what}: accepted, though {why}")
    return 0


def reorder(session, rng, batch, history, check_lengths, print):
    """Beam search between calls: every cache's sequences gathered by a
    random order (entries repeat), or an order the session must refuse."""
    order = [rng.randrange(batch) for _ in range(batch)]
    why = None
    if rng.random() < 0.2:
        why, order = rng.choice([("an entry past the batch", order[:-1] + [batch]),
                                 ("a negative entry", [-1] + order[1:]),
                                 ("one entry too many", order + [0])])
    what = f"reorder({order})"
    print(what, flush=True)
    if expect_refusal(lambda: session.reorder(order), why, what, check_lengths):
        return 1
    for i, (k, v) in history.items():
        gathered = k[order]
        history[i] = (gathered, gathered if v is k else v[order])
    check_lengths(what)
    return 0


def first_key_seen(layer, step):
    """The first key position a causal step at `step` sees (`step` itself
    if none before it)."""
    first = 0
    if layer.get("window"):
        first = max(first, step - layer["window"] + 1)
    if layer.get("chunk"):
        first = max(first, step // layer["chunk"] * layer["chunk"])
    return min(first, step)


def save_restore(new_session, session, options, lengths, print):
    """The session saved and restored into a new one (new_session(*options);
    a lane's: its own sequences again), which the calls go on with: its
    caches read back as saved, exactly. Layers without a cache of their own
    (reading another's) start over at length 0: their steps read the last
    tokens their source holds, as before."""
    import contextlib

    import numpy as np
    # A lane's save and restore are one step: the scales its restore sets
    # are those its save read.
    with getattr(session, "lock", contextlib.nullcontext()):
        saved = session.save()
        restored = new_session(*options)
        restored.restore(saved)
    print("save and restore", flush=True)
    for i in range(len(lengths)):
        if restored.cache_info(i)["rows"] == 0:
            lengths[i] = 0
    for i, held in saved["layers"].items():
        for name, was, now in zip("kv", (held["k"], held["v"]), restored.read_cache(i)):
            if (was is None) != (now is None) or (
                    was is not None and not np.array_equal(was, now, equal_nan=True)):
                raise Finding(f"save and restore: layer {i}'s {name} reads back changed")
    return restored


def truncate(session, rng, layers, lengths, reached, history, source, step_limit,
             check_lengths, print):
    """Speculative decoding between calls: every layer forgets the tokens
    from a random position on, mostly a step's worth back from the longest;
    refused (changing nothing) where a ring or chunk cache no longer holds a
    key the step at that position sees."""
    longest = max(lengths)
    length = (max(0, longest - rng.randint(0, step_limit + 1)) if rng.random() < 0.8
              else rng.randint(-1, longest + 1))
    why = "a negative length" if length < 0 else None
    for i in range(len(layers)):
        reached[i] = max(reached[i], lengths[i])
    for i, layer in enumerate(layers):
        owner = source(i)
        if why or lengths[owner] <= length or not layer["causal"]:
            continue
        # The layer's next step: at `length`, or for a shared layer the last
        # tokens its source holds, from its own length on.
        step = length if owner == i else max(min(lengths[i], length), length - step_limit)
        first = first_key_seen(layer, step)
        oldest = reached[owner] - session.cache_info(owner)["rows"]
        if first < length and first < oldest:
            why = f"layer {i}'s step at {step} sees {first}, its cache holds from {oldest} on"
    what = f"truncate({length})"
    print(what, flush=True)
    if expect_refusal(lambda: session.truncate(length), why, what, check_lengths):
        return 1
    for i in range(len(layers)):
        lengths[i] = min(lengths[i], length)
        if lengths[i] == 0:
            reached[i] = 0
    for i, (k, v) in history.items():
        history[i] = (k[:, :length], v[:, :length])
    check_lengths(what)
    return 0


def mutate(rng, np, args, layer, prefill, shared, step_limit, max_seq):
    """Changes one thing in args; returns (what, whether it must be refused)."""
    q = args["q"]
    count = q.shape[1]
    keyed = [n for n in ("q", "k", "v") if args[n] is not None]

    def resized(x, axis, size):
        shape = list(x.shape)
        shape[axis] = size
        return np.zeros(shape, np.float32)

    choices = ["layer", "dim", "rank", "convert", "out", "sinks", "keys", "count"]
    kind = rng.choice(choices)
    if kind == "layer":
        index = rng.choice([-1, -2**40, 2**40, 10**3])
        return f"layer {index}", True
    if kind == "dim":
        name = rng.choice(keyed)
        # A shared layer's decode takes q alone: its seq is the step's count
        # (the "count" changes below), not a mismatch.
        axis = rng.choice([0, 2, 3] if len(keyed) == 1 else [0, 1, 2, 3])
        size = args[name].shape[axis] + rng.choice([-1, 1, 2])
        if size < 1:
            size = args[name].shape[axis] + 1
        args[name] = resized(args[name], axis, size)
        return f"{name} dim {axis} = {size}", True
    if kind == "rank":
        name = rng.choice(keyed)
        args[name] = args[name][0] if rng.random() < 0.5 else args[name][None]
        return f"{name} rank {args[name].ndim}", True
    if kind == "convert":
        # A shared layer's k and v are its source's (its prompt may read them
        # from the source's cache): a rounding conversion would break that.
        name = "q" if shared else rng.choice(keyed)
        x = args[name]
        how = rng.choice(["float64", "float16", "int", "fortran", "strided"])
        if how == "float64":
            y = x.astype(np.float64)
        elif how == "float16":  # rounds: the reference sees what was passed
            y = x.astype(np.float16)
        elif how == "int":
            y = np.rint(x * 2).astype(np.int32)
        elif how == "fortran":
            y = np.asfortranarray(x)
        else:
            wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
            wide[..., ::2] = x
            y = wide[..., ::2]
        # K=V layers take one tensor twice: keep k and v the same.
        for other in ("q", "k", "v"):
            if args[other] is x:
                args[other] = y
        return f"{name} {how}", False
    if kind == "out":
        value_dim = layer["v_head_dim"]
        shape = q.shape[:-1] + (value_dim,)
        how = rng.choice(["float64", "transposed", "shape", "ok"])
        if how == "float64":
            args["out"] = np.zeros(shape, np.float64)
        elif how == "transposed":
            args["out"] = np.zeros(shape[::-1], np.float32).T
        elif how == "shape":
            args["out"] = np.zeros(shape[:-1] + (value_dim + 1,), np.float32)
        else:
            args["out"] = np.full(shape, np.nan, np.float32)
        return f"out {how}", how != "ok"
    if kind == "sinks":
        if layer["sinks"]:
            how = rng.choice(["missing", "shape"])
            args["sinks"] = None if how == "missing" else np.zeros(layer["num_heads"] + 1,
                                                                    np.float32)
        else:
            how = "extra"
            args["sinks"] = np.zeros(layer["num_heads"], np.float32)
        return f"sinks {how}", True
    if kind == "keys":
        if prefill:
            name = rng.choice(["k", "v"])
            args[name] = None
            return f"{name} None", not (name == "v" and layer["cache"]["k_eq_v"])
        if shared:
            args["k"] = np.zeros((q.shape[0], count, layer["num_kv_heads"], layer["head_dim"]),
                                 np.float32)
            args["v"] = args["k"]
            return "k and v given to a shared layer", True
        name = rng.choice(["k", "v"])
        args[name] = None
        # K=V layers' values are k: v None is theirs to take.
        return f"{name} None", not (name == "v" and layer["cache"]["k_eq_v"])
    # count: an empty step, too many tokens, or more than max_seq.
    if prefill:
        size = rng.choice([0, max_seq + 1])
    else:
        size = rng.choice([0, step_limit + 1])
    for name in ("q", "k", "v"):
        if args[name] is not None:
            args[name] = resized(args[name], 1, size)
    return f"{size} tokens", True


def child(argv):
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("artifacts")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--tolerance", type=float, required=True)
    parser.add_argument("--cache-dtype", default="f32",
                        help="bf16 or f8: steps are checked over caches rounded so")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lanes", type=int, default=0)
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.join(ROOT, "python", "tests"))
    import hybrid_attn
    schedule = hybrid_attn.load(args.artifacts)
    try:
        if args.lanes:
            run_lanes(schedule, args)
        elif args.threads == 1:
            run_calls(schedule, args.seed, args.calls, args.tolerance,
                      args.cache_dtype)
        else:
            run_threads(schedule, args)
    except Finding as finding:
        print(f"FINDING: {finding}", flush=True)
        return 3
    return 0


def run_in_threads(count, body, what, more=lambda: ""):
    """body(index, log) from `count` threads at once, each returning (calls
    that ran, calls refused); a Finding of any is raised once all are done.
    more(): the summary's last words."""
    import threading
    failures, counts = [], []

    def run(index):
        def log(text, flush=False):  # one write per line: threads interleave
            sys.stdout.write(f"[thread {index}] {text}\n")
            sys.stdout.flush()
        try:
            counts.append(body(index, log))
        except BaseException as error:  # reported once every thread is done
            failures.append((index, error))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, error in failures:
        if isinstance(error, Finding):
            raise Finding(f"thread {index}: {error}")
        raise error
    print(f"{sum(ran for ran, _ in counts)} ran, {sum(refused for _, refused in counts)} "
          f"refused, in {count} {what}{more()}")


def run_threads(schedule, args):
    """One session per thread, all of one model (so their calls share its
    scratch and kernels, and take turns); each checked as if alone."""
    run_in_threads(args.threads, lambda index, log: run_calls(
        schedule, args.seed + index * THREAD_SEED_STRIDE, args.calls, args.tolerance,
        args.cache_dtype, print=log), "threads")


class Joiner:
    """Runs the valid decode steps lanes make at about the same time as a
    server steps its live requests: steps of one layer and token count (and
    sinks) in one call on the union of their lanes' sequences, each at its
    own length, where the session has room half the time with a padding
    entry (-1, random rows: its output must be zeros, and it must change no
    sequence) among them. A step waits up to WAIT seconds for others; the
    first whose wait ends runs its group (under the lanes' lock) and hands
    each its part of the output, or the call's error."""

    WAIT = 0.004

    def __init__(self, session, lock):
        import threading
        self.session, self.lock = session, lock
        self.changed = threading.Condition()
        self.pending = []  # steps waiting: dicts of lane, key, q, k, v, sinks
        self.joint = 0  # calls that ran steps of several lanes
        self.padded = 0  # calls with a padding entry
        self.padding = random.Random(len(session.schedule.layers))

    def step(self, lane, layer, q, k, v, sinks):
        import time
        sinks_key = None if sinks is None else sinks.tobytes()
        mine = {"lane": lane, "key": (layer, q.shape[1], sinks_key), "q": q, "k": k,
                "v": v, "sinks": sinks, "done": False}
        deadline = time.monotonic() + self.WAIT
        with self.changed:
            self.pending.append(mine)
            self.changed.notify_all()
            while mine in self.pending and time.monotonic() < deadline:
                self.changed.wait(deadline - time.monotonic())
            if mine in self.pending:  # its wait ended first: it runs the group
                group = [r for r in self.pending if r["key"] == mine["key"]]
                self.pending = [r for r in self.pending if r["key"] != mine["key"]]
            else:
                group = None
                while not mine["done"]:
                    self.changed.wait()
        if group is not None:
            self._run(layer, group)
        if "error" in mine:
            raise mine["error"]
        return mine["out"], mine["partners"]

    def _run(self, layer, group):
        import numpy as np
        import hybrid_attn
        # A padding entry between two lanes' rows, half the time there is room.
        rows, selection, pad = list(group), [], None
        for r in group:
            selection += r["lane"].sequences
        if len(selection) < self.session.batch and self.padding.random() < 0.5:
            index = self.padding.randrange(len(group) + 1)
            pad = sum(r["lane"].batch for r in group[:index])
            random_rows = lambda x: (None if x is None else  # noqa: E731
                                     np.random.default_rng(pad).standard_normal(
                                         (1,) + x.shape[1:]).astype(x.dtype))
            first = group[0]
            entry = {"q": random_rows(first["q"]), "k": random_rows(first["k"])}
            entry["v"] = entry["k"] if first["v"] is first["k"] else random_rows(first["v"])
            rows.insert(index, entry)
            selection.insert(pad, -1)
        join = lambda name: (None if rows[0][name] is None else  # noqa: E731
                             np.concatenate([r[name] for r in rows]))
        k = join("k")
        v = k if all(r["v"] is r["k"] for r in rows) else join("v")  # K=V: v is k
        try:
            with self.lock:
                self.session.select(selection)
                out = self.session.decode(layer, join("q"), k, v, group[0]["sinks"])
            error = None
            if pad is not None:
                if np.any(out[pad]):
                    error = ValueError(f"layer {layer}: the padding entry's output (entry {pad} "
                                       f"of {selection}) is not zeros")
                out = np.concatenate([out[:pad], out[pad + 1:]])
        except (hybrid_attn.HybridError, TypeError, ValueError) as e:
            error = e
        at = 0
        with self.changed:
            self.joint += len(group) > 1
            self.padded += pad is not None
            for r in group:
                size = r["lane"].batch
                if error is None:
                    r["out"] = out[at:at + size]
                else:
                    r["error"] = error
                r["partners"] = [p["lane"].index for p in group if p is not r]
                r["done"] = True
                at += size
            self.changed.notify_all()


class Lane:
    """A lane's sequences of the session lanes share, used as a session of
    their own: each call selects them first, the selection and the call one
    step under the lanes' lock. A reset is a truncate(0) of them, a reorder
    gathers them only (an order that does not fit them is refused here), a
    restore goes back into them; its valid steps may run with other lanes'
    (Joiner)."""

    def __init__(self, session, lock, index, sequences, max_seq, max_step, joiner):
        self.session, self.lock, self.sequences = session, lock, sequences
        self.index, self.joiner = index, joiner
        self.batch, self.max_seq, self.max_step = len(sequences), max_seq, max_step

    def step(self, layer, q, k, v, sinks, out=None):
        """A valid decode step; (its output, the lanes it ran with)."""
        return self.joiner.step(self, layer, q, k, v, sinks)

    def _on(self, method, *args, **kwargs):
        with self.lock:
            self.session.select(self.sequences)
            return getattr(self.session, method)(*args, **kwargs)

    def __getattr__(self, method):  # prefill, decode, cache_info, save, ...
        return lambda *args, **kwargs: self._on(method, *args, **kwargs)

    def reset(self):
        self._on("truncate", 0)

    def reorder(self, order):
        import hybrid_attn
        if len(order) != self.batch or not all(0 <= i < self.batch for i in order):
            raise hybrid_attn.HybridError(f"{order} is no order of a lane of {self.batch}")
        whole = list(range(self.session.batch))
        for b, i in zip(self.sequences, order):
            whole[b] = self.sequences[i]
        self._on("reorder", whole)

    def again(self, *options):
        return self


def run_lanes(schedule, args):
    """One session whose sequences args.lanes lanes share, each making its
    own calls from a thread of its own; each checked as if alone."""
    import threading
    rng = random.Random(args.seed)
    max_seq, max_step = choose_options(rng)
    sizes = [rng.choice([1, 1, 2, 3]) for _ in range(args.lanes)]
    sequences = list(range(sum(sizes)))
    if rng.random() < 0.5:  # else each lane's are consecutive: one batch
        rng.shuffle(sequences)
    session = schedule.session(len(sequences), max_seq, max_step)
    print(f"session(batch={len(sequences)}, max_seq={max_seq}, max_step_tokens={max_step})")
    set_f8_scales(session, schedule.layers, rng, args.cache_dtype, print)
    lock, lanes = threading.RLock(), []
    joiner = Joiner(session, lock)
    for index, size in enumerate(sizes):
        lanes.append(Lane(session, lock, index, sequences[:size], max_seq, max_step, joiner))
        sequences = sequences[size:]
    run_in_threads(args.lanes, lambda index, log: run_calls(
        schedule, args.seed + index * THREAD_SEED_STRIDE, args.calls, args.tolerance,
        args.cache_dtype, print=log, lane=lanes[index]), "lanes",
        lambda: f", {joiner.joint} steps of several lanes in one call, "
                f"{joiner.padded} with padding")


# --------------------------------------------------------------------------
# The driver: compile once, then run cases in child processes.
# --------------------------------------------------------------------------

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    parser = fuzzing.make_parser(__doc__, "hybrid-fuzz-session")
    parser.add_argument("--calls", type=int, default=60, help="calls per case")
    parser.add_argument("--timeout", type=float, default=120,
                        help="seconds a case may take")
    parser.add_argument("--schedules", default=",".join(SCHEDULES),
                        help="of test/Runtime/Inputs, comma-separated")
    parser.add_argument("--targets", default="cpu,cpu-bf16,cpu-f16,cpu-f8,cuda:sm_80",
                        help="cpu-bf16, cpu-f16, cpu-f8: CPU kernels over such caches; "
                        "cuda:sm_80 runs under the PTX emulator, if built")
    parser.add_argument("--threads", type=int, default=1,
                        help="sessions per case, each calling from a thread of its own")
    parser.add_argument("--lanes", type=int, default=0,
                        help="lanes of one session's sequences per case, each calling "
                        "from a thread of its own")
    args = parser.parse_args()
    bin_dir, emulator = fuzzing.find_tools(args, "fuzz-session", ["hybrid-compile"],
                                           emulator=False)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(args.build, "python_packages")] +
        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["HYBRID_COMPILE"] = os.path.join(bin_dir, "hybrid-compile")
    targets = [t for t in args.targets.split(",")
               if t in CPU_TARGETS or t.startswith("cuda:") and os.path.exists(emulator)]
    env["HYBRID_CUDA_DRIVER"] = emulator
    compiled = []
    for name in args.schedules.split(","):
        for target in targets:
            out = os.path.join(args.dir, "artifacts",
                               name.replace(".json", "") + "-" + target.replace(":", "_"))
            spec = os.path.join(ROOT, "test", "Runtime", "Inputs", name)
            cache_dtype, tolerance = CPU_TARGETS.get(target, ("f32", 2e-2))
            flags = (["--target", "cpu", "--kv-dtype", cache_dtype]
                     if target in CPU_TARGETS else ["--target", target])
            subprocess.run([env["HYBRID_COMPILE"], spec, *flags,
                            "--max-seq", str(MAX_SEQ), "--emit", "artifacts", "-o", out],
                           check=True, env=env)
            compiled.append((os.path.basename(out), out, tolerance, cache_dtype))

    def run_case(index, seed):
        label, artifacts, tolerance, cache_dtype = random.Random(seed).choice(compiled)
        command = [sys.executable, os.path.abspath(__file__), "--child", artifacts,
                   "--seed", str(seed), "--calls", str(args.calls),
                   "--tolerance", str(tolerance), "--cache-dtype", cache_dtype,
                   "--threads", str(args.threads), "--lanes", str(args.lanes)]
        text = f"case {index} (seed {seed}): {label}"
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=args.timeout)
            status = done.returncode
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired as expired:
            status = "timeout"
            output = (expired.stdout or b"").decode() + (expired.stderr or b"").decode()
        if status == 0:
            return True, text + ": " + output.strip().splitlines()[-1]
        kept = os.path.join(args.dir, "findings", f"case-{index}")
        os.makedirs(kept, exist_ok=True)
        with open(os.path.join(kept, "output.txt"), "w") as f:
            f.write(output)
        with open(os.path.join(kept, "repro.sh"), "w") as f:
            f.write("#!/bin/sh\n" + "".join(
                f"export {key}={shlex.quote(env[key])}\n"
                for key in REPRO_ENVIRONMENT if key in env) +
                shlex.join(command) + "\n")
        last = [line for line in output.splitlines() if line.strip()][-1:] or ["(no output)"]
        return False, text + f": exit {status}: {last[0][:300]}"

    return fuzzing.run_cases(args, run_case)


if __name__ == "__main__":
    sys.exit(main())
