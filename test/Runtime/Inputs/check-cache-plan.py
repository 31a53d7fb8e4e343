"""Compares the summary's cache plan (hybrid-compile --emit summary
--kv-dtype f32) with what a runtime session allocated (hybrid-run's
"cache layer" lines) for a batch: every layer and the total must agree."""
import json
import re
import sys

summary = json.load(open(sys.argv[1]))
run = open(sys.argv[2]).read()
batch = int(sys.argv[3])
allocated = {int(m[0]): (m[1], int(m[2]), int(m[3])) for m in re.findall(
    r"cache layer (\d+): (\w+), (\d+) rows, (\d+) bytes", run)}
total = int(re.search(r"^cache: (\d+) bytes", run, re.M).group(1))
ok = True
for layer in summary["layers"]:
    plan = layer["cache"]
    if layer["index"] not in allocated or plan is None:
        continue
    policy, rows, size = allocated[layer["index"]]
    agree = (policy == plan["policy"] and rows == plan["tokens"]
             and size == plan["bytes"] * batch)
    ok &= agree
    print(f"layer {layer['index']}: plan {plan['policy']} {plan['tokens']} tokens "
          f"{plan['bytes'] * batch} B, runtime {policy} {rows} rows {size} B"
          f"{'' if agree else '  DIFFERENT'}")
planned = summary["kv_cache_bytes"]["total"] * batch
baseline = summary["kv_cache_bytes"]["all_full_baseline"] * batch
ok &= planned == total
print(f"total: plan {planned} B, runtime {total} B, all-full {baseline} B "
      f"({total / baseline:.1%})")
print("cache plan:", "agrees" if ok else "DIFFERS")
sys.exit(0 if ok else 1)
