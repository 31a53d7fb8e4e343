#!/usr/bin/env python3
"""Checks that every GPU kernel of an artifacts directory takes the
parameters the CUDA runtime passes (runtime/lib/cuda/CudaBackend.cpp): memrefs
in MLIR's descriptor convention (allocated, aligned, offset, sizes, strides:
3 + 2 * rank 8-byte fields), index scalars and, last, a TMA kernel's two
tensor maps (128 bytes each, by value). Prints one line per kernel kind and
exits 1 on the first mismatch."""
import json
import re
import sys


def memref(rank):
    return 3 + 2 * rank


def main(directory):
    manifest = json.load(open(f"{directory}/manifest.json"))
    ptx = open(f"{directory}/{manifest['library']}").read()
    # Each parameter's bytes: `.param .u64 name` or `.param .align A .b8
    # name[N]`.
    def sizes(declarations):
        return [int(array.group(1)) if (array := re.search(r"\[(\d+)\]", d))
                else 8 for d in declarations.split(",") if ".param" in d]
    params = {m.group(1): sizes(m.group(2))
              for m in re.finditer(r"\.entry (\w+)\((.*?)\)", ptx, re.S)}
    seen = set()
    for kernel in manifest["kernels"].values():
        sinks = memref(1) if kernel["sinks"] else 0
        scalars = 3 + (2 if kernel.get("tma") else 0)
        flash = 4 * memref(4) + sinks + scalars
        keyScale = memref(1) if kernel.get("derives_keys") else 0
        # lengths and sequences (StepLengths): two [N] int64 memrefs
        lengths = 2 * memref(1)
        decode = (3 * memref(4) + sinks + keyScale + memref(5) +
                  3 * memref(4) + memref(1) + lengths + 1)
        expected = {
            # q, k, v, [sinks,] out, key count, first row, ring rows, [K and
            # V tensor maps]; the twin writing bf16 rows takes the same
            "entry": flash,
            "entry_out_bf16": flash,
            # split-K: q, k, v, [sinks,] partial out, max, sum, then the same
            "entry_split": 3 * memref(4) + sinks + memref(5) + 2 * memref(4)
            + scalars,
            # in, out, lengths and sequences (the first positions; f32 or
            # bf16 rows in), and for keys the key scale [D]
            "prepare_q": 2 * memref(4) + lengths,
            "prepare_k": 2 * memref(4) + lengths + memref(1),
            "prepare_q_bf16": 2 * memref(4) + lengths,
            "prepare_k_bf16": 2 * memref(4) + lengths + memref(1),
            # in, out
            "prepare_v": 2 * memref(4),
            # q, k cache, v cache, [sinks,] [key scale,] partial out, max,
            # sum, out (f32 or bf16 rows), counters, lengths, sequences,
            # ring rows
            "decode": decode,
            "decode_bf16": decode,
            # partial out, max, sum, out (f32 or bf16 rows), lengths,
            # sequences, count
            "decode_combine": memref(5) + 3 * memref(4) + lengths + 1,
            "decode_combine_bf16": memref(5) + 3 * memref(4) + lengths + 1,
            # q, prepared q, new k, new v, k cache, v cache, lengths,
            # sequences, key scale, ring rows (f32 or bf16 rows in)
            "prepare_step": 6 * memref(4) + lengths + memref(1) + 1,
            "prepare_step_bf16": 6 * memref(4) + lengths + memref(1) + 1,
        }
        for role, count in expected.items():
            symbol = kernel.get(role)
            if symbol is None:
                continue
            if symbol not in params:
                sys.exit(f"{symbol}: not in {manifest['library']}")
            maps = 2 if role.startswith("entry") and kernel.get("tma") else 0
            passed = [8] * (count - maps) + [128] * maps
            if params[symbol] != passed:
                sys.exit(f"{symbol}: takes {len(params[symbol])} parameters "
                         f"of {params[symbol]} bytes, the runtime passes "
                         f"{count} of {passed}")
            key = (role, bool(kernel["sinks"]), bool(kernel.get("tma")))
            if key not in seen:
                seen.add(key)
                print(f"{role}{' (sinks)' if kernel['sinks'] else ''}"
                      f"{' (tma)' if maps else ''}: {count} parameters"
                      f"{', the last 2 tensor maps of 128 bytes' if maps else ''}")
    # bf16 operands: in, out (flat)
    for role, symbol in manifest.get("conversions", {}).items():
        if params.get(symbol) != [8] * (2 * memref(1)):
            sys.exit(f"{symbol}: takes parameters of {params.get(symbol)} "
                     f"bytes, the runtime passes {2 * memref(1)} of 8")
        print(f"conversion {role}: {2 * memref(1)} parameters")
    # new rows, cache rows (keys, then values), lengths, sequences, ring
    # rows; lengths, sequences, count
    cache_kernels = {"store_rows": 4 * memref(3) + 2 * memref(1) + 1,
                     "advance_length": 2 * memref(1) + 1}
    for role, symbol in manifest.get("cache_kernels", {}).items():
        count = cache_kernels[role]
        if params.get(symbol) != [8] * count:
            sys.exit(f"{symbol}: takes parameters of {params.get(symbol)} "
                     f"bytes, the runtime passes {count} of 8")
        print(f"cache kernel {role}: {count} parameters")


if __name__ == "__main__":
    main(sys.argv[1])
