#!/usr/bin/env python3
"""Prints the KV-cache plan of a `hybrid-compile --emit summary` (stdin) as a table."""
import json
import sys

summary = json.load(sys.stdin)
rows = {}
for layer in summary["layers"]:
    cache = layer["cache"]
    key = (layer["kind"], cache["policy"] if cache else "-",
           layer["window"] or layer["chunk"] or "")
    count, size = rows.get(key, (0, 0))
    rows[key] = (count + 1, size + (cache["bytes"] if cache else 0))

print(f"{'kind':10} {'cache':8} {'window':>7} {'layers':>6} {'MiB':>10}")
for (kind, policy, window), (count, size) in rows.items():
    print(f"{kind:10} {policy:8} {str(window):>7} {count:6d} {size / 2**20:10.1f}")
plan = summary["kv_cache_bytes"]
total, baseline = plan["total"], plan["all_full_baseline"]
print(f"total {total / 2**20:.1f} MiB per sequence against {baseline / 2**20:.1f} MiB "
      f"if every attention layer kept a full cache: {100 * total / baseline:.1f}% "
      f"({baseline / max(total, 1):.1f}x less) at {plan['max_seq']} tokens, {plan['storage']}")
