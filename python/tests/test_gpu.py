"""hybrid_attn on an NVIDIA GPU: the tensor-core kernels with CUDA torch
tensors passed in place, against the NumPy reference (bf16 tolerance).
Skipped without torch or a CUDA device."""
import numpy as np
import pytest

from prebuilt import compile_or_load
from reference import attention
from test_hybrid_attn import SPEC, relative_error

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def schedule():
    # Hopper's own target (the kernels the GPU suite prepares), else sm_80's.
    hopper = torch.cuda.get_device_capability() == (9, 0)
    return compile_or_load(SPEC, target="cuda:sm_90a" if hopper else "cuda:sm_80",
                           max_seq=256)


def test_session_on_device_tensors(schedule):
    rng = np.random.default_rng(0)
    batch, prompt, steps = 2, 37, 4
    total = prompt + steps
    session = schedule.session(batch, total)
    layer = schedule.layers[0]
    # Scores of moderate size: bf16 rounding alone stays near 5e-3.
    q = rng.uniform(-0.5, 0.5, (batch, total, 4, 64)).astype(np.float32)
    k = rng.uniform(-1, 1, (batch, total, 2, 64)).astype(np.float32)
    v = rng.uniform(-1, 1, (batch, total, 2, 64)).astype(np.float32)
    cuda = lambda x: torch.from_numpy(np.ascontiguousarray(x)).cuda()  # noqa: E731
    outs = [session.prefill(0, cuda(q[:, :prompt]), cuda(k[:, :prompt]),
                            cuda(v[:, :prompt]))]
    for s in range(prompt, total):
        outs.append(session.decode(0, cuda(q[:, s:s + 1]), cuda(k[:, s:s + 1]),
                                   cuda(v[:, s:s + 1])))
    assert all(o.is_cuda for o in outs)
    out = torch.cat(outs, dim=1).cpu().numpy()
    assert relative_error(out, attention(layer, q, k, v)) < 2e-2


def test_bfloat16_tensors_and_out_on_device(schedule):
    """A bf16 model's tensors: read as they are, the output bf16 too; an
    out= tensor on the device is written in place."""
    rng = np.random.default_rng(1)
    batch, prompt = 1, 45
    layer = schedule.layers[1]  # full, soft-capped, with sinks
    q = rng.uniform(-0.5, 0.5, (batch, prompt, 4, 64)).astype(np.float32)
    k = rng.uniform(-1, 1, (batch, prompt, 2, 64)).astype(np.float32)
    v = rng.uniform(-1, 1, (batch, prompt, 2, 64)).astype(np.float32)
    sinks = rng.standard_normal(4).astype(np.float32)
    bf16 = lambda x: torch.from_numpy(x).cuda().to(torch.bfloat16)  # noqa: E731
    q16, k16, v16 = bf16(q), bf16(k), bf16(v)
    out = schedule.session(batch, prompt).prefill(1, q16, k16, v16, sinks)
    assert out.is_cuda and out.dtype == torch.bfloat16
    rounded = [x.float().cpu().numpy() for x in (q16, k16, v16)]
    ref = attention(layer, *rounded, sinks)
    assert relative_error(out.float().cpu().numpy(), ref) < 2e-2
    given = torch.zeros((batch, prompt, 4, 64), dtype=torch.float32, device="cuda")
    same = schedule.session(batch, prompt).prefill(1, bf16(q).float(), bf16(k).float(),
                                                   bf16(v).float(), sinks, out=given)
    assert same is given
    assert relative_error(given.cpu().numpy(), ref) < 2e-2
