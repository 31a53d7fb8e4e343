#!/usr/bin/env python3
"""CPU benchmark of the compiled attention kernels, in one run on this machine.

Measures with hybrid-bench (fused kernels through the runtime) and
hybrid-cpu-baselines (OpenBLAS sgemm, unfused GEMM + masked softmax + GEMM,
a large multi-threaded read and memcpy) on benchmarks/attention-8x128.json
(float32, 8 heads, head dim 128, RoPE), causal and sliding window 1024:
prefill at N = 4096 and 16384, decode steps (batch 1, one token; one of
STEP_TOKENS tokens, a causal K=V layer's and, from
benchmarks/cpu-decode-gqa.json, a GQA layer's at the longest, these two
also over bf16 and f8 caches) at contexts 4096 and 65536, and chunked
prefill (steps of CHUNK_TOKENS tokens after N = 16384, over f32, bf16 and f8
caches), continuous batching (utils/benchmark-batching.py: a ragged
batch's decode step against a session per sequence and one batch at the mean
length);
writes docs/benchmarks.md (tables, targets) and
docs/benchmarks.svg.

Usage: utils/benchmark-cpu.py [--build-dir build] [--repeat 3] [--quick]
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "benchmarks", "attention-8x128.json")
GEMMA = os.path.join(ROOT, "examples", "configs", "gemma-3-1b-it.json")
GQA_SPEC = os.path.join(ROOT, "benchmarks", "cpu-decode-gqa.json")
WINDOW = 1024
NARROW = ("bf16", "f8")  # cache element types besides f32
DECODE_CONTEXTS = [4096, 65536]
STEP_TOKENS = 4  # a multi-token step (speculative decoding), longest context
CHUNK_TOKENS = 512  # a step of a prompt's chunk (chunked prefill)
LAYERS = {0: "0", WINDOW: "1"}  # the spec's layer of each window (0: causal)
K_EQ_V = "2"  # the spec's causal K=V layer


def run_json(cmd, env=None):
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    return json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                     text=True, env=env).stdout)


def openblas_environment():
    """The environment for the OpenBLAS baselines: Debian's OpenBLAS (0.3.21)
    takes CPUs newer than it knows for a Prescott and runs its SSE3 kernels
    (an AVX-512 Xeon here: sgemm 65 GFLOP/s, 312 with its SkylakeX kernels),
    which would flatter the fused kernels; so unless OPENBLAS_CORETYPE says
    otherwise, the best kernels the CPU's flags allow."""
    env = dict(os.environ)
    if "OPENBLAS_CORETYPE" in env:
        return env
    flags = set((cpuinfo("flags") or "").split())
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"} <= flags:
        env["OPENBLAS_CORETYPE"] = "SkylakeX"
    elif {"avx2", "fma"} <= flags:
        env["OPENBLAS_CORETYPE"] = "Haswell"
    return env


def cpuinfo(field):
    """The first CPU's `field` in /proc/cpuinfo, or None."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name():
    return cpuinfo("model name") or platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="N = 1024 and 4096 only, output under /tmp")
    args = parser.parse_args()
    bin_dir = os.path.join(args.build_dir, "bin")
    lengths = [1024, 4096] if args.quick else [4096, 16384]
    out_dir = "/tmp/hybrid-benchmarks" if args.quick else os.path.join(ROOT, "docs")
    os.makedirs(out_dir, exist_ok=True)

    # Every measure below alternates over three rounds and keeps its best
    # round: the machines are shared virtual ones, whose neighbours only ever
    # add time (a prefill at 4K measured 96 to 187 ms within a minute), so
    # the best round is the closest to the machine's own speed, and
    # alternating keeps drift from passing for a trend.
    best = lambda entries, key: min(entries, key=lambda e: e[key])
    # Prefill.
    prefill_rounds = {}  # (seq_len, window) -> [hybrid-bench layer entry]
    for _ in range(3):
        for n in lengths:
            result = run_json([os.path.join(bin_dir, "hybrid-bench"), SPEC,
                               "--seq-len", str(n), "--repeat", str(args.repeat),
                               "--warmup", "2", "--layers", ",".join(LAYERS.values()),
                               "--json"])
            threads = result["threads"]
            for layer in result["layers"]:
                prefill_rounds.setdefault((n, layer["window"] or 0), []).append(layer)
    fused = {key: best(entries, "prefill_ms") for key, entries in prefill_rounds.items()}

    # Decode: each layer on its own (its step time, not its neighbours'
    # cache traffic), caches filled without attending to the prompt.
    contexts = [1024, 8192] if args.quick else DECODE_CONTEXTS
    # Five rounds: a long context's step time is bimodal across processes
    # (11.5 or 16 ms at 65536 for the very same layer, whichever it is).
    # (spec, context, layer, step tokens, cache dtype) -> [hybrid-bench layer entry]
    rounds = {}
    for _ in range(5):
        for n in contexts + [lengths[-1]]:
            runs = [(SPEC, LAYERS[0], 16, 1, "f32"), (SPEC, LAYERS[WINDOW], 64, 1, "f32")]
            if n == contexts[-1]:
                runs += [(SPEC, LAYERS[0], 8, STEP_TOKENS, "f32"),
                         (SPEC, K_EQ_V, 16, 1, "f32"), (GQA_SPEC, "0", 16, 1, "f32"),
                         *[(spec, layer, 16, 1, dtype) for dtype in NARROW
                           for spec, layer in ((SPEC, LAYERS[0]), (GQA_SPEC, "0"))]]
            if n == lengths[-1]:  # chunked prefill after the longest prompt
                runs = [(SPEC, LAYERS[w], 3, CHUNK_TOKENS, dtype)
                        for w in (0, WINDOW) for dtype in ("f32", *NARROW)]
            for spec, layer, steps, tokens, dtype in runs:
                result = run_json([os.path.join(bin_dir, "hybrid-bench"), spec,
                                   "--seq-len", str(n), "--decode-steps", str(steps),
                                   "--step-tokens", str(tokens), "--decode-only",
                                   "--kv-dtype", dtype, "--layers", layer, "--json"])
                rounds.setdefault((spec, n, layer, tokens, dtype), []).append(
                    result["layers"][0])
    fastest = {key: best(entries, "decode_ms") for key, entries in rounds.items()}
    decode = {(n, window): fastest[(SPEC, n, layer, 1, "f32")]
              for n in contexts for window, layer in LAYERS.items()}
    multi = fastest[(SPEC, contexts[-1], LAYERS[0], STEP_TOKENS, "f32")]
    k_eq_v = fastest[(SPEC, contexts[-1], K_EQ_V, 1, "f32")]
    gqa = fastest[(GQA_SPEC, contexts[-1], "0", 1, "f32")]
    narrow = {dtype: fastest[(SPEC, contexts[-1], LAYERS[0], 1, dtype)] for dtype in NARROW}
    gqa_narrow = {dtype: fastest[(GQA_SPEC, contexts[-1], "0", 1, dtype)] for dtype in NARROW}
    chunks = {(window, dtype): fastest[(SPEC, lengths[-1], layer, CHUNK_TOKENS, dtype)]
              for window, layer in LAYERS.items() for dtype in ("f32", *NARROW)}
    # Tuning: hybrid-tune on Gemma 3 1B, then both builds timed alike.
    tune_len = 1024 if args.quick else 4096
    work = os.path.join(out_dir, "tuning") if args.quick else "/tmp/hybrid-benchmark-tuning"
    os.makedirs(work, exist_ok=True)
    db = os.path.join(work, "tuning.json")
    if os.path.exists(db):
        os.remove(db)
    print("$ hybrid-tune", file=sys.stderr, flush=True)
    subprocess.run([os.path.join(bin_dir, "hybrid-tune"), GEMMA, "--seq-len",
                    str(tune_len), "--budget-seconds", "240", "-o", db,
                    "--report", os.path.join(out_dir, "tuning")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tuned_rows = []
    for name, extra in (("default", []), ("tuned", ["--tuning-db", db])):
        subprocess.run([os.path.join(bin_dir, "hybrid-compile"), GEMMA, "--emit",
                        "artifacts", "-o", os.path.join(work, name)] + extra,
                       check=True)
    # Each build keeps its best round per layer: the two builds may hold the
    # very same kernel, and drift must not pass for gain.
    times = {"default": {}, "tuned": {}}
    for _ in range(3):
        for name in ("default", "tuned"):
            for layer in run_json([os.path.join(bin_dir, "hybrid-bench"),
                                   os.path.join(work, name), "--seq-len",
                                   str(tune_len), "--layers", "0,5", "--repeat",
                                   str(args.repeat), "--warmup", "2",
                                   "--json"])["layers"]:
                times[name].setdefault((layer["index"], layer["kind"]), []).append(
                    layer["prefill_ms"])
    builds = {name: [{"index": i, "kind": kind, "prefill_ms": min(ms)}
                     for (i, kind), ms in sorted(per_layer.items())]
              for name, per_layer in times.items()}
    entries = {e["kernel"]: e for e in json.load(open(db))["entries"]}
    manifest = json.load(open(os.path.join(work, "tuned", "manifest.json")))
    for default, tuned in zip(builds["default"], builds["tuned"]):
        kernel = manifest["layers"][tuned["index"]]["kernel"]
        signature = manifest["kernels"][kernel]["tuning"]["signature"]
        entry = entries.get(signature, {})
        tuned_rows.append((tuned["index"], tuned["kind"], signature,
                           entry.get("q_tile"), entry.get("k_tile"),
                           default["prefill_ms"], tuned["prefill_ms"]))

    # Continuous batching: its own script (it alternates its three ways).
    batching = run_json([sys.executable, os.path.join(ROOT, "utils", "benchmark-batching.py"),
                         "--build-dir", args.build_dir, "--json"]
                        + (["--batch", "4", "--rounds", "1"] if args.quick else []))

    cmd = [os.path.join(bin_dir, "hybrid-cpu-baselines"), "--heads", "8",
           "--head-dim", "128", "--window", str(WINDOW), "--sgemm-size", "2048"]
    for n in lengths:
        cmd += ["--seq-len", str(n)]
    baselines = run_json(cmd, env=openblas_environment())
    sgemm = baselines["sgemm"]["gflops"]
    read = baselines["read"]["gbytes_per_s"]
    memcpy = baselines["memcpy"]["gbytes_per_s"]
    unfused = {(u["seq_len"], u["window"]): u for u in baselines["unfused"]}

    small, large = lengths
    causal = fused[(small, 0)]
    ratio_sgemm = causal["prefill_gflops"] / sgemm
    sliding_growth = fused[(large, WINDOW)]["prefill_ms"] / fused[(small, WINDOW)]["prefill_ms"]
    causal_over_sliding = fused[(large, 0)]["prefill_ms"] / fused[(large, WINDOW)]["prefill_ms"]
    causal_kept = fused[(large, 0)]["prefill_gflops"] / causal["prefill_gflops"]
    short, long = contexts
    worst_tuning = min(d / t for *_, d, t in tuned_rows)
    decode_growth = decode[(long, WINDOW)]["decode_ms"] / decode[(short, WINDOW)]["decode_ms"]
    full_bandwidth = decode[(long, 0)]["decode_gbytes_per_s"] / read
    multi_cost = multi["decode_ms"] / decode[(long, 0)]["decode_ms"]
    k_eq_v_cost = k_eq_v["decode_ms"] / decode[(long, 0)]["decode_ms"]
    gqa_bandwidth = gqa["decode_gbytes_per_s"] / read
    chunk_speed = min(chunks[(w, dtype)]["decode_gflops"] /
                      fused[(large, w)]["prefill_gflops"]
                      for w in (0, WINDOW) for dtype in ("f32", *NARROW))
    bf16_cost = narrow["bf16"]["decode_ms"] / decode[(long, 0)]["decode_ms"]
    f8_cost = narrow["f8"]["decode_ms"] / decode[(long, 0)]["decode_ms"]
    widest = batching["results"][-1]
    ragged_speed = widest["ragged"]["gflops"] / widest["uniform"]["gflops"]
    ragged_gain = widest["solo"]["step_ms"] / widest["ragged"]["step_ms"]
    targets = [] if args.quick else [
        (f"causal N={small}: fused GFLOP/s / OpenBLAS sgemm GFLOP/s",
         f"{ratio_sgemm:.0%}", ">= 50% (aim 70%)", ratio_sgemm >= 0.5),
        (f"sliding W={WINDOW}: time at N={large} / time at N={small}",
         f"{sliding_growth:.2f}", "<= 4.6 (linear)", sliding_growth <= 4.6),
        (f"N={large}: causal time / sliding time",
         f"{causal_over_sliding:.1f}x", ">= 5x", causal_over_sliding >= 5),
        (f"causal: GFLOP/s at N={large} / at N={small} (long prompts keep their speed)",
         f"{causal_kept:.2f}", ">= 0.8", causal_kept >= 0.8),
        (f"decode, sliding W={WINDOW}: step time at context {long} / at {short}",
         f"{decode_growth:.2f}", "<= 1.2 (flat)", decode_growth <= 1.2),
        (f"decode, causal at context {long}: cache read GB/s / read GB/s",
         f"{full_bandwidth:.0%}", ">= 60%", full_bandwidth >= 0.6),
        (f"decode, causal at context {long}: {STEP_TOKENS}-token step time / "
         "1-token step time (one cache read)",
         f"{multi_cost:.2f}", "<= 2", multi_cost <= 2),
        (f"decode, causal at context {long}: K=V layer's step time / "
         "a layer's with its own keys (half the cache, keys derived as they "
         "are read: never slower)",
         f"{k_eq_v_cost:.2f}", "<= 1.0", k_eq_v_cost <= 1.0),
        (f"decode, causal GQA 4 (32 heads on 8 kv heads) at context {long}: "
         "cache read GB/s / read GB/s",
         f"{gqa_bandwidth:.0%}", ">= 60%", gqa_bandwidth >= 0.6),
        (f"decode, causal at context {long}: bf16 cache's step time / f32 "
         "cache's (half the bytes)",
         f"{bf16_cost:.2f}", "<= 0.7", bf16_cost <= 0.7),
        (f"decode, causal at context {long}: f8 cache's step time / f32 "
         "cache's (a quarter of the bytes)",
         f"{f8_cost:.2f}", "<= 0.4", f8_cost <= 0.4),
        (f"chunked prefill ({CHUNK_TOKENS}-token steps after {large}): GFLOP/s / "
         f"prefill GFLOP/s at N={large}, worse mask and cache",
         f"{chunk_speed:.0%}", ">= 80%", chunk_speed >= 0.8),
        (f"continuous batching, {widest['batch']} sequences at their own lengths: "
         "ragged step GFLOP/s / one batch at the mean length's",
         f"{ragged_speed:.0%}", ">= 85%", ragged_speed >= 0.85),
        (f"continuous batching, {widest['batch']} sequences: ragged step speed / "
         "a session per sequence's",
         f"{ragged_gain:.2f}x", ">= 1.3x", ragged_gain >= 1.3),
        ("tuned / default kernel speed, worst kernel (noise: +-5%)",
         f"{worst_tuning:.2f}x", ">= 1.0x", worst_tuning >= 0.95),
    ]

    rows = []
    for n in lengths:
        for window in (0, WINDOW):
            f, u = fused[(n, window)], unfused[(n, window)]
            rows.append((n, "causal" if window == 0 else f"sliding {window}",
                         f["visible_pairs"], f["prefill_ms"], f["prefill_gflops"],
                         u["ms"], u["gflops"], u["ms"] / f["prefill_ms"]))

    md = []
    md.append("# CPU benchmarks\n")
    md.append("Generated by `utils/benchmark-cpu.py` (do not edit by hand): one run, "
              f"{datetime.date.today().isoformat()}, {cpu_name()}, {threads} threads, "
              "float32, batch 1, 8 heads, head dim 128, RoPE "
              "(`benchmarks/attention-8x128.json`). Times are medians of runs "
              "after a warm-up, the best of three alternating rounds (shared "
              "machines' neighbours only add time); "
              "GFLOP/s count only the query-key pairs the mask shows "
              "(`4 * pairs * D * H`).\n")
    md.append("- **fused**: the compiled kernels through the runtime "
              "(`hybrid-bench`), RoPE and scale included;")
    md.append("- **unfused**: per head `S = Q K^T` (OpenBLAS sgemm), masked "
              "softmax, `O = P V` (sgemm), `hybrid-cpu-baselines`; it computes "
              "every pair and then masks;")
    md.append(f"- **OpenBLAS sgemm** 2048 x 2048 x 2048 in the same run "
              f"(its {baselines['openblas_core']} kernels): "
              f"**{sgemm:.1f} GFLOP/s**.\n")
    md.append("| N | mask | visible pairs | fused ms | fused GFLOP/s | "
              "unfused ms | unfused GFLOP/s | fused speed-up |")
    md.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for n, mask, pairs, fms, fg, ums, ug, speedup in rows:
        md.append(f"| {n} | {mask} | {pairs:,} | {fms:.1f} | {fg:.1f} | "
                  f"{ums:.1f} | {ug:.1f} | {speedup:.1f}x |")
    md.append("\n## Decode\n")
    md.append("One step of one token per sequence (and one of "
              f"{STEP_TOKENS} tokens, as speculative decoding verifies drafts), "
              "batch 1, after a context of "
              "the given length (caches filled by `hybrid_rt_session_append`; "
              "each layer timed on its own, median of the steps after a warm-up "
              "one, best of five alternating rounds). GB/s: the keys and values the step's query can see, read "
              "once, per second; the read baseline reads "
              f"{baselines['read']['megabytes']} MB once on {threads} threads in the "
              "same run, the faster of a plain loop and one prefetching 4 KiB "
              f"ahead into L2: **{read:.1f} GB/s** (a memcpy of as much copies "
              f"{memcpy:.1f} GB/s). A cache that fits the last-level cache reads "
              "faster than memory.\n")
    md.append("| context | layer | cache rows read | step ms | GB/s | of read |")
    md.append("|---:|---|---:|---:|---:|---:|")
    for n in contexts:
        for window in (0, WINDOW):
            d = decode[(n, window)]
            rows = n + 1 - max(0, n - window + 1) if window else n + 1
            md.append(f"| {n} | {'causal' if window == 0 else f'sliding {window}'} | "
                      f"{rows:,} | {d['decode_ms']:.3f} | "
                      f"{d['decode_gbytes_per_s']:.1f} | "
                      f"{d['decode_gbytes_per_s'] / read:.0%} |")
    n = contexts[-1]
    md.append(f"| {n} | causal, {STEP_TOKENS}-token step | {n + 1:,} | "
              f"{multi['decode_ms']:.3f} | {multi['decode_gbytes_per_s']:.1f} | "
              f"{multi['decode_gbytes_per_s'] / read:.0%} |")
    md.append(f"| {n} | causal, K=V | {n + 1:,} | "
              f"{k_eq_v['decode_ms']:.3f} | {k_eq_v['decode_gbytes_per_s']:.1f} | "
              f"{k_eq_v['decode_gbytes_per_s'] / read:.0%} |")
    md.append(f"| {n} | causal, GQA 4 (32 heads on 8 kv heads; "
              "`benchmarks/cpu-decode-gqa.json`) | "
              f"{n + 1:,} | {gqa['decode_ms']:.3f} | "
              f"{gqa['decode_gbytes_per_s']:.1f} | "
              f"{gqa['decode_gbytes_per_s'] / read:.0%} |")
    for dtype in NARROW:
        for name, entry in (("causal", narrow[dtype]), ("causal, GQA 4", gqa_narrow[dtype])):
            md.append(f"| {n} | {name}, {dtype} cache (`--kv-dtype {dtype}`) | {n + 1:,} | "
                      f"{entry['decode_ms']:.3f} | {entry['decode_gbytes_per_s']:.1f} | "
                      f"{entry['decode_gbytes_per_s'] / read:.0%} |")
    md.append(f"\nbf16 caches (keys and values rounded to bf16, widened as the "
              f"kernels load them) hold half the bytes, f8 ones (OCP E4M3FN, "
              f"unscaled) a quarter: at {n} the causal step takes "
              + ", ".join(f"{narrow[d]['decode_ms'] / decode[(n, 0)]['decode_ms']:.2f}x "
                          f"({d})" for d in NARROW)
              + " the f32 cache's time, the GQA 4 step "
              + ", ".join(f"{gqa_narrow[d]['decode_ms'] / gqa['decode_ms']:.2f}x ({d})"
                          for d in NARROW) + ".")
    md.append("\n## Chunked prefill\n")
    md.append(f"A long prompt fed to a session in chunks: steps of {CHUNK_TOKENS} "
              f"tokens after {large} (the flash kernel over the cache; timed as "
              "above), against the one-call prefill of "
              f"N = {large} above. GFLOP/s count the pairs the chunk's queries see.\n")
    md.append("| layer | cache | context | step ms | GFLOP/s | prefill GFLOP/s (N = "
              f"{large}) | ratio |")
    md.append("|---|---|---:|---:|---:|---:|---:|")
    for window in (0, WINDOW):
        for dtype in ("f32", *NARROW):
            c, f = chunks[(window, dtype)], fused[(large, window)]
            md.append(f"| {'causal' if window == 0 else f'sliding {window}'} | {dtype} | "
                      f"{large:,} | {c['decode_ms']:.1f} | {c['decode_gflops']:.1f} | "
                      f"{f['prefill_gflops']:.1f} | "
                      f"{c['decode_gflops'] / f['prefill_gflops']:.0%} |")
    md.append("\n## Continuous batching\n")
    lengths_of = lambda r: f"{r['lengths'][0]}..{r['lengths'][-1]}"
    md.append("A decode step of one token per sequence through all "
              f"{batching['layers']} layers of Gemma 3 1B's schedule "
              f"(`{batching['config']}`; f32 caches, sliding window 512), its "
              "sequences at lengths spread evenly over "
              f"{lengths_of(batching['results'][0])} "
              "(`utils/benchmark-batching.py`; the best step of three alternating "
              "rounds): **ragged**, one session whose sequences stand at those "
              "lengths (`Session.select`: each layer's call runs every sequence "
              "at its own position); **solo**, a batch-1 session per sequence; "
              "**uniform**, one batch whose sequences all stand at the mean "
              "length (other keys: compare GFLOP/s, the pairs the step's "
              "queries see).\n")
    md.append("| batch | way | step ms | tokens/s | GFLOP/s | ragged speed-up |")
    md.append("|---:|---|---:|---:|---:|---:|")
    for r in batching["results"]:
        for way in ("ragged", "solo", "uniform"):
            w = r[way]
            md.append(f"| {r['batch']} | {way} | {w['step_ms']:.2f} | "
                      f"{w['tokens_per_s']:.0f} | {w['gflops']:.1f} | "
                      f"{w['step_ms'] / r['ragged']['step_ms']:.2f}x |")
    md.append("\n## Tuning\n")
    md.append(f"`hybrid-tune examples/configs/gemma-3-1b-it.json --seq-len {tune_len}` "
              "(16 tile candidates per kernel, each checked against the default "
              "kernel's output; [report](tuning/tuning-report.md), "
              "[plot](tuning/tuning-report.svg)), then the default and the "
              "`--tuning-db` builds timed by `hybrid-bench` in this run "
              f"(prefill of {tune_len} tokens, one layer per kernel):\n")
    md.append("| layer | kernel signature | tuned q-tile / k-tile | default ms | tuned ms | gain |")
    md.append("|---:|---|---|---:|---:|---:|")
    for index, kind, signature, q, k, default_ms, tuned_ms in tuned_rows:
        md.append(f"| {index} ({kind}) | `{signature}` | {q} / {k} | "
                  f"{default_ms:.1f} | {tuned_ms:.1f} | {default_ms / tuned_ms:.2f}x |")
    if targets:
        md.append("\n## Targets (issues 4, 5 and 7; long-prompt speed, GQA decode "
                  "and continuous batching: ours)\n")
        md.append("| measure | value | target | |")
        md.append("|---|---:|---|---|")
    for name, value, target, ok in targets:
        md.append(f"| {name} | {value} | {target} | {'met' if ok else 'MISSED'} |")
    md.append("\n![prefill time and GFLOP/s, decode step time](benchmarks.svg)\n")
    md.append("Reproduce: `utils/build.sh && utils/benchmark-cpu.py` (about ten "
              "minutes on 2 cores). The machines are shared: compare ratios "
              "within one run, not absolute times across runs.")
    with open(os.path.join(out_dir, "benchmarks.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    plot(out_dir, lengths, fused, unfused, sgemm, threads, contexts, decode,
         read)
    print("\n".join(md))
    return 0 if all(t[3] for t in targets) else 1


def plot(out_dir, lengths, fused, unfused, sgemm, threads, contexts, decode,
         read):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    matplotlib.rcParams["svg.hashsalt"] = "hybrid"  # stable ids
    fig, (left, right, third) = plt.subplots(1, 3, figsize=(15, 4))
    for window, label, style in ((0, "causal", "o-"), (WINDOW, f"sliding {WINDOW}", "s-")):
        left.plot(lengths, [fused[(n, window)]["prefill_ms"] for n in lengths],
                  style, label=f"fused {label}")
        left.plot(lengths, [unfused[(n, window)]["ms"] for n in lengths],
                  style, alpha=0.4, label=f"unfused {label}")
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("sequence length N")
    left.set_ylabel("prefill time per layer (ms)")
    left.legend(fontsize=8)
    left.set_title("time (log-log)")
    names, values = [], []
    for n in lengths:
        for window in (0, WINDOW):
            names.append(f"{'causal' if window == 0 else 'swa'}\n{n}")
            values.append(fused[(n, window)]["prefill_gflops"])
    right.bar(names, values, color="tab:blue", label="fused")
    right.axhline(sgemm, color="black", linestyle="--", label="OpenBLAS sgemm")
    right.set_ylabel("useful GFLOP/s")
    right.set_title(f"useful GFLOP/s ({threads} threads)")
    right.legend(fontsize=8)
    for window, label, style in ((0, "causal", "o-"), (WINDOW, f"sliding {WINDOW}", "s-")):
        third.plot(contexts, [decode[(n, window)]["decode_ms"] for n in contexts],
                   style, label=label)
    third.set_xscale("log", base=2)
    third.set_yscale("log")
    third.set_xlabel("context length")
    third.set_ylabel("decode step time (ms)")
    third.set_title(f"decode, batch 1 (read {read:.1f} GB/s)")
    third.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "benchmarks.svg"), metadata={"Date": None})


if __name__ == "__main__":
    sys.exit(main())
