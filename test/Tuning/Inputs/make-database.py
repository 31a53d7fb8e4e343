"""A tuning database for test/Runtime/Inputs/nope.json on the machine named
in argv[1] (hybrid-tune --print-target), plus entries another machine and
another bucket must not leak into."""
import json
import sys

here = open(sys.argv[1]).read().strip()
full = "h4.kv2.d64.dv32.full.causal"
chunked = "h4.kv2.d64.dv32.chunked.c16.bidirectional"
entries = [
    {"target": here, "kernel": full, "seq_bucket": 1024, "q_tile": 64, "k_tile": 128},
    {"target": here, "kernel": full, "seq_bucket": 65536, "q_tile": 128, "k_tile": 32},
    {"target": "cpu:elsewhere", "kernel": full, "seq_bucket": 1024, "q_tile": 16, "k_tile": 256},
    {"target": here, "kernel": chunked, "seq_bucket": 256, "q_tile": 32, "k_tile": 32},
]
print(json.dumps({"version": 1, "entries": entries}, indent=1))
