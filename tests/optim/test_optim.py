"""SGD, Adam and AdamW against torch.optim (its single-tensor algorithms), step for step."""
import numpy as np
import pytest
import torch

import striate as st
import striate.functional as F
from striate import nn, optim
from tests.reference import assert_close

CONFIGS = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    ("sgd", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("adam", dict(lr=1e-2)),
    ("adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("adam", dict(lr=1e-2, amsgrad=True, maximize=True)),
    ("adam", dict(lr=1e-2, betas=(0.3, 0.9))),          # lerp weight > 0.5: PyTorch's other branch
    ("adamw", dict(lr=1e-2)),
    ("adamw", dict(lr=1e-2, weight_decay=0.5, amsgrad=True)),
]
OURS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}
THEIRS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def _pair(kind, kw, ours_params, theirs_params):
    torch_kw = dict(kw, foreach=False)
    return OURS[kind](ours_params, **kw), THEIRS[kind](theirs_params, **torch_kw)


@pytest.mark.parametrize("kind, kw", CONFIGS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CONFIGS)])
def test_updates_match_torch_on_scripted_gradients(kind, kw, rng):
    """20 steps with gradients of varied scale; one parameter skips steps (grad None)."""
    shapes = [(4, 3), (5,), (2, 3, 2, 2)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours_p = [nn.Parameter(a.copy()) for a in init]
    theirs_p = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    groups_ours = [{"params": ours_p[:2]}, {"params": ours_p[2:], "lr": kw["lr"] * 3}]
    groups_theirs = [{"params": theirs_p[:2]}, {"params": theirs_p[2:], "lr": kw["lr"] * 3}]
    ours, theirs = _pair(kind, kw, groups_ours, groups_theirs)
    for step in range(20):
        for i, (p, t) in enumerate(zip(ours_p, theirs_p)):
            if i == 1 and step % 3 == 1:
                p.grad, t.grad = None, None
                continue
            g = (rng.standard_normal(p.shape) * 10.0 ** rng.integers(-3, 2)).astype(np.float32)
            p.grad, t.grad = g.copy(), torch.tensor(g)
        ours.step()
        theirs.step()
        for p, t in zip(ours_p, theirs_p):
            assert p.dtype == np.float32
            assert_close(p.data, t.detach().numpy(), 1e-6, f"parameter after step {step}")
    for p, t in zip(ours_p, theirs_p):
        for name, value in ours.state[p].items():
            expected = theirs.state[t][name]
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32
                assert_close(value, expected.numpy(), 1e-6, name)
            else:
                assert value == int(expected)


class TinyNet(nn.Module):
    """conv → relu → pool → conv → relu → pool → flatten → linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.p1 = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(4, 6, 3)
        self.p2 = nn.AvgPool2d(2)
        self.fc = nn.Linear(6 * 2 * 2, 5)

    def forward(self, x):                       # (N, 1, 12, 12)
        x = self.p1(F.relu(self.c1(x)))         # (N, 4, 6, 6)
        x = self.p2(F.relu(self.c2(x)))         # (N, 6, 2, 2)
        return self.fc(F.flatten(x))            # (N, 5)


class TorchTinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.p1 = torch.nn.MaxPool2d(2)
        self.c2 = torch.nn.Conv2d(4, 6, 3)
        self.p2 = torch.nn.AvgPool2d(2)
        self.fc = torch.nn.Linear(6 * 2 * 2, 5)

    def forward(self, x):
        x = self.p1(torch.relu(self.c1(x)))
        x = self.p2(torch.relu(self.c2(x)))
        return self.fc(torch.flatten(x, 1))


MODEL_CONFIGS = [
    ("sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    ("adam", dict(lr=1e-2)),
    ("adam", dict(lr=1e-2, amsgrad=True, weight_decay=1e-3)),
    ("adamw", dict(lr=1e-2, weight_decay=0.05)),
]


@pytest.mark.parametrize("kind, kw", MODEL_CONFIGS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(MODEL_CONFIGS)])
def test_small_model_trains_like_torch(kind, kw, rng):
    """Same weights, same data: the same loss, gradients and parameters over 5 steps."""
    torch.manual_seed(0)
    theirs_model, ours_model = TorchTinyNet(), TinyNet()
    ours_model.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs_model.state_dict().items()})
    ours, theirs = _pair(kind, kw, ours_model.parameters(), theirs_model.parameters())
    x = rng.standard_normal((8, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 5, 8)
    for step in range(5):
        ours.zero_grad()
        theirs.zero_grad()
        loss = F.cross_entropy(ours_model(x), y)
        ref = torch.nn.functional.cross_entropy(theirs_model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        ref.backward()
        assert_close(loss.data, ref.detach().numpy(), 1e-5, f"loss at step {step}")
        theirs_named = dict(theirs_model.named_parameters())
        for name, p in ours_model.named_parameters():
            assert_close(p.grad, theirs_named[name].grad.numpy(), 1e-5, f"grad of {name} at step {step}")
        ours.step()
        theirs.step()
        for name, p in ours_model.named_parameters():
            assert_close(p.data, theirs_named[name].detach().numpy(), 1e-5, f"{name} after step {step}")


@pytest.mark.parametrize("kind, kw", [("sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                      ("adam", dict(lr=1e-2, amsgrad=True)), ("adamw", dict(lr=1e-2))])
def test_state_dict_resumes_exactly(kind, kw, rng, tmp_path):
    """3 steps, save (through a checkpoint file), 2 more: the same as 5 steps in one go."""
    shapes = [(3, 4), (4,)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(5)]

    def run(params, opt, steps):
        for gs in steps:
            for p, g in zip(params, gs):
                p.grad = g.copy()
            opt.step()

    straight = [nn.Parameter(a.copy()) for a in init]
    opt = OURS[kind](straight, **kw)
    run(straight, opt, grads)

    first = [nn.Parameter(a.copy()) for a in init]
    opt1 = OURS[kind](first, **kw)
    run(first, opt1, grads[:3])
    st.save({"params": [p.data for p in first], "optimizer": opt1.state_dict()}, tmp_path / "ckpt.safetensors")
    ckpt = st.load(tmp_path / "ckpt.safetensors")
    resumed = [nn.Parameter(a) for a in ckpt["params"]]
    opt2 = OURS[kind](resumed, **dict(kw, lr=123.0))      # the saved lr wins
    opt2.load_state_dict(ckpt["optimizer"])
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    run(resumed, opt2, grads[3:])
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_layout_and_copies():
    p, q = nn.Parameter(np.ones(3, np.float32)), nn.Parameter(np.ones(2, np.float32))
    opt = optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=0.1, momentum=0.9)
    p.grad = np.ones(3, np.float32)
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and sd["param_groups"][1]["params"] == [1]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["momentum"] == 0.9
    assert list(sd["state"]) == [0]                      # q never had a gradient
    sd["state"][0]["momentum_buffer"][...] = 7          # a copy, not the live buffer
    assert (opt.state[p]["momentum_buffer"] == 1).all()


def test_zero_grad_and_closure():
    p = nn.Parameter(np.array([1.0, 2.0], np.float32))
    opt = optim.SGD([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss
    loss = opt.step(closure)
    assert float(loss.data) == 5.0
    np.testing.assert_array_equal(p.data, [0.0, 0.0])
    p.grad = np.ones(2, np.float32)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad, [0, 0])
    opt.zero_grad()
    assert p.grad is None
    opt.step()                                          # no gradient: nothing happens
    np.testing.assert_array_equal(p.data, [0.0, 0.0])


def test_optimizer_errors():
    p = nn.Parameter(np.ones(2, np.float32))
    with pytest.raises(ValueError, match=r"SGD: lr must be a number >= 0, got -0.1"):
        optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0 and dampening = 0"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"SGD: momentum must be a number >= 0"):
        optim.SGD([p], lr=0.1, momentum=-1)
    with pytest.raises(ValueError, match=r"Adam: betas\[1\] must be a number >= 0 and < 1, got 1.0"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"Adam: eps must be a number >= 0"):
        optim.Adam([p], eps=-1.0)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="appears more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="got a single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors, got ndarray"):
        optim.SGD([np.ones(2)], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match=r"saved state has 2 parameter group\(s\), this optimizer has 1"):
        opt.load_state_dict({"state": {}, "param_groups": [{"params": [0]}, {"params": [1]}]})
    with pytest.raises(ValueError, match="expects a dict with 'state' and 'param_groups'"):
        opt.load_state_dict({"lr": 0.1})
    with pytest.raises(ValueError, match=r"momentum_buffer of parameter 0 has shape \(3,\)"):
        opt.load_state_dict({"state": {0: {"momentum_buffer": np.zeros(3, np.float32)}},
                             "param_groups": [dict(opt.state_dict()["param_groups"][0])]})
