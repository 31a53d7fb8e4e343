"""A NumPy reference (float64) for the tests: masks, RoPE (rotate-half),
soft-cap, sinks, GQA, queries at the last positions of the keys."""
import numpy as np


def rope(x, positions, theta):
    half = x.shape[-1] // 2
    inv_freq = theta ** (-np.arange(half) * 2.0 / x.shape[-1])
    angle = positions[:, None] * inv_freq[None, :]  # [S, half]
    cos, sin = np.cos(angle)[None, :, None, :], np.sin(angle)[None, :, None, :]
    a, b = x[..., :half], x[..., half:]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)


def attention(layer, q, k, v, sinks=None):
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    b, sq, hq, d = q.shape
    skv = k.shape[1]
    pq = np.arange(skv - sq, skv)
    pk = np.arange(skv)
    pos = layer.get("positional") or {"type": "none"}
    assert not pos.get("scaling"), "this reference knows plain RoPE only"
    if pos["type"] == "rope":
        q, k = rope(q, pq, pos["theta"]), rope(k, pk, pos["theta"])
    else:
        assert pos["type"] == "none", pos
    group = hq // k.shape[2]
    k, v = np.repeat(k, group, axis=2), np.repeat(v, group, axis=2)
    s = np.einsum("bqhd,bkhd->bhqk", q, k) * layer["scale"]
    if layer.get("softcap"):
        s = layer["softcap"] * np.tanh(s / layer["softcap"])
    visible = pk[None, :] <= pq[:, None]
    if layer.get("window"):
        visible &= pq[:, None] - pk[None, :] < layer["window"]
    if layer.get("chunk"):
        visible &= pq[:, None] // layer["chunk"] == pk[None, :] // layer["chunk"]
    s = np.where(visible, s, -np.inf)
    m = s.max(-1, keepdims=True)
    if sinks is not None:
        m = np.maximum(m, np.asarray(sinks, np.float64)[None, :, None, None])
    p = np.exp(s - m)
    total = p.sum(-1, keepdims=True)
    if sinks is not None:
        total = total + np.exp(np.asarray(sinks, np.float64)[None, :, None, None] - m)
    return np.einsum("bhqk,bkhe->bqhe", p / total, v)
