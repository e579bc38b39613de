"""The multilayer perceptron baseline: structure, parameter count, PyTorch (float64) equivalence, training."""
import numpy as np
import pytest
import torch
import torch.nn as tnn

import striate as st
import striate.models as models
from striate.models.mlp import MLP
from tests.reference import as_float64, assert_close, randn, sgd_losses, to_torch64


def test_default_mlp_structure_and_count():
    model = models.mlp(rng=0)
    assert isinstance(model, MLP)
    assert [name for name, _ in model.named_children()] == [
        "flatten", "fc1", "act1", "fc2", "act2", "fc3"]
    assert model.num_parameters() == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10 == 266_610
    assert model.input_shape == (1, 28, 28)
    assert model.config == {"name": "mlp", "kwargs": {"sizes": [784, 300, 100, 10], "rng": 0,
                                                      "activation": "relu"}}


def test_input_shape_for_other_widths():
    assert models.mlp(sizes=(1024, 10), rng=0).input_shape == (1, 32, 32)
    assert models.mlp(sizes=(30, 10), rng=0).input_shape == (30,)


@pytest.mark.parametrize("activation, torch_act", [("relu", tnn.ReLU), ("tanh", tnn.Tanh),
                                                   ("sigmoid", tnn.Sigmoid)])
def test_mlp_matches_torch(rng, activation, torch_act):
    sizes = (36, 17, 9, 4)
    model = models.mlp(sizes=sizes, rng=rng, activation=activation)
    net = tnn.Sequential(tnn.Flatten(), tnn.Linear(36, 17), torch_act(), tnn.Linear(17, 9), torch_act(),
                         tnn.Linear(9, 4)).double()       # the reference: float64
    linears = [net[1], net[3], net[5]]
    with torch.no_grad():
        for i, lin in enumerate(linears, 1):
            lin.weight.copy_(torch.from_numpy(getattr(model, f"fc{i}").weight.data))
            lin.bias.copy_(torch.from_numpy(getattr(model, f"fc{i}").bias.data))
    x = randn(rng, 5, 1, 6, 6)
    xt = to_torch64(x, requires_grad=True)
    expected = net(xt)
    g = randn(rng, 5, 4)
    expected.backward(to_torch64(g))
    # striate's float32 network to 1e-5 (gradients scaled by their own magnitude), in float64 to 1e-10
    for dtype, rtol in [(np.float32, 1e-5), (np.float64, 1e-10)]:
        ours = model if dtype == np.float32 else as_float64(model)
        xs = st.Tensor(x, requires_grad=True, dtype=dtype)
        out = ours(xs)
        assert out.shape == (5, 4) and out.dtype == dtype
        assert_close(out.data, expected.detach().numpy(), rtol, f"{dtype.__name__} forward")
        out.backward(g.astype(dtype))
        assert_close(xs.grad, xt.grad.numpy(), rtol, f"{dtype.__name__} input gradient", floor=0)
        for i, lin in enumerate(linears, 1):
            fc = getattr(ours, f"fc{i}")
            assert_close(fc.weight.grad, lin.weight.grad.numpy(), rtol, f"{dtype.__name__} fc{i}.weight", floor=0)
            assert_close(fc.bias.grad, lin.bias.grad.numpy(), rtol, f"{dtype.__name__} fc{i}.bias", floor=0)


def test_mlp_accepts_flat_input(rng):
    model = models.mlp(sizes=(12, 5, 3), rng=rng)
    x = randn(rng, 4, 12)
    np.testing.assert_allclose(model(x).data, model(x.reshape(4, 3, 2, 2)).data)


def test_mlp_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"activation must be one of .*got 'swish'"):
        models.mlp(activation="swish")
    with pytest.raises(ValueError, match=r"at least two widths"):
        models.mlp(sizes=(784,))
    with pytest.raises(ValueError, match=r"positive int, got \(784, 0, 10\)"):
        models.mlp(sizes=(784, 0, 10))


def test_a_few_sgd_steps_reduce_the_loss(rng):
    model = models.get("mlp", rng=rng)
    x = st.Tensor(randn(rng, 16, 1, 28, 28))
    y = rng.integers(0, 10, size=16)
    losses = sgd_losses(model, x, y, lr=0.1, steps=6)
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.8 * losses[0], losses


def test_registry_round_trip():
    model = models.get("MLP", sizes=[20, 8, 3], rng=2, activation="tanh")
    rebuilt = models.from_config(model.config)
    assert [(n, p.shape) for n, p in rebuilt.named_parameters()] == \
        [("fc1.weight", (8, 20)), ("fc1.bias", (8,)), ("fc2.weight", (3, 8)), ("fc2.bias", (3,))]
    x = randn(np.random.default_rng(0), 2, 20)
    np.testing.assert_array_equal(model(x).data, rebuilt(x).data)


def test_input_shape_of_colour_images():
    assert models.mlp(sizes=(3 * 28 * 28, 10), rng=0).input_shape == (3, 28, 28)
    assert models.mlp(sizes=(3 * 32 * 32, 10), rng=0).input_shape == (3, 32, 32)
