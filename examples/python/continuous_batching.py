"""Continuous batching with Gemma 3 1B's attention schedule: requests arrive
at different times with prompts of different lengths, generate different
numbers of tokens and leave; one session of SLOTS sequences serves them all.
A request is prefilled into a free sequence (Session.select) while the
others are mid-generation, every live request steps in one call per layer
(each at its own position), and a finished one is truncated to 0, freeing
its sequence for the next. Each request's outputs are checked against a
session of its own fed the same tokens, on every layer, and the steps are
timed against those sessions stepping one after another.

    PYTHONPATH=build/python_packages python3 examples/python/continuous_batching.py [REQUESTS]

REQUESTS: how many arrive (default 10).
"""
import sys
import time

import numpy as np

from gemma3_layers import Gemma3Layers

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
SLOTS, MAX_SEQ = 4, 1024
gemma3 = Gemma3Layers(max_seq=MAX_SEQ)
schedule, layers, tokens, rng = gemma3.schedule, gemma3.layers, gemma3.tokens, gemma3.rng


class Request:
    def __init__(self, index):
        self.index = index
        self.arrival = int(rng.integers(0, 3 * REQUESTS))  # in steps
        self.prompt = int(rng.integers(40, 700))  # past the window of 512 too
        self.left = int(rng.integers(4, 30))  # tokens to generate
        self.alone = schedule.session(batch=1, max_seq=MAX_SEQ)  # the check


waiting = sorted((Request(r) for r in range(REQUESTS)), key=lambda r: r.arrival)
served = schedule.session(batch=SLOTS, max_seq=MAX_SEQ)
free, live = list(range(SLOTS)), {}  # live: sequence -> request
difference, steps, generated = 0.0, 0, 0
step_s = alone_s = 0.0
spans = []  # the lengths each step's sequences stood at


def check(out, expected):
    global difference
    difference = max(difference, float(np.abs(out - expected).max()))


clock = 0
while waiting or live:
    # Arrivals take free sequences: their prompts run while others wait.
    while waiting and waiting[0].arrival <= clock and free:
        request, sequence = waiting.pop(0), free.pop(0)
        prompt = tokens(request.prompt)
        served.select([sequence])
        for i in layers:
            check(served.prefill(i, *prompt[i]), request.alone.prefill(i, *prompt[i]))
        request.length = request.prompt
        live[sequence] = request
    if live:
        # One step of every live request: one call per layer.
        sequences = sorted(live)
        step = {s: tokens(1) for s in sequences}
        spans.append([live[s].length for s in sequences])
        stacked = {i: [np.concatenate([step[s][i][j] for s in sequences]) for j in range(3)]
                   for i in layers}
        served.select(sequences)
        start = time.perf_counter()
        outs = {i: served.decode(i, *stacked[i]) for i in layers}
        step_s += time.perf_counter() - start
        start = time.perf_counter()
        alone = {s: {i: live[s].alone.decode(i, *step[s][i]) for i in layers} for s in sequences}
        alone_s += time.perf_counter() - start
        for row, s in enumerate(sequences):
            for i in layers:
                check(outs[i][row:row + 1], alone[s][i])
            request = live[s]
            request.length += 1
            request.left -= 1
            if request.left == 0:  # done: its sequence is free again
                served.select([s])
                served.truncate(0)
                free.append(s)
                del live[s]
        steps += 1
        generated += len(sequences)
    clock += 1

ragged = sum(len(set(span)) > 1 for span in spans)
print(f"{REQUESTS} requests through {SLOTS} sequences of one session, {len(layers)} layers: "
      f"{steps} decode steps, {generated} tokens generated; {ragged} steps ran sequences "
      f"at different lengths (up to {max(max(s) - min(s) for s in spans)} apart)")
print(f"against a session per request: max abs difference {difference:.1e} on every layer")
print(f"decode steps: {step_s / steps * 1e3:.1f} ms per step in one call per layer, "
      f"{alone_s / steps * 1e3:.1f} ms with a session per request "
      f"({alone_s / step_s:.2f}x), {generated / step_s:.0f} tokens/s")
# A step splits each sequence's keys by its share of the whole step's keys,
# not as a session of its own would: the partial results merge a rounding
# apart.
if difference > 1e-5:
    sys.exit(f"outputs differ from a session per request by {difference}")
