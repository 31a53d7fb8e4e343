"""Recomputes every dumped layer of a NoPE schedule with NumPy (a second,
independent reference) from the manifest and the .npy files hybrid-run
wrote; prints one line per layer and fails above the tolerance."""
import json
import sys

import numpy as np

artifacts, dump = sys.argv[1], sys.argv[2]
manifest = json.load(open(f"{artifacts}/manifest.json"))
worst = 0.0
import os

for layer in manifest["layers"]:
    i = layer["index"]
    if not os.path.isdir(f"{dump}/layer{i}"):
        continue
    assert layer["positional"]["type"] == "none", "NoPE layers only"
    q, k, v, out = (np.load(f"{dump}/layer{i}/{n}.npy").astype(np.float64)
                    for n in ("q", "k", "v", "out"))
    b, s, hq, d = q.shape
    group = hq // k.shape[2]
    k = np.repeat(k, group, axis=2)
    v = np.repeat(v, group, axis=2)
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) * layer["scale"]
    if layer["softcap"]:
        scores = layer["softcap"] * np.tanh(scores / layer["softcap"])
    pq, pk = np.arange(s)[:, None], np.arange(s)[None, :]
    visible = np.ones((s, s), bool)
    if layer["causal"]:
        visible &= pk <= pq
    if layer["window"]:
        visible &= (pq - pk < layer["window"]) & (pk - pq < layer["window"])
    if layer["chunk"]:
        visible &= pq // layer["chunk"] == pk // layer["chunk"]
    scores = np.where(visible, scores, -np.inf)
    m = scores.max(-1, keepdims=True)
    if layer["sinks"]:
        sinks = np.load(f"{dump}/layer{i}/sinks.npy").astype(np.float64)
        m = np.maximum(m, sinks[None, :, None, None])
    p = np.exp(scores - m)
    total = p.sum(-1, keepdims=True)
    if layer["sinks"]:
        total += np.exp(sinks[None, :, None, None] - m)
    ref = np.einsum("bhqk,bkhe->bqhe", p / total, v)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    error = np.abs(out - ref).max() / np.abs(ref).max()
    worst = max(worst, error)
    print(f"layer {i}: shape {list(out.shape)}, numpy relative error {error:.1e}")
print("numpy check:", "passed" if worst <= 1e-4 else "FAILED")
sys.exit(0 if worst <= 1e-4 else 1)
