"""The autograd engine: Tensor, its arithmetic, reductions, shapes and indexing.

Values and gradients are compared with PyTorch (``check_torch`` drives both
backward passes with one random upstream gradient); the engine's own promises
(iterative backward, freed graphs, accumulation, no aliasing, dtypes, errors)
are tested directly.
"""
import gc
import sys
import weakref

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hst
from hypothesis.extra import numpy as hnp

import striate as st
from striate.tensor import Tensor, unbroadcast
from tests.reference import assert_close, check_torch, randn

FAST = settings(max_examples=40, deadline=None)


def away_from_zero(rng, *shape, dtype=np.float32):
    """Random values with |v| in [0.5, 1.5): safe denominators and logs."""
    v = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return np.asarray(v, dtype=dtype)


def spy(t, seen):
    """An identity op that records the dtype of the gradient flowing through it."""
    def backward(g):
        seen.append(g.dtype)
        return (g,)
    return Tensor.from_op(t.data, (t,), backward, "spy")


# ---------------------------------------------------------------------------
# construction and attributes


@pytest.mark.parametrize("data", [
    [[1, 2], [3, 4]], 3, 2.5, np.arange(6.0).reshape(2, 3), np.ones(3, np.float16),
    np.arange(4), [True, False], np.float64(1.5),
])
def test_tensor_defaults_to_float32(data):
    t = st.Tensor(data)
    assert isinstance(t.data, np.ndarray)
    assert t.dtype == np.float32 and t.data.dtype == np.float32
    assert t.shape == np.shape(data)
    np.testing.assert_array_equal(t.data, np.asarray(data, np.float32))
    assert t.grad is None and not t.requires_grad and t.is_leaf


def test_tensor_keeps_explicit_dtypes():
    assert st.Tensor([1.0, 2.0], dtype=np.float64).dtype == np.float64
    assert st.tensor(np.ones(2), dtype=np.float64).dtype == np.float64
    labels = st.Tensor([0, 3, 1], dtype=np.int64)
    assert labels.dtype == np.int64
    # as_tensor keeps a float ndarray's dtype (ops keep their input's precision),
    # returns a Tensor unchanged, and makes everything else float32
    assert st.as_tensor(np.ones(2)).dtype == np.float64
    assert st.as_tensor(np.ones(2, np.float32)).dtype == np.float32
    assert st.as_tensor([1, 2]).dtype == np.float32
    t = st.Tensor([1.0])
    assert st.as_tensor(t) is t


def test_tensor_attributes():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = st.Tensor(a, requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.numpy() is t.data
    np.testing.assert_array_equal(np.asarray(t), a)
    assert st.Tensor([[4.5]]).item() == 4.5 and isinstance(st.Tensor(2).item(), float)
    assert float(st.Tensor(2.5)) == 2.5
    assert "requires_grad=True" in repr(t) and "float64" in repr(st.Tensor(1, dtype=np.float64))
    with pytest.raises(ValueError, match=r"one element, got shape \(2, 3\)"):
        t.item()


def test_tensor_constructor_errors():
    with pytest.raises(TypeError, match="only float tensors can require gradients, got dtype int64"):
        st.Tensor([1, 2], requires_grad=True, dtype=np.int64)
    with pytest.raises(TypeError, match="float32 .* and float64, got float16"):
        st.Tensor([1.0], dtype=np.float16)
    with pytest.raises(TypeError, match="float, integer or bool type, got complex128"):
        st.Tensor([1.0], dtype=np.complex128)
    with pytest.raises(TypeError, match="array-like of numbers, got str"):
        st.Tensor("abc")


def test_backward_simple_example():
    x = st.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [[2, 4], [6, 8]])
    assert x.grad.dtype == np.float32


def test_detach_cuts_the_graph():
    x = st.Tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d._parents == () and d.is_leaf
    y = (x * d).sum()          # d is a constant: dy/dx = d
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


# ---------------------------------------------------------------------------
# grad mode


def test_no_grad_records_nothing():
    x = st.Tensor(np.ones((2, 3)), requires_grad=True)
    w = st.Tensor(np.ones((3, 4)), requires_grad=True)
    assert st.is_grad_enabled()
    with st.no_grad():
        assert not st.is_grad_enabled()
        outs = [x + 1, 1 - x, x * x, x / 2, 2 / x, x @ w, x ** 2, 2 ** x, -x, x.sum(), x.mean(0),
                x.max(1), x.reshape(3, 2), x.T, x.permute(1, 0), x.exp(), x.log(), x.abs(),
                x.sqrt(), x[:, 1], x[np.array([0, 0])], x.astype(np.float64)]
    assert st.is_grad_enabled()
    for out in outs:
        assert not out.requires_grad
        assert out._parents == () and out._backward is None and out.is_leaf
        with pytest.raises(RuntimeError, match="does not require grad"):
            out.sum().backward()


def test_no_grad_restores_mode_when_body_raises():
    with pytest.raises(KeyError):
        with st.no_grad():
            raise KeyError("boom")
    assert st.is_grad_enabled()
    with st.no_grad():
        with pytest.raises(ValueError):
            with st.enable_grad():
                assert st.is_grad_enabled()
                raise ValueError
        assert not st.is_grad_enabled()      # the inner block restored the outer mode
        with st.no_grad():
            pass
        assert not st.is_grad_enabled()
    assert st.is_grad_enabled()


def test_no_grad_as_decorator_and_enable_grad_inside():
    @st.no_grad()
    def infer(t):
        return t * 2

    x = st.Tensor([1.0], requires_grad=True)
    assert not infer(x).requires_grad
    assert not infer(x).requires_grad       # reusable
    with st.no_grad():
        with st.enable_grad():
            y = x * 2
    assert y.requires_grad and y._parents[0] is x


def test_leaf_requires_grad_only_when_asked():
    x = st.Tensor([1.0, 2.0])
    y = x * 3 + 1
    assert not y.requires_grad and y._parents == ()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


# ---------------------------------------------------------------------------
# elementwise arithmetic against PyTorch

BROADCAST_PAIRS = [
    ((3, 1, 5), (4, 5)), ((4, 5), (3, 1, 5)), ((1,), (2, 3)), ((2, 3), (1,)), ((), (3, 4)),
    ((3, 4), ()), ((4, 1), (1, 6)), ((2, 1, 3), (2, 4, 1)), ((5,), (5,)), ((2, 3, 4), (3, 1)),
]
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
}


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_binary_ops_broadcast_like_torch(op, shapes, rng):
    ours, theirs = BINARY[op]
    a = randn(rng, *shapes[0])
    b = away_from_zero(rng, *shapes[1])
    out = check_torch(ours, theirs, [a, b])
    assert out.shape == np.broadcast_shapes(*shapes)


@FAST
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
       op=hst.sampled_from(sorted(BINARY)), seed=hst.integers(0, 2 ** 16))
def test_binary_ops_random_broadcasting(shapes, op, seed):
    rng = np.random.default_rng(seed)
    ours, theirs = BINARY[op]
    a = randn(rng, *shapes.input_shapes[0])
    b = away_from_zero(rng, *shapes.input_shapes[1])
    check_torch(ours, theirs, [a, b])


@pytest.mark.parametrize("other", [2, 2.5, -0.75, np.float64(2.0), np.float32(1.5), np.int64(3)],
                         ids=repr)
def test_scalars_on_either_side(other, rng):
    x = away_from_zero(rng, 3, 4)
    c = float(other)
    cases = [
        (lambda t: t + other, lambda t: t + c), (lambda t: other + t, lambda t: c + t),
        (lambda t: t - other, lambda t: t - c), (lambda t: other - t, lambda t: c - t),
        (lambda t: t * other, lambda t: t * c), (lambda t: other * t, lambda t: c * t),
        (lambda t: t / other, lambda t: t / c), (lambda t: other / t, lambda t: c / t),
    ]
    for ours, theirs in cases:
        check_torch(ours, theirs, [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_arrays_on_either_side(dtype, rng):
    x = away_from_zero(rng, 2, 3, 4)
    c = away_from_zero(rng, 3, 1, dtype=dtype)       # broadcasts against x
    tc = torch.from_numpy(c.astype(np.float64))         # c's exact value; striate rounds it to x's float32
    cases = [
        (lambda t: t + c, lambda t: t + tc), (lambda t: c + t, lambda t: tc + t),
        (lambda t: t - c, lambda t: t - tc), (lambda t: c - t, lambda t: tc - t),
        (lambda t: t * c, lambda t: t * tc), (lambda t: c * t, lambda t: tc * t),
        (lambda t: t / c, lambda t: t / tc), (lambda t: c / t, lambda t: tc / t),
    ]
    for ours, theirs in cases:
        check_torch(ours, theirs, [x])       # also checks the result stays float32
    m = randn(rng, 5, 2).astype(dtype)
    tm = torch.from_numpy(m.astype(np.float64))
    check_torch(lambda t: m @ t, lambda t: tm @ t, [randn(rng, 2, 3)])
    check_torch(lambda t: t @ m, lambda t: t @ tm, [randn(rng, 4, 5)])


def test_neg_pow_and_reflected_pow_like_torch(rng):
    x = away_from_zero(rng, 3, 5)
    check_torch(lambda t: -t, lambda t: -t, [x])
    for p in [2, 3, -1, -2, 1, 0]:
        check_torch(lambda t: t ** p, lambda t: t ** p, [x])
    pos = np.abs(x)
    for p in [0.5, 1.5, -2.5, np.float64(0.3)]:
        check_torch(lambda t: t ** p, lambda t: t ** float(p), [pos])
    for base in [2, 0.5, np.float64(3.0)]:
        check_torch(lambda t: base ** t, lambda t: float(base) ** t, [x])


def test_pow_zero_exponent_has_zero_gradient_at_zero():
    x = st.Tensor([0.0, 2.0], requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_unary_ops_like_torch(rng):
    x = randn(rng, 4, 3, 2)
    pos = np.abs(x) + 0.1
    check_torch(lambda t: t.exp(), torch.exp, [x])
    check_torch(lambda t: t.log(), torch.log, [pos])
    check_torch(lambda t: t.sqrt(), torch.sqrt, [pos])
    check_torch(lambda t: t.abs(), torch.abs, [x])
    # |x| at 0: both libraries give gradient 0
    check_torch(lambda t: t.abs(), torch.abs, [np.array([-1.0, 0.0, 2.0], np.float32)])


def test_unbroadcast_sums_added_and_stretched_axes():
    g = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (3, 4)), g.sum(0))
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum((0, 2))[:, None])
    np.testing.assert_array_equal(unbroadcast(g, (1, 1, 4)), g.sum((0, 1), keepdims=True))
    np.testing.assert_array_equal(unbroadcast(g, ()), g.sum())
    assert unbroadcast(g, (2, 3, 4)) is g


# ---------------------------------------------------------------------------
# matmul

MATMUL_SHAPES = [
    ((4,), (4,)), ((4,), (4, 3)), ((2, 4), (4,)), ((2, 4), (4, 3)), ((5, 2, 4), (4, 3)),
    ((2, 4), (5, 4, 3)), ((4,), (5, 4, 3)), ((5, 2, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2)),
    ((6, 1, 2, 4), (1, 3, 4, 2)), ((1, 1), (1, 1)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_like_torch(shapes, rng):
    a, b = randn(rng, *shapes[0]), randn(rng, *shapes[1])
    check_torch(lambda x, y: x @ y, lambda x, y: x @ y, [a, b])


@FAST
@given(batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       nkm=hst.tuples(*[hst.integers(1, 5)] * 3), vector=hst.sampled_from(["", "a", "b", "ab"]),
       seed=hst.integers(0, 2 ** 16))
def test_matmul_random_batches(batch, nkm, vector, seed):
    rng = np.random.default_rng(seed)
    n, k, m = nkm
    sa = (k,) if "a" in vector else batch.input_shapes[0] + (n, k)
    sb = (k,) if "b" in vector else batch.input_shapes[1] + (k, m)
    check_torch(lambda x, y: x @ y, lambda x, y: x @ y, [randn(rng, *sa), randn(rng, *sb)])


def test_matmul_errors():
    with pytest.raises(ValueError, match=r"at least 1 dimension, got \(\) @ \(3,\)"):
        st.Tensor(2.0) @ st.Tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"last axis of a \(3\) must match the second-to-last of b "
                                         r"\(4\), got \(2, 3\) @ \(4, 2\)"):
        st.Tensor(np.ones((2, 3))) @ st.Tensor(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"must match the length of b \(2\)"):
        st.Tensor(np.ones((2, 3))) @ np.ones(2)
    with pytest.raises(ValueError):      # batch axes that do not broadcast
        st.Tensor(np.ones((2, 2, 3))) @ st.Tensor(np.ones((3, 3, 1)))


# ---------------------------------------------------------------------------
# reductions and shapes

AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
def test_sum_mean_max_like_torch(axis, keepdims, rng):
    x = randn(rng, 3, 4, 5)
    dim = tuple(range(3)) if axis is None else axis
    check_torch(lambda t: t.sum(axis, keepdims), lambda t: t.sum(dim=dim, keepdim=keepdims), [x])
    check_torch(lambda t: t.mean(axis, keepdims), lambda t: t.mean(dim=dim, keepdim=keepdims), [x])
    check_torch(lambda t: t.max(axis, keepdims), lambda t: torch.amax(t, dim=dim, keepdim=keepdims), [x])


def test_reductions_over_no_axis_are_identity(rng):
    # NumPy reads axis=() as "reduce nothing" (PyTorch's dim=() means all axes)
    x = randn(rng, 2, 3)
    for op in ("sum", "mean", "max"):
        check_torch(lambda t: getattr(t, op)(()), lambda t: t * 1, [x])


def test_max_ties_share_the_gradient_like_amax(rng):
    # small integers: many ties per row, and a row that is all one value
    x = rng.integers(0, 3, size=(4, 6, 5)).astype(np.float32)
    x[0, :, 0] = 1.0
    for axis in [None, 0, 1, 2, (1, 2), (0, 2)]:
        dim = tuple(range(3)) if axis is None else axis
        for keepdims in (False, True):
            check_torch(lambda t: t.max(axis, keepdims), lambda t: torch.amax(t, dim, keepdims), [x])
    t = st.Tensor([1.0, 3.0, 3.0, 3.0], requires_grad=True)
    t.max().backward()
    np.testing.assert_allclose(t.grad, [0, 1 / 3, 1 / 3, 1 / 3])


@FAST
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), data=hst.data(),
       seed=hst.integers(0, 2 ** 16))
def test_reductions_random_shapes(shape, data, seed):
    rng = np.random.default_rng(seed)
    axis = data.draw(hst.none() | hst.lists(hst.integers(-len(shape), len(shape) - 1), min_size=1,
                                            max_size=len(shape), unique_by=lambda a: a % len(shape))
                     .map(tuple))
    keepdims = data.draw(hst.booleans())
    dim = tuple(range(len(shape))) if axis is None else axis
    x = rng.integers(-2, 3, size=shape).astype(np.float32)     # ties for max
    check_torch(lambda t: t.sum(axis, keepdims), lambda t: t.sum(dim, keepdims), [x])
    check_torch(lambda t: t.mean(axis, keepdims), lambda t: t.mean(dim, keepdims), [x])
    check_torch(lambda t: t.max(axis, keepdims), lambda t: torch.amax(t, dim, keepdims), [x])


def test_reduction_errors():
    x = st.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="sum: axis 2 is out of range for a tensor with 2 dimensions"):
        x.sum(2)
    with pytest.raises(ValueError, match="mean: axis -3 is out of range"):
        x.mean(-3)
    with pytest.raises(ValueError, match=r"max: repeated axis in \(1, -1\)"):
        x.max((1, -1))
    assert x.sum(np.int64(1)).shape == (2,)


def test_shape_ops_like_torch(rng):
    x = randn(rng, 2, 3, 4)
    check_torch(lambda t: t.reshape(4, 6), lambda t: t.reshape(4, 6), [x])
    check_torch(lambda t: t.reshape((6, -1)), lambda t: t.reshape(6, -1), [x])
    check_torch(lambda t: t.view(-1), lambda t: t.view(-1), [x])
    check_torch(lambda t: t.flatten(1), lambda t: t.flatten(1), [x])
    check_torch(lambda t: t.transpose(), lambda t: t.permute(2, 1, 0), [x])
    check_torch(lambda t: t.transpose(1, 0, 2), lambda t: t.permute(1, 0, 2), [x])
    check_torch(lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1), [x])
    check_torch(lambda t: t.permute((-1, 0, 1)), lambda t: t.permute(-1, 0, 1), [x])
    check_torch(lambda t: t.T, lambda t: t.T, [randn(rng, 3, 5)])


def test_shape_errors():
    x = st.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) "
                                         r"into shape \(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"shape \(2, 3\) expects a permutation of its 2 axes, got \(0, 0\)"):
        x.transpose(0, 0)
    with pytest.raises(ValueError, match=r"got \(0, 2\)"):
        x.permute(0, 2)
    with pytest.raises(ValueError, match=r"got \(0,\)"):
        x.permute(0)


# ---------------------------------------------------------------------------
# indexing


def torch_index(index):
    """The same index for a torch tensor (arrays become torch tensors)."""
    if isinstance(index, tuple):
        return tuple(torch_index(i) for i in index)
    if isinstance(index, np.ndarray):
        return torch.from_numpy(index)
    return index


INDICES = [
    1, -1, slice(1, 3), (slice(None), slice(None, 2)), (Ellipsis, 1), (None, 0),
    (slice(None), None, slice(1, None, 2)), (0, Ellipsis, None), (1, 2, 3),
    np.array([0, 2, 0, 0]), (slice(None), np.array([3, 3, 1, 3])),
    (np.array([0, 0, 1]), np.array([1, 1, 1])), (np.array([[0, 1], [1, 0]]), Ellipsis, 2),
    np.array([True, False, True]), (slice(None), np.array([False, True, True, False])),
]


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_indexing_like_torch(index, rng):
    x = randn(rng, 3, 4, 5)
    check_torch(lambda t: t[index], lambda t: t[torch_index(index)], [x])


def test_indexing_negative_steps(rng):
    # torch has no negative steps; flip the axis and take the positive step there
    x = randn(rng, 5, 6)
    check_torch(lambda t: t[::-1], lambda t: t.flip(0), [x])
    check_torch(lambda t: t[:, ::-2], lambda t: t.flip(1)[:, ::2], [x])
    check_torch(lambda t: t[3:0:-1, -1], lambda t: t.flip(0)[1:4, -1], [x])


def test_boolean_mask_of_full_shape(rng):
    x = randn(rng, 3, 4)
    mask = x > 0
    check_torch(lambda t: t[mask], lambda t: t[torch.from_numpy(mask)], [x])
    check_torch(lambda t: t[t > 0], lambda t: t[t > 0], [x])        # comparisons give masks


def test_repeated_integer_indices_accumulate():
    x = st.Tensor(np.arange(5.0), requires_grad=True)
    x[np.array([1, 1, 1, 4, 1])].backward(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(x.grad, [0, 11, 0, 0, 4])
    idx = st.Tensor([0, 0, 2], dtype=np.int64)                       # an integer Tensor as index
    y = st.Tensor(np.ones((3, 2)), requires_grad=True)
    y[idx].sum().backward()
    np.testing.assert_array_equal(y.grad, [[2, 2], [0, 0], [1, 1]])


def test_half_the_channels_go_to_a_later_layer(rng):
    # x[:, :C//2] skips ahead while the whole x goes through a layer; the two paths meet later
    N, C, H, W = 2, 6, 3, 3
    x, w = randn(rng, N, C, H, W), randn(rng, C, 1, 1)

    def net(x, w):
        h = x * w                            # (N, C, H, W), a per-channel "layer"
        skip = h[:, :C // 2]                 # (N, C/2, H, W)
        deep = (h[:, C // 2:] * h[:, :C // 2]).exp()
        return deep * skip + h[:, 1:2]
    check_torch(net, net, [x, w])


# ---------------------------------------------------------------------------
# graphs: reuse, depth, freeing, aliasing


def test_tensor_used_twice_accumulates(rng):
    x = randn(rng, 3, 4)
    check_torch(lambda a: a * a, lambda a: a * a, [x])
    check_torch(lambda a: a + a, lambda a: a + a, [x])
    check_torch(lambda a: a - a * 3, lambda a: a - a * 3, [x])
    # a diamond and a skip connection: y = exp(a) * a + a, h shared by two branches
    check_torch(lambda a: (a.exp() * a + a).sum(0), lambda a: (a.exp() * a + a).sum(0), [x])

    def branches(a, w, amax):
        h = a @ w
        return (h * 2).exp().mean(1) + amax(h) - h[:, 0] + a.sum(1)
    check_torch(lambda a, w: branches(a, w, lambda h: h.max(1)),
                lambda a, w: branches(a, w, lambda h: torch.amax(h, 1)), [x, randn(rng, 4, 4) * 0.3])


def test_gradients_accumulate_across_backward_calls():
    x = st.Tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3 + 2, 3 + 4])
    x.zero_grad()
    assert x.grad is None


@pytest.mark.parametrize("depth", [2000, 10000])
def test_deep_chain_backward_is_iterative(depth):
    assert sys.getrecursionlimit() < 2 * depth       # a recursive walk could not do this
    x = st.Tensor([1.0, -2.0], requires_grad=True)
    y = x
    for _ in range(depth):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, 1.0001 ** depth, np.float32), rtol=1e-3)
    del y
    gc.collect()


def test_second_backward_fails_unless_graph_retained():
    x = st.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        y.backward()

    x = st.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad, [2, 4])
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad, [4, 8])       # doubled
    y.backward()                                          # the last one may free it
    np.testing.assert_array_equal(x.grad, [6, 12])
    with pytest.raises(RuntimeError, match="already freed"):
        y.backward()


def test_backward_frees_intermediate_arrays():
    x = st.Tensor(np.ones((50, 50)), requires_grad=True)
    h = x.exp()                          # exp's closure keeps its output array
    saved = weakref.ref(h.data)
    y = (h * 2).sum()
    mid = y._parents[0]
    del h
    gc.collect()
    assert saved() is not None           # the graph still holds it
    y.backward()
    assert y._parents == () and y._backward is None
    assert mid._parents == () and mid._backward is None
    del mid
    gc.collect()
    assert saved() is None               # freed with the graph

    # retain_graph keeps everything
    h = x.exp()
    saved = weakref.ref(h.data)
    y = (h * 2).sum()
    del h
    y.backward(retain_graph=True)
    gc.collect()
    assert saved() is not None and y._parents != ()


def test_leaf_grads_are_never_aliased():
    x = st.Tensor(np.ones(3), requires_grad=True)
    y = st.Tensor(np.ones(3), requires_grad=True)
    g = np.array([1.0, 2.0, 3.0], np.float32)
    (x + y).backward(g)                  # both receive the very same array from add
    assert not np.shares_memory(x.grad, y.grad)
    assert not np.shares_memory(x.grad, g) and not np.shares_memory(y.grad, g)
    x.grad -= 0.5 * x.grad               # an optimizer's in-place update
    np.testing.assert_array_equal(y.grad, g)
    np.testing.assert_array_equal(g, [1, 2, 3])

    # the gradient of exp is computed from its saved output; reshape passes g through
    z = st.Tensor(np.zeros((2, 2)), requires_grad=True)
    e = z.exp()
    e.backward(np.ones((2, 2), np.float32))
    assert not np.shares_memory(z.grad, e.data)
    u = st.Tensor(np.zeros((2, 2)), requires_grad=True)
    up = np.ones(4, np.float32)
    u.reshape(-1).backward(up)
    assert not np.shares_memory(u.grad, up)

    # a one-element result: the gradient is an ndarray of the leaf's dtype, not a NumPy scalar
    s = st.Tensor(2.0, requires_grad=True)
    ((s * 3) * s).backward()
    assert isinstance(s.grad, np.ndarray) and s.grad.dtype == np.float32 and s.grad == 12


def test_retain_grad_keeps_intermediate_grads():
    x = st.Tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_array_equal(h.grad, [4, 8])
    np.testing.assert_array_equal(x.grad, [8, 16])
    assert not np.shares_memory(h.grad, x.grad)


def test_backward_errors():
    x = st.Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"one-element tensor, got shape \(2, 3\); pass grad="):
        y.backward()
    with pytest.raises(ValueError, match=r"expects grad of shape \(2, 3\), got \(3, 2\)"):
        y.backward(np.ones((3, 2)))
    with pytest.raises(RuntimeError, match="does not require grad"):
        st.Tensor([1.0]).backward()
    y.backward(np.ones((2, 3)))            # still usable after the errors
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


def test_from_op_contract_errors():
    x = st.Tensor(np.ones(3), requires_grad=True)
    wrong_count = Tensor.from_op(x.data * 2, (x,), lambda g: (g, g), "twice")
    with pytest.raises(RuntimeError, match=r"op 'twice' returned 2 gradients for 1 inputs"):
        wrong_count.sum().backward()
    wrong_shape = Tensor.from_op(x.data * 2, (x,), lambda g: (g[:2],), "short")
    with pytest.raises(RuntimeError, match=r"op 'short' returned a gradient of shape \(2,\) "
                                           r"for an input of shape \(3,\)"):
        wrong_shape.sum().backward()


def test_numpy_ufuncs_refuse_tensors():
    # np.exp(t) would silently drop the graph; the message points at the ufunc
    with pytest.raises(TypeError, match="does not support ufuncs"):
        np.exp(st.Tensor([1.0]))


def test_power_errors():
    x = st.Tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="constant number as exponent, got Tensor"):
        x ** x
    with pytest.raises(TypeError, match="constant number as exponent, got ndarray"):
        x ** np.array([1.0, 2.0])


# ---------------------------------------------------------------------------
# dtypes

OTHERS = [2, 0.5, np.float64(2.0), np.float32(2.0), np.int64(2), np.full((1, 4), 1.5),
          np.full(4, 2, np.int64)]


def all_ops(t, other):
    """Every engine op once, with ``other`` (number or array) as the second operand."""
    w = st.Tensor(np.full((4, 2), 0.5, t.dtype), requires_grad=True)
    return [t + other, other + t, t - other, other - t, t * other, other * t, t / other, other / t,
            t ** 2, t ** np.float64(1.5), np.float64(1.5) ** t, 2 ** t, -t, t @ w, t.sum(0),
            t.mean(), t.max(1, keepdims=True), t.reshape(-1), t.T, t.permute(1, 0), t.exp(),
            t.log(), t.abs(), t.sqrt(), t[:, 1], t[np.array([0, 0, 2])], t[t > 1.2]]


@pytest.mark.parametrize("other", OTHERS, ids=lambda o: f"{type(o).__name__}-{np.ndim(o)}d")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_through_every_op_and_gradient(dtype, other, rng):
    x = st.Tensor(rng.uniform(1, 2, size=(3, 4)), requires_grad=True, dtype=dtype)
    seen = []
    outs = all_ops(spy(x, seen), other)
    for out in outs:
        assert out.dtype == dtype, out._op
    total = outs[0].sum()
    for out in outs[1:]:
        total = total + spy(out, seen).sum()
    assert total.dtype == dtype
    total.backward()
    assert x.grad.dtype == dtype
    assert set(seen) == {np.dtype(dtype)}           # every intermediate gradient too


def test_mixed_precision_follows_numpy_and_gradients_keep_each_dtype():
    a = st.Tensor([1.0, 2.0], requires_grad=True)                      # float32
    b = st.Tensor([3.0, 4.0], requires_grad=True, dtype=np.float64)
    seen = []
    out = spy(a * 2, seen) * b
    assert out.dtype == np.float64                                      # as in NumPy and PyTorch
    out.sum().backward()
    assert seen == [np.dtype(np.float32)]       # the float32 branch stays float32
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad, [6, 8])


def test_integer_tensors_meet_floats_as_floats():
    labels = st.Tensor([1, 2], dtype=np.int64)
    assert (labels * 2).dtype == np.int64
    assert (labels * 1.5).dtype == np.float32
    x = st.Tensor([0.5, 0.25], requires_grad=True, dtype=np.float64)
    y = x * labels
    assert y.dtype == np.float64
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 2])
    assert (st.Tensor([1.0, 2.0]) + labels).dtype == np.float32


def test_float64_against_torch(rng):
    a, b = rng.standard_normal((3, 1, 5)), away_from_zero(rng, 4, 5, dtype=np.float64)
    for ours, theirs in BINARY.values():
        check_torch(ours, theirs, [a, b], rtol=1e-12)
    check_torch(lambda x, y: (x @ y.T).max(1), lambda x, y: torch.amax(x @ y.T, 1),
                [rng.standard_normal((2, 5)), rng.standard_normal((4, 5))], rtol=1e-12)


def test_assert_close_helper_catches_differences():
    with pytest.raises(AssertionError, match="max abs error"):
        assert_close(np.ones(3), np.ones(3) + 1e-3)


def test_check_torch_catches_what_float32_hides_and_a_changed_dtype(rng):
    x = randn(rng, 3, 4)
    check_torch(lambda t: t * 3, lambda t: t * 3, [x])
    # a formula off by 1e-7 relative passes the float32 comparison, not the float64 one
    with pytest.raises(AssertionError, match="float64: forward"):
        check_torch(lambda t: t * (3 + 3e-7), lambda t: t * 3, [x])
    # a tiny gradient is held to its own scale: off by 1e-3 of it fails although it is far below 1
    with pytest.raises(AssertionError, match="gradient of input 0"):
        check_torch(lambda t: t * 1e-6 * (1 + 1e-3), lambda t: t * 1e-6, [x], rtol64=1e-2)
    # striate must keep the float32 of its input, even though the reference is float64
    with pytest.raises(AssertionError, match="dtype float64 != expected float32"):
        check_torch(lambda t: t.astype(np.float64) * 3, lambda t: t * 3, [x])
