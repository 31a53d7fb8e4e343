"""Writes a hybrid-schedule spec whose layers cover every pair of options:
every mask x every positional encoding (48 layers), with the score options
assigned so that every mask x score and every positional x score pair also
appears (score (i + j) % 4 for mask i, positional j). GQA 2:1, head dim 64;
windows and chunks are below and above the 64-key tile."""
import json

masks = [
    {"kind": "full"},
    {"kind": "sliding", "window": 7},
    {"kind": "sliding", "window": 150},
    {"kind": "chunked", "chunk": 33},
    {"kind": "full", "causal": False},
    {"kind": "sliding", "window": 20, "causal": False},
]
positionals = [
    {"positional": {"type": "none"}},
    {"positional": {"type": "rope", "theta": 10000}},
    {"positional": {"type": "partial", "theta": 10000, "rotary_dim": 32}},
    {"positional": {"type": "proportional", "theta": 1000000, "fraction": 0.25}},
    {"positional": {"type": "rope", "theta": 10000,
                    "scaling": {"type": "linear", "factor": 4}}},
    {"positional": {"type": "rope", "theta": 500000,
                    "scaling": {"type": "llama3", "factor": 8, "low_freq_factor": 1,
                                "high_freq_factor": 4,
                                "original_max_position_embeddings": 256}}},
    {"positional": {"type": "rope", "theta": 10000,
                    "scaling": {"type": "yarn", "factor": 8,
                                "original_max_position_embeddings": 128}}},
    {"positional": {"type": "none"},
     "temperature_tuning": {"floor_scale": 8, "attn_scale": 0.5}},
]
scores = [{}, {"softcap": 3.0}, {"sinks": True}, {"softcap": 20.0, "sinks": True, "scale": 0.3}]

layers = []
for i, mask in enumerate(masks):
    for j, positional in enumerate(positionals):
        layers.append({**mask, **positional, **scores[(i + j) % len(scores)]})
print(json.dumps({
    "format": "hybrid-schedule", "version": 1, "name": "cross",
    "hidden_size": 256, "max_position_embeddings": 8192,
    "description": "pairwise cover of mask x positional x score options",
    "defaults": {"num_heads": 4, "num_kv_heads": 2, "head_dim": 64},
    "layers": layers}, indent=1))
