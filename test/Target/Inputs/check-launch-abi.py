#!/usr/bin/env python3
"""Checks that every GPU kernel of an artifacts directory takes the
parameters the CUDA runtime passes (runtime/lib/cuda/CudaBackend.cpp): memrefs
in MLIR's descriptor convention (allocated, aligned, offset, sizes, strides:
3 + 2 * rank 8-byte fields) and index scalars. Prints one line per kernel
kind and exits 1 on the first mismatch."""
import json
import re
import sys


def memref(rank):
    return 3 + 2 * rank


def main(directory):
    manifest = json.load(open(f"{directory}/manifest.json"))
    ptx = open(f"{directory}/{manifest['library']}").read()
    params = {m.group(1): m.group(2).count(".param")
              for m in re.finditer(r"\.entry (\w+)\((.*?)\)", ptx, re.S)}
    seen = set()
    for kernel in manifest["kernels"].values():
        sinks = memref(1) if kernel["sinks"] else 0
        scalars = 3 + (2 if kernel.get("tma") else 0)
        flash = 4 * memref(4) + sinks + scalars
        expected = {
            # q, k, v, [sinks,] out, key count, first row, ring rows, [K and
            # V tensor maps]; the twin writing bf16 rows takes the same
            "entry": flash,
            "entry_out_bf16": flash,
            # split-K: q, k, v, [sinks,] partial out, max, sum, then the same
            "entry_split": 3 * memref(4) + sinks + memref(5) + 2 * memref(4)
            + scalars,
            # in, out, first position (f32 or bf16 rows in)
            "prepare_q": 2 * memref(4) + 1,
            "prepare_k": 2 * memref(4) + 1,
            "prepare_q_bf16": 2 * memref(4) + 1,
            "prepare_k_bf16": 2 * memref(4) + 1,
            # in, out
            "prepare_v": 2 * memref(4),
            # q, k cache, v cache, [sinks,] partial out, max, sum, position,
            # ring rows
            "decode": 3 * memref(4) + sinks + memref(5) + 2 * memref(4) + 2,
            # partial out, max, sum, out
            "decode_combine": memref(5) + 3 * memref(4),
        }
        for role, count in expected.items():
            symbol = kernel.get(role)
            if symbol is None:
                continue
            if symbol not in params:
                sys.exit(f"{symbol}: not in {manifest['library']}")
            if params[symbol] != count:
                sys.exit(f"{symbol}: takes {params[symbol]} parameters, the "
                         f"runtime passes {count}")
            key = (role, bool(kernel["sinks"]), bool(kernel.get("tma")))
            if key not in seen:
                seen.add(key)
                print(f"{role}{' (sinks)' if kernel['sinks'] else ''}"
                      f"{' (tma)' if role.startswith('entry') and kernel.get('tma') else ''}: "
                      f"{count} parameters")
    # bf16 operands: in, out (flat)
    for role, symbol in manifest.get("conversions", {}).items():
        if params.get(symbol) != 2 * memref(1):
            sys.exit(f"{symbol}: takes {params.get(symbol)} parameters, the "
                     f"runtime passes {2 * memref(1)}")
        print(f"conversion {role}: {2 * memref(1)} parameters")


if __name__ == "__main__":
    main(sys.argv[1])
