import numpy as np
import pytest

import striate as st
import striate.functional as F
from tests.reference import randn


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics_and_scaling(p):
    n = 200_000
    out = F.dropout(np.ones(n, np.float32), p, rng=np.random.default_rng(0)).data
    kept = out != 0
    # the kept fraction is 1 − p within 5 standard deviations of a binomial
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)   # inverted dropout
    assert abs(out.mean() - 1) < 0.02                                # expectation preserved
    assert out.dtype == np.float32


def test_dropout_gradient_is_mask_times_scale(rng):
    x = st.Tensor(randn(rng, 4, 3, 7, 9), requires_grad=True)
    out = F.dropout(x, 0.3, rng=5)
    g = randn(rng, *x.shape)
    out.backward(g)
    scaled_mask = F.dropout(np.ones(x.shape, np.float32), 0.3, rng=5).data   # the same seed, the same mask
    assert set(np.unique(scaled_mask)) <= {0.0, np.float32(1 / 0.7)}
    np.testing.assert_array_equal(out.data, x.data * scaled_mask)
    np.testing.assert_array_equal(x.grad, g * scaled_mask)


def test_dropout_gradcheck_float64(rng):
    # an int seed draws the same mask on every call, so the op is a fixed function
    assert st.gradcheck(lambda t: F.dropout(t, 0.4, rng=11), [rng.standard_normal((3, 4, 5))])
    assert st.gradcheck(lambda t: F.dropout2d(t, 0.4, rng=11), [rng.standard_normal((3, 4, 2, 2))])


def test_dropout_is_reproducible_from_a_seed():
    x = np.ones((64, 64), np.float32)
    a = F.dropout(x, 0.5, rng=123).data
    b = F.dropout(x, 0.5, rng=123).data
    c = F.dropout(x, 0.5, rng=124).data
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    d = F.dropout(x, 0.5, rng=np.random.default_rng(123)).data
    np.testing.assert_array_equal(a, d)
    saved = st.random.get_state()
    try:
        st.manual_seed(7)
        e = F.dropout(x, 0.5).data
        st.manual_seed(7)
        np.testing.assert_array_equal(e, F.dropout(x, 0.5).data)
    finally:
        st.random.set_state(saved)
    gen = np.random.default_rng(1)
    assert (F.dropout(x, 0.5, rng=gen).data != F.dropout(x, 0.5, rng=gen).data).any()   # the generator advances


def test_dropout_identity_when_not_training_or_p_zero(rng):
    x = st.Tensor(randn(rng, 3, 4), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert F.dropout2d(st.Tensor(randn(rng, 2, 3, 4, 4)), 0.5, training=False).shape == (2, 3, 4, 4)


def test_dropout_p_one_gives_zeros(rng):
    x = st.Tensor(randn(rng, 3, 4), requires_grad=True)
    with np.errstate(all="raise"):                   # no division by zero
        out = F.dropout(x, 1.0)
    assert (out.data == 0).all()
    out.backward(np.ones((3, 4), np.float32))
    assert (x.grad == 0).all()


def test_dropout_keeps_float64(rng):
    x = st.Tensor(rng.standard_normal((5, 5)), requires_grad=True, dtype=np.float64)
    out = F.dropout(x, 0.5, rng=0)
    out.backward(np.ones((5, 5)))
    assert out.dtype == np.float64 and x.grad.dtype == np.float64


def test_dropout2d_drops_whole_channels():
    N, C = 40, 50
    out = F.dropout2d(np.ones((N, C, 3, 5), np.float32), 0.3, rng=3).data
    per_map = out.reshape(N, C, -1)
    assert (per_map == per_map[:, :, :1]).all()        # each map entirely kept or entirely zero
    kept = per_map[:, :, 0] != 0
    assert abs(kept.mean() - 0.7) < 5 * np.sqrt(0.21 / (N * C))
    np.testing.assert_allclose(per_map[:, :, 0][kept], 1 / 0.7, rtol=1e-6)


def test_dropout_errors():
    with pytest.raises(ValueError, match=r"dropout: the drop probability p must be a number between 0 and 1, got 1.5"):
        F.dropout(np.ones(3, np.float32), 1.5)
    with pytest.raises(ValueError, match=r"between 0 and 1, got -0.1"):
        F.dropout(np.ones(3, np.float32), -0.1)
    with pytest.raises(TypeError, match="dropout expects a float32 or float64 input, got dtype int64"):
        F.dropout(st.Tensor(np.ones(3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"dropout2d expects input \(N, C, H, W\), got shape \(3, 4\)"):
        F.dropout2d(np.ones((3, 4), np.float32))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        F.dropout(np.ones(3, np.float32), rng="seed")
