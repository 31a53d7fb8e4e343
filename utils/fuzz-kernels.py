#!/usr/bin/env python3
"""Differential fuzzing of the attention kernels, GPU (under the PTX
emulator) and CPU.

Each case draws a random schedule (head dims, GQA group, mask, window or
chunk, positional encoding and RoPE scaling, soft-cap, sinks, query
temperature, K = V, a layer sharing another's cache), a random target and
kernel variant the compiler accepts for it (GPU: mma.sync or wgmma, TMA,
stages, softmax overlap, warp specialization, ping-pong, warps, rows per
warp, key tile, rescale threshold, value slice; CPU: query and key tiles),
compiles it (`hybrid-compile`, `--cubin=false` for GPUs)
and runs `hybrid-rt-check`:
prefill at random batch and lengths, then decode steps of random size, with
the step kernel, the split counts and the CPU query tile forced at random;
each run twice, with random inputs and with
`--probe` inputs (zero queries, 0/1 keys and values: each row's output is
its visible keys' mean value, exact in f32, so one key too many or too few
fails). The reference is the runtime's float64 one, so a wrong
result, a fault, a hang or a crash of any kind is a finding: the case's
spec and commands are kept in DIR/findings/CASE/ (repro.sh reruns it).

  utils/fuzz-kernels.py [--cases N | --minutes M] [--seed S] [--dir DIR]
                        [--targets gpu,cpu]

The fixed test inputs cover every option once; this covers their
combinations at awkward shapes. `test/Runtime/fuzz-kernels.test` runs a few
cases with a fixed seed so the script keeps working.
"""
import json
import os
import random
import shlex
import shutil
import subprocess
import sys

import fuzzing


def draw_layer(rng, wgmma):
    """One attention layer's fields (without kind-independent defaults)."""
    dims = [64, 128, 192, 256] if wgmma else [16, 32, 48, 64, 80, 96, 128, 256]
    # Gemma 4's global layers: head dim 512, values in two 256-wide slices.
    head_dim = 512 if rng.random() < 0.05 else rng.choice(dims)
    layer = {"head_dim": head_dim}
    # Value dims may differ (MLA-like), up to two 256-wide slices.
    if rng.random() < 0.2:
        layer["v_head_dim"] = rng.choice([d for d in dims if d != head_dim])
    kind = rng.choice(["full", "sliding", "sliding", "chunked"])
    layer["kind"] = kind
    if kind == "sliding":
        layer["window"] = rng.choice([1, 2, rng.randint(3, 63), 64, 65,
                                      rng.randint(66, 300)])
    elif kind == "chunked":
        layer["chunk"] = rng.choice([1, rng.randint(2, 63), 64, 128,
                                     rng.randint(65, 300)])
    if rng.random() < 0.15:
        layer["causal"] = False
    even = head_dim % 2 == 0
    positional = rng.choice(["none", "rope", "partial", "proportional"])
    if positional == "rope" and even:
        layer["positional"] = {"type": "rope", "theta": 10000}
    elif positional == "partial" and head_dim >= 8:
        rotary = rng.randrange(2, head_dim - 1, 2)
        layer["positional"] = {"type": "partial", "theta": 10000,
                               "rotary_dim": rotary}
        if rng.random() < 0.4:
            # MLA's decoupled RoPE: the rotating dims after the others.
            layer["positional"]["rotary_offset"] = rng.randrange(
                0, head_dim - rotary + 1, 2)
    elif positional == "proportional":
        layer["positional"] = {"type": "proportional", "theta": 1000000,
                               "fraction": rng.choice([0.25, 0.5, 1.0])}
    else:
        layer["positional"] = {"type": "none"}
    if layer["positional"]["type"] != "none" and rng.random() < 0.3:
        layer["positional"]["scaling"] = draw_rope_scaling(rng)
    if layer["positional"]["type"] != "none" and rng.random() < 0.3:
        layer["positional"]["interleaved"] = True
    if rng.random() < 0.15:
        # Llama 4's query temperature; floor scales this small change it
        # within the fuzzed lengths. Its attn_scale (0.1) keeps the factor
        # under 1.7 there, as Llama 4's is at a million tokens: with 0.5 it
        # reached 4, and scores past what bf16 operands give to 2% (seed
        # 7500043: 0.021 on mma.sync and wgmma alike, f32 CPU kernels 5e-6,
        # probe inputs exact).
        layer["temperature_tuning"] = {
            "floor_scale": rng.choice([1, 3, 16, 100]), "attn_scale": 0.1,
            "offset": rng.choice([0, 1])}
    if rng.random() < 0.25:
        layer["softcap"] = rng.choice([5.0, 30.0, 50.0])
    if rng.random() < 0.2:
        layer["sinks"] = True
    # K=V kernels derive keys with rotate-half pairs only.
    if ("v_head_dim" not in layer and rng.random() < 0.2 and
            not layer["positional"].get("interleaved") and
            not layer["positional"].get("rotary_offset")):
        layer["k_eq_v"] = True
    if rng.random() < 0.15:
        # Not 1.0 with the temperature: scores of unit-variance inputs then
        # reach 30 and more, past what bf16 operands give to 2% (seed
        # 7400924: 0.03 on both tensor-core paths, f32 CPU kernels exact).
        scales = [0.05, 0.3] + ([] if "temperature_tuning" in layer else [1.0])
        layer["scale"] = rng.choice(scales)
    return layer


def draw_rope_scaling(rng):
    """One of transformers' RoPE scalings; original lengths short enough
    that the fuzzed positions pass them."""
    kind = rng.choice(["linear", "llama3", "yarn"])
    scaling = {"type": kind, "factor": rng.choice([2.0, 4.0, 8.0, 40.0])}
    if kind == "llama3":
        scaling.update(low_freq_factor=1.0,
                       high_freq_factor=rng.choice([2.0, 4.0]),
                       original_max_position_embeddings=rng.choice(
                           [32, 256, 8192]))
    elif kind == "yarn":
        scaling["original_max_position_embeddings"] = rng.choice([64, 512])
        if rng.random() < 0.5:
            scaling["attention_factor"] = rng.choice([0.8, 1.3])
        if rng.random() < 0.3:
            scaling["truncate"] = False
    return scaling


def draw_cpu_variant(rng):
    """hybrid-compile flags for a CPU kernel variant."""
    flags = ["--target", "cpu"]
    if rng.random() < 0.5:
        flags += ["--q-tile", str(rng.choice([1, 16, 33, 64, 256]))]
    if rng.random() < 0.5:
        flags += ["--k-tile", str(rng.choice([8, 16, 32, 64, 128]))]
    if rng.random() < 0.4:  # narrow caches: steps over rounded keys
        flags += ["--kv-dtype", rng.choice(["bf16", "f16", "f8"])]
    return flags


def draw_variant(rng, layers):
    """hybrid-compile flags for a GPU kernel variant valid for every layer."""
    wgmma = all(l["head_dim"] % 64 == 0 and
                l.get("v_head_dim", l["head_dim"]) % 64 == 0 for l in layers)
    flags = []
    warps = rng.choice([4, 4, 8])
    if wgmma and rng.random() < 0.6:
        flags += ["--target", "cuda:sm_90a", "--tensor-cores", "wgmma"]
        if rng.random() < 0.7:
            flags.append("--tma")
            stages = rng.choice([1, 2, 2, 3])
            if stages > 1:
                flags += ["--stages", str(stages)]
                if rng.random() < 0.5:
                    flags.append("--softmax-overlap")
                if rng.random() < 0.5:
                    flags.append("--warp-specialized")
                    if ("--softmax-overlap" in flags and warps == 8 and
                            rng.random() < 0.5):
                        flags.append("--ping-pong")
        if rng.random() < 0.5:
            flags += ["--k-tile", str(rng.choice([16, 32, 64, 128]))]
    else:
        flags += ["--target", rng.choice(["cuda:sm_80", "cuda:sm_90a"])]
        if rng.random() < 0.2:
            flags += ["--warp-rows", "32"]
        if rng.random() < 0.5:
            flags += ["--k-tile", str(rng.choice([16, 32, 64]))]
    if warps == 8:
        flags += ["--warps", "8"]
    if rng.random() < 0.25:
        flags += ["--rescale-threshold", "0"]
    if rng.random() < 0.25:
        # Narrower value slices: several CTAs per head (wgmma's are
        # multiples of 64).
        wgmma_flags = "wgmma" in flags
        flags += ["--value-slice",
                  str(rng.choice([64, 128] if wgmma_flags else [16, 32, 64, 128]))]
    return flags


def make_latent(rng, layer):
    """`layer` as a latent one (CPU targets): its values the first v_head_dim
    dims of its keys, rotating dims (if any) after them."""
    head_dim = layer["head_dim"]
    values = rng.choice([d for d in (8, 16, 24, 32, 48, 64, 96, 128, 256)
                         if d <= head_dim])
    layer.update(latent=True, v_head_dim=values)
    layer.pop("k_eq_v", None)
    pos = layer["positional"]
    if pos["type"] == "none":
        return
    if head_dim - values < 2:
        layer["positional"] = {"type": "none"}
        return
    rotary = rng.randrange(2, head_dim - values + 1, 2)
    pos.update(type="partial", rotary_dim=rotary,
               rotary_offset=rng.randrange(values, head_dim - rotary + 1, 2))
    pos.pop("fraction", None)
    if pos.get("theta") == 1000000 and rng.random() < 0.5:
        pos["theta"] = 10000


def draw_case(rng, targets):
    """One case: a spec, hybrid-compile flags, hybrid-rt-check runs (their
    arguments) and the environment they run in."""
    # A quarter of the cases on CPUs when both: fewer variants there.
    cpu = targets == ["cpu"] or ("cpu" in targets and rng.random() < 0.25)
    kv_heads = rng.choice([1, 1, 2, 3])
    group = rng.choice([1, 1, 2, 3, 4, 5, 8, 12, 16, 32])
    wgmma = not cpu and rng.random() < 0.5
    layers = []
    for _ in range(rng.choice([1, 1, 2])):
        layer = draw_layer(rng, wgmma)
        layer["num_heads"] = kv_heads * group
        layer["num_kv_heads"] = kv_heads
        if cpu and rng.random() < 0.15:
            make_latent(rng, layer)
        layers.append(layer)
    # A reader of layer 0's cache: the same kind, mask, KV shape and
    # positional encoding; its own scores and sinks.
    if len(layers) == 1 and rng.random() < 0.2:
        reader = {k: v for k, v in layers[0].items()
                  if k not in ("softcap", "sinks", "scale")}
        reader["shared_source"] = 0
        layers.append(reader)
    spec = {"format": "hybrid-schedule", "version": 1, "name": "fuzz",
            "max_position_embeddings": 1024, "layers": layers}
    flags = draw_cpu_variant(rng) if cpu else draw_variant(rng, layers)
    batch = rng.choice([1, 1, 2])
    seqs = sorted({rng.choice([1, rng.randint(2, 63), 64, rng.randint(65, 200),
                               rng.randint(201, 300)])
                   for _ in range(rng.randint(1, 3))})
    runs = [["--batch", str(batch), "--seq", ",".join(map(str, seqs))]]
    # bf16 operands and outputs (GPUs: the runtime's other element type).
    if not cpu and rng.random() < 0.25:
        runs[0].append("--bf16")
    env = {}
    if rng.random() < 0.7:
        # Contexts past the windows and chunks: ring caches wrap.
        steps = ["--batch", str(batch), "--seq",
                 str(rng.choice([rng.randint(1, 64), rng.randint(65, 600)])),
                 "--decode-steps", str(rng.randint(1, 4))]
        if rng.random() < 0.6:
            steps += ["--step-tokens", str(rng.choice([2, 3, 4, 16,
                                                       rng.randint(5, 80)]))]
        runs.append(steps)
        if rng.random() < 0.5:
            env["HYBRID_CPU_STEP_KERNEL" if cpu else "HYBRID_CUDA_STEP_KERNEL"] \
                = rng.choice(["decode", "flash"])
    if cpu:
        if rng.random() < 0.3:
            env["HYBRID_CPU_Q_TILE"] = str(rng.choice([1, 5, 16, 100]))
        return spec, flags, runs, env
    if rng.random() < 0.5:
        env["HYBRID_CUDA_FLASH_SPLITS"] = str(rng.choice([1, 2, 3, 5, 8]))
    if rng.random() < 0.3:
        env["HYBRID_CUDA_DECODE_SPLITS"] = str(rng.choice([1, 2, 3, 7]))
    return spec, flags, runs, env


def keep_finding(case, env, commands, output):
    """Leaves the case's output and a script that reruns it beside its spec."""
    with open(os.path.join(case, "repro.sh"), "w") as f:
        f.write("#!/bin/sh\nset -e\n")
        for k, v in sorted(env.items()):
            f.write(f"export {k}={shlex.quote(v)}\n")
        for c in commands:
            f.write(shlex.join(c) + "\n")
    with open(os.path.join(case, "output.txt"), "w") as f:
        f.write(output)


def run_case(index, seed, tools, emulator, work, targets):
    rng = random.Random(seed)
    spec, flags, runs, env = draw_case(rng, targets)
    case = os.path.join(work, f"case-{index}")
    os.makedirs(case, exist_ok=True)
    spec_path = os.path.join(case, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=1)
    gpu = "cpu" not in flags
    compile_cmd = [os.path.join(tools, "hybrid-compile"), spec_path] + flags + \
        (["--cubin=false"] if gpu else []) + \
        ["--emit", "artifacts", "-o", os.path.join(case, "kernels")]
    if gpu:
        env = dict(env, HYBRID_CUDA_DRIVER=emulator)
    # HYBRID_FUZZ_CHECK_ARGS: more hybrid-rt-check arguments for every run
    # (a tighter --tolerance, say).
    extra = shlex.split(os.environ.get("HYBRID_FUZZ_CHECK_ARGS", ""))
    # Each run with random inputs, then with probe inputs (exact: a key
    # attended or missed by mistake shows).
    commands = [compile_cmd] + [
        [os.path.join(tools, "hybrid-rt-check"), os.path.join(case, "kernels")] +
        r + probe + extra for r in runs for probe in ([], ["--probe"])]
    summary = (f"case {index} (seed {seed}): {' '.join(flags)}; "
               f"{len(spec['layers'])} layer(s) "
               + json.dumps(spec["layers"]) + "; "
               + " | ".join(" ".join(r) for r in runs) + " "
               + " ".join(f"{k}={v}" for k, v in sorted(env.items())
                          if k != "HYBRID_CUDA_DRIVER"))
    checks = 0
    for i, cmd in enumerate(commands):
        try:
            p = subprocess.run(cmd, env=dict(os.environ, **env),
                               capture_output=True, text=True, timeout=900)
            output, rc = p.stdout + p.stderr, p.returncode
        except subprocess.TimeoutExpired:
            output, rc = "timed out after 900 s", -1
        failed = rc != 0 or "FAILED" in output
        checks += sum(l.endswith(" ok") for l in output.splitlines())
        if failed:
            keep_finding(case, env, commands, output)
            lines = [l for l in output.splitlines()
                     if "FAILED" in l or "error" in l.lower()][:5]
            return False, summary + "\n  " + ("compile" if i == 0 else
                                              "run " + " ".join(cmd[2:])) + \
                f": exit {rc}\n  " + "\n  ".join(lines or output[-400:]
                                                 .splitlines())
    if checks == 0:
        keep_finding(case, env, commands, output)
        return False, summary + "\n  no check ran"
    shutil.rmtree(case)
    return True, f"{summary} ({checks} checks)"


def main():
    parser = fuzzing.make_parser(__doc__, "hybrid-kernel-fuzz")
    parser.add_argument("--targets", default="gpu,cpu",
                        help="comma-separated: gpu (under the emulator), cpu")
    args = parser.parse_args()
    targets = args.targets.split(",")
    if not targets or not set(targets) <= {"gpu", "cpu"}:
        sys.exit("fuzz-kernels: --targets takes gpu, cpu or both, got "
                 f"'{args.targets}'")
    tools, emulator = fuzzing.find_tools(
        args, "fuzz-kernels", ["hybrid-compile", "hybrid-rt-check"],
        emulator="gpu" in targets)
    findings = os.path.join(args.dir, "findings")
    return fuzzing.run_cases(args, lambda index, seed: run_case(
        index, seed, tools, emulator, findings, targets))


if __name__ == "__main__":
    sys.exit(main())
