#!/usr/bin/env python3
"""Baselines for the GPU benchmark, measured in the same run as our kernels.

PyTorch SDPA (flash backend, causal) and FlexAttention (causal, and a sliding
window block mask) on bf16 [B, H, N, D] tensors, and a large device-to-device
copy for decode bandwidth. Prints one JSON object per line:
  {"name", "seq", "window", "ms", "tflops"}   useful TFLOP/s: visible pairs
  {"name": "copy", "bytes", "ms", "gbytes_per_s"}  read + write bytes

Runs on the GPU machine (torch, no MLIR): utils/gpu-suite.sh calls it.
"""
import argparse
import json

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def median_ms(fn, repeat):
    fn()  # warm-up (and compilation)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def visible_pairs(n, window):
    if window is None:
        return n * (n + 1) // 2
    w = min(window, n)
    return w * (w + 1) // 2 + (n - w) * w


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--seq", type=int, nargs="+", default=[8192, 32768])
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    h, d = args.heads, args.head_dim
    flex = torch.compile(flex_attention)

    for n in args.seq:
        q, k, v = (torch.randn(1, h, n, d, device="cuda", dtype=torch.bfloat16)
                   for _ in range(3))

        def report(name, window, ms):
            flops = 2.0 * visible_pairs(n, window) * (d + d) * h
            print(json.dumps({"name": name, "seq": n, "window": window,
                              "ms": ms, "tflops": flops / (ms * 1e-3) / 1e12}),
                  flush=True)

        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            report("sdpa_flash", None, median_ms(
                lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                args.repeat))

        def causal(b, hh, qi, ki):
            return qi >= ki

        def sliding(b, hh, qi, ki):
            return (qi >= ki) & (qi - ki < args.window)

        for name, mask, window in (("flex_causal", causal, None),
                                   ("flex_sliding", sliding, args.window)):
            block = create_block_mask(mask, None, None, n, n, device="cuda")
            report(name, window, median_ms(
                lambda: flex(q, k, v, block_mask=block), args.repeat))
        del q, k, v

    # Decode reads the cache once: compare with a large copy.
    src = torch.empty(2 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), args.repeat)
    print(json.dumps({"name": "copy", "bytes": 2 * src.numel(), "ms": ms,
                      "gbytes_per_s": 2 * src.numel() / (ms * 1e-3) / 1e9}))


if __name__ == "__main__":
    main()
