#!/usr/bin/env python3
"""A whole model's decode step, eager and replayed from a CUDA graph.

At batch 1 a decode step of every attention layer is a few dozen small
launches (the fused prepare, the decode and the combine kernel per layer),
so the host's launch time, not the GPU, can bound it. Captured once in a
CUDA graph (torch.cuda.graph), each replay is the session's next step (the
kernels read every layer's length from device memory). Measures both, in
the same run, over the same session, and prints one JSON object per line:
  {"name": "decode_step", "schedule", "layers", "context", "eager_ms",
   "graph_ms", "speedup"}     per token, all attention layers, CUDA events

Runs on the GPU machine (torch, the hybrid_attn package, artifacts compiled
by utils/gpu-suite.sh prepare): the suite's bench phase calls it.
"""
import argparse
import json
import os

import torch

import hybrid_attn


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("artifacts", help="compiled artifacts (a whole model)")
    parser.add_argument("--context", type=int, nargs="+", default=[1024])
    parser.add_argument("--steps", type=int, default=32,
                        help="tokens timed per measurement")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    schedule = hybrid_attn.load(args.artifacts)
    layers = [l for l in schedule.layers if l.get("kernel") and l["causal"]]
    name = os.path.basename(os.path.normpath(args.artifacts))

    def operands(layer, tokens):
        """q, k, v (None for shared layers) and sinks of `tokens` tokens."""
        def draw(heads, dim):
            return torch.randn(1, tokens, heads, dim, device="cuda") * 0.5
        shared = layer["cache"]["policy"] == "shared"
        q = draw(layer["num_heads"], layer["head_dim"])
        k = None if shared else draw(layer["num_kv_heads"], layer["head_dim"])
        v = None if shared else draw(layer["num_kv_heads"], layer["v_head_dim"])
        sinks = torch.zeros(layer["num_heads"], device="cuda") if layer["sinks"] else None
        return q, k, v, sinks

    for context in args.context:
        total = context + (2 * args.repeat + 1) * args.steps + 1
        session = schedule.session(1, total)
        prompts = {}  # each layer's k and v, for the layers sharing them
        for layer in layers:
            q, k, v, sinks = operands(layer, context)
            if k is None:
                k, v = prompts[layer["cache"]["source_layer"]]
            prompts[layer["index"]] = (k, v)
            session.prefill(layer["index"], q, k, v, sinks)
        step = {layer["index"]: operands(layer, 1) for layer in layers}
        outs = {}

        def decode_step():
            for layer in layers:
                q, k, v, sinks = step[layer["index"]]
                outs[layer["index"]] = session.decode(layer["index"], q, k, v, sinks)

        def time_ms(run):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(args.steps):
                run()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / args.steps

        decode_step()  # warm-up: every function loaded, scratch grown
        torch.cuda.synchronize()
        eager = median([time_ms(decode_step) for _ in range(args.repeat)])
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            decode_step()
        replayed = median([time_ms(graph.replay) for _ in range(args.repeat)])
        print(json.dumps({"name": "decode_step", "schedule": name,
                          "layers": len(layers), "context": context,
                          "eager_ms": eager, "graph_ms": replayed,
                          "speedup": eager / replayed}), flush=True)


if __name__ == "__main__":
    main()
