"""Gemma 3 1B's attention schedule end to end from Python: compile the
bundled config.json, prefill a prompt through every layer, decode a few
tokens, take a follow-up prompt in one step (chunked prefill: the flash
kernel over the caches), and compare with a NumPy reference on a sliding and
a global layer.

    PYTHONPATH=build/python_packages python3 examples/python/gemma3_end_to_end.py
"""
import os
import sys
import time

import numpy as np

import hybrid_attn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python", "tests"))
from reference import attention  # noqa: E402  (the tests' NumPy reference)

PROMPT, STEPS, FOLLOW_UP = 600, 8, 128
TOTAL = PROMPT + STEPS + FOLLOW_UP
schedule = hybrid_attn.compile(os.path.join(ROOT, "examples", "configs", "gemma-3-1b-it.json"),
                               max_seq=TOTAL)
layers = schedule.layers
print(f"{len(layers)} layers: {sum(l['kind'] == 'sliding' for l in layers)} sliding, "
      f"{sum(l['kind'] == 'full' for l in layers)} global")
# A step brings up to FOLLOW_UP tokens (ring caches keep that many more rows).
session = schedule.session(batch=1, max_seq=TOTAL, max_step_tokens=FOLLOW_UP)
rng = np.random.default_rng(0)
data, outs = {}, {}
for layer in layers:
    i, total = layer["index"], TOTAL
    data[i] = [rng.standard_normal((1, total, layer[h], layer["head_dim"]), np.float32)
               for h in ("num_heads", "num_kv_heads", "num_kv_heads")]
    outs[i] = np.zeros((1, total, layer["num_heads"], layer["head_dim"]), np.float32)

start = time.perf_counter()
for i, (q, k, v) in data.items():
    outs[i][:, :PROMPT] = session.prefill(i, q[:, :PROMPT], k[:, :PROMPT], v[:, :PROMPT])
prefill = time.perf_counter() - start
start = time.perf_counter()
for step in range(PROMPT, PROMPT + STEPS):
    for i, (q, k, v) in data.items():
        at = slice(step, step + 1)
        outs[i][:, at] = session.decode(i, q[:, at].copy(), k[:, at].copy(), v[:, at].copy())
decode = (time.perf_counter() - start) / STEPS
start = time.perf_counter()
at = slice(PROMPT + STEPS, TOTAL)
for i, (q, k, v) in data.items():
    outs[i][:, at] = session.decode(i, q[:, at].copy(), k[:, at].copy(), v[:, at].copy())
follow_up = time.perf_counter() - start
print(f"prefill of {PROMPT} tokens through {len(layers)} layers: {prefill * 1e3:.1f} ms; "
      f"decode: {decode * 1e3:.2f} ms per token; a {FOLLOW_UP}-token follow-up: "
      f"{follow_up * 1e3:.1f} ms")
full = sum(l["num_kv_heads"] * 2 * l["head_dim"] * 4 * TOTAL for l in layers)
print(f"caches: {session.cache_bytes / 2**20:.1f} MiB, every layer full: {full / 2**20:.1f} MiB")
for i in (0, 5):
    q, k, v = data[i]
    error = np.abs(outs[i] - attention(layers[i], q, k, v)).max()
    print(f"layer {i} ({layers[i]['kind']}): max abs error against NumPy {error:.1e}")
    assert error < 1e-4
