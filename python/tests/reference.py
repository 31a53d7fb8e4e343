"""A NumPy reference (float64) for the tests and fuzz-session.py: masks
(causal or not), RoPE (rotate-half or interleaved; full, partial and
proportional, no scalings), soft-cap, sinks, GQA, queries at the last positions of the keys."""
import numpy as np


def rope(x, positions, pos):
    """Rotates the pairs (i, i + dim/2) (interleaved: (2i, 2i + 1)) of x's
    first `dim` dims: all of a head, or rotary_dim for partial RoPE (from
    rotary_offset on, if given); proportional RoPE's frequencies run over the
    head and stop after rotary_dim/2 pairs (the rest pass through)."""
    assert not pos.get("scaling"), "this reference knows unscaled RoPE only"
    offset = pos.get("rotary_offset", 0) if pos["type"] == "partial" else 0
    if offset:
        rotated = rope(x[..., offset:], positions, dict(pos, rotary_offset=0))
        return np.concatenate([x[..., :offset], rotated], axis=-1)
    dim = pos["rotary_dim"] if pos["type"] == "partial" else x.shape[-1]
    half = dim // 2
    inv_freq = pos["theta"] ** (-np.arange(half) * 2.0 / dim)
    if pos["type"] == "proportional":
        inv_freq[pos["rotary_dim"] // 2:] = 0
    angle = positions[:, None] * inv_freq[None, :]  # [S, half]
    cos, sin = np.cos(angle)[None, :, None, :], np.sin(angle)[None, :, None, :]
    if pos.get("interleaved"):
        a, b = x[..., 0:dim:2], x[..., 1:dim:2]
        pairs = np.stack([a * cos - b * sin, b * cos + a * sin], axis=-1)
        return np.concatenate([pairs.reshape(*x.shape[:-1], dim), x[..., dim:]], axis=-1)
    a, b, rest = x[..., :half], x[..., half:dim], x[..., dim:]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin, rest], axis=-1)


def cache_rounding(dtype, scale=1.0):
    """x as a session's caches of `dtype` and `scale` read it back: x / scale
    (in float32, as sessions divide) rounded to "bf16", "f16", or "f8" (OCP
    E4M3FN, saturating at +-448 where ml_dtypes makes NaNs), to nearest even
    by ml_dtypes or NumPy, times the scale; for attention(cached=...)."""
    import ml_dtypes
    element = {"bf16": ml_dtypes.bfloat16, "f16": np.float16,
               "f8": ml_dtypes.float8_e4m3fn}[dtype]
    limit = 448.0 if dtype == "f8" else np.inf
    return lambda x: np.clip(np.asarray(x, np.float32) / np.float32(scale), -limit,
                             limit).astype(element).astype(np.float64) * scale


def attention(layer, q, k, v, sinks=None, cached=None, key_scale=1, cached_keys=None):
    """Keys are k times `key_scale`. `cached` (a function of an array), if
    given, rounds the values and keys as a session's cache holds them (steps
    over bf16 or f8 caches; `cached_keys`, if given, the keys): K=V layers'
    caches hold their values, from which keys are derived, others the
    rotated keys."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    k_eq_v = (layer.get("cache") or {}).get("k_eq_v")
    if cached:
        v = cached(v)
        if k_eq_v:
            k = cached(k)
    k = k * key_scale
    b, sq, hq, d = q.shape
    skv = k.shape[1]
    pq = np.arange(skv - sq, skv)
    pk = np.arange(skv)
    pos = layer.get("positional") or {"type": "none"}
    if pos["type"] != "none":
        q, k = rope(q, pq, pos), rope(k, pk, pos)
    if cached and not k_eq_v:
        k = (cached_keys or cached)(k)
    group = hq // k.shape[2]
    k, v = np.repeat(k, group, axis=2), np.repeat(v, group, axis=2)
    s = np.einsum("bqhd,bkhd->bhqk", q, k) * layer["scale"]
    if layer.get("softcap"):
        s = layer["softcap"] * np.tanh(s / layer["softcap"])
    causal = layer.get("causal", True)
    distance = pq[:, None] - pk[None, :]
    visible = distance >= 0 if causal else np.ones_like(distance, bool)
    if layer.get("window"):
        visible &= (distance if causal else np.abs(distance)) < layer["window"]
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
