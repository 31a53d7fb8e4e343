"""hybrid_attn on an NVIDIA GPU: the tensor-core kernels with CUDA torch
tensors passed in place, against the NumPy reference (bf16 tolerance), and a
transformers model on the GPU with hybrid attention against its eager
attention. Skipped without torch or a CUDA device.

The schedules are compiled in fixtures that need neither (so that
`pytest --setup-only` compiles them where there is no GPU, for a GPU
machine without a compiler: utils/gpu-suite.sh prepare)."""
import os

import numpy as np
import pytest

from prebuilt import compile_or_load
from reference import attention
from teacher_forcing import prompt_and_step_logits
from test_hybrid_attn import SPEC, relative_error

# A Gemma 3 of 5 sliding layers (window 8) and a global one, 4 query heads
# of dim 16 over 2 kv heads: transformers builds the model, hybrid-compile
# the schedule, from the same config.json.
GEMMA3_TINY = os.path.join(os.path.dirname(__file__), "configs", "gemma3-tiny",
                           "config.json")


def cuda_torch():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


# With a driver named (the emulator's when `prepare` compiles, libcuda's in
# the GPU suite) the fixtures run; the tests need torch on a GPU besides.
pytestmark = pytest.mark.skipif(
    not (cuda_torch() or os.environ.get("HYBRID_CUDA_DRIVER")),
    reason="no CUDA device for torch and no HYBRID_CUDA_DRIVER")


def gpu_target():
    """Hopper's own target (what the GPU suite prepares), else sm_80's."""
    try:
        import torch
        if torch.cuda.is_available() and torch.cuda.get_device_capability() != (9, 0):
            return "cuda:sm_80"
    except ImportError:
        pass
    return "cuda:sm_90a"


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch


@pytest.fixture(scope="module")
def schedule():
    return compile_or_load(SPEC, target=gpu_target(), max_seq=256)


@pytest.fixture(scope="module")
def gemma3_schedule():
    # transformers' attention modules rotate q and k themselves.
    return compile_or_load(GEMMA3_TINY, target=gpu_target(), max_seq=64,
                           external_positional=True)


def draw_layer0_operands(seed, batch, prompt):
    """q, k, v for SPEC's layer 0 (4 query heads over 2 kv heads, dim 64),
    of moderate scores: bf16 rounding alone stays near 5e-3."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(-0.5, 0.5, (batch, prompt, 4, 64)).astype(np.float32)
    k = rng.uniform(-1, 1, (batch, prompt, 2, 64)).astype(np.float32)
    v = rng.uniform(-1, 1, (batch, prompt, 2, 64)).astype(np.float32)
    return q, k, v


def test_session_on_device_tensors(schedule, torch):
    batch, prompt, steps = 2, 37, 4
    total = prompt + steps
    session = schedule.session(batch, total)
    layer = schedule.layers[0]
    q, k, v = draw_layer0_operands(0, batch, total)
    cuda = lambda x: torch.from_numpy(np.ascontiguousarray(x)).cuda()  # noqa: E731
    outs = [session.prefill(0, cuda(q[:, :prompt]), cuda(k[:, :prompt]),
                            cuda(v[:, :prompt]))]
    for s in range(prompt, total):
        outs.append(session.decode(0, cuda(q[:, s:s + 1]), cuda(k[:, s:s + 1]),
                                   cuda(v[:, s:s + 1])))
    assert all(o.is_cuda for o in outs)
    out = torch.cat(outs, dim=1).cpu().numpy()
    assert relative_error(out, attention(layer, q, k, v)) < 2e-2


def test_bfloat16_tensors_and_out_on_device(schedule, torch):
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


@pytest.mark.parametrize("side_stream", [False, True])
def test_operands_written_just_before_the_call(schedule, torch, side_stream):
    """Operands whose producing kernels are still queued, on torch's default
    stream or a side stream, behind a long kernel (about 0.1 s): the call
    reads them only once they are written."""
    batch, prompt = 1, 64
    layer = schedule.layers[0]
    q, k, v = draw_layer0_operands(2, batch, prompt)
    host = [torch.from_numpy(x).pin_memory() for x in (q, k, v)]
    stream = torch.cuda.Stream() if side_stream else torch.cuda.default_stream()
    with torch.cuda.stream(stream):
        device = [torch.zeros(x.shape, device="cuda") for x in host]
        torch.cuda._sleep(200_000_000)
        for target, source in zip(device, host):
            target.copy_(source, non_blocking=True)
        out = schedule.session(batch, prompt).prefill(0, *device)
        # On the stream the call ran on: after its work.
        result = out.cpu().numpy()
    assert relative_error(result, attention(layer, q, k, v)) < 2e-2


def test_calls_on_device_tensors_return_before_their_work(schedule, torch):
    """Like a torch operation, a call on CUDA tensors queues its work on
    torch's current stream and returns: behind a long kernel (about 0.1 s)
    the stream is still busy when the call returns, and the output read on
    that stream is the reference's."""
    batch, prompt = 1, 40
    layer = schedule.layers[0]
    q, k, v = draw_layer0_operands(3, batch, prompt)
    device = [torch.from_numpy(x).cuda() for x in (q, k, v)]
    # Scratch sized for these shapes first: growing it waits for the GPU.
    schedule.session(batch, prompt).prefill(0, *device)
    session = schedule.session(batch, prompt)
    stream = torch.cuda.current_stream()
    torch.cuda._sleep(200_000_000)
    out = session.prefill(0, *device)
    assert not stream.query()
    assert relative_error(out.cpu().numpy(), attention(layer, q, k, v)) < 2e-2


def test_decode_steps_replay_from_a_cuda_graph(schedule, torch):
    """A decode step captured in a CUDA graph (torch.cuda.graph) is the
    session's next step at each replay, its position read from the device;
    the lengths are read back at the next call outside the capture. A
    prompt under capture raises before it queues anything (the capture
    ends valid)."""
    batch, prompt, steps = 1, 9, 3
    layer = schedule.layers[0]
    q, k, v = draw_layer0_operands(4, batch, prompt + steps)
    cuda = lambda x: torch.from_numpy(np.ascontiguousarray(x)).cuda()  # noqa: E731
    session = schedule.session(batch, prompt + steps)
    session.prefill(0, cuda(q[:, :prompt]), cuda(k[:, :prompt]),
                    cuda(v[:, :prompt]))
    static = [cuda(x[:, prompt:prompt + 1]) for x in (q, k, v)]
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = session.decode(0, *static)
    expected = attention(layer, q, k, v)
    for step in range(steps):
        at = slice(prompt + step, prompt + step + 1)
        for target, x in zip(static, (q, k, v)):
            target.copy_(cuda(x[:, at]))
        graph.replay()
        assert relative_error(out.cpu().numpy(), expected[:, at]) < 2e-2
    assert session.cache_info(0)["length"] == prompt + steps
    fresh = schedule.session(batch, prompt)
    with pytest.raises(RuntimeError, match="prompts and session creation cannot be captured"):
        with torch.cuda.graph(torch.cuda.CUDAGraph()):
            fresh.prefill(0, *static)


def test_selections_between_replays_queue_on_torchs_stream(schedule, torch):
    """A server's loop: a step of 2 entries captured once (torch.cuda.graph
    runs it on a stream of its own), then rounds of select, the entries'
    next tokens copied in, replay, and the output copied out, with no wait
    between rounds: each select's copy is queued on torch's current stream
    (through pinned memory), so each replay steps its round's selection.
    Every entry's output is its sequence's next token's attention, the
    padding's zeros; each sequence ends at its own length."""
    layer = schedule.layers[0]
    prompts, rounds = [5, 7, 9], [[2, -1], [0, 1], [-1, 2], [1, 0], [2, 0]]
    total = max(prompts) + len(rounds)
    data = [draw_layer0_operands(30 + b, 1, total) for b in range(3)]
    on_gpu = [[torch.from_numpy(x).cuda() for x in d] for d in data]
    session = schedule.session(3, total)
    for b, n in enumerate(prompts):
        session.select([b])
        session.prefill(0, *(x[:, :n] for x in on_gpu[b]))
    static = [torch.zeros((2, 1) + tuple(x.shape[2:]), device="cuda") for x in on_gpu[0]]
    session.select(rounds[0])
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = session.decode(0, *static)
    length, outs, expected = list(prompts), [], []
    for selection in rounds:
        session.select(selection)
        want = np.zeros(tuple(out.shape), np.float32)
        for e, b in enumerate(selection):
            if b < 0:
                continue
            for target, x in zip(static, on_gpu[b]):
                target[e].copy_(x[:, length[b]])
            length[b] += 1
            want[e] = attention(layer, *(x[:, :length[b]] for x in data[b]))[:, -1]
        graph.replay()
        outs.append(out.clone())
        expected.append(want)
    torch.cuda.synchronize()
    for selection, got, want in zip(rounds, outs, expected):
        got = got.cpu().numpy()
        for e, b in enumerate(selection):
            if b < 0:
                assert not got[e].any(), f"round {selection}: the padding's output"
            else:
                assert relative_error(got[e], want[e]) < 2e-2, f"round {selection}"
    for b in range(3):
        session.select([b])
        assert session.cache_info(0)["length"] == length[b]


def test_gemma3_model_on_gpu_matches_eager(gemma3_schedule, torch):
    """A transformers model on the GPU, its attention through the session's
    CUDA kernels and caches: the logits of a prompt and of the decode steps
    after it (the model's cache fed back, the next tokens given) as its eager
    attention gives them (bf16 tolerance)."""
    transformers = pytest.importorskip("transformers")
    import hybrid_attn.hf

    config = transformers.AutoConfig.from_pretrained(os.path.dirname(GEMMA3_TINY))
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).cuda().eval()
    attention = hybrid_attn.hf.register(gemma3_schedule, max_seq=64)
    ids = torch.randint(0, 97, (2, 21), device="cuda")
    logits = {}
    for implementation in ("eager", "hybrid"):
        model.config._attn_implementation = implementation
        attention.reset()
        logits[implementation] = prompt_and_step_logits(model, ids, 15)
    assert logits["hybrid"].is_cuda
    eager = logits["eager"]
    error = (logits["hybrid"] - eager).abs().max() / eager.abs().max()
    assert error < 5e-2, float(error)
    # The sliding layers' ring holds the window.
    assert attention.session.cache_info(0)["rows"] == 8
    assert attention.session.cache_info(0)["length"] == 21
