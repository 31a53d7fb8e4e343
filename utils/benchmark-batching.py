#!/usr/bin/env python3
"""CPU benchmark of continuous batching, in one run on this machine.

A decode step (one token per sequence, or --step-tokens, through every layer
of Gemma 3 1B's schedule, f32 caches filled by Session.append) of B sequences at lengths
spread evenly over 200..1800 (mean 1000; its sliding layers' window is 512),
timed three ways, alternating:

- ragged: one session whose sequences stand at those lengths (continuous
  batching: each layer's call runs every sequence at its own position);
- solo: B batch-1 sessions, one per sequence (the way without it);
- uniform: one batch whose sequences all stand at the mean length (what a
  batch costs when its sequences move together; it sees other keys, so
  compare its GFLOP/s).

Each way's step time is the best of its steps over the rounds (a shared
machine's neighbours only add time). GFLOP/s count the query-key pairs the
step's queries see (4 * pairs * D * Hq at D = Dv). Prints a table, or
--json.

Usage: utils/benchmark-batching.py [--build-dir build] [--batch 8 16]
                                   [--rounds 3] [--steps 5] [--step-tokens 1]
                                   [--json]
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "examples", "configs", "gemma-3-1b-it.json")
SHORTEST, LONGEST = 200, 1800


def spread(batch):
    """B lengths from SHORTEST to LONGEST, evenly apart."""
    if batch == 1:
        return [(SHORTEST + LONGEST) // 2]
    return [SHORTEST + (LONGEST - SHORTEST) * b // (batch - 1) for b in range(batch)]


def visible_keys(layer, length):
    """Keys the query of a token at position `length` sees."""
    window = layer["window"]
    return min(length + 1, window) if window else length + 1


class Way:
    """Sessions stepping sequences at `lengths`, one token per step on every
    layer; `groups` maps each session to its sequences' indices."""

    def __init__(self, schedule, sessions, groups, lengths, rng):
        self.schedule, self.sessions, self.groups = schedule, sessions, groups
        self.lengths, self.rng, self.best = list(lengths), rng, None

    def step(self, np, tokens):
        layers = self.schedule.layers
        inputs = []  # drawn before the clock starts
        for session, group in zip(self.sessions, self.groups):
            n = len(group)
            per_layer = []
            for l in layers:
                q = self.rng.standard_normal((n, tokens, l["num_heads"], l["head_dim"]), np.float32)
                k = self.rng.standard_normal((n, tokens, l["num_kv_heads"], l["head_dim"]),
                                             np.float32)
                v = self.rng.standard_normal((n, tokens, l["num_kv_heads"], l["v_head_dim"]),
                                             np.float32)
                per_layer.append((q, k, v))
            inputs.append(per_layer)
        start = time.perf_counter()
        for session, per_layer in zip(self.sessions, inputs):
            for i, (q, k, v) in enumerate(per_layer):
                session.decode(i, q, k, v)
        seconds = time.perf_counter() - start
        flops = sum(4 * visible_keys(l, n + t) * l["head_dim"] * l["num_heads"]
                    for l in layers for n in self.lengths for t in range(tokens))
        self.lengths = [n + tokens for n in self.lengths]
        if self.best is None or seconds < self.best[0]:
            self.best = (seconds, flops)


def fill(schedule, session, sequences, lengths, rng, np):
    """Appends random keys and values to `sequences` of `session` until each
    holds its length (selected one at a time, then the whole batch again)."""
    for b, n in zip(sequences, lengths):
        session.select([b])
        for i, l in enumerate(schedule.layers):
            k = rng.standard_normal((1, n, l["num_kv_heads"], l["head_dim"]), np.float32)
            v = rng.standard_normal((1, n, l["num_kv_heads"], l["v_head_dim"]), np.float32)
            session.append(i, k, v)
    session.select(None)


def measure(schedule, batch, rounds, steps, tokens, np):
    rng = np.random.default_rng(batch)
    max_seq = LONGEST + (1 + rounds * steps) * tokens  # the warm-up step too
    lengths = spread(batch)
    mean = sum(lengths) // batch
    ragged = schedule.session(batch, max_seq, tokens)
    fill(schedule, ragged, range(batch), lengths, rng, np)
    solos = [schedule.session(1, max_seq, tokens) for _ in range(batch)]
    for s, n in zip(solos, lengths):
        fill(schedule, s, [0], [n], rng, np)
    uniform = schedule.session(batch, max_seq, tokens)
    fill(schedule, uniform, range(batch), [mean] * batch, rng, np)
    ways = {"ragged": Way(schedule, [ragged], [range(batch)], lengths, rng),
            "solo": Way(schedule, solos, [[b] for b in range(batch)], lengths, rng),
            "uniform": Way(schedule, [uniform], [range(batch)], [mean] * batch, rng)}
    for way in ways.values():  # warm-up
        way.step(np, tokens)
    for _ in range(rounds):
        for way in ways.values():
            for _ in range(steps):
                way.step(np, tokens)
    result = {"batch": batch, "step_tokens": tokens, "lengths": lengths, "mean_length": mean}
    for name, way in ways.items():
        seconds, flops = way.best
        result[name] = {"step_ms": seconds * 1e3, "tokens_per_s": batch * tokens / seconds,
                        "gflops": flops / seconds / 1e9}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per way and round")
    parser.add_argument("--step-tokens", type=int, default=1,
                        help="tokens per sequence and step (speculative decoding's drafts, "
                        "a prompt's chunk)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if min(args.batch + [args.rounds, args.steps, args.step_tokens]) < 1:
        parser.error("--batch, --rounds, --steps and --step-tokens must be positive")
    sys.path.insert(0, os.path.join(args.build_dir, "python_packages"))
    import numpy as np
    import hybrid_attn

    schedule = hybrid_attn.compile(
        CONFIG, max_seq=LONGEST + (1 + args.rounds * args.steps) * args.step_tokens)
    results = [measure(schedule, b, args.rounds, args.steps, args.step_tokens, np)
               for b in args.batch]
    report = {"config": os.path.relpath(CONFIG, ROOT), "layers": len(schedule.layers),
              "threads": schedule._model.num_threads, "results": results}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['config']}, {report['layers']} layers, {report['threads']} threads, "
          f"{args.step_tokens} token(s) per sequence and step")
    print("batch  way       step ms  tokens/s  GFLOP/s  ragged speed-up")
    for r in results:
        for name in ("ragged", "solo", "uniform"):
            w = r[name]
            print(f"{r['batch']:5}  {name:8} {w['step_ms']:8.2f} {w['tokens_per_s']:9.0f} "
                  f"{w['gflops']:8.1f}  {w['step_ms'] / r['ragged']['step_ms']:.2f}x")


if __name__ == "__main__":
    main()
