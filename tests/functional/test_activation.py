import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from hypothesis import given, settings
from hypothesis import strategies as hs

import striate as st
import striate.functional as F
from tests.reference import assert_close, check_torch, randn

# (name, ours, theirs): elementwise ops, any shape
ELEMENTWISE = [
    ("relu", F.relu, torch.relu),
    ("leaky_relu", F.leaky_relu, tF.leaky_relu),
    ("leaky_relu 0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: tF.leaky_relu(x, 0.2)),
    ("leaky_relu -0.5", lambda x: F.leaky_relu(x, negative_slope=-0.5), lambda x: tF.leaky_relu(x, -0.5)),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
    ("scaled_tanh", F.scaled_tanh, lambda x: 1.7159 * torch.tanh(2 * x / 3)),
    ("scaled_tanh a, s", lambda x: F.scaled_tanh(x, a=2.0, s=0.5), lambda x: 2.0 * torch.tanh(0.5 * x)),
]
IDS = [case[0] for case in ELEMENTWISE]


def random_shape(rng, max_ndim=4):
    return tuple(int(n) for n in rng.integers(1, 8, size=rng.integers(1, max_ndim + 1)))


@pytest.mark.parametrize("name, ours, theirs", ELEMENTWISE, ids=IDS)
def test_elementwise_matches_torch(name, ours, theirs, rng):
    for _ in range(8):
        x = randn(rng, *random_shape(rng)) * 3
        check_torch(ours, theirs, [x])


@pytest.mark.parametrize("name, ours, theirs", ELEMENTWISE, ids=IDS)
def test_elementwise_gradcheck_float64(name, ours, theirs, rng):
    x = rng.standard_normal((3, 4, 5)) * 2
    assert st.gradcheck(ours, [x])


@pytest.mark.parametrize("name, ours, theirs", ELEMENTWISE, ids=IDS)
def test_elementwise_keeps_dtype(name, ours, theirs, rng):
    for dtype in (np.float32, np.float64):
        x = st.Tensor(randn(rng, 2, 3, dtype=dtype), requires_grad=True, dtype=dtype)
        out = ours(x)
        assert out.dtype == dtype and out.shape == (2, 3)
        out.backward(np.ones((2, 3), dtype))
        assert x.grad.dtype == dtype


def test_relu_gradient_at_zero_is_zero():
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    out = check_torch(F.relu, torch.relu, [x])
    assert out.data.tolist() == [0.0, 0.0, 2.0]
    assert not np.signbit(out.data).any()             # 0, not -0.0, for negatives
    t = st.Tensor(x, requires_grad=True)
    F.relu(t).backward(np.ones(3, np.float32))
    assert t.grad.tolist() == [0.0, 0.0, 1.0]


def test_leaky_relu_gradient_at_zero_is_the_slope():
    x = np.zeros(4, np.float32)
    check_torch(lambda t: F.leaky_relu(t, 0.1), lambda t: tF.leaky_relu(t, 0.1), [x])


def test_sigmoid_has_no_overflow_for_large_inputs():
    x = np.array([-1e4, -1000.0, -89.0, -30.0, 0.0, 30.0, 89.0, 1000.0, 1e4], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # an overflow warning fails the test
        out = check_torch(F.sigmoid, torch.sigmoid, [x])
    assert np.isfinite(out.data).all()
    assert out.data[0] == 0.0 and out.data[-1] == 1.0


def test_scaled_tanh_is_lecuns():
    out = F.scaled_tanh(np.array([-1.0, 0.0, 1.0], np.float32))
    np.testing.assert_allclose(out.data, [-1.0, 0.0, 1.0], atol=2e-4)    # f(±1) ≈ ±1


# softmax's input gradient s·(g − Σ g·s) cancels when one probability is near 1: the result is
# much smaller than its terms (|s·g| ≤ |g|, the upstream gradient, of order 1), and float32
# rounds at the terms' scale in any library (PyTorch's own float32 is as far from float64).
# So its gradient is held to rtol × max(1, max|ref|), not to its own tiny magnitude.
SOFTMAX_FLOOR = {"softmax": 1.0, "log_softmax": 0.0}


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_matches_torch_along_every_dim(op, rng):
    ours, theirs = getattr(F, op), getattr(torch, op)
    for _ in range(10):
        shape = random_shape(rng)
        dim = int(rng.integers(-len(shape), len(shape)))
        x = randn(rng, *shape) * 4
        check_torch(lambda t: ours(t, dim=dim), lambda t: theirs(t, dim=dim), [x], grad_floor=SOFTMAX_FLOOR[op])


@settings(max_examples=25, deadline=None)
@given(shape=hs.lists(hs.integers(1, 6), min_size=1, max_size=4), data=hs.data())
def test_softmax_hypothesis(shape, data):
    dim = data.draw(hs.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32) * 5
    check_torch(lambda t: F.softmax(t, dim), lambda t: torch.softmax(t, dim), [x], grad_floor=SOFTMAX_FLOOR["softmax"])
    check_torch(lambda t: F.log_softmax(t, dim), lambda t: torch.log_softmax(t, dim), [x])


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_gradcheck_float64(op, rng):
    for dim in (0, 1, -1):
        assert st.gradcheck(lambda t: getattr(F, op)(t, dim=dim), [rng.standard_normal((3, 4, 2))])


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4, -1e4, -1e4 + 3]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = check_torch(lambda t: F.log_softmax(t, 1), lambda t: torch.log_softmax(t, 1), [x])
        assert np.isfinite(out.data).all()
        p = check_torch(lambda t: F.softmax(t, 1), lambda t: torch.softmax(t, 1), [x])
    np.testing.assert_allclose(p.data.sum(1), 1, rtol=1e-6)


def test_softmax_keeps_the_output_for_backward():
    x = st.Tensor(np.array([[1.0, 2.0, 3.0]], np.float32), requires_grad=True)
    out = F.softmax(x)
    x.data = x.data * 0 + 100      # backward must not read the (changed) input
    out.backward(np.array([[1.0, 0.0, 0.0]], np.float32))
    p = out.data[0]
    assert_close(x.grad[0], p[0] * (np.eye(3)[0] - p), 1e-6)


@pytest.mark.parametrize("op", ["relu", "leaky_relu", "sigmoid", "tanh", "scaled_tanh", "softmax", "log_softmax"])
def test_integer_input_is_rejected(op):
    with pytest.raises(TypeError, match=f"{op} expects a float32 or float64 input, got dtype int64"):
        getattr(F, op)(st.Tensor(np.arange(4), dtype=np.int64))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_dim_out_of_range(op):
    with pytest.raises(ValueError, match=rf"{op}: dim=2 is out of range for a tensor with 2 dimension"):
        getattr(F, op)(np.zeros((3, 4), np.float32), dim=2)


def test_accepts_plain_arrays_and_returns_tensors():
    out = F.relu(np.array([[-1.0, 1.0]], np.float32))
    assert isinstance(out, st.Tensor) and not out.requires_grad
