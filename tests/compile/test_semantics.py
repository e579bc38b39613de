"""What a compiled model promises: current parameters, new shapes, no growth, eval semantics."""
from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import striate as st
import striate.functional as F
from striate import nn, optim
from striate.compile.plan import Plan

from .helpers import assert_float32_close, eager


def _bn_net(rng=0):
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, rng=rng), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, rng=rng), nn.BatchNorm2d(12), nn.ReLU(), nn.Dropout(0.5, rng=rng),
        nn.Flatten(), nn.Linear(12 * 2 * 2, 5, rng=rng))


def _x(n, shape=(3, 8, 8), seed=0):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def _randomise_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean[...] = rng.standard_normal(m.num_features)
            m.running_var[...] = rng.uniform(0.5, 2.0, m.num_features)
            m.weight.data[...] = rng.uniform(-1.5, 1.5, m.num_features)
            m.bias.data[...] = rng.standard_normal(m.num_features)


def test_parameter_changes_in_place_and_replaced_are_seen():
    model = _bn_net()
    _randomise_bn(model)
    fast = st.compile(model)
    x = _x(6)
    before = fast(x).data.copy()
    model[0].weight.data *= 1.5                                   # in place
    after = assert_float32_close(model, fast, x).data
    assert not np.allclose(before, after)
    model[0].weight.data = model[0].weight.data * -1.0            # a new array
    model[1].running_var[...] *= 3.0                              # a buffer folded into the conv
    again = assert_float32_close(model, fast, x).data
    assert not np.allclose(again, after)
    model[9].bias.data += 1.0
    np.testing.assert_allclose(fast(x).data, again + 1.0, rtol=1e-5, atol=1e-5)


def test_a_training_step_is_seen():
    model = _bn_net()
    fast = st.compile(model)
    x = _x(8)
    y = np.arange(8) % 5
    first = fast(x).data.copy()
    opt = optim.SGD(model.parameters(), lr=0.1)
    model.train()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()                                # parameters and running statistics moved
    out = assert_float32_close(model, fast, x)   # the model is still in training mode: fast is eval anyway
    assert not np.allclose(first, out.data)
    assert model.training                     # compile did not change the mode
    model.eval()
    assert_float32_close(model, fast, x)


def test_load_state_dict_in_place_is_seen():
    model, other = _bn_net(rng=0), _bn_net(rng=1)
    _randomise_bn(other, seed=5)
    fast = st.compile(model)
    x = _x(4)
    fast(x)
    arrays = [p.data for p in model.parameters()]
    model.load_state_dict(other.state_dict())
    assert all(a is p.data for a, p in zip(arrays, model.parameters()))     # copied into the same arrays
    np.testing.assert_allclose(fast(x).data, eager(other, x), rtol=1e-5, atol=1e-5)


def test_a_new_batch_size_plans_again_and_the_old_plan_is_kept():
    model = st.models.get("lenet5-modern", rng=0)
    fast = st.compile(model)
    a, b = _x(4, (1, 32, 32)), _x(7, (1, 32, 32), seed=1)
    fast(a)
    plan_a = fast.plans[((4, 1, 32, 32), np.dtype(np.float32).str)]
    assert_float32_close(model, fast, b)
    assert len(fast.plans) == 2
    fast(a)
    assert fast.plans[((4, 1, 32, 32), np.dtype(np.float32).str)] is plan_a
    assert_float32_close(model, fast, a)


@pytest.mark.parametrize("name, shape", [("lenet5-modern", (37, 1, 32, 32)), ("alexnet-small", (5, 1, 32, 32))])
def test_steady_state_calls_do_not_grow_memory(name, shape):
    model = st.models.get(name, rng=0)
    fast = st.compile(model)
    x = _x(shape[0], shape[1:])
    for _ in range(3):
        fast(x)
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(10):                 # what the first traced calls allocate for good (caches)
            out = fast(x)
        del out
        gc.collect()
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(100):
            out = fast(x)
        del out
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end - start < 16 << 10, f"grew by {end - start} bytes over 100 calls"


def test_onnx_import_compiles(tmp_path):
    pytest.importorskip("onnx")
    import striate.onnx
    model = _bn_net()
    _randomise_bn(model)
    path = Path(tmp_path) / "net.onnx"
    striate.onnx.export(model, _x(1), path)
    loaded = striate.onnx.load(path)
    fast = st.compile(loaded)
    x = _x(5, seed=3)
    got = fast(x).data
    np.testing.assert_allclose(got, eager(model, x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got, eager(loaded, x), rtol=1e-5, atol=1e-6)


def test_lenet_onnx_import_compiles(tmp_path):
    pytest.importorskip("onnx")
    import striate.onnx
    model = st.models.get("lenet5-modern", rng=0)
    path = Path(tmp_path) / "lenet.onnx"
    striate.onnx.export(model, _x(1, (1, 32, 32)), path)
    loaded = striate.onnx.load(path)
    fast = st.compile(loaded)
    x = _x(9, (1, 32, 32), seed=4)
    np.testing.assert_allclose(fast(x).data, eager(model, x), rtol=1e-4, atol=1e-5)


def _conv_steps(fast):
    from striate.compile.steps import ConvStep
    plan = next(iter(fast.plans.values()))
    return [s for s in plan.steps if isinstance(s, ConvStep)]


def test_every_block_size_and_algorithm_gives_the_same_answer():
    model = _bn_net()
    _randomise_bn(model)
    fast = st.compile(model)
    x = _x(11)
    expected = assert_float32_close(model, fast, x).data
    steps = _conv_steps(fast)
    assert len(steps) == 2 and all(s.bn for s in steps)
    for step in steps:
        for n, algorithm in [(1, "gemm"), (3, "gemm"), (4, "gemm"), (11, "gemm"), (11, "im2col"),
                             (11, "winograd")]:
            step.set_block(n, algorithm)
            np.testing.assert_allclose(fast(x).data, expected, rtol=1e-5, atol=1e-5)
        assert step.row_chunks()
        for n in (2, 11):
            for rows in step.row_chunks():                 # blocks cut into chunks of output rows
                step.set_block(n, "gemm", rows)
                np.testing.assert_allclose(fast(x).data, expected, rtol=1e-5, atol=1e-5)


def test_a_shorter_last_block_allocates_nothing_either():
    model = st.models.get("lenet5-modern", rng=0)
    fast = st.compile(model)
    x = _x(11, (1, 32, 32))
    fast(x)
    for step in _conv_steps(fast):
        step.set_block(4)                   # blocks of 4, 4 and 3
    for _ in range(3):
        fast(x)
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(10):                 # what the first traced calls allocate for good (caches)
            out = fast(x)
        del out
        gc.collect()
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(50):
            out = fast(x)
        del out
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end - start < 16 << 10
    np.testing.assert_allclose(fast(x).data, eager(model, x), rtol=1e-5, atol=1e-5)


def test_without_measuring_plans_quickly_and_matches():
    model = _bn_net()
    _randomise_bn(model)
    fast = st.compile(model, measure=False)
    x = _x(9)
    assert_float32_close(model, fast, x)
    for step in _conv_steps(fast):
        assert step.algorithm == "gemm" and not step.timings and step.col_bytes(step.n) <= 1 << 20


def test_two_threads_share_the_blocks_and_give_the_same_answer():
    model = _bn_net()
    _randomise_bn(model)
    fast = st.compile(model, threads=2)
    x = _x(11)
    expected = assert_float32_close(model, fast, x).data
    for step in _conv_steps(fast):
        for n, rows in [(1, None), (3, None), (4, None), (5, step.row_chunks()[0])]:
            step.set_block(n, "gemm", rows, workers=2)
            assert step.workers == 2 and step.blocks2
            np.testing.assert_allclose(fast(x).data, expected, rtol=1e-5, atol=1e-5)
    model = st.models.get("lenet5-modern", rng=0)
    fast = st.compile(model, threads=2)
    x = _x(37, (1, 32, 32))
    assert_float32_close(model, fast, x)
    with pytest.raises(ValueError, match="threads"):
        st.compile(model, threads=3)


@pytest.mark.parametrize("name", ["lenet5", "lenet5-modern", "alexnet-small"])
def test_the_call_that_plans_answers_with_the_planning_run(name, monkeypatch):
    """Planning runs every step on the example: that run is the first call's answer (bit for bit
    what the plan gives), so the first call does not run the plan a second time."""
    model = st.models.get(name, rng=0)
    x = _x(6, (1, 32, 32), seed=7)
    runs = []
    original = Plan.run
    monkeypatch.setattr(Plan, "run", lambda self, data: runs.append(len(data)) or original(self, data))
    fast = st.compile(model, measure=False)
    first = fast(x).data
    assert runs == []
    np.testing.assert_array_equal(fast(x).data, first)
    assert runs == [6]
    np.testing.assert_allclose(first, eager(model, x), rtol=1e-5, atol=1e-6)
    assert fast.last.take_example_output() is None              # given once only


def test_a_plan_keeps_its_buffers_and_not_the_planning_runs_values():
    """The values the planning run made (the eager steps' outputs, the example itself) are let go:
    what a plan holds is its buffers."""
    model = st.models.get("lenet5", rng=0).eval()          # C1, S2, C3, S4 and the RBF run eagerly
    x = _x(64, (1, 32, 32))
    eager(model, x)                                         # the eager ops' own scratch arrays, made before
    fast = st.compile(model, measure=False)
    gc.collect()
    tracemalloc.start()
    try:
        out = fast(x)
        del out
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held - fast.last.buffer_bytes() < 512 << 10, (held, fast.last.buffer_bytes())   # 3.4 MB when kept
