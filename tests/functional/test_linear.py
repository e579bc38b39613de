import numpy as np
import pytest
import torch.nn.functional as tF

import striate as st
import striate.functional as F
from tests.reference import check_torch, randn


def test_linear_matches_torch(rng):
    for _ in range(20):
        n_in, n_out = (int(n) for n in rng.integers(1, 40, size=2))
        lead = tuple(int(n) for n in rng.integers(1, 6, size=rng.integers(0, 3)))   # (), (N,), (B, T)
        x, w, b = randn(rng, *lead, n_in), randn(rng, n_out, n_in), randn(rng, n_out)
        out = check_torch(F.linear, tF.linear, [x, w, b])
        assert out.shape == lead + (n_out,)
        check_torch(F.linear, tF.linear, [x, w])


def test_linear_batch_of_one_and_single_feature(rng):
    check_torch(F.linear, tF.linear, [randn(rng, 1, 1), randn(rng, 3, 1), randn(rng, 3)])
    check_torch(F.linear, tF.linear, [randn(rng, 1, 7), randn(rng, 1, 7)])


def test_linear_gradcheck_float64(rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    assert st.gradcheck(F.linear, [x, w, b])
    assert st.gradcheck(F.linear, [rng.standard_normal((2, 3, 5)), w])


def test_linear_only_computes_requested_gradients(rng):
    x = st.Tensor(randn(rng, 4, 5))
    w = st.Tensor(randn(rng, 3, 5), requires_grad=True)
    out = F.linear(x, w, randn(rng, 3))
    assert out.dtype == np.float32
    out.backward(np.ones((4, 3), np.float32))
    assert x.grad is None and w.grad.shape == (3, 5)


def test_linear_keeps_float64():
    x = st.Tensor(np.ones((2, 3)), dtype=np.float64)
    assert F.linear(x, np.ones((4, 3)), np.zeros(4)).dtype == np.float64


def test_linear_errors():
    x, w = np.zeros((8, 5), np.float32), np.zeros((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"linear expects input \(\.\.\., 4\) to match weight \(3, 4\).*got \(8, 5\)"):
        F.linear(x, np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"weight \(out_features, in_features\), got shape \(15,\)"):
        F.linear(x, np.zeros(15, np.float32))
    with pytest.raises(ValueError, match=r"bias \(3,\) for weight \(3, 5\), got \(5,\)"):
        F.linear(x, w, np.zeros(5, np.float32))
    with pytest.raises(TypeError, match="input float32, weight float64"):
        F.linear(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="linear expects a float32 or float64 input, got dtype int64"):
        F.linear(st.Tensor(np.zeros((8, 5)), dtype=np.int64), w)
