"""Prefix caching with Gemma 3 1B's attention schedule: a system prompt
that many requests share is prefilled once and saved; each request restores
it into its own session and goes on with its own tokens. A request served
this way computes exactly what it would have from scratch (checked here on
every layer), and the restore costs a copy of the caches instead of the
prefix's prefill.

    PYTHONPATH=build/python_packages python3 examples/python/prefix_cache.py [PREFIX]

PREFIX: the shared prompt's tokens (default 2000).
"""
import sys
import time

import numpy as np

from gemma3_layers import Gemma3Layers

PREFIX = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
REQUEST, STEPS, REQUESTS = 48, 4, 3
TOTAL = PREFIX + REQUEST + STEPS
gemma3 = Gemma3Layers(max_seq=TOTAL)
schedule, layers, tokens = gemma3.schedule, gemma3.layers, gemma3.tokens


def new_session():
    # A request's tokens arrive in one step (chunked prefill over the prefix).
    return schedule.session(batch=1, max_seq=TOTAL, max_step_tokens=REQUEST)


def serve(session, request, steps):
    """A request after the prefix: its tokens in one step, then decode
    steps; every layer's outputs."""
    outs = [{i: session.decode(i, *request[i]) for i in layers}]
    for step in steps:
        outs.append({i: session.decode(i, *step[i]) for i in layers})
    return outs


prefix = tokens(PREFIX)
shared = new_session()
start = time.perf_counter()
for i in layers:
    shared.prefill(i, *prefix[i])
prefill_ms = (time.perf_counter() - start) * 1e3
start = time.perf_counter()
saved = shared.save()
save_ms = (time.perf_counter() - start) * 1e3
held = sum(x.nbytes for layer in saved["layers"].values() for x in (layer["k"], layer["v"])
           if x is not None)
print(f"prefix of {PREFIX} tokens through {len(layers)} layers: prefill {prefill_ms:.0f} ms, "
      f"save {save_ms:.1f} ms ({held / 2**20:.1f} MiB)")

restore_ms = []
for r in range(REQUESTS):
    request, steps = tokens(REQUEST), [tokens(1) for _ in range(STEPS)]
    session = new_session()
    start = time.perf_counter()
    session.restore(saved)
    restore_ms.append((time.perf_counter() - start) * 1e3)
    served = serve(session, request, steps)
    if r == 0:  # the same request from scratch: prefix, then the same calls
        scratch = new_session()
        for i in layers:
            scratch.prefill(i, *prefix[i])
        expected = serve(scratch, request, steps)
        same = all(np.array_equal(a[i], b[i]) for a, b in zip(served, expected) for i in layers)
        print(f"request served from the restored prefix, against one from scratch: "
              f"{'identical' if same else 'DIFFERENT'} outputs on every layer")
        if not same:
            sys.exit(1)
print(f"restore per request: {min(restore_ms):.1f} ms (best of {REQUESTS}), "
      f"{prefill_ms / min(restore_ms):.0f}x less than prefilling the prefix")
