"""SGD, Adam and AdamW against torch.optim (its single-tensor algorithms), step for step."""
import numpy as np
import pytest
import torch

import striate as st
import striate.functional as F
from striate import nn, optim
from tests.reference import as_float64, assert_close, to_torch64

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


# Each test runs twice against torch.optim in float64: striate in float64 at RTOL64 (the same
# formulas in the same precision: any difference is a wrong formula), and striate in float32 at
# a float32-sized tolerance (its round-off, step after step, against the float64 truth).
RTOL64 = 1e-12


def _scripted_run(kind, kw, init, grads, dtype):
    """``grads[step][i]`` (None: skip) through both optimizers, striate's parameters in ``dtype``.

    Returns the parameters after every step, [(striate's, torch's)], and the two optimizers.
    """
    ours_p = [nn.Parameter(a.astype(dtype)) for a in init]
    theirs_p = [torch.nn.Parameter(torch.tensor(a, dtype=torch.float64)) for a in init]
    groups_ours = [{"params": ours_p[:2]}, {"params": ours_p[2:], "lr": kw["lr"] * 3}]
    groups_theirs = [{"params": theirs_p[:2]}, {"params": theirs_p[2:], "lr": kw["lr"] * 3}]
    ours, theirs = _pair(kind, kw, groups_ours, groups_theirs)
    history = []
    for gs in grads:
        for p, t, g in zip(ours_p, theirs_p, gs):
            p.grad = None if g is None else g.astype(dtype)
            t.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
        ours.step()
        theirs.step()
        history.append(([p.data.copy() for p in ours_p], [t.detach().numpy().copy() for t in theirs_p]))
    return history, ours, theirs


@pytest.mark.parametrize("kind, kw", CONFIGS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CONFIGS)])
def test_updates_match_torch_on_scripted_gradients(kind, kw, rng):
    """20 steps with gradients of varied scale; one parameter skips steps (grad None)."""
    shapes = [(4, 3), (5,), (2, 3, 2, 2)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[None if i == 1 and step % 3 == 1 else
              (rng.standard_normal(s) * 10.0 ** rng.integers(-3, 2)).astype(np.float32)
              for i, s in enumerate(shapes)] for step in range(20)]
    # float32: each step rounds the parameter and its update (and the optimizer's buffers), a few
    # eps/2 = 6e-8 relative per step; twenty steps stay under 2.4e-6 at worst, and 8.8e-7 is measured
    # (twenty seeds of every configuration): 3e-6 × max(1, |p|). (1e-6 held float32 against float32
    # only because both libraries then round the same formula the same way.)
    for dtype, rtol in [(np.float64, RTOL64), (np.float32, 3e-6)]:
        history, ours, theirs = _scripted_run(kind, kw, init, grads, dtype)
        for step, (ours_p, theirs_p) in enumerate(history):
            for p, t in zip(ours_p, theirs_p):
                assert p.dtype == dtype
                assert_close(p, t, rtol, f"{dtype.__name__} parameter after step {step}")
        for p, t in zip(ours.param_groups[0]["params"] + ours.param_groups[1]["params"],
                        theirs.param_groups[0]["params"] + theirs.param_groups[1]["params"]):
            for name, value in ours.state[p].items():
                expected = theirs.state[t][name]
                if isinstance(value, np.ndarray):
                    assert value.dtype == dtype
                    assert_close(value, expected.numpy(), rtol, f"{dtype.__name__} {name}")
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
    """Same weights, same data: the same loss, gradients and parameters over 5 steps.

    torch's network and optimizer run in float64; striate's float32 network at 1e-5, and a
    float64 copy of it at 1e-10. Gradients are scaled by their own magnitude (about 0.1 here), and
    in float32 held to 1e-4 of it: a bias gradient sums 8·12·12 = 1,152 terms that largely cancel,
    so its float32 round-off, some eps·√n of the largest term, reaches 1e-5 of the sum (9.3e-6
    measured over ten seeds) - still no more than the 1e-5 × max(1, ·) absolute it had before."""
    torch.manual_seed(0)
    theirs_model, ours_model = TorchTinyNet(), TinyNet()
    ours_model.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs_model.state_dict().items()})
    theirs_model.double()
    models = [(ours_model, np.float32, 1e-5, 1e-4), (as_float64(ours_model), np.float64, 1e-10, 1e-10)]
    opts = [OURS[kind](m[0].parameters(), **kw) for m in models]
    theirs = THEIRS[kind](theirs_model.parameters(), **dict(kw, foreach=False))
    x = rng.standard_normal((8, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 5, 8)
    theirs_named = dict(theirs_model.named_parameters())
    for step in range(5):
        theirs.zero_grad()
        ref = torch.nn.functional.cross_entropy(theirs_model(to_torch64(x)), torch.from_numpy(y))
        ref.backward()
        for (model, dtype, rtol, grad_rtol), ours in zip(models, opts):
            ours.zero_grad()
            loss = F.cross_entropy(model(x.astype(dtype)), y)
            loss.backward()
            assert loss.dtype == dtype
            assert_close(loss.data, ref.detach().numpy(), rtol, f"{dtype.__name__} loss at step {step}")
            for name, p in model.named_parameters():
                assert_close(p.grad, theirs_named[name].grad.numpy(), grad_rtol,
                             f"{dtype.__name__} grad of {name} at step {step}", floor=0)
            ours.step()
        theirs.step()
        for model, dtype, rtol, _ in models:
            for name, p in model.named_parameters():
                assert p.dtype == dtype
                assert_close(p.data, theirs_named[name].detach().numpy(), rtol,
                             f"{dtype.__name__} {name} after step {step}")


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
