"""LeNet-5 (the paper's and the modern one) and the model registry.

Checks: the paper's parameter counts layer by layer, Table I, the RBF
centres, forward and every gradient against straightforward PyTorch
reimplementations in float64 with the same weights, a few SGD steps, and the registry
round trip.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import striate as st
import striate.functional as F
import striate.models as models
from striate import nn
from striate.models.lenet import C3_CONNECTIONS, LeNet5, PartialConv2d, digit_bitmaps, place_kernels
from tests.reference import as_float64, assert_close, check_torch, randn, sgd_losses, to_torch64

PAPER_COUNTS = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164, "output": 0}


def _count(module):
    return sum(p.size for p in module.parameters())


# ---------------------------------------------------------------------------
# the paper's architecture


def test_lenet5_parameter_counts_match_the_paper():
    model = models.lenet5(rng=0)
    counts = {name: _count(layer) for name, layer in model.named_children()}
    assert counts == PAPER_COUNTS
    assert model.num_parameters() == 60_000 == sum(PAPER_COUNTS.values())
    shapes = {name: p.shape for name, p in model.c3.named_parameters()}
    assert shapes == {"weight_3": (6, 3, 5, 5), "weight_4": (9, 4, 5, 5),
                      "weight_6": (1, 6, 5, 5), "bias": (16,)}


def test_table_one():
    table = C3_CONNECTIONS
    assert table.shape == (6, 16) and table.dtype == bool
    assert table.sum() == 60
    reads = [set(np.flatnonzero(table[:, k]).tolist()) for k in range(16)]
    for k in range(6):                               # three contiguous S2 maps, wrapping around
        assert reads[k] == {k % 6, (k + 1) % 6, (k + 2) % 6}
    for k in range(6, 12):                           # four contiguous
        assert reads[k] == {(k - 6 + i) % 6 for i in range(4)}
    assert reads[12:15] == [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}]   # four discontinuous
    for s in reads[12:15]:
        assert all(s != {(j + i) % 6 for i in range(4)} for j in range(6))
    assert reads[15] == set(range(6))
    assert table.sum(axis=1).tolist() == [10] * 6    # each S2 map feeds ten C3 maps
    # connections (weights and biases, each used at every one of the 10×10 positions)
    assert (25 * table.sum() + 16) * 100 == 151_600


def test_rbf_centres_are_fixed_plus_minus_one_bitmaps():
    model = models.lenet5(rng=0)
    centres = model.output.centres
    assert centres.shape == (10, 84) and centres.dtype == np.float32
    assert set(np.unique(centres).tolist()) == {-1.0, 1.0}
    np.testing.assert_array_equal(centres, digit_bitmaps())
    # ten different codes, each at least a few pixels from every other
    hamming = (centres[:, None, :] != centres[None, :, :]).sum(axis=2)
    assert hamming[~np.eye(10, dtype=bool)].min() >= 6
    # a buffer: saved, not trained, not counted
    assert "output.centres" in model.state_dict()
    assert all(p is not centres for p in model.parameters())
    assert "output.centres" not in dict(model.named_parameters())
    x = st.Tensor(randn(np.random.default_rng(1), 2, 1, 32, 32))
    F.cross_entropy(model(x), np.array([3, 7])).backward()
    np.testing.assert_array_equal(model.output.centres, digit_bitmaps())


def test_bitmaps_draw_digits():
    # the 1 is a vertical stroke in column 3; the 0 is a ring with a hollow middle
    one = digit_bitmaps()[1].reshape(12, 7)
    assert (one[2:9, 3] == 1).all()
    zero = digit_bitmaps()[0].reshape(12, 7)
    assert (zero[3:8, 0] == 1).all() and (zero[3:8, 6] == 1).all() and (zero[3:8, 2:5] == -1).all()


def test_lenet5_output_shape_and_convention():
    model = models.lenet5(rng=0)
    x = randn(np.random.default_rng(0), 4, 1, 32, 32)
    out = model(x)
    assert out.shape == (4, 10) and out.dtype == np.float32
    penalties = model.penalties(x)
    np.testing.assert_array_equal(out.data, -penalties.data)
    assert (penalties.data >= 0).all()
    assert model.input_shape == (1, 32, 32)


def test_lenet5_rejects_wrong_input_with_a_hint():
    model = models.lenet5(rng=0)
    with pytest.raises(ValueError, match=r"lenet5 expects input \(N, 1, 32, 32\), got \(2, 1, 28, 28\).*pad"):
        model(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"expects input \(N, 1, 32, 32\), got \(1, 32, 32\)"):
        model(np.zeros((1, 32, 32), np.float32))


def test_lenet5_initialisation_follows_the_paper():
    model = models.lenet5(rng=3)
    bounds = {"c1.weight": 25, "c1.bias": 25, "s2.coefficient": 4, "s2.bias": 4,
              "c3.weight_3": 75, "c3.weight_4": 100, "c3.weight_6": 150,
              "s4.coefficient": 4, "s4.bias": 4, "c5.weight": 400, "c5.bias": 400,
              "f6.weight": 120, "f6.bias": 120}
    params = dict(model.named_parameters())
    for name, fan_in in bounds.items():
        p = params[name].data
        assert p.dtype == np.float32
        assert np.abs(p).max() <= 2.4 / fan_in, name
        if p.size >= 100:                             # spread over the interval, not a constant
            assert np.abs(p).max() > 0.8 * 2.4 / fan_in, name
    # c3's biases: each map's own fan-in
    fan_in = 25 * C3_CONNECTIONS.sum(axis=0)
    assert (np.abs(model.c3.bias.data) <= 2.4 / fan_in).all()
    again = models.lenet5(rng=3)
    for (name, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


# ---------------------------------------------------------------------------
# against PyTorch


def _scatter_to_dense(table, grouped, kh=5, kw=5):
    """Grouped C3 arrays {f: (G_f, f, kh, kw)} -> (C_out, C_in, kh, kw), zero off the table.

    Written from the table alone (output maps of one fan-in in increasing order,
    each reading its input maps in increasing order), independently of the layer.
    """
    fan_in = table.sum(axis=0)
    dtype = np.result_type(*grouped.values())
    dense = np.zeros((table.shape[1], table.shape[0], kh, kw), dtype)
    for f, w in grouped.items():
        for i, k in enumerate(np.flatnonzero(fan_in == f)):
            dense[k, np.flatnonzero(table[:, k])] = w[i]
    return dense


def _torch_lenet5(x, p, table):
    """LeNet-5 in plain PyTorch: C3 as a full convolution with a masked weight."""
    def squash(a):
        return 1.7159 * torch.tanh(a * (2 / 3))

    def subsample(a, coef, bias):
        return tF.avg_pool2d(a, 2) * 4 * coef.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)

    mask = to_torch64(table.T)[:, :, None, None]                              # (16, 6, 1, 1)
    x = squash(tF.conv2d(x, p["c1.weight"], p["c1.bias"]))
    x = squash(subsample(x, p["s2.coefficient"], p["s2.bias"]))
    x = squash(tF.conv2d(x, p["c3.dense"] * mask, p["c3.bias"]))
    x = squash(subsample(x, p["s4.coefficient"], p["s4.bias"]))
    x = squash(tF.conv2d(x, p["c5.weight"], p["c5.bias"]))
    x = squash(tF.linear(x.flatten(1), p["f6.weight"], p["f6.bias"]))
    y = ((x[:, None, :] - p["centres"][None]) ** 2).sum(dim=2)
    return -y


# LeNet-5 against PyTorch in float64: striate's float32 network to 1e-5 (outputs of order 10-100
# scaled by max(1, max|ref|), gradients by their own magnitude); the same network in float64 to 1e-10
LENET_PRECISIONS = [(np.float32, 1e-5), (np.float64, 1e-10)]


def test_lenet5_matches_a_pytorch_reimplementation(rng):
    model = models.lenet5(rng=rng)
    params = dict(model.named_parameters())
    grouped = {f: params[f"c3.weight_{f}"].data for f in (3, 4, 6)}
    ref = {name: to_torch64(p.data, requires_grad=True) for name, p in params.items()
           if not name.startswith("c3.weight")}
    ref["c3.dense"] = to_torch64(_scatter_to_dense(C3_CONNECTIONS, grouped), requires_grad=True)
    ref["centres"] = to_torch64(model.output.centres)
    np.testing.assert_array_equal(model.c3.dense_weight(), ref["c3.dense"].detach().numpy())

    x = randn(rng, 3, 1, 32, 32)
    xt = to_torch64(x, requires_grad=True)
    expected = _torch_lenet5(xt, ref, C3_CONNECTIONS)
    g = randn(rng, 3, 10)
    expected.backward(to_torch64(g))
    masked = ref["c3.dense"].grad.numpy() * C3_CONNECTIONS.T[:, :, None, None]
    for dtype, rtol in LENET_PRECISIONS:
        net = model if dtype == np.float32 else as_float64(model)
        ps = dict(net.named_parameters())
        xs = st.Tensor(x, requires_grad=True, dtype=dtype)
        out = net(xs)
        assert out.dtype == dtype
        assert_close(out.data, expected.detach().numpy(), rtol, f"{dtype.__name__} forward")
        out.backward(g.astype(dtype))
        assert xs.grad.dtype == dtype
        assert_close(xs.grad, xt.grad.numpy(), rtol, f"{dtype.__name__} input gradient", floor=0)
        for name, p in ps.items():
            if name.startswith("c3.weight"):
                continue
            assert_close(p.grad, ref[name].grad.numpy(), rtol, f"{dtype.__name__} gradient of {name}", floor=0)
        dense_grad = _scatter_to_dense(C3_CONNECTIONS, {f: ps[f"c3.weight_{f}"].grad for f in (3, 4, 6)})
        assert_close(dense_grad, masked, rtol, f"{dtype.__name__} gradient of c3's weights", floor=0)


def test_partial_conv_with_unsorted_fan_ins_matches_masked_conv(rng):
    # fan-ins 2, 1, 3, 1, 2: the groups come out of order and must be put back
    table = np.array([[1, 0, 1, 0, 1],
                      [1, 1, 1, 0, 0],
                      [0, 0, 1, 1, 1]], dtype=bool)
    layer = PartialConv2d(table, (3, 2), rng=rng)
    assert _count(layer) == (2 + 1 + 3 + 1 + 2) * 6 + 5
    x = randn(rng, 2, 3, 7, 9)
    mask = to_torch64(table.T)[:, :, None, None]
    dense = layer.dense_weight()
    assert (dense[~table.T] == 0).all()
    out = layer(st.Tensor(x))
    ref = tF.conv2d(to_torch64(x), to_torch64(dense) * mask, to_torch64(layer.bias.data))
    assert out.shape == (2, 5, 5, 8)
    assert_close(out.data, ref.numpy(), 1e-5)
    layer64 = as_float64(layer)                      # for check_torch's float64 run
    check_torch(lambda a: (layer64 if a.dtype == np.float64 else layer)(a),
                lambda a: tF.conv2d(a, to_torch64(dense) * mask, to_torch64(layer.bias.data)),
                [x])


def test_partial_conv_rejects_bad_tables_and_inputs():
    with pytest.raises(ValueError, match=r"bool array"):
        PartialConv2d(np.ones((3, 4)), 3)
    with pytest.raises(ValueError, match=r"output maps \[1\] read no input map"):
        PartialConv2d(np.array([[True, False], [True, False]]), 3)
    layer = PartialConv2d(C3_CONNECTIONS, 5, rng=0)
    with pytest.raises(ValueError, match=r"PartialConv2d expects input \(N, 6, H, W\), got \(1, 5, 14, 14\)"):
        layer(np.zeros((1, 5, 14, 14), np.float32))


def test_place_kernels_gradcheck(rng):
    rows = [np.array([[0], [2]]), np.array([[1]])]
    cols = [np.array([[0, 2], [1, 2]]), np.array([[0, 1, 2]])]
    pieces = [st.Tensor(randn(rng, 2, 2, 3, 2, dtype=np.float64), requires_grad=True, dtype=np.float64),
              st.Tensor(randn(rng, 1, 3, 3, 2, dtype=np.float64), requires_grad=True, dtype=np.float64)]
    dense = place_kernels(pieces, rows, cols, (3, 3, 3, 2)).data
    assert (dense[0, 1] == 0).all() and (dense[2, 0] == 0).all()
    np.testing.assert_array_equal(dense[2, [1, 2]], pieces[0].data[1])
    st.gradcheck(lambda a, b: place_kernels([a, b], rows, cols, (3, 3, 3, 2)), pieces)


def _modern_torch(model):
    """torch.nn.Sequential equivalent of lenet5_modern in float64, with the same weights."""
    import torch.nn as tnn
    net = tnn.Sequential(tnn.Conv2d(model.input_shape[0], 6, 5), tnn.ReLU(), tnn.MaxPool2d(2),
                         tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                         tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
                         tnn.Linear(84, model.output.weight.shape[0])).double()
    where = {"c1": 0, "c3": 3, "f5": 7, "f6": 9, "output": 11}
    with torch.no_grad():
        for name, index in where.items():
            layer = getattr(model, name)
            net[index].weight.copy_(torch.from_numpy(layer.weight.data))
            net[index].bias.copy_(torch.from_numpy(layer.bias.data))
    return net, where


def test_lenet5_modern_parameter_count():
    model = models.lenet5_modern(rng=0)
    assert model.num_parameters() == 61_706
    assert {name: _count(layer) for name, layer in model.named_children()} == {
        "c1": 156, "s2": 0, "c3": 2416, "s4": 0, "f5": 48120, "f6": 10164, "output": 850}
    assert models.lenet5_modern(rng=0, num_classes=5, in_channels=3).num_parameters() == \
        61_706 + 2 * 25 * 6 - 5 * 85
    assert model.input_shape == (1, 32, 32)


@pytest.mark.parametrize("in_channels, num_classes", [(1, 10), (3, 7)])
def test_lenet5_modern_matches_torch_nn(rng, in_channels, num_classes):
    model = models.lenet5_modern(rng=rng, num_classes=num_classes, in_channels=in_channels)
    net, where = _modern_torch(model)
    x = randn(rng, 3, in_channels, 32, 32)
    xt = to_torch64(x, requires_grad=True)
    expected = net(xt)
    g = randn(rng, 3, num_classes)
    expected.backward(to_torch64(g))
    for dtype, rtol in LENET_PRECISIONS:
        ours_net = model if dtype == np.float32 else as_float64(model)
        xs = st.Tensor(x, requires_grad=True, dtype=dtype)
        out = ours_net(xs)
        assert out.shape == (3, num_classes) and out.dtype == dtype
        assert_close(out.data, expected.detach().numpy(), rtol, f"{dtype.__name__} forward")
        out.backward(g.astype(dtype))
        assert_close(xs.grad, xt.grad.numpy(), rtol, f"{dtype.__name__} input gradient", floor=0)
        for name, index in where.items():
            for kind in ("weight", "bias"):
                ours = getattr(getattr(ours_net, name), kind).grad
                theirs = getattr(net[index], kind).grad.numpy()
                assert ours.dtype == dtype
                assert_close(ours, theirs, rtol, f"{dtype.__name__} gradient of {name}.{kind}", floor=0)


def test_lenet5_modern_rejects_wrong_input():
    model = models.lenet5_modern(rng=0, in_channels=3)
    with pytest.raises(ValueError, match=r"lenet5_modern expects input \(N, 3, 32, 32\), got \(2, 1, 32, 32\)"):
        model(np.zeros((2, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"num_classes must be a positive int, got 0"):
        models.lenet5_modern(num_classes=0)


# ---------------------------------------------------------------------------
# training


@pytest.mark.parametrize("name, lr, steps, drop", [("lenet5", 5e-3, 8, 0.05),
                                                   ("lenet5-modern", 0.05, 10, 0.03)])
def test_a_few_sgd_steps_reduce_the_loss(rng, name, lr, steps, drop):
    model = models.get(name, rng=rng)
    x = st.Tensor(randn(rng, 8, 1, 32, 32))
    y = rng.integers(0, 10, size=8)
    losses = sgd_losses(model, x, y, lr, steps)
    assert all(np.isfinite(losses))
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - drop, losses


def test_lenet5_state_dict_round_trip(tmp_path):
    a, b = models.lenet5(rng=1), models.lenet5(rng=2)
    b.load_state_dict(a.state_dict())
    x = randn(np.random.default_rng(0), 2, 1, 32, 32)
    np.testing.assert_array_equal(a(x).data, b(x).data)


# ---------------------------------------------------------------------------
# the registry


def test_registry_names_and_aliases():
    assert {"lenet5", "lenet5-modern", "mlp"} <= set(models.names())
    assert models.names() == sorted(models.names())
    for alias in ("lenet5_modern", "LeNet5-Modern", " lenet5-modern "):
        assert isinstance(models.get(alias, rng=0), type(models.lenet5_modern(rng=0)))
    assert isinstance(models.get("lenet5", rng=0), LeNet5)
    with pytest.raises(ValueError, match=r"unknown model 'lenet6'; available: .*lenet5, lenet5-modern"):
        models.get("lenet6")
    with pytest.raises(TypeError, match=r"model 'lenet5'.*unexpected keyword argument 'width'"):
        models.get("lenet5", width=3)


@pytest.mark.parametrize("name, kwargs", [
    ("lenet5", {"rng": 4}),
    ("lenet5-modern", {"rng": 4, "num_classes": 7, "in_channels": 3}),
    ("mlp", {"rng": 4, "sizes": (64, 20, 5), "activation": "tanh"}),
])
def test_config_round_trip_through_json(name, kwargs):
    model = models.get(name, **kwargs)
    config = json.loads(json.dumps(model.config))
    assert config == model.config
    assert config["name"] == name
    rebuilt = models.from_config(config)
    assert rebuilt.config == model.config
    assert type(rebuilt) is type(model)
    # the same int seed: the same weights
    for (n1, p), (n2, q) in zip(model.named_parameters(), rebuilt.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(p.data, q.data)


def test_config_records_defaults_and_drops_generators():
    model = models.lenet5_modern(rng=np.random.default_rng(0))
    assert model.config == {"name": "lenet5-modern",
                            "kwargs": {"rng": None, "num_classes": 10, "in_channels": 1}}
    assert models.lenet5(rng=5).config == {"name": "lenet5", "kwargs": {"rng": 5}}
    with pytest.raises(ValueError, match=r"from_config expects a dict"):
        models.from_config("lenet5")


def test_register_a_new_model_and_refuse_duplicates():
    @models.register("Tiny_Net")
    def tiny(width=3, rng=None):
        return nn.Sequential(nn.Linear(width, 2, rng=rng))
    try:
        assert "tiny-net" in models.names()
        net = models.get("tiny_net", width=5, rng=1)
        assert net.config == {"name": "tiny-net", "kwargs": {"width": 5, "rng": 1}}
        assert tiny(4).config["kwargs"] == {"width": 4, "rng": None}
        with pytest.raises(ValueError, match=r"a model named 'tiny-net' is already registered"):
            models.register("tiny-net")(tiny)
    finally:
        models._REGISTRY.pop("tiny-net", None)
