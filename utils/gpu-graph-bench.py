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

With --ragged B, continuous batching: a step of B sequences whose lengths
spread over 200..1800 (each prefilled alone, selected; each step reads every
sequence's own length from device memory) against a step of B sequences at
their mean length, both eager and from a CUDA graph, and a step of 3/4 of
the ragged sequences (every fourth free) padded to B with -1 entries (a
server's graph of batch B), selected once and selected again before each
step (two orders in turn: each select copies its selection to the device,
queued behind the steps before it, as a server does before each replay):
  {"name": "ragged_step", "schedule", "layers", "batch", "lengths",
   "ragged_ms", "ragged_graph_ms", "uniform_ms", "uniform_graph_ms",
   "live", "padded_ms", "padded_graph_ms", "selected_ms",
   "selected_graph_ms"}

Runs on the GPU machine (torch, the hybrid_attn package, artifacts compiled
by utils/gpu-suite.sh prepare): the suite's bench phase calls it.
"""
import argparse
import itertools
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
    parser.add_argument("--ragged", type=int, nargs="*", default=[],
                        help="batches of sequences at different lengths")
    args = parser.parse_args()
    schedule = hybrid_attn.load(args.artifacts)
    layers = [l for l in schedule.layers if l.get("kernel") and l["causal"]]
    name = os.path.basename(os.path.normpath(args.artifacts))

    def operands(layer, tokens, batch=1):
        """q, k, v (None for shared layers) and sinks of `tokens` tokens."""
        def draw(heads, dim):
            return torch.randn(batch, tokens, heads, dim, device="cuda") * 0.5
        shared = layer["cache"]["policy"] == "shared"
        q = draw(layer["num_heads"], layer["head_dim"])
        k = None if shared else draw(layer["num_kv_heads"], layer["head_dim"])
        v = None if shared else draw(layer["num_kv_heads"], layer["v_head_dim"])
        sinks = torch.zeros(layer["num_heads"], device="cuda") if layer["sinks"] else None
        return q, k, v, sinks

    def prefill(session, context):
        """A prompt of `context` tokens into every layer of the selected
        sequences."""
        prompts = {}  # each layer's k and v, for the layers sharing them
        for layer in layers:
            q, k, v, sinks = operands(layer, context)
            if k is None:
                k, v = prompts[layer["cache"]["source_layer"]]
            prompts[layer["index"]] = (k, v)
            session.prefill(layer["index"], q, k, v, sinks)

    def time_steps(session, batch, before=None):
        """Per step ms of `session`'s whole batch, eager and replayed from
        a CUDA graph (medians); `before` runs before each timed step."""
        step = {layer["index"]: operands(layer, 1, batch) for layer in layers}
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
                if before:
                    before()
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
        return eager, median([time_ms(graph.replay) for _ in range(args.repeat)])

    steps = (2 * args.repeat + 1) * args.steps + 1
    for context in args.context:
        session = schedule.session(1, context + steps)
        prefill(session, context)
        eager, replayed = time_steps(session, 1)
        print(json.dumps({"name": "decode_step", "schedule": name,
                          "layers": len(layers), "context": context,
                          "eager_ms": eager, "graph_ms": replayed,
                          "speedup": eager / replayed}), flush=True)
    def served(lengths):
        """A session whose sequences hold `lengths` tokens, each prompt
        prefilled into its sequence alone (selected)."""
        session = schedule.session(len(lengths), max(lengths) + steps)
        for b, n in enumerate(lengths):
            session.select([b])
            prefill(session, n)
        session.select(None)
        return session

    for batch in args.ragged:
        lengths = [200 + 1600 * b // max(batch - 1, 1) for b in range(batch)]
        mean = sum(lengths) // batch
        times = (time_steps(served(lengths), batch) +
                 time_steps(served([mean] * batch), batch))
        live = [b for b in range(batch) if b % 4 != 3]
        pads = [-1] * (batch - len(live))
        for orders in ([live], [live, live[::-1]]):
            padded = served(lengths)
            padded.select(orders[0] + pads)
            turn = itertools.cycle(orders)
            times += time_steps(padded, batch, before=(
                None if len(orders) == 1 else lambda: padded.select(next(turn) + pads)))
        print(json.dumps({"name": "ragged_step", "schedule": name,
                          "layers": len(layers), "batch": batch,
                          "lengths": [min(lengths), max(lengths)],
                          "ragged_ms": times[0], "ragged_graph_ms": times[1],
                          "uniform_ms": times[2], "uniform_graph_ms": times[3],
                          "live": len(live), "padded_ms": times[4],
                          "padded_graph_ms": times[5], "selected_ms": times[6],
                          "selected_graph_ms": times[7]}),
              flush=True)


if __name__ == "__main__":
    main()
