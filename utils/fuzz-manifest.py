#!/usr/bin/env python3
"""Mutation fuzzing of manifest.json: the runtime must refuse a manifest it
cannot run, with an error, or run it; never crash or hang.

Compiles two schedules (test/Runtime/Inputs/masks.json: every mask kind and
cache policy but shared; caches.json: shared, K=V and NoPE layers) for the
CPU and for cuda:sm_80 (run under the PTX emulator), then, case after case,
changes one or two fields of one of the four manifests at random (a number
nudged or replaced by an extreme, a string swapped for another policy or
kind, a value of the wrong type, a key or list entry deleted) and runs
`hybrid-run DIR --check` at a random batch, prompt and decode length.

A case passes when hybrid-run exits 0, or 1 with an error message or a
failed check (an edit of what only the reference reads, a scale or a RoPE
theta, cannot be seen from the kernels: the check then fails, as it
should). A signal, another exit status, a hang or an exit 1 that says
nothing is a finding, kept in DIR/findings/CASE/ (the artifacts, the
mutated manifest and the command in repro.sh).

  utils/fuzz-manifest.py [--cases N | --minutes M] [--seed S] [--dir DIR]
                         [--timeout SECONDS]

`test/Runtime/fuzz-manifest.test` runs a few cases with a fixed seed.
"""
import copy
import json
import os
import random
import shlex
import shutil
import subprocess
import sys

import fuzzing

ROOT = fuzzing.ROOT
SCHEDULES = ["masks.json", "caches.json"]
TARGETS = ["cpu", "cuda:sm_80"]
EXTREMES = [0, -1, 1, 2, 7, 2**31 - 1, -2**31, 2**32, 2**63 - 1, 1.5, 1e300,
            "x", "", None, True, [], {}]
WORDS = ["full", "ring", "chunk", "shared", "none", "sliding", "chunked",
         "mamba", "rope", "partial", "proportional", "yarn", "cpu",
         "cuda:sm_80", "cuda:sm_90a"]


def fields(node, path=()):
    """Every path to a value under `node`."""
    if path:
        yield path
    items = (node.items() if isinstance(node, dict)
             else enumerate(node) if isinstance(node, list) else [])
    for key, value in items:
        yield from fields(value, path + (key,))


def mutate(manifest, rng):
    """Changes one or two fields of `manifest` in place; returns what."""
    changes = []
    for _ in range(rng.randint(1, 2)):
        path = rng.choice(list(fields(manifest)))
        parent = manifest
        for key in path[:-1]:
            parent = parent[key]
        key, old = path[-1], parent[path[-1]]
        where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}"
                        for k in path)
        draw = rng.random()
        if draw < 0.2:
            del parent[key]
            changes.append(f"{where}: deleted")
            continue
        if (isinstance(old, (int, float)) and not isinstance(old, bool)
                and draw < 0.6):
            new = rng.choice([old + 1, old - 1, old * 2, -old,
                              old // 2 if isinstance(old, int) else old / 2])
        elif isinstance(old, str) and draw < 0.6:
            new = rng.choice(WORDS + [old + "x"])
        else:
            new = copy.deepcopy(rng.choice(EXTREMES))
        parent[key] = new
        changes.append(f"{where}: {json.dumps(old)} -> {json.dumps(new)}")
    return changes


def compile_schedules(tools, work):
    """The four artifact directories the cases start from."""
    dirs = []
    for schedule in SCHEDULES:
        for target in TARGETS:
            out = os.path.join(work, "artifacts",
                               schedule.split(".")[0] + "-" + target.replace(":", "_"))
            if not os.path.isdir(out):
                subprocess.run(
                    [os.path.join(tools, "hybrid-compile"),
                     os.path.join(ROOT, "test", "Runtime", "Inputs", schedule),
                     "--target", target, "--emit", "artifacts", "-o", out] +
                    (["--cubin=false"] if target != "cpu" else []),
                    check=True, stdout=subprocess.DEVNULL)
            dirs.append(out)
    return dirs


def run_case(index, seed, sources, tools, work, env, timeout):
    """One mutated manifest run: (passed, what it was and did)."""
    rng = random.Random(seed)
    source = rng.choice(sources)
    with open(os.path.join(source, "manifest.json")) as f:
        manifest = json.load(f)
    changes = mutate(manifest, rng)
    case = os.path.join(work, "case")
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(source, case)
    with open(os.path.join(case, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    command = [os.path.join(tools, "hybrid-run"), case, "--check",
               "--batch", str(rng.choice([1, 2])),
               "--seq-len", str(rng.choice([1, 17, 40])),
               "--decode-steps", str(rng.choice([0, 2]))]
    try:
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=timeout, env=env)
        status, output = result.returncode, result.stdout + result.stderr
    except subprocess.TimeoutExpired:
        status, output = "timeout", ""
    said = "error:" in output or "check: FAILED" in output
    summary = f"case {index} (seed {seed}): {os.path.basename(source)}: " + \
        "; ".join(changes)
    if status == 0 or (status == 1 and said):
        return True, summary
    kept = os.path.join(work, "findings", f"case-{index}")
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(case, kept)
    with open(os.path.join(kept, "repro.sh"), "w") as f:
        f.write(f"# {summary}\n# exit {status}\n"
                f"HYBRID_CUDA_DRIVER={shlex.quote(env['HYBRID_CUDA_DRIVER'])} "
                + " ".join(shlex.quote(c) for c in command).replace(case, kept)
                + "\n")
    tail = output.strip().splitlines()[-1:] or ["(no output)"]
    return False, f"{summary}: exit {status}: {tail[0][:200]}"


def main():
    parser = fuzzing.make_parser(__doc__, "hybrid-manifest-fuzz")
    parser.add_argument("--timeout", type=float, default=120,
                        help="seconds a run may take before it counts as a hang")
    args = parser.parse_args()
    tools, emulator = fuzzing.find_tools(args, "fuzz-manifest",
                                         ["hybrid-compile", "hybrid-run"])
    os.makedirs(args.dir, exist_ok=True)
    sources = compile_schedules(tools, args.dir)
    env = dict(os.environ, HYBRID_CUDA_DRIVER=emulator)
    return fuzzing.run_cases(args, lambda index, seed: run_case(
        index, seed, sources, tools, args.dir, env, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
