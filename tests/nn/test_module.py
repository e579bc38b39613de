"""Module: registration, state_dict round trips, modes, hooks."""
import copy

import numpy as np
import pytest
import torch

import striate as st
from striate import nn


def lenet_like(rng=None):
    return nn.Sequential(nn.Conv2d(1, 4, 3, rng=rng), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 3 * 3, 5, rng=rng))


def torch_lenet_like():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 5))


def test_state_dict_names_and_order_match_torch():
    ours, theirs = lenet_like(0), torch_lenet_like()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (k, v), (_, tv) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert v.shape == tuple(tv.shape), k


def test_state_dict_round_trip(rng):
    a, b = lenet_like(1), lenet_like(2)
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    a.train()
    a(x)                                               # moves the running statistics
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x).data, b(x).data)
    # loading copies: changing the source afterwards leaves the target alone
    a.state_dict()["0.weight"][...] = 0
    assert b.state_dict()["0.weight"].any()


def test_state_dict_from_torch_and_back(rng):
    theirs, ours = torch_lenet_like(), lenet_like()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    theirs.eval()
    ours.eval()
    reference = copy.deepcopy(theirs).double()          # the same weights, run in float64
    np.testing.assert_allclose(ours(x).data, reference(torch.from_numpy(x.astype(np.float64))).detach().numpy(),
                               atol=1e-6)
    theirs.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ours.state_dict().items()})


def test_load_state_dict_errors():
    model = lenet_like(0)
    state = dict(model.state_dict())
    del state["5.bias"]
    with pytest.raises(KeyError, match=r"missing keys \['5.bias'\]"):
        model.load_state_dict(state)
    assert model.load_state_dict(state, strict=False) == (["5.bias"], [])
    state = dict(model.state_dict(), extra=np.zeros(1))
    with pytest.raises(KeyError, match=r"unexpected keys \['extra'\]"):
        model.load_state_dict(state)
    state = dict(model.state_dict())
    state["0.weight"] = np.zeros((4, 1, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"0.weight: expected \(4, 1, 3, 3\), got \(4, 1, 5, 5\)"):
        model.load_state_dict(state)


def test_shared_parameters():
    a = nn.Linear(3, 3, rng=0)
    b = nn.Linear(3, 3, rng=1)
    b.weight = a.weight                                # tied weights
    model = nn.Sequential(a, b)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias"]   # as in PyTorch
    model.load_state_dict(state)
    assert model.num_parameters() == 9 + 3 + 3


def test_train_eval_and_zero_grad(rng):
    model = lenet_like(0)
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    out = model(st.Tensor(rng.standard_normal((2, 1, 8, 8)).astype(np.float32)))
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_forward_hooks():
    layer = nn.ReLU()
    seen = []
    handle = layer.register_forward_hook(lambda m, inputs, out: seen.append((m, out.shape)))
    layer(np.zeros((2, 3), np.float32))
    assert seen == [(layer, (2, 3))]
    handle.remove()
    layer(np.zeros((2, 3), np.float32))
    assert len(seen) == 1
    with layer.register_forward_hook(lambda m, inputs, out: out * 2):   # a hook may replace the output
        assert (layer(np.ones(2, np.float32)).data == 2).all()
    assert (layer(np.ones(2, np.float32)).data == 1).all()


def test_module_errors():
    class Forgot(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)
    with pytest.raises(AttributeError, match=r"must call super\(\).__init__\(\)"):
        Forgot()
    with pytest.raises(TypeError, match="Sequential expects Modules, got function at position 1"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    with pytest.raises(NotImplementedError, match="must define forward"):
        nn.Module()(1)
