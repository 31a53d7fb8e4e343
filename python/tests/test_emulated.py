"""hybrid_attn on GPU artifacts without a GPU: the CUDA backend under the
project's PTX emulator (HYBRID_CUDA_DRIVER names it; lit's
test/Python/emulated.test sets it), host NumPy arrays copied in and out,
every layer kind of SPEC (ring, chunk and shared caches, softcap, sinks,
RoPE and NoPE) through prefill and multi-token decode, against the NumPy
reference at bf16 tolerance. Skipped unless HYBRID_CUDA_DRIVER is set; with
HYBRID_CUDA_DRIVER=libcuda.so.1 the same tests run on a GPU (the GPU
suite's python phase)."""
import ctypes
import os
import re
import subprocess
import sys

import hybrid_attn
import numpy as np
import pytest

from bfloat16 import KDL_BFLOAT, BFloat16Array, dlpack_capsule
from prebuilt import compile_or_load
from reference import attention
from test_continuous_batching import Served, check_padding_entries, check_restore_a_prefix
from test_hybrid_attn import (K_EQ_V_SPEC, SPEC, check_key_scale,
                              check_key_scale_reaches_cached_tokens,
                              check_read_cache, check_reorder,
                              check_save_restore,
                              check_shared_layer_skips_tokens,
                              check_threads_take_turns, check_truncate,
                              relative_error)

pytestmark = pytest.mark.skipif(not os.environ.get("HYBRID_CUDA_DRIVER"),
                                reason="HYBRID_CUDA_DRIVER not set")


# The default mma.sync kernels, the same in value slices of 32 (two CTAs per
# head), and Hopper's wgmma with two-stage TMA tile loads in CTAs of two
# warpgroups taking turns (ping-pong), softmax overlapping the tensor cores,
# a producer warpgroup issuing the loads, rescaling whenever a row max grows.
@pytest.fixture(scope="module",
                params=["mma.sync", "mma.sync, value slices of 32",
                        "wgmma+tma, 8 warps, 2 stages, softmax overlap, "
                        "warp-specialized, ping-pong, eager rescaling"])
def schedule(request):
    hopper = not request.param.startswith("mma.sync")
    sliced = request.param.endswith("value slices of 32")
    return compile_or_load(SPEC, target="cuda:sm_90a", max_seq=256,
                               tensor_cores="wgmma" if hopper else None,
                               tma=hopper, warps=8 if hopper else None,
                               stages=2 if hopper else None,
                               rescale_threshold=0 if hopper else None,
                               softmax_overlap=hopper,
                               warp_specialized=hopper, ping_pong=hopper,
                               value_slice=32 if sliced else None)


@pytest.mark.parametrize("step", [1, 3])
def test_session_matches_reference(schedule, step):
    rng = np.random.default_rng(step)
    batch, prompt, steps = 2, 21, 3
    total = prompt + steps * step
    session = schedule.session(batch, total, max_step_tokens=step)

    # Scores of moderate size: bf16 rounding alone stays near 5e-3.
    def inputs(layer):
        shape = (batch, total)
        q = rng.uniform(-0.5, 0.5, shape + (layer["num_heads"], layer["head_dim"]))
        k = rng.uniform(-1, 1, shape + (layer["num_kv_heads"], layer["head_dim"]))
        v = rng.uniform(-1, 1, shape + (layer["num_kv_heads"], layer["v_head_dim"]))
        return q.astype(np.float32), k.astype(np.float32), v.astype(np.float32)

    data = {i: inputs(layer) for i, layer in enumerate(schedule.layers)}
    data[3] = (data[3][0],) + data[0][1:]  # the shared layer reads layer 0's k, v
    sinks = {1: rng.standard_normal(4).astype(np.float32)}
    outs = {i: np.zeros((batch, total, 4, 64), np.float32) for i in data}
    for i, (q, k, v) in data.items():
        outs[i][:, :prompt] = session.prefill(i, q[:, :prompt], k[:, :prompt],
                                              v[:, :prompt], sinks.get(i))
    for s in range(steps):
        at = slice(prompt + s * step, prompt + (s + 1) * step)
        for i, (q, k, v) in data.items():
            shared = i == 3
            outs[i][:, at] = session.decode(
                i, np.ascontiguousarray(q[:, at]),
                None if shared else np.ascontiguousarray(k[:, at]),
                None if shared else np.ascontiguousarray(v[:, at]), sinks.get(i))
    for i, (q, k, v) in data.items():
        ref = attention(schedule.layers[i], q, k, v, sinks.get(i))
        assert relative_error(outs[i], ref) < 2e-2, i
    assert session.cache_info(3)["bytes"] == 0  # shared: no storage
    # The manifest's plan (bf16; K=V layers keep their values only) is what
    # the device caches take per row, mirror rows of rings included.
    for i, layer in enumerate(schedule.layers):
        info = session.cache_info(i)
        rows = info["rows"] + info["mirror_rows"]
        assert info["bytes"] == batch * rows * layer["cache"]["bytes_per_token"], i
    assert schedule.cache_plan["storage"] == "bf16"


@pytest.fixture(scope="module")
def k_eq_v_schedule():
    return compile_or_load(K_EQ_V_SPEC, target="cuda:sm_90a", max_seq=64)


def test_k_eq_v_cache_is_planned_as_allocated(k_eq_v_schedule):
    schedule = k_eq_v_schedule
    layer = schedule.layers[0]
    assert layer["cache"]["k_eq_v"]
    session = schedule.session(1, 16)
    rng = np.random.default_rng(0)
    q = rng.uniform(-0.5, 0.5, (1, 16, 4, 64)).astype(np.float32)
    k = rng.uniform(-1, 1, (1, 16, 2, 64)).astype(np.float32)
    out = session.prefill(0, q, k, k)
    assert relative_error(out, attention(layer, q, k, k)) < 2e-2
    info = session.cache_info(0)
    # Raw keys as values, one bf16 tensor: the kernels derive the keys.
    assert layer["cache"]["bytes_per_token"] == 2 * 64 * 2
    assert info["bytes"] == info["rows"] * layer["cache"]["bytes_per_token"]


def test_key_scale(k_eq_v_schedule):
    check_key_scale(k_eq_v_schedule, 2e-2)


def test_key_scale_reaches_cached_tokens(k_eq_v_schedule):
    check_key_scale_reaches_cached_tokens(k_eq_v_schedule, 2e-2)


def test_bfloat16_arrays_in_and_out(schedule):
    """bfloat16 operands and outputs (a torch bfloat16 tensor's DLPack dtype)
    go to the kernels as they are: no float32 copies on the way."""
    rng = np.random.default_rng(11)
    batch, prompt = 2, 19
    session = schedule.session(batch, prompt + 1)
    layer = schedule.layers[0]

    def operands(length):
        shape = (batch, length)
        return (BFloat16Array(rng.uniform(-0.5, 0.5, shape + (4, 64))),
                BFloat16Array(rng.uniform(-1, 1, shape + (2, 64))),
                BFloat16Array(rng.uniform(-1, 1, shape + (2, 64))))

    q, k, v = operands(prompt)
    out = BFloat16Array(np.zeros((batch, prompt, 4, 64)))
    assert session.prefill(0, q, k, v, out=out) is out
    ref = attention(layer, q.to_float32(), k.to_float32(), v.to_float32())
    assert relative_error(out.to_float32(), ref) < 2e-2
    q1, k1, v1 = operands(1)
    step = BFloat16Array(np.zeros((batch, 1, 4, 64)))
    session.decode(0, q1, k1, v1, out=step)
    whole = [np.concatenate([a.to_float32(), b.to_float32()], axis=1)
             for a, b in ((q, q1), (k, k1), (v, v1))]
    ref = attention(layer, *whole)[:, -1:]
    assert relative_error(step.to_float32(), ref) < 2e-2


@pytest.mark.parametrize("dtypes", [("bfloat16", "float32", "bfloat16"),
                                    ("float32", "bfloat16", "bfloat16"),
                                    ("bfloat16", "bfloat16", "float32")])
def test_decode_steps_of_mixed_dtypes(schedule, dtypes):
    """A prompt and steps whose q, k and v differ in dtype take the prepare
    kernels and the store kernel apart (the fused step kernel reads one
    dtype): the same results as the reference."""
    rng = np.random.default_rng(17)
    batch, prompt, steps = 1, 9, 2
    session = schedule.session(batch, prompt + steps)
    layer = schedule.layers[0]

    def operands(length):
        shape = (batch, length)
        arrays = (rng.uniform(-0.5, 0.5, shape + (4, 64)),
                  rng.uniform(-1, 1, shape + (2, 64)),
                  rng.uniform(-1, 1, shape + (2, 64)))
        return [BFloat16Array(a) if dtype == "bfloat16" else a.astype(np.float32)
                for a, dtype in zip(arrays, dtypes)]

    def as_float32(a):
        return a.to_float32() if isinstance(a, BFloat16Array) else a

    seen = operands(prompt)
    out = np.zeros((batch, prompt, 4, 64), np.float32)
    session.prefill(0, *seen, out=out)
    seen = [as_float32(a) for a in seen]
    assert relative_error(out, attention(layer, *seen)) < 2e-2
    for _ in range(steps):
        step = operands(1)
        out = np.zeros((batch, 1, 4, 64), np.float32)
        session.decode(0, *step, out=out)
        seen = [np.concatenate([as_float32(a), as_float32(b)], axis=1)
                for a, b in zip(seen, step)]
        ref = attention(layer, *seen)[:, -1:]
        assert relative_error(out, ref) < 2e-2


class DeviceArray:
    """An array in the GPU's memory, known through DLPack as a torch CUDA
    tensor is: allocated with the driver the runtime loads (the emulator's,
    one instance per process), float32 or (from a BFloat16Array) bfloat16."""

    def __init__(self, host):
        self.driver = driver = ctypes.CDLL(os.environ["HYBRID_CUDA_DRIVER"])
        device, context = ctypes.c_int(), ctypes.c_void_p()
        assert driver.cuInit(0) == 0
        assert driver.cuDeviceGet(ctypes.byref(device), 0) == 0
        assert driver.cuDevicePrimaryCtxRetain(ctypes.byref(context), device) == 0
        assert driver.cuCtxSetCurrent(context) == 0
        if isinstance(host, BFloat16Array):
            self.host, self.code, self.width = host.bits, KDL_BFLOAT, 16
        else:
            self.host, self.code, self.width = np.ascontiguousarray(host, np.float32), 2, 32
        self.shape, self._keep = self.host.shape, []
        self.ptr = ctypes.c_uint64()
        assert driver.cuMemAlloc_v2(ctypes.byref(self.ptr), ctypes.c_size_t(self.host.nbytes)) == 0
        assert driver.cuMemcpyHtoDAsync_v2(self.ptr, ctypes.c_void_p(self.host.ctypes.data),
                                           ctypes.c_size_t(self.host.nbytes), None) == 0
        assert driver.cuStreamSynchronize(None) == 0

    def to_float32(self):
        back = np.empty_like(self.host)
        assert self.driver.cuMemcpyDtoHAsync_v2(ctypes.c_void_p(back.ctypes.data), self.ptr,
                                                ctypes.c_size_t(back.nbytes), None) == 0
        assert self.driver.cuStreamSynchronize(None) == 0
        if self.code == KDL_BFLOAT:
            return (back.astype(np.uint32) << 16).view(np.float32)
        return back

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA

    def __dlpack__(self, stream=None, **kwargs):
        return dlpack_capsule(self.ptr.value, self.shape, (2, 0), self.code, self.width,
                              self._keep)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_device_arrays_in_place(schedule, dtype):
    """Operands and the output in device memory (torch CUDA tensors' path):
    read and written in place, float32 or bfloat16."""
    rng = np.random.default_rng(13)
    batch, prompt = 1, 23
    session = schedule.session(batch, prompt)
    layer = schedule.layers[2]  # chunked, no positional encoding
    shape = (batch, prompt)
    q = rng.uniform(-0.5, 0.5, shape + (4, 64))
    k, v = (rng.uniform(-1, 1, shape + (2, 64)) for _ in range(2))
    make = (lambda x: DeviceArray(BFloat16Array(x))) if dtype == "bfloat16" else DeviceArray
    dq, dk, dv = make(q), make(k), make(v)
    out = make(np.zeros(shape + (4, 64)))
    assert session.prefill(2, dq, dk, dv, out=out) is out
    ref = attention(layer, dq.to_float32(), dk.to_float32(), dv.to_float32())
    assert relative_error(out.to_float32(), ref) < 2e-2



def test_caches_past_device_memory_are_refused(schedule):
    """A session whose caches exceed the GPU's free memory is refused before
    any is allocated: OutOfMemoryError, also a HybridError and MemoryError."""
    with pytest.raises(hybrid_attn.OutOfMemoryError,
                       match=r"hybrid_rt_session_create: batch 1, max_seq 1000000000: the caches "
                             r"take [\d.]+ GiB, more than the [\d.]+ [GM]iB free on .+ "
                             r"\(of [\d.]+ GiB\)"):
        schedule.session(1, 10**9)
    schedule.session(1, 256)  # nothing was held


def test_scratch_past_device_memory_fails_the_call(schedule):
    """A prefill whose scratch the device cannot hold fails (OutOfMemoryError)
    and leaves the session usable. The emulated device has 8 MiB here."""
    if "emulator" not in os.environ["HYBRID_CUDA_DRIVER"]:
        pytest.skip("sizes the emulator's device memory")
    script = f"""
import numpy as np, hybrid_attn
from reference import attention
schedule = hybrid_attn.load({schedule.artifacts_dir!r})
session = schedule.session(1, 4096)  # 2 MiB of caches
layer = schedule.layers[2]
rng = np.random.default_rng(5)
def run(seq):
    q = rng.uniform(-0.5, 0.5, (1, seq, 4, 64)).astype(np.float32)
    k, v = (rng.uniform(-1, 1, (1, seq, 2, 64)).astype(np.float32) for _ in range(2))
    out = session.prefill(2, q, k, v)
    return np.abs(out - attention(layer, q, k, v)).max()
try:
    run(4096)  # 4 MiB of queries, 2 of keys, 2 of values: more than is left
except hybrid_attn.OutOfMemoryError as e:
    print("scratch:", e)
print("after: %.4f" % run(64))
"""
    env = dict(os.environ, HYBRID_EMULATOR_MEMORY_MIB="8",
               PYTHONPATH=os.pathsep.join([os.path.dirname(__file__),
                                           os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert re.search(r"scratch: hybrid_rt_session_prefill: layer 2: allocating \d+ bytes of "
                     r"scratch for the call: CUDA_ERROR_OUT_OF_MEMORY", done.stdout), done.stdout
    after = re.search(r"after: ([\d.]+)", done.stdout)
    assert after and float(after.group(1)) < 2e-2, done.stdout


def test_shared_layer_skips_tokens(schedule):
    check_shared_layer_skips_tokens(schedule, 2e-2)


@pytest.mark.parametrize("step", [1, 8])
def test_reorder(schedule, step):
    check_reorder(schedule, 2e-2, step)


def test_truncate(schedule):
    check_truncate(schedule, 2e-2)


def test_read_cache(schedule):
    check_read_cache(schedule, 1e-2)  # bf16 caches


def test_save_restore(schedule):
    check_save_restore(schedule, 2e-2)


def test_sequences_at_their_own_lengths(schedule):
    """Continuous batching on GPU kernels: requests prefilled into free
    sequences (each run of consecutive selected sequences a prompt of its
    own), steps of a selection out of order and of the whole batch at
    different lengths (one launch per kernel: each batch entry reads its
    sequence's device length and cache rows), a finished request freed, a
    rollback; ring wrap-arounds and a chunk boundary, each sequence's
    outputs and cache rows its own session's."""
    served = Served(schedule, batch=4, max_seq=40, step=2, seed=21,
                    rtol=1e-2, atol=1e-3)
    served.prefill([2], 7)
    served.prefill([0, 1], 12)  # one prompt of two sequences
    served.step([0, 1, 2], 1)
    served.free(1)
    served.prefill([3, 1], 6)  # two prompts: runs of one sequence
    served.step([1, 3, 0, 2], 2)  # three lengths, out of order
    served.truncate([0], served.length[0] - 2)
    served.check_lengths()
    for _ in range(3):
        served.step(None, 2)  # the whole batch at three lengths
    served.step([3, 1], 1)
    served.check_lengths()
    assert served.length == [19, 15, 16, 15]
    served.check_caches(range(4), range(3))  # layer 3 reads layer 0's cache


def test_steps_of_many_tokens_at_their_own_lengths(schedule):
    """Steps of 8 tokens (the flash kernel's, as chunked prefill and
    speculative drafts take) of sequences at different lengths, and of a
    selection: each slice of sequences at one length runs over a view of
    their caches, each sequence's outputs its own session's."""
    served = Served(schedule, batch=3, max_seq=64, step=8, seed=22,
                    rtol=1e-2, atol=1e-3)
    served.prefill([0], 5)
    served.prefill([1, 2], 20)
    served.step(None, 8)  # two slices: sequence 0, then 1 and 2
    served.step([2, 0], 8)
    served.step([1], 8)
    served.check_lengths()
    assert served.length == [21, 36, 36]


def test_padding_entries(schedule):
    """Selections padded with -1 on GPU kernels: the padding's entries store
    no cache row and advance no length; their outputs are zeros (prompts:
    a memset; decode kernels: an empty key range)."""
    check_padding_entries(Served(schedule, batch=4, max_seq=40, step=4, seed=23,
                                 rtol=1e-2, atol=1e-3))


def test_restore_a_prefix_into_one_sequence(schedule):
    """A saved prefix restored into one sequence of a GPU session (cache
    writes into a view of its rows, at its own device length)."""
    check_restore_a_prefix(schedule, rtol=1e-2, atol=1e-3)


def test_driver_refuses_empty_allocations():
    """cuMemAlloc of 0 bytes is CUDA_ERROR_INVALID_VALUE (1), the driver's
    answer (checked on a GPU when the suite runs this file on libcuda)."""
    array = DeviceArray(np.zeros(1, np.float32))  # a current context
    pointer = ctypes.c_uint64()
    assert array.driver.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(0)) == 1


def test_save_on_device(schedule):
    """save(empty=...) keeps the caches in device arrays, in their own bf16
    (no host copy): restored from them, a session steps as the saved one,
    bit for bit. Such a save of one sequence cannot fill a larger batch
    (no repeat on the device but torch's): a clear error."""
    on_device = lambda shape: DeviceArray(BFloat16Array(np.zeros(shape, np.float32)))  # noqa: E731
    check_save_restore(schedule, 0, on_device, batches=((2, 2),))
    session = schedule.session(1, 32)
    rng = np.random.default_rng(16)
    session.prefill(0, *(rng.uniform(-1, 1, (1, 5, h, 64)).astype(np.float32)
                         for h in (4, 2, 2)))
    saved = session.save(on_device)
    assert isinstance(saved["layers"][0]["v"], DeviceArray)
    with pytest.raises(hybrid_attn.HybridError, match="a save of batch 1 in DeviceArray "
                       "arrays cannot fill 2 sequences"):
        schedule.session(2, 32).restore(saved)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cache_rows_in_device_arrays(schedule, dtype):
    """read_cache into device arrays (and host bfloat16 ones) and write_cache
    from them: bf16 cache rows pass exactly, a ring's from where it wraps
    (SPEC's layer 0: 8 rows at steps of 1, 13 tokens)."""
    rng = np.random.default_rng(14)
    batch, prompt = 2, 13
    session = schedule.session(batch, 32)
    q, k, v = (rng.uniform(-1, 1, (batch, prompt, h, 64)).astype(np.float32)
               for h in (4, 2, 2))
    session.prefill(0, q, k, v)
    held = session.read_cache(0)
    assert held[0].shape == (batch, 8, 2, 64)
    make = (lambda x: DeviceArray(BFloat16Array(x))) if dtype == "bfloat16" else DeviceArray
    on_device = tuple(make(np.zeros_like(x)) for x in held)
    session.read_cache(0, out=on_device)
    host_bf16 = tuple(BFloat16Array(np.zeros_like(x)) for x in held)
    session.read_cache(0, out=host_bf16)
    for a, b, c in zip(held, on_device, host_bf16):
        np.testing.assert_array_equal(a, b.to_float32())
        np.testing.assert_array_equal(a, c.to_float32())
    restored = schedule.session(batch, 32)
    restored.write_cache(0, *on_device, first=prompt - 8)
    for a, b in zip(held, restored.read_cache(0)):
        np.testing.assert_array_equal(a, b)
    step = [rng.uniform(-1, 1, (batch, 1, h, 64)).astype(np.float32) for h in (4, 2, 2)]
    np.testing.assert_array_equal(session.decode(0, *step), restored.decode(0, *step))


def test_calls_from_threads_take_turns(schedule):
    check_threads_take_turns(schedule, 2, 4)


def test_select_queues_on_torchs_current_stream(schedule, monkeypatch):
    """Where torch has initialized CUDA, select copies the selection on
    torch's current stream of the model's GPU ($HYBRID_CUDA_DEVICE), as the
    calls on torch tensors run theirs (a stand-in torch here: its stream is
    the legacy default stream, 0); then the steps go on as before."""
    asked = []

    class Stream:
        cuda_stream = 0

    class Cuda:
        @staticmethod
        def is_initialized():
            return True

        @staticmethod
        def current_stream(device):
            asked.append(device)
            return Stream()

    monkeypatch.setitem(sys.modules, "torch", type("torch", (), {"cuda": Cuda}))
    monkeypatch.setenv("HYBRID_CUDA_DEVICE", "0")
    served = Served(schedule, batch=2, max_seq=16, step=1, seed=5, rtol=1e-2, atol=1e-3)
    served.prefill([1, -1], 3)
    served.step([-1, 1], 1)
    served.check_lengths()
    assert asked and set(asked) == {0}
