#!/usr/bin/env python3
"""The GPU benchmark's table, from one run of utils/gpu-suite.sh.

Reads DIR/results/ours.jsonl (hybrid-rt-check --json: prefill device time of
the attention kernel, decode per step) and DIR/results/baselines.jsonl
(utils/gpu-baselines.py), measured in the same run, and prints the markdown
section docs/benchmarks.md takes: useful TFLOP/s (visible query-key pairs
only) with ratios against FlexAttention (same mask) and SDPA's flash backend
(causal), and decode bandwidth against a device-to-device copy; then the
fastest variant per layer and length against the issue's targets (prefill at
or above FlexAttention, causal at least 60% of SDPA's flash backend, decode
at least 70% of the copy's bandwidth). Writes DIR/results/tuning.json too:
the fastest prefill variant per benchmark kernel and length as a tuning
database (docs/Tuning.md) that hybrid-compile --tuning-db reads.
"""
import functools
import json
import pathlib
import sys


# The benchmark schedule's artifacts: DIR/artifacts/<BENCH>[-<variant>].
BENCH = "gpu-attention-32x128"
# Other schedules' records, ours-<prefix>[-<variant>].jsonl, ran
# DIR/artifacts/<schedule>[-<variant>]; their head dims are not the
# baselines', so they are compared with their own default only.
SCHEDULES = {"wide-heads": "gpu-decode-wide-heads"}


def artifacts_name(r):
    """The artifacts directory a benchmark record ran."""
    variant = r.get("variant")
    if variant is None:
        return BENCH
    for prefix, schedule in SCHEDULES.items():
        if variant == prefix or variant.startswith(prefix + "-"):
            return schedule + variant[len(prefix):]
    return f"{BENCH}-{variant}"


def is_default(r):
    """A record of a schedule's default kernels (no variant flags)."""
    return artifacts_name(r) in (BENCH, *SCHEDULES.values())


def baseline_shape(r):
    """The baselines' heads (32 of dim 128), which they can be compared
    with."""
    return r.get("head_dim", 128) == 128


def load(path):
    """The JSON lines of `path`; none when a phase cut short never wrote it."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()
            if line.startswith("{")]


def layer_name(r, prefill=True):
    """The table's name of a record's layer: "sliding W", else "causal"
    (prefill) or the kind (decode); a variant's name in parentheses."""
    if r["kind"] == "sliding":
        name = f"sliding {r['window']}"
    else:
        name = "causal" if prefill and r["kind"] == "full" else r["kind"]
    # Other shapes than the benchmark's heads of 128 (wide-heads decode).
    if r.get("head_dim", 128) != 128:
        name += f", {r['heads']} / {r['kv_heads']} heads of {r['head_dim']}"
    if r.get("k_eq_v"):
        name += ", K=V"
    return name + (f" ({r['variant']})" if "variant" in r else "")


def main():
    results = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "gpu-suite") / "results"
    ours = load(results / "ours.jsonl")
    # Variants (ours-<name>.jsonl: e.g. w32, 32 query rows per warp).
    for path in sorted(results.glob("ours-*.jsonl")):
        for r in load(path):
            r["variant"] = path.stem.split("-", 1)[1]
            ours.append(r)
    base = load(results / "baselines.jsonl")
    gpu = (results / "gpu.txt").read_text().strip() if (results / "gpu.txt").exists() else "?"
    by = {(b["name"], b.get("seq")): b for b in base}
    copy = next((b for b in base if b["name"] == "copy"), None)

    print(f"### GPU ({gpu}), bf16, 32 heads of dim 128, batch 1\n")
    print("| layer | N | ours TFLOP/s | FlexAttention | ours / Flex | SDPA flash (causal) | ours / SDPA | registers (spill bytes) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in ours:
        if "tflops" not in r:
            continue
        n, sliding = r["seq"], r["kind"] == "sliding"
        flex = by.get(("flex_sliding" if sliding else "flex_causal", n)) if baseline_shape(r) else None
        sdpa = by.get(("sdpa_flash", n)) if baseline_shape(r) else None
        cells = [layer_name(r), str(n), f"{r['tflops']:.1f}"]
        cells += [f"{flex['tflops']:.1f}", f"{r['tflops'] / flex['tflops']:.2f}"] if flex else ["-", "-"]
        if sdpa and not sliding:
            cells += [f"{sdpa['tflops']:.1f}", f"{r['tflops'] / sdpa['tflops']:.2f}"]
        else:
            cells += ["-", "-"]
        cells.append(registers(results.parent, r))
        print("| " + " | ".join(cells) + " |")

    print("\n| decode layer | context | ms per step | GB/s | of copy |")
    print("| --- | --- | --- | --- | --- |")
    for r in ours:
        if "decode_gbytes_per_s" not in r or is_chunk(r):
            continue
        name = layer_name(r, prefill=False)
        share = f"{r['decode_gbytes_per_s'] / copy['gbytes_per_s']:.0%}" if copy else "-"
        print(f"| {name} | {r['context']} | {r['decode_ms']:.4f} | "
              f"{r['decode_gbytes_per_s']:.0f} | {share} |")
    if copy:
        print(f"\nCopy: {copy['gbytes_per_s']:.0f} GB/s (read + write of {copy['bytes'] / 2**30:.0f} GiB).")
    print_chunks(ours)
    print_graph_steps(load(results / "graph.jsonl"))
    print_targets(ours, by, copy)
    device = gpu.split(",")[0]
    count = write_tuning(pathlib.Path(results).parent, ours, device)
    print(f"\nTuning database: results/tuning.json, {count} entries (the fastest "
          "variant per kernel and length; hybrid-compile --tuning-db).")


@functools.lru_cache(maxsize=None)
def load_manifest(path):
    """A manifest.json, parsed once however many records name it; None when
    its artifacts are absent."""
    return json.loads(path.read_text()) if path.exists() else None


def record_manifest(root, r):
    """The manifest of the artifacts a benchmark record ran (the default's or
    its variant's), or None."""
    return load_manifest(root / "artifacts" / artifacts_name(r) / "manifest.json")


def registers(root, r):
    """What ptxas gave the record's prefill kernel: registers per thread,
    spilled bytes (stores) and its "Potential Performance Loss" notes (wgmma
    serialized, ...), from its artifacts' manifest; "-" without a cubin
    (smoke runs)."""
    manifest = record_manifest(root, r)
    if not manifest:
        return "-"
    entry = manifest["kernels"].get(r.get("kernel"), {}).get("entry")
    used = manifest.get("resources", {}).get(entry)
    if not used:
        return "-"
    losses = used.get("performance_losses", 0)
    return f"{used['registers']} ({used['spill_store_bytes']})" + \
        (f", {losses} ptxas loss" if losses else "")


def is_chunk(r):
    """A step of many tokens (chunked prefill), rated in FLOP/s, or any step
    of the kernel-choice runs (variants steps-<kernel>, gqa-steps-<kernel>),
    which the decode table and the targets leave out."""
    return (r.get("step_tokens", 1) > 1 and "decode_tflops" in r) or \
        "steps-" in r.get("variant", "")


def print_chunks(ours):
    """Steps of several tokens (speculative steps, chunked prefill) through
    each kernel (variants steps-<kernel> and, over 4 kv heads,
    gqa-steps-<kernel>), so that the runtime's choice between them
    (runtime/lib/StepKernel.h) can be checked against the measure: rows per
    kv head are step tokens x heads / kv heads."""
    chunks = [r for r in ours if is_chunk(r)]
    if not chunks:
        return
    print("\n| step layer | heads / kv | context | step tokens | rows per kv head | kernel | ms per step | TFLOP/s | GB/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    def order(r):
        return (r["kv_heads"], r["kind"], r["step_tokens"], r.get("variant", ""))

    for r in sorted(chunks, key=order):
        kernel = r.get("variant", "default").split("steps-", 1)[-1]
        name = layer_name({k: v for k, v in r.items() if k != "variant"}, prefill=False)
        rows = r["step_tokens"] * r["heads"] // r["kv_heads"]
        tflops = f"{r['decode_tflops']:.1f}" if "decode_tflops" in r else "-"
        print(f"| {name} | {r['heads']} / {r['kv_heads']} | {r['context']} | "
              f"{r['step_tokens']} | {rows} | {kernel} | {r['decode_ms']:.4f} | "
              f"{tflops} | {r['decode_gbytes_per_s']:.0f} |")


def print_graph_steps(steps):
    """A whole model's decode step, eager and replayed from a CUDA graph
    (utils/gpu-graph-bench.py), if the suite measured it."""
    single = [s for s in steps if s.get("name", "decode_step") == "decode_step"]
    if single:
        print("\n| decode step of a whole model (batch 1) | attention layers | context "
              "| eager ms per token | CUDA graph | eager / graph |")
        print("| --- | --- | --- | --- | --- | --- |")
    for s in single:
        print(f"| {s['schedule']} | {s['layers']} | {s['context']} | "
              f"{s['eager_ms']:.3f} | {s['graph_ms']:.3f} | {s['speedup']:.2f} |")
    ragged = [s for s in steps if s.get("name") == "ragged_step"]
    if ragged:
        print("\n| continuous batching: a step of B sequences | B | lengths "
              "| ms per step | CUDA graph | at their mean length | CUDA graph "
              "| live, padded with -1 to B | ms per step | CUDA graph "
              "| selected before each step | CUDA graph |")
        print("| --- " * 12 + "|")
    for s in ragged:
        low, high = s["lengths"]
        padded = (f"{s['live']} | {s['padded_ms']:.3f} | {s['padded_graph_ms']:.3f}"
                  if "live" in s else "- | - | -")
        padded += (f" | {s['selected_ms']:.3f} | {s['selected_graph_ms']:.3f}"
                   if "selected_ms" in s else " | - | -")
        print(f"| {s['schedule']} | {s['batch']} | {low}..{high} | "
              f"{s['ragged_ms']:.3f} | {s['ragged_graph_ms']:.3f} | "
              f"{s['uniform_ms']:.3f} | {s['uniform_graph_ms']:.3f} | {padded} |")


def print_targets(ours, by, copy):
    """The fastest of the default and its variants per (layer, length),
    against the targets; "-" where a baseline is missing."""
    def verdict(ratio, goal):
        return "-" if ratio is None else f"{ratio:.2f} ({'met' if ratio >= goal else 'not met'})"

    best = {}
    for r in ours:
        if "tflops" in r and baseline_shape(r):
            key = ("prefill", r["kind"], r.get("window"), r["seq"], r.get("head_dim", 128))
            value = r["tflops"]
        elif "decode_gbytes_per_s" in r and not is_chunk(r):
            key = ("decode", r["kind"], r.get("window"), r["context"], r.get("head_dim", 128))
            value = r["decode_gbytes_per_s"]
        else:
            continue
        if key not in best or value > best[key][0]:
            best[key] = (value, r)
    if not best:
        return
    print("\n| fastest | N or context | variant | ours | target | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (phase, kind, _, n, _), (value, r) in sorted(
            best.items(), key=lambda item: (item[0][0], item[0][1], item[0][4], item[0][3])):
        variant = r.get("variant", "default")
        name = layer_name({k: v for k, v in r.items() if k != "variant"},
                          prefill=phase == "prefill")
        if phase == "decode":
            ratio = value / copy["gbytes_per_s"] if copy else None
            print(f"| decode {name} | {n} | {variant} | {value:.0f} GB/s | "
                  f">= 0.70 of copy | {verdict(ratio, 0.7)} |")
            continue
        flex = by.get(("flex_sliding" if kind == "sliding" else "flex_causal", n))
        ratio = value / flex["tflops"] if flex else None
        print(f"| {name} | {n} | {variant} | {value:.1f} TFLOP/s | "
              f">= FlexAttention | {verdict(ratio, 1.0)} |")
        sdpa = by.get(("sdpa_flash", n))
        if kind != "sliding":
            ratio = value / sdpa["tflops"] if sdpa else None
            print(f"| {name} | {n} | {variant} | {value:.1f} TFLOP/s | "
                  f">= 0.60 of SDPA flash | {verdict(ratio, 0.6)} |")


def write_tuning(root, ours, device):
    """DIR/results/tuning.json: per benchmark kernel and prompt length, the
    fastest prefill variant whose manifest records how it was built
    (gpu_kernel), keyed as hybrid-tune keys its entries; returns the count."""
    def built(r):
        """The manifest and kernel entry of a record's artifacts, when they
        record how the kernel was built."""
        manifest = record_manifest(root, r)
        if not manifest:
            return None
        k = manifest["kernels"].get(r["kernel"], {})
        return (manifest, k) if "gpu_kernel" in k and "tuning" in k else None

    best, default = {}, {}
    for r in ours:
        if "tflops" not in r:
            continue
        key = (r["kernel"], r["seq"])
        if is_default(r):
            default[key] = r["ms"]
        found = built(r)
        if found and (key not in best or r["ms"] < best[key][0]["ms"]):
            best[key] = (r, found)
    entries = []
    for (kernel, n), (r, (manifest, k)) in sorted(best.items()):
        bucket = 256
        while bucket < n:
            bucket *= 2
        entries.append({"target": manifest["target"],
                        "kernel": k["tuning"]["signature"],
                        "seq_bucket": bucket, "q_tile": k["q_tile"],
                        "k_tile": k["k_tile"], "ms": r["ms"],
                        "default_ms": default.get((kernel, n), r["ms"]),
                        "gpu": k["gpu_kernel"], "device": device})
    (root / "results" / "tuning.json").write_text(
        json.dumps({"version": 1, "entries": entries}, indent=1) + "\n")
    return len(entries)


if __name__ == "__main__":
    main()
