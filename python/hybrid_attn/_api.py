"""The Python layer: compile through hybrid-compile, run through _runtime."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _runtime


class HybridError(RuntimeError):
    """A compile or runtime failure, with the compiler's or runtime's message."""


class OutOfMemoryError(HybridError, MemoryError):
    """Caches or scratch that host or device memory cannot hold: a smaller
    batch, max_seq or step may fit."""


def _find_compiler() -> str:
    """hybrid-compile: $HYBRID_COMPILE, next to the package (installed or in
    the build tree), or on PATH."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("HYBRID_COMPILE"),
                  os.path.join(here, "bin", "hybrid-compile"),
                  os.path.join(here, "..", "..", "bin", "hybrid-compile"),
                  shutil.which("hybrid-compile")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
    raise HybridError("hybrid-compile not found: set HYBRID_COMPILE or put it on PATH "
                      "(hybrid_attn.load opens kernels compiled elsewhere)")


def _run_compiler(args: list[str]) -> str:
    result = subprocess.run([_find_compiler()] + args, capture_output=True, text=True)
    if result.returncode != 0:
        raise HybridError(result.stderr.strip() or f"hybrid-compile failed ({result.returncode})")
    return result.stdout


def _wrap(call, *args):
    try:
        return call(*args)
    except _runtime.OutOfMemoryError as error:
        raise OutOfMemoryError(str(error)) from None
    except RuntimeError as error:
        raise HybridError(str(error)) from None


def _as_array(x: Any, name: str) -> Any:
    """An operand as the runtime takes it: float32 or bfloat16, C-contiguous.
    NumPy arrays and torch tensors of other dtypes or layouts are copied once;
    other DLPack tensors are viewed as NumPy arrays where NumPy can hold them
    (host, not bfloat16), else pass as they are."""
    if x is None:
        return x
    if _is_torch(x):
        import torch
        if x.is_complex():
            raise TypeError(f"{name}: elements must be real, got {x.dtype}")
        if x.dtype not in (torch.float32, torch.bfloat16):
            x = x.float()
        return x.contiguous()
    if not isinstance(x, np.ndarray) and hasattr(x, "__dlpack__"):
        try:
            x = np.from_dlpack(x)
        except (BufferError, TypeError, ValueError, RuntimeError):
            return x  # CUDA memory, bfloat16: the runtime reads it as it is
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name}: elements must be real, got {x.dtype}")
        return np.ascontiguousarray(x, dtype=np.float32)
    raise TypeError(f"{name}: expected a NumPy array or a DLPack tensor, got {type(x).__name__}")


def _as_kv(k: Any, v: Any) -> tuple:
    """k and v as _as_array makes them, v still k itself where it was (K=V
    layers' values)."""
    same = v is k
    k = _as_array(k, "k")
    return k, k if same else _as_array(v, "v")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _torch_stream(operands) -> Optional[int]:
    """The current torch stream of the first CUDA tensor among `operands`
    (its CUstream, 0 for the default stream), else None: the call queues
    its work there, ordered with torch's, and returns before it runs when
    every operand is on the device, as a torch operation does."""
    for x in operands:
        if _is_torch(x) and x.is_cuda:
            import torch
            return torch.cuda.current_stream(x.device).cuda_stream
    return None


def _current_torch_stream() -> Optional[int]:
    """torch's current CUDA stream on the models' GPU ($HYBRID_CUDA_DEVICE)
    where torch has initialized CUDA, else None: a call without tensors
    (select) queues its copy where the torch work around it runs (a CUDA
    graph's replay after it, say)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return None
    try:
        device = int(os.environ.get("HYBRID_CUDA_DEVICE", "0"))
    except ValueError:
        device = 0  # the runtime reads a malformed value as 0 too
    return torch.cuda.current_stream(device).cuda_stream


def _repeat_batch(x: Any, repeat: int) -> Any:
    """x [1, ...] as `repeat` sequences (x itself for 1)."""
    if repeat == 1:
        return x
    if _is_torch(x):
        return x.expand(repeat, *x.shape[1:]).contiguous()
    if not hasattr(x, "__array__"):
        raise HybridError(f"restore: a save of batch 1 in {type(x).__name__} arrays "
                          f"cannot fill {repeat} sequences (save into torch tensors or "
                          "NumPy arrays)")
    return np.repeat(np.asarray(x), repeat, axis=0)


class Schedule:
    """A compiled schedule: its summary and cache plan, its IR, its kernels."""

    def __init__(self, source: Optional[str], artifacts_dir: str, max_seq: Optional[int],
                 owned_dir: Optional[tempfile.TemporaryDirectory]):
        self._source = source
        self._max_seq = max_seq
        self._owned = owned_dir
        self.artifacts_dir = artifacts_dir
        # The runtime first: it names what is wrong in a bad manifest.
        self._model = _wrap(_runtime.Model, artifacts_dir, 0)
        with open(os.path.join(artifacts_dir, "manifest.json")) as f:
            self.manifest: dict = json.load(f)
        self._ir: Optional[str] = None
        self._extra_args: list[str] = []

    @property
    def layers(self) -> list[dict]:
        """Per layer: kind, heads, dims, mask, positional, scores, cache plan."""
        return self.manifest["layers"]

    @property
    def cache_plan(self) -> dict:
        """kv_cache_bytes: max_seq, storage, total, all_full_baseline."""
        return self.manifest.get("kv_cache_bytes", {})

    @property
    def ir(self) -> str:
        """The schedule in the hybrid dialect (caches planned)."""
        if self._ir is None:
            if self._source is None:
                raise HybridError(
                    f"{self.artifacts_dir}: a schedule loaded from its artifacts has no "
                    "source to print (kernels_ir holds its kernels)")
            args = [self._source, "--emit", "mlir"] + self._extra_args
            if self._max_seq:
                args += ["--max-seq", str(self._max_seq)]
            self._ir = _run_compiler(args)
        return self._ir

    @property
    def kernels_ir(self) -> str:
        """The kernels before LLVM lowering (scf + vector + memref)."""
        with open(os.path.join(self.artifacts_dir, "kernels.mlir")) as f:
            return f.read()

    def set_key_scale(self, layer: int, scale) -> None:
        """A K=V layer's key scale [head_dim] (float32; None restores ones): its
        keys are its values (passed as k) times it per dim, then rotated.
        Gemma 4's K=V layers take k_norm's weight here, k being the projection
        v_norm gives. Set it before the layer's first call: it applies to the
        layer and the layers reading its cache, in every session (a later
        change reaches every cached token: caches keep the values, and
        kernels derive keys at each use)."""
        scale = _as_array(scale, "scale")
        if _is_torch(scale):
            scale = scale.float()
        _wrap(self._model.set_key_scale, layer, scale)

    def session(self, batch: int, max_seq: int, max_step_tokens: int = 1) -> "Session":
        """Per-layer KV caches for `batch` sequences of up to `max_seq` tokens."""
        return Session(self, batch, max_seq, max_step_tokens)


class Session:
    """Prefill then decode, the runtime owning every layer's cache."""

    def __init__(self, schedule: Schedule, batch: int, max_seq: int, max_step_tokens: int):
        self.schedule = schedule
        self.batch = batch
        # The sequences calls act on (select); None: the whole batch.
        self.selected: Optional[list[int]] = None
        self._session = _wrap(_runtime.Session, schedule._model, batch, max_seq,
                              max_step_tokens)

    @property
    def _call_batch(self) -> int:
        """The batch dim of a call's tensors: the selected sequences'."""
        return self.batch if self.selected is None else len(self.selected)

    def _out(self, layer: int, q: Any) -> Any:
        """An output like q: its device, float32 or (q bfloat16) bfloat16."""
        spec = self.schedule.layers[layer] if 0 <= layer < len(self.schedule.layers) else {}
        value_dim = spec.get("v_head_dim") or spec.get("head_dim") or q.shape[-1]
        shape = tuple(q.shape[:-1]) + (value_dim,)
        if _is_torch(q):
            import torch
            return torch.empty(shape, dtype=q.dtype, device=q.device)
        if isinstance(q, np.ndarray):
            return np.empty(shape, dtype=np.float32)
        raise TypeError(f"out: pass an output array for {type(q).__name__} "
                        "inputs (outputs are made for NumPy arrays and torch "
                        "tensors)")

    def _run(self, method, layer, q, k, v, sinks, out):
        if q is None:
            raise TypeError("q: expected a NumPy array or a DLPack tensor, got None")
        q = _as_array(q, "q")
        k, v = _as_kv(k, v)  # K=V layers: v must be k itself
        sinks = _as_array(sinks, "sinks")
        result = self._out(layer, q) if out is None else out
        _wrap(method, layer, q, k, v, sinks, result,
              _torch_stream((q, k, v, sinks, result)))
        return result

    def prefill(self, layer: int, q, k, v, sinks=None, out=None):
        """Attention of a prompt q [B, S, Hq, D], k [B, S, Hkv, D], v [B, S, Hkv, Dv]
        (sinks [Hq] for layers with sinks); the layer's cache keeps what its policy
        holds. Returns out [B, S, Hq, Dv] (written into `out` when given). K=V
        layers' values are k: pass v None or k itself."""
        return self._run(self._session.prefill, layer, q, k, v, sinks, out)

    def decode(self, layer: int, q, k=None, v=None, sinks=None, out=None):
        """T new tokens per sequence (q [B, T, Hq, D]; k, v None for layers that
        read another layer's cache): appended to the cache, attending to it.
        T is at most the session's max_step_tokens; steps of many tokens (a
        long prompt's later chunks) run at prefill speed."""
        return self._run(self._session.decode, layer, q, k, v, sinks, out)

    def append(self, layer: int, k, v=None) -> None:
        """Adds T tokens' k [B, T, Hkv, D] and v [B, T, Hkv, Dv] to the layer's
        cache without attending (keys before RoPE, as prefill and decode take
        them; write_cache takes them as the cache holds them). K=V layers' v is
        None or k."""
        k, v = _as_kv(k, v)
        _wrap(self._session.append, layer, k, v, _torch_stream((k, v)))

    def read_cache(self, layer: int, first: Optional[int] = None,
                   count: Optional[int] = None, out: Optional[tuple] = None) -> tuple:
        """Positions first..first+count-1 of the layer's own cache (by default
        every one it holds: cache_info's first_held to its length; a ring or
        chunk cache holds its last rows only) as its steps attend over them:
        (k [B, T, Hkv, D] rotated by the layer's RoPE, as transformers' caches
        hold keys; v [B, T, Hkv, Dv]), each element as the cache holds it
        (f8 times its scales). float32 NumPy arrays, or written into out=(k, v)
        (arrays the runtime writes: CUDA tensors too for GPU schedules). K=V
        layers keep values only: their k is None."""
        info = self.cache_info(layer)
        if first is None:
            first = info["first_held"]
        if count is None:
            count = max(0, info["length"] - first)
        if out is None:
            out = self._empty_rows(layer, info, count, lambda shape: np.empty(shape, np.float32))
        k, v = out
        _wrap(self._session.read_cache, layer, first, k, v, _torch_stream((k, v)))
        return k, v

    def _empty_rows(self, layer: int, info: dict, count: int,
                    empty: Callable[[tuple], Any]) -> tuple:
        """(k, v) from empty(shape) for `count` positions of the layer's
        cache rows (info: its cache_info); k None where the layer keeps
        values only (K=V), v None where it keeps keys only (latent)."""
        spec = self.schedule.layers[layer]
        rows = (self._call_batch, count, spec["num_kv_heads"])
        k = None if info["k_eq_v"] else empty(rows + (spec["head_dim"],))
        v = None if info["latent"] else empty(
            rows + (spec.get("v_head_dim") or spec["head_dim"],))
        return k, v

    def write_cache(self, layer: int, k, v, first: Optional[int] = None) -> None:
        """Stores T tokens as read_cache gives them (keys rotated) at positions
        first.. of the layer's cache: its length (the default) or, into an
        empty cache, the first position a restored ring or chunk cache held
        (the layer's next step must see no earlier key; a step of a layer
        reading it that would is refused).
        For f8 caches set the scales they were read at first
        (set_cache_scales): what was read is then held exactly. K=V layers'
        k is None."""
        if first is None:
            first = self.cache_info(layer)["length"]
        k, v = _as_array(k, "k"), _as_array(v, "v")
        _wrap(self._session.write_cache, layer, first, k, v, _torch_stream((k, v)))

    def save(self, empty: Optional[Callable[[tuple], Any]] = None) -> dict:
        """Every layer's cache as read_cache gives it, with its first position
        and f8 scales: restore() puts it into a session of the same schedule
        (a prompt prefix that many requests share, a conversation to resume).
        Host float32 NumPy arrays, or those empty(shape) gives (arrays
        read_cache writes): GPU sessions keep a save on the device with
        `empty=lambda shape: torch.empty(shape, dtype=torch.bfloat16,
        device="cuda")`, in the caches' own bf16 (no conversion, a quarter
        of the host arrays' bytes and no host copy). The layers that read
        another's cache keep nothing (they catch up at their next step)."""
        saved = {"batch": self._call_batch, "layers": {}}
        for layer in range(len(self.schedule.layers)):
            info = self.cache_info(layer)
            if info["rows"] == 0:
                continue
            count = max(0, info["length"] - info["first_held"])
            # No rows (a chunk cache at its chunk's start keeps its length
            # only): host arrays, not empty allocations.
            out = None if empty is None or count == 0 else self._empty_rows(
                layer, info, count, empty)
            k, v = self.read_cache(layer, out=out)
            saved["layers"][layer] = {"first": info["first_held"], "k": k, "v": v,
                                      "dtype": info["dtype"],
                                      "scales": self.cache_scales(layer)}
        return saved

    def restore(self, saved: dict) -> None:
        """Empties every cache and fills it with what save() gave (of a session
        of the same schedule): the sequences go on from where they were. A
        save of batch 1 fills every sequence (a shared prompt prefix). With a
        selection (select), the selected sequences only: a prefix restored
        into a new request's sequence while the others go on (f8 caches:
        at the scales the others hold, which the save's must equal)."""
        batch = self._call_batch
        repeat = 1
        if saved["batch"] != batch:
            if saved["batch"] != 1:
                raise HybridError(f"restore: a save of batch {saved['batch']} into "
                                  f"{batch} sequences (a save of batch 1 fills any batch)")
            repeat = batch
        if self.selected is None:
            self.reset()
        else:
            self.truncate(0)
        for layer, held in saved["layers"].items():
            if held["dtype"] == "f8":
                self.set_cache_scales(layer, *held["scales"])
            k, v = (None if x is None else _repeat_batch(x, repeat)
                    for x in (held["k"], held["v"]))
            self.write_cache(layer, k, v, first=held["first"])

    def reset(self) -> None:
        """Empties every cache, of every sequence (allocations are kept)."""
        self._session.reset()

    def select(self, sequences=None) -> None:
        """Continuous batching: the calls that follow (prefill, decode, append,
        truncate, read_cache, write_cache, save, restore; cache_info's length
        and first_held) act on these sequences of the batch (distinct
        indices; a list, NumPy array or tensor), whose tensors' batch dim
        holds them in this order; -1 is padding, which calls skip (its output
        rows are zeros). Each sequence keeps its own length, so a
        new request is prefilled into a free sequence while the others
        generate, the live ones step together, and truncate(0) frees a
        finished one. None: the whole batch again (the default; `selected`
        holds the current selection, None for the whole batch). On CPUs a
        step's sequences run as one batch whatever their lengths; on GPUs
        too (one launch per kernel), and prompts once per run of
        consecutive sequences. A CUDA graph that captured a step of N
        entries steps, at each replay, the first N of the selection current
        when it runs (pad it with -1 to N): on GPUs the selection is copied
        to the device on torch's current stream, without waiting for it."""
        if sequences is None:
            sequences = []
        elif hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        sequences = [int(i) for i in sequences]
        on_gpu = self.schedule.manifest["target"].startswith("cuda")
        _wrap(self._session.select, sequences,
              _current_torch_stream() if on_gpu else None)
        whole = sequences in ([], list(range(self.batch)))
        self.selected = None if whole else sequences

    def reorder(self, order) -> None:
        """Beam search: sequence i of every cache takes what sequence
        order[i] holds (a list, NumPy array or tensor of `batch` indices,
        which may repeat: transformers' beam_idx). Copies the rows holding
        tokens of each sequence that changes."""
        if hasattr(order, "tolist"):
            order = order.tolist()
        _wrap(self._session.reorder, [int(i) for i in order])

    def truncate(self, length: int) -> None:
        """Speculative decoding: forgets the tokens at positions `length` and
        later (rejected drafts), every layer's steps going on from there
        (of the selected sequences: truncate(0) frees one).
        Ring and chunk caches go back max_step_tokens tokens at least; further
        where their rows still hold what the next step sees (else an error,
        before any layer changes)."""
        _wrap(self._session.truncate, length)

    @property
    def cache_bytes(self) -> int:
        """Bytes of every layer's cache together."""
        return self._session.cache_bytes()

    def cache_info(self, layer: int) -> dict:
        """policy, rows, bytes, length (tokens seen; of the first selected
        sequence, with a selection), source_layer, k_eq_v,
        mirror_rows (GPU rings: rows past `rows` repeating their first, for
        the flash kernel's key tiles; `bytes` counts them), first_held (the
        oldest position the cache, or its source's, holds) and dtype (what
        its rows hold: f32, bf16, f16 or f8)."""
        return _wrap(self._session.cache_info, layer)

    def set_cache_scales(self, layer: int, k_scale: float, v_scale: float) -> None:
        """f8 caches (kv_dtype="f8"): the layer's cache stores keys / k_scale
        and values / v_scale rounded to E4M3FN, and its steps read them times
        the scales (vLLM's k_scale and v_scale: a calibrated checkpoint's, or
        the largest magnitude of representative keys and values over 448).
        Set them while the layer's cache is empty (after the session is made
        or reset). K=V layers keep one tensor: k_scale must equal v_scale.
        Layers reading another layer's cache read it at that layer's scales."""
        _wrap(self._session.set_cache_scales, layer, k_scale, v_scale)

    def cache_scales_from_prompt(self, layer: int, k_target: float = 200.0,
                                 v_target: float = 100.0) -> None:
        """f8 caches: scales from each prompt instead (the tokens that enter
        the layer's empty cache): their largest key magnitude (rotated, as
        the cache holds keys) over k_target, their largest value magnitude
        over v_target, leaving later tokens room up to 448 (vLLM's
        calculate_kv_scales: 200 and 100). set_cache_scales ends it."""
        _wrap(self._session.cache_scales_from_prompt, layer, k_target, v_target)

    def cache_scales(self, layer: int) -> tuple:
        """(k_scale, v_scale) the layer's steps read its cache at; (1.0, 1.0)
        unless set."""
        return _wrap(self._session.cache_scales, layer)


def compile(model: Union[str, os.PathLike, dict], target: str = "cpu",
            tuning_db: Optional[str] = None, max_seq: Optional[int] = None,
            output_dir: Optional[str] = None,
            external_positional: bool = False,
            tensor_cores: Optional[str] = None, tma: bool = False,
            warps: Optional[int] = None,
            stages: Optional[int] = None,
            rescale_threshold: Optional[float] = None,
            softmax_overlap: bool = False,
            warp_specialized: bool = False,
            ping_pong: bool = False,
            value_slice: Optional[int] = None,
            kv_dtype: Optional[str] = None,
            mla_cache: Optional[str] = None) -> Schedule:
    """Compiles a Hugging Face config.json, a hybrid-schedule spec (a path, or
    the spec itself as a dict) or a .mlir schedule into kernels for `target`.
    With `external_positional`, q and k are expected already rotated (and
    temperature-scaled), as Hugging Face attention modules pass them.
    `tensor_cores` ("mma.sync" or "wgmma") and `tma` choose the flash
    kernels' instructions on "cuda:sm_90a" (hybrid-compile's --tensor-cores
    and --tma); `warps` (4 or 8) the warps of a flash CTA on GPU targets;
    `stages` (1 to 4, with `tma`) the buffers per K and V tile;
    `rescale_threshold` (0 to 32, default 8) how many powers of two a score
    may pass its row's running max before the flash kernels rescale;
    `softmax_overlap` (with `tma` and `stages` >= 2) overlaps each tile's
    softmax with the tensor cores (hybrid-compile's --softmax-overlap);
    `warp_specialized` (with `tma` and `stages` >= 2) gives each flash CTA a
    producer warp that issues the loads (--warp-specialized); `ping_pong`
    (with 8 warps, the overlap and `warp_specialized`) has its two
    warpgroups take turns issuing their products (--ping-pong);
    `value_slice` (a multiple of 16, of 64 with wgmma, up to 256; default
    256) bounds the value dims one flash CTA accumulates, each slice
    computing Q K^T again (--value-slice: wide heads' accumulators fit in
    fewer registers). `kv_dtype` ("f32", the CPU default, "bf16", "f16"
    or "f8") is the element type of the caches sessions keep
    (hybrid-compile's --kv-dtype; GPU caches are bf16): bf16 and f16 halve
    a CPU decode step's reads, f8 (OCP E4M3FN, unscaled: finite values up
    to 448) quarters them, the steps attending over keys and values
    rounded so. `mla_cache` ("decompressed", the default, or "latent";
    hybrid-compile's --mla-cache) is how a Hugging Face config's
    multi-head latent attention compiles: keys and values per head as
    transformers' attention modules pass them, or the absorbed form over a
    latent cache (one KV head of kv_lora_rank + qk_rope_head_dim dims whose
    first kv_lora_rank are the values: queries' no-RoPE part times W_UK
    first, outputs times W_UV after; CPU targets)."""
    owned = None
    scratch = tempfile.TemporaryDirectory(prefix="hybrid_attn_")
    if isinstance(model, dict):
        source = os.path.join(scratch.name, "model.json")
        with open(source, "w") as f:
            json.dump(model, f)
    else:
        source = os.fspath(model)
    if output_dir is None:
        owned = scratch
        output_dir = os.path.join(scratch.name, "artifacts")
    args = [source, "--target", target, "--emit", "artifacts", "-o", output_dir]
    if max_seq:
        args += ["--max-seq", str(max_seq)]
    if tuning_db:
        args += ["--tuning-db", os.fspath(tuning_db)]
    if external_positional:
        args += ["--external-positional"]
    if tensor_cores:
        args += ["--tensor-cores", tensor_cores]
    if tma:
        args += ["--tma"]
    if warps:
        args += ["--warps", str(warps)]
    if stages:
        args += ["--stages", str(stages)]
    if rescale_threshold is not None:
        args += ["--rescale-threshold", repr(float(rescale_threshold))]
    if softmax_overlap:
        args += ["--softmax-overlap"]
    if warp_specialized:
        args += ["--warp-specialized"]
    if ping_pong:
        args += ["--ping-pong"]
    if value_slice:
        args += ["--value-slice", str(value_slice)]
    if kv_dtype:
        args += ["--kv-dtype", kv_dtype]
    if mla_cache:
        args += ["--mla-cache", mla_cache]
    _run_compiler(args)
    schedule = Schedule(source, output_dir, max_seq, owned or scratch)
    schedule._extra_args = (["--external-positional"] if external_positional else []) + (
        ["--mla-cache", mla_cache] if mla_cache else [])
    return schedule


def load(artifacts_dir: Union[str, os.PathLike]) -> Schedule:
    """Opens kernels compiled before (`compile(..., output_dir=D)` or
    `hybrid-compile --emit artifacts -o D`), here or on another machine:
    no compiler needed, so a machine with the runtime alone (a GPU server)
    serves them."""
    artifacts_dir = os.fspath(artifacts_dir)
    if not os.path.isfile(os.path.join(artifacts_dir, "manifest.json")):
        raise HybridError(f"{artifacts_dir}: no manifest.json (not a directory of "
                          "compiled artifacts)")
    return Schedule(None, artifacts_dir, None, None)
