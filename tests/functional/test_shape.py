import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import striate as st
import striate.functional as F
from tests.reference import check_torch, randn


def random_padding(rng, shape):
    """A flat PyTorch padding tuple for the last 1..ndim axes, crops included."""
    pads = []
    for n in reversed(shape[len(shape) - int(rng.integers(1, len(shape) + 1)):]):
        lo, hi = (int(v) for v in rng.integers(-2, 4, size=2))
        while min(lo, 0) + min(hi, 0) + n < 0:     # PyTorch cannot crop more than the axis holds
            lo, hi = lo + 1, hi + 1
        pads += [lo, hi]
    return tuple(pads)


def test_pad_matches_torch(rng):
    for _ in range(30):
        shape = tuple(int(n) for n in rng.integers(1, 7, size=rng.integers(1, 5)))
        padding = random_padding(rng, shape)
        value = float(rng.choice([0.0, 2.5, -1.0]))
        x = randn(rng, *shape)
        check_torch(lambda t: F.pad(t, padding, value), lambda t: tF.pad(t, padding, value=value), [x])


def test_pad_int_pads_height_and_width(rng):
    x = randn(rng, 2, 3, 5, 4)
    out = check_torch(lambda t: F.pad(t, 2), lambda t: tF.pad(t, (2, 2, 2, 2)), [x])
    assert out.shape == (2, 3, 9, 8)
    check_torch(lambda t: F.pad(t, -1), lambda t: tF.pad(t, (-1, -1, -1, -1)), [x])


def test_pad_docstring_example_and_minus_infinity():
    out = F.pad(np.zeros((1, 1, 3, 5), np.float32), (1, 2, 0, 1), value=float("-inf"))
    assert out.shape == (1, 1, 4, 8)
    assert np.isneginf(out.data[0, 0, 3]).all() and np.isneginf(out.data[0, 0, :, 0]).all()
    assert (out.data[0, 0, :3, 1:6] == 0).all()


def test_pad_gradcheck_float64(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    assert st.gradcheck(lambda t: F.pad(t, (1, -2, 2, 0)), [x])
    assert st.gradcheck(lambda t: F.pad(t, (0, 1)), [x])


def test_pad_errors():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"even number of values.*got 3"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"at most 6 for a 3-D input, got 8"):
        F.pad(x, (1,) * 8)
    with pytest.raises(ValueError, match=r"crops 5 from an axis of size 4"):
        F.pad(x, (-3, -2))
    with pytest.raises(ValueError, match=r"crops 5 from an axis of size 4"):
        F.pad(x, (1, -5))
    with pytest.raises(ValueError, match="int padding pads the last two axes"):
        F.pad(np.zeros(3, np.float32), 1)
    with pytest.raises(TypeError, match="padding must be an int or a tuple of ints"):
        F.pad(x, (1.5, 1))


def test_flatten_matches_torch(rng):
    x = randn(rng, 2, 3, 4, 5)
    for start, end in [(1, -1), (0, -1), (1, 2), (2, 3), (-3, -2), (3, 3), (0, 0)]:
        check_torch(lambda t: F.flatten(t, start, end), lambda t: torch.flatten(t, start, end), [x])
    assert F.flatten(x).shape == (2, 60)
    assert F.flatten(np.float32(3.0), 0).shape == (1,)


def test_flatten_errors():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="start_dim=2 comes after end_dim=1"):
        F.flatten(x, 2, 1)
    with pytest.raises(ValueError, match=r"start_dim=3 is out of range for a tensor with 3 dimension"):
        F.flatten(x, 3)


def test_concat_matches_torch(rng):
    for _ in range(15):
        shape = [int(n) for n in rng.integers(1, 6, size=rng.integers(1, 5))]
        axis = int(rng.integers(-len(shape), len(shape)))
        arrays = []
        for _ in range(int(rng.integers(1, 4))):
            shape[axis] = int(rng.integers(1, 5))
            arrays.append(randn(rng, *shape))
        out = check_torch(lambda *ts: F.concat(list(ts), axis=axis),
                          lambda *ts: torch.cat(ts, dim=axis), arrays)
        assert F.cat is F.concat and out.shape[axis] == sum(a.shape[axis] for a in arrays)


def test_concat_with_constants_and_gradcheck(rng):
    a = st.Tensor(randn(rng, 2, 3, 4), requires_grad=True)
    b = randn(rng, 2, 1, 4)          # a constant array: no gradient, no error
    out = F.concat([a, b])
    out.backward(np.ones(out.shape, np.float32))
    assert a.grad.shape == (2, 3, 4) and (a.grad == 1).all()
    assert st.gradcheck(lambda x, y: F.concat([y, x, y], axis=1),
                        [rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 2, 2))])


def test_stack_matches_torch(rng):
    for axis in (0, 1, 3, -1, -4):
        arrays = [randn(rng, 2, 3, 4) for _ in range(3)]
        check_torch(lambda *ts: F.stack(ts, axis=axis), lambda *ts: torch.stack(ts, dim=axis), arrays)


@pytest.mark.parametrize("sizes, axis", [(2, 1), (3, 1), ([1, 4, 2], 1), ([0, 7], 1), (4, -1), ([2, 3], 0)])
def test_split_matches_torch(sizes, axis, rng):
    shape = [5, 7, 4]
    shape[axis] = sum(sizes) if isinstance(sizes, list) else shape[axis]
    x = randn(rng, *shape)
    # reversing the pieces makes the joined gradient depend on every piece's own backward
    check_torch(lambda t: F.concat(F.split(t, sizes, axis)[::-1], axis=axis),
                lambda t: torch.cat(torch.split(t, sizes, dim=axis)[::-1], dim=axis), [x])
    ours = F.split(x, sizes, axis)
    theirs = torch.split(torch.from_numpy(x), sizes, dim=axis)
    assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]


def test_join_and_split_errors():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"tensor 0 is \(2, 3, 4\), tensor 1 is \(2, 3, 5\)"):
        F.concat([x, np.zeros((2, 3, 5), np.float32)], axis=1)
    with pytest.raises(TypeError, match="concat expects all arrays of one dtype"):
        F.concat([x, x.astype(np.float64)])
    with pytest.raises(TypeError, match="non-empty list or tuple of tensors"):
        F.concat([])
    with pytest.raises(ValueError, match="axis=3 is out of range"):
        F.concat([x, x], axis=3)
    with pytest.raises(ValueError, match=r"stack expects tensors of one shape"):
        F.stack([x, x[:1]])
    with pytest.raises(ValueError, match=r"sizes \[1, 1\] must be non-negative and add up to 3"):
        F.split(x, [1, 1], axis=1)
    with pytest.raises(ValueError, match="piece size must be positive"):
        F.split(x, 0)
