"""GPU entries for test/Runtime/Inputs/nope.json on cuda:sm_90a, one for
cuda:sm_70 that must not leak into other targets; with --bad, a variant the
#hybrid.gpu_kernel verifier rejects (TMA without wgmma)."""
import json
import sys

full = "h4.kv2.d64.dv32.full.causal"
chunked = "h4.kv2.d64.dv32.chunked.c16.bidirectional"
mma = {"tensor_cores": "mma.sync", "tma": False, "warps": 4, "warp_rows": 16,
       "stages": 1, "softmax_overlap": False}
entries = [
    {"target": "cuda:sm_90a", "kernel": full, "seq_bucket": 1024, "q_tile": 128,
     "k_tile": 32, "gpu": dict(mma, warps=8, warp_rows=32)},
    {"target": "cuda:sm_70", "kernel": full, "seq_bucket": 1024, "q_tile": 32,
     "k_tile": 16, "gpu": mma},
    {"target": "cuda:sm_90a", "kernel": chunked, "seq_bucket": 256, "q_tile": 32,
     "k_tile": 128, "gpu": mma},
]
if "--bad" in sys.argv:
    entries[0]["gpu"]["tma"] = True
print(json.dumps({"version": 1, "entries": entries}, indent=1))
