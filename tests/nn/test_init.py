"""Initialisation: PyTorch's default distributions, nn.init's schemes, and where the randomness comes from."""
import math

import numpy as np
import pytest
import torch

import striate as st
from striate import nn
from striate.nn import init


def _check_uniform(a, bound):
    """Values within ±bound, spread like U(−bound, bound): mean 0, std bound/√3, both ends reached."""
    a = np.asarray(a, dtype=np.float64)
    n = a.size
    assert np.abs(a).max() <= bound
    assert np.abs(a).max() > 0.98 * bound
    assert abs(a.mean()) < 4 * bound / math.sqrt(3 * n)
    assert abs(a.std() - bound / math.sqrt(3)) < 0.03 * bound


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Conv2d(64, 96, 3, rng=0), 64 * 9),
    (lambda: nn.Conv2d(64, 96, (3, 5), groups=4, rng=0), 16 * 15),
    (lambda: nn.ConvTranspose2d(48, 64, 3, groups=2, rng=0), 32 * 9),
    (lambda: nn.Linear(300, 200, rng=0), 300),
])
def test_default_init_is_torchs(make, fan_in):
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    _check_uniform(layer.weight.data, bound)
    assert np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.bias.data).max() > 0.9 * bound


def test_batch_norm_init():
    bn = nn.BatchNorm2d(4)
    np.testing.assert_array_equal(bn.weight.data, np.ones(4, np.float32))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(4, np.float32))
    assert bn.running_mean.dtype == np.float32 and bn.running_var.dtype == np.float32
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()


def test_rng_in_plain_sight():
    # the same seed gives the same weights; different seeds differ
    np.testing.assert_array_equal(nn.Conv2d(3, 4, 3, rng=5).weight.data, nn.Conv2d(3, 4, 3, rng=5).weight.data)
    assert not np.array_equal(nn.Linear(5, 5, rng=1).weight.data, nn.Linear(5, 5, rng=2).weight.data)
    # a Generator is drawn from in order: weight, then bias, then the next layer
    g = np.random.default_rng(9)
    a, b = nn.Linear(4, 3, rng=g), nn.Linear(4, 3, rng=g)
    assert not np.array_equal(a.weight.data, b.weight.data)
    # None uses striate's default generator, which st.manual_seed resets
    st.manual_seed(42)
    first = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(4, 2)).state_dict()
    st.manual_seed(42)
    second = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(4, 2)).state_dict()
    for k in first:
        np.testing.assert_array_equal(first[k], second[k])
    # and does not touch NumPy's global state: the legacy np.random calls are the point here
    # (they seed and read that global state), so NPY002 does not apply to them
    np.random.seed(0)  # noqa: NPY002
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(0)  # noqa: NPY002
    nn.Linear(10, 10)
    assert np.random.random() == expected  # noqa: NPY002


def test_reset_parameters_redraws():
    layer = nn.Conv2d(2, 3, 3, rng=0)
    before = layer.weight.data.copy()
    weight = layer.weight
    layer.reset_parameters(rng=1)
    assert layer.weight is weight                       # in place: optimizers keep their reference
    assert not np.array_equal(before, layer.weight.data)
    layer.reset_parameters(rng=0)
    np.testing.assert_array_equal(before, layer.weight.data)


@pytest.mark.parametrize("shape", [(5, 3), (6, 4, 3, 3), (8, 2, 5, 1), (3, 7, 2)])
def test_fans_match_torch(shape):
    assert init.calculate_fan_in_and_fan_out(np.zeros(shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))
    assert init.calculate_fan_in_and_fan_out(shape) == init.calculate_fan_in_and_fan_out(np.zeros(shape))


@pytest.mark.parametrize("nonlinearity, param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                                 ("tanh", None), ("relu", None), ("leaky_relu", None),
                                                 ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)),
                                                 ("selu", None)])
def test_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param))


def test_schemes_distributions():
    shape = (128, 64, 3, 3)                             # fan_in 576, fan_out 1152
    fan_in, fan_out = 64 * 9, 128 * 9
    w = st.Tensor(np.empty(shape, np.float32))
    n = w.size

    assert init.kaiming_uniform_(w, rng=0) is w
    _check_uniform(w.data, math.sqrt(2 / (1 + 0.0)) * math.sqrt(3 / fan_in))
    init.kaiming_uniform_(w, a=math.sqrt(5), rng=0)
    _check_uniform(w.data, 1 / math.sqrt(fan_in))
    init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu", rng=0)
    _check_uniform(w.data, math.sqrt(2) * math.sqrt(3 / fan_out))
    init.xavier_uniform_(w, gain=2.0, rng=0)
    _check_uniform(w.data, 2.0 * math.sqrt(6 / (fan_in + fan_out)))
    init.uniform_(w, -0.5, 2.0, rng=0)
    assert w.data.min() >= -0.5 and w.data.max() <= 2.0 and abs(w.data.mean() - 0.75) < 0.01

    for fill, std in [(lambda: init.kaiming_normal_(w, nonlinearity="relu", rng=1), math.sqrt(2 / fan_in)),
                      (lambda: init.xavier_normal_(w, rng=1), math.sqrt(2 / (fan_in + fan_out))),
                      (lambda: init.normal_(w, 0.0, 0.02, rng=1), 0.02)]:
        fill()
        assert w.dtype == np.float32
        assert abs(float(w.data.mean())) < 4 * std / math.sqrt(n)
        assert abs(float(w.data.std()) - std) < 0.01 * std
    init.normal_(w, 3.0, 0.5, rng=2)
    assert abs(float(w.data.mean()) - 3.0) < 0.01

    init.zeros_(w)
    assert not w.data.any()
    init.ones_(w)
    assert (w.data == 1).all()
    init.constant_(w, 0.25)
    assert (w.data == 0.25).all()


def test_init_on_arrays_keeps_dtype_and_works_in_place():
    a = np.zeros((4, 5), np.float64)
    out = init.xavier_uniform_(a, rng=0)
    assert out is a and a.dtype == np.float64 and a.any()
    p = nn.Parameter(np.zeros((3, 3), np.float32))
    init.kaiming_normal_(p, rng=0)
    assert p.grad is None and p.requires_grad and p.dtype == np.float32


def test_init_errors():
    with pytest.raises(ValueError, match=r"at least 2 dimensions \(out, in, \.\.\.\), got shape \(5,\)"):
        init.kaiming_uniform_(np.zeros(5, np.float32))
    with pytest.raises(TypeError, match="expects a float Tensor, Parameter or ndarray"):
        init.uniform_(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(np.zeros((2, 2), np.float32), mode="fan_avg")
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="a <= b"):
        init.uniform_(np.zeros(3, np.float32), 1.0, 0.0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        init.normal_(np.zeros(3, np.float32), rng="seed")
