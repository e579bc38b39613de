"""AlexNet as published, and the small AlexNet-style network.

Checks: the paper's parameter counts (grouped and one-GPU), the layer shapes at
227×227, the paper's initialisation and response normalisation, forward and
every gradient against a torch.nn AlexNet in float64 holding the same weights
(on small inputs, to stay fast), the small network learning, and the errors.
"""
import numpy as np
import pytest
import torch
from torch import nn as tnn
from torch.nn.utils import skip_init

import striate as st
import striate.functional as F
import striate.models as models
from striate.models.alexnet import PAPER_LRN, AlexNet
from tests.reference import as_float64

PAPER = {"conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936, "conv5": 442_624,
         "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000}
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")


def _count(module):
    return sum(p.size for p in module.parameters())


@pytest.fixture(scope="module")
def paper_alexnet():
    """The full network, built once for the whole file (61 million parameters take seconds)."""
    return models.alexnet(rng=0)


# ---------------------------------------------------------------------------
# the paper's numbers


def test_parameter_counts_from_shapes():
    counts = AlexNet.count_parameters()
    assert {k: v for k, v in counts.items() if k != "total"} == PAPER
    assert counts["total"] == 60_965_224
    one_gpu = AlexNet.count_parameters(groups=1)
    assert one_gpu["total"] == 62_378_344
    # only the grouped layers change: each kernel reads twice as many maps
    assert {k for k in PAPER if one_gpu[k] != counts[k]} == {"conv2", "conv4", "conv5"}


def test_built_network_has_the_papers_parameters_and_shapes(paper_alexnet):
    model = paper_alexnet
    assert model.num_parameters() == 60_965_224
    assert {name: _count(getattr(model, name)) for name in LAYERS} == PAPER
    assert model.input_shape == (3, 227, 227)
    assert model.config["name"] == "alexnet"
    lines = []
    result = st.summary(model, (1, 3, 227, 227), print_fn=lines.append)
    shapes = {row.name: row.output_shape[1:] for row in result.rows}
    chain = [shapes[n] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5",
                                 "fc6", "fc7", "fc8")]
    assert chain == [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13), (384, 13, 13),
                     (384, 13, 13), (256, 13, 13), (256, 6, 6), (4096,), (4096,), (1000,)]
    assert shapes["norm1"] == (96, 55, 55) and shapes["norm2"] == (256, 27, 27)
    assert result.total_params == 60_965_224
    assert "Total params: 60,965,224" in lines
    # the weights of the grouped layers: each kernel reads half of the maps below
    assert model.conv2.weight.shape == (256, 48, 5, 5)
    assert model.conv3.weight.shape == (384, 256, 3, 3)
    assert model.conv4.weight.shape == (384, 192, 3, 3)
    assert model.conv5.weight.shape == (256, 192, 3, 3)
    assert model.fc6.weight.shape == (4096, 9216)


def test_papers_initialisation(paper_alexnet):
    model = paper_alexnet
    for name in LAYERS:
        layer = getattr(model, name)
        w = layer.weight.data
        assert w.dtype == np.float32
        assert abs(float(w.mean())) < 2e-3 and abs(float(w.std()) - 0.01) < 1e-3, name
        expected_bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        np.testing.assert_array_equal(layer.bias.data, expected_bias)
    # the paper's LRN: k=2, n=5, α=1e-4 *not* divided by n, β=0.75
    assert (model.norm1.size, model.norm1.alpha, model.norm1.beta, model.norm1.k) == (5, 5e-4, 0.75, 2.0)
    assert model.drop6.p == model.drop7.p == 0.5
    assert (model.pool1.kernel_size, model.pool1.stride) in (((3, 3), (2, 2)), (3, 2))


def test_one_gpu_version_at_a_small_size():
    model = models.alexnet(grouped=False, input_size=67, num_classes=10, rng=0)
    assert model.num_parameters() == AlexNet.count_parameters(groups=1, input_size=67, num_classes=10)["total"]
    assert model.conv2.weight.shape == (256, 96, 5, 5) and model.conv2.groups == 1
    assert model.fc6.weight.shape == (4096, 256)          # 67×67 leaves 1×1 maps after pool5
    assert model(np.zeros((1, 3, 67, 67), np.float32)).shape == (1, 10)


def test_response_normalisation_is_the_papers_formula(rng):
    a = rng.standard_normal((2, 7, 3, 4)).astype(np.float32) * 20
    out = F.local_response_norm(a, **PAPER_LRN).data
    expected = np.empty_like(a)
    for c in range(7):                                    # b_c = a_c / (2 + 1e-4 Σ a²)^0.75, |c' − c| ≤ 2
        window = a[:, max(0, c - 2):min(7, c + 3)]
        expected[:, c] = a[:, c] / (2 + 1e-4 * (window ** 2).sum(axis=1)) ** 0.75
    np.testing.assert_allclose(out, expected, rtol=1e-5)


# ---------------------------------------------------------------------------
# against PyTorch


def _torch_twin(model: AlexNet) -> tnn.Sequential:
    """The same architecture in torch.nn, in float64, holding (exact) copies of ``model``'s weights."""
    def conv(layer):                                      # skip_init: the weights are copied in below
        return skip_init(tnn.Conv2d, layer.in_channels, layer.out_channels, layer.kernel_size,
                         stride=layer.stride, padding=layer.padding, groups=layer.groups, dtype=torch.float64)

    def linear(layer):
        return skip_init(tnn.Linear, layer.in_features, layer.out_features, dtype=torch.float64)

    lrn = dict(size=5, alpha=5e-4, beta=0.75, k=2.0)
    twin = tnn.Sequential(
        conv(model.conv1), tnn.ReLU(), tnn.LocalResponseNorm(**lrn), tnn.MaxPool2d(3, 2),
        conv(model.conv2), tnn.ReLU(), tnn.LocalResponseNorm(**lrn), tnn.MaxPool2d(3, 2),
        conv(model.conv3), tnn.ReLU(), conv(model.conv4), tnn.ReLU(), conv(model.conv5), tnn.ReLU(),
        tnn.MaxPool2d(3, 2), tnn.Flatten(),
        linear(model.fc6), tnn.ReLU(), tnn.Dropout(model.drop6.p),
        linear(model.fc7), tnn.ReLU(), tnn.Dropout(model.drop7.p),
        linear(model.fc8))
    ours = [getattr(model, name) for name in LAYERS]
    theirs = [m for m in twin if isinstance(m, (tnn.Conv2d, tnn.Linear))]
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            b.weight.copy_(torch.from_numpy(a.weight.data))
            b.bias.copy_(torch.from_numpy(a.bias.data))
    return twin


def _close(actual, expected, rtol, what):
    """|a − e| ≤ rtol · max|e|: relative to the tensor's own scale, however small it is."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = float(np.abs(expected).max())
    err = float(np.abs(actual.astype(np.float64) - expected).max())
    assert err <= rtol * scale, f"{what}: max error {err:.3g} > {rtol:g} × {scale:.3g}"


# striate's float32 against PyTorch's float64, relative to each tensor's own scale. The float32
# round-off grows like eps·√(terms) per layer (up to 2,400 terms per output here) over eight layers
# and their backward passes: about 1e-6 is measured (at most 1.3e-6 over six seeds of every
# network below), so 5e-5 holds with a margin of 40 on any summation order.
RTOL32 = 5e-5
# striate in float64 against PyTorch in float64: two float64 computations of some 10⁸ terms
# in a different order agree to ~1e-13 relative; 1e-10 leaves margin and still catches any formula error
RTOL64 = 1e-10


def _compare_with_torch(model: AlexNet, x: np.ndarray, rtol: float, seed: int = 0):
    """striate's float32 network against its float64 PyTorch twin, at ``rtol`` of each tensor's own scale;
    the same network in float64 against the twin at RTOL64."""
    twin = _torch_twin(model)
    twin.eval()                                           # dropout off on both sides
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    ref = twin(xt)
    g = np.random.default_rng(seed).standard_normal(tuple(ref.shape)).astype(np.float32)
    ref.backward(torch.from_numpy(g.astype(np.float64)))
    theirs = [m for m in twin if isinstance(m, (tnn.Conv2d, tnn.Linear))]
    for net, tol, dtype in ((model, rtol, np.float32), (as_float64(model), RTOL64, np.float64)):
        net.eval()
        xs = st.Tensor(x, requires_grad=True, dtype=dtype)
        out = net(xs)
        assert out.dtype == dtype
        _close(out.data, ref.detach().numpy(), tol, f"{dtype.__name__} logits")
        net.zero_grad()
        out.backward(g.astype(dtype))
        assert xs.grad.dtype == dtype
        _close(xs.grad, xt.grad.numpy(), tol, f"{dtype.__name__} input gradient")
        for name, t in zip(LAYERS, theirs):
            layer = getattr(net, name)
            _close(layer.weight.grad, t.weight.grad.numpy(), tol, f"{dtype.__name__} {name}.weight gradient")
            _close(layer.bias.grad, t.bias.grad.numpy(), tol, f"{dtype.__name__} {name}.bias gradient")


def test_paper_alexnet_matches_torch_on_a_small_input(rng):
    # full widths, the paper's initialisation, grouped; 67×67 is the smallest input that survives
    # conv1 and three poolings (15 → 7 → 3 → 1), so fc6 is 256 → 4096
    model = models.alexnet(input_size=67, num_classes=20, rng=1)
    _compare_with_torch(model, rng.standard_normal((2, 3, 67, 67)).astype(np.float32), RTOL32)


@pytest.mark.parametrize("groups,size", [(2, 75), (1, 70)])
def test_scaled_down_alexnet_matches_torch(rng, groups, size):
    # larger activations (He initialisation), non-square-friendly sizes, both group settings
    model = AlexNet(num_classes=7, in_channels=2, input_size=size, widths=(8, 12, 16, 12, 8), hidden=32,
                    groups=groups, init="kaiming", rng=2)
    _compare_with_torch(model, rng.standard_normal((3, 2, size, size)).astype(np.float32), RTOL32)


def test_small_alexnet_matches_torch(rng):
    model = models.alexnet_small(rng=3)
    _compare_with_torch(model, rng.standard_normal((4, 1, 32, 32)).astype(np.float32), RTOL32)


# ---------------------------------------------------------------------------
# dropout, the small network, the registry


def test_inverted_dropout_keeps_the_expectation(rng):
    model = AlexNet(num_classes=5, in_channels=1, input_size=32, widths=(4, 4, 4, 4, 4), hidden=64,
                    conv1_kernel=5, conv1_stride=2, conv1_padding=2, init="kaiming", rng=0)
    x = st.Tensor(rng.standard_normal((1, 64)).astype(np.float32))
    model.train()
    kept = np.stack([model.drop6(x).data for _ in range(400)])      # each 0 or 2·x
    values = np.unique(np.round(kept / x.data, 5))
    assert set(values.tolist()) <= {0.0, 2.0}
    np.testing.assert_allclose(kept.mean(axis=0), x.data, atol=0.25 * float(np.abs(x.data).max()))
    model.eval()
    np.testing.assert_array_equal(model.drop6(x).data, x.data)


def test_small_alexnet_shape_and_registry():
    model = models.get("alexnet-small", rng=0)
    assert model.input_shape == (1, 32, 32)
    assert model.conv1.stride == (2, 2) and model.conv2.groups == model.conv4.groups == model.conv5.groups == 2
    lines = []
    rows = st.summary(model, (2, 1, 32, 32), print_fn=lines.append).rows
    assert [r.output_shape[1:] for r in rows if r.name in ("conv1", "pool1", "pool2", "pool5", "fc8")] == \
        [(32, 16, 16), (32, 7, 7), (64, 3, 3), (64, 1, 1), (10,)]
    assert model.num_parameters() == AlexNet.count_parameters(
        num_classes=10, in_channels=1, input_size=32, widths=(32, 64, 96, 96, 64), hidden=model.fc7.in_features,
        conv1_kernel=5, conv1_stride=2, conv1_padding=2)["total"]
    again = models.from_config(model.config)
    assert type(again) is AlexNet and again.num_parameters() == model.num_parameters()
    assert {"alexnet", "alexnet-small"} <= set(models.names())


def test_small_alexnet_learns_a_batch():
    from striate import optim
    rng = np.random.default_rng(0)
    model = models.alexnet_small(rng=0, dropout=0.0)
    x = rng.standard_normal((16, 1, 32, 32)).astype(np.float32)
    y = np.arange(16) % 10
    opt = optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(st.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_errors():
    model = models.alexnet_small(rng=0)
    with pytest.raises(ValueError, match=r"expects input \(N, 1, 32, 32\).*got \(2, 1, 28, 28\)"):
        model(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="too small"):
        models.alexnet(input_size=60)
    with pytest.raises(ValueError, match="init must be one of"):
        models.alexnet_small(init="xavier")
    with pytest.raises(ValueError, match="widths must be five"):
        models.alexnet_small(widths=(8, 8, 8))
    with pytest.raises(ValueError, match="divisible by groups"):
        models.alexnet_small(widths=(9, 16, 16, 16, 16))
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        models.alexnet(num_classes=0)
    with pytest.raises(TypeError, match="grouped must be True or False"):
        models.alexnet(grouped="yes")
