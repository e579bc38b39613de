"""Learning-rate schedules against torch.optim.lr_scheduler, epoch by epoch."""
import math
import warnings

import numpy as np
import pytest
import torch

import striate as st
from striate import nn, optim


def _optimizers(lrs=(0.1, 0.03)):
    """Ours and torch's SGD with one parameter group per learning rate."""
    ours = optim.SGD([{"params": [nn.Parameter(np.zeros(1, np.float32))], "lr": lr} for lr in lrs],
                     lr=lrs[0], momentum=0.9)
    theirs = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs],
                             lr=lrs[0], momentum=0.9)
    return ours, theirs


def _torch_step(scheduler, *args):
    with warnings.catch_warnings():          # "lr_scheduler.step() before optimizer.step()"
        warnings.simplefilter("ignore")
        scheduler.step(*args)


SCHEDULES = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("StepLR", dict(step_size=1, gamma=0.9)),
    ("MultiStepLR", dict(milestones=[3, 10, 10, 25], gamma=0.3)),
    ("CosineAnnealingLR", dict(T_max=10)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=1e-3)),
]


@pytest.mark.parametrize("name, kw", SCHEDULES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULES)])
def test_schedule_matches_torch(name, kw):
    ours_opt, theirs_opt = _optimizers()
    ours = getattr(optim, name)(ours_opt, **kw)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, **kw)
    assert ours.get_last_lr() == theirs.get_last_lr()
    for epoch in range(40):                  # past T_max: the cosine rises again, as in torch
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        _torch_step(theirs)
        for a, b in zip(ours.get_last_lr(), theirs.get_last_lr()):
            assert a == pytest.approx(b, rel=1e-12, abs=1e-15), f"epoch {epoch}"
        assert [g["lr"] for g in ours_opt.param_groups] == ours.get_last_lr()


def test_closed_forms_agree_with_the_recursion():
    opt, _ = _optimizers((0.2,))
    cosine = optim.CosineAnnealingLR(opt, T_max=12, eta_min=0.01)
    for epoch in range(1, 30):
        cosine.step()
        assert cosine.get_last_lr()[0] == pytest.approx(cosine.closed_form(epoch)[0], rel=1e-9)
    opt, _ = _optimizers((0.2,))
    multi = optim.MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.5)
    for epoch in range(1, 9):
        multi.step()
        assert multi.get_last_lr()[0] == pytest.approx(multi.closed_form(epoch)[0], rel=1e-12)


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01, cooldown=2),
    dict(factor=0.5, patience=1, threshold=0.05, threshold_mode="abs", min_lr=[0.02, 0.001]),
    dict(factor=0.2, patience=0, cooldown=1, min_lr=0.004, eps=1e-3),
]


@pytest.mark.parametrize("kw", PLATEAU)
def test_reduce_on_plateau_matches_torch(kw):
    # a scripted metric: improves, stalls, improves a little, oscillates, stalls for long
    metrics = [1.0, 0.8, 0.7, 0.7, 0.71, 0.69, 0.699, 0.6999, 0.6, 0.65, 0.62, 0.6, 0.61] + [0.6] * 20
    if kw.get("mode") == "max":
        metrics = [1 - m for m in metrics]
    ours_opt, theirs_opt = _optimizers()
    ours = optim.ReduceLROnPlateau(ours_opt, **kw)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **kw)
    for epoch, m in enumerate(metrics):
        ours.step(m)
        _torch_step(theirs, m)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12), f"epoch {epoch}"
        assert ours.num_bad_epochs == theirs.num_bad_epochs and ours.best == theirs.best
        assert ours.cooldown_counter == theirs.cooldown_counter


def test_reduce_on_plateau_patience_by_hand():
    opt, _ = _optimizers((1.0,))
    sched = optim.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    lrs = []
    for m in [5, 4, 4, 4, 4, 4, 4, 4]:
        sched.step(m)
        lrs.append(sched.get_last_lr()[0])
    # the cut comes on the third epoch without improvement, then the count restarts
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    sched.step(st.Tensor(np.float32(1.0)))        # a one-element Tensor is fine as the metric
    assert sched.best == 1.0


@pytest.mark.parametrize("make", [
    lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
    lambda o: optim.MultiStepLR(o, milestones=[2, 6], gamma=0.1),
    lambda o: optim.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
    lambda o: optim.ReduceLROnPlateau(o, factor=0.5, patience=1),
])
def test_state_dict_resume_through_a_checkpoint(make, tmp_path):
    """Stop after 4 epochs, save optimizer and scheduler, restore into fresh ones: the same schedule."""
    metrics = [3, 2, 2, 2, 2, 1, 1, 1, 1, 1]

    def advance(sched, epochs):
        for e in epochs:
            sched.step(metrics[e]) if isinstance(sched, optim.ReduceLROnPlateau) else sched.step()

    opt, _ = _optimizers()
    straight = make(opt)
    advance(straight, range(10))

    opt1, _ = _optimizers()
    first = make(opt1)
    advance(first, range(4))
    st.save({"optimizer": opt1.state_dict(), "scheduler": first.state_dict()}, tmp_path / "s.safetensors")
    ckpt = st.load(tmp_path / "s.safetensors")
    opt2, _ = _optimizers((5.0, 5.0))
    resumed = make(opt2)                      # built first (it writes the lr), then both restored
    opt2.load_state_dict(ckpt["optimizer"])
    resumed.load_state_dict(ckpt["scheduler"])
    advance(resumed, range(4, 10))
    assert resumed.get_last_lr() == straight.get_last_lr()
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


def test_resume_with_last_epoch():
    opt, theirs_opt = _optimizers()
    for group, tgroup in zip(opt.param_groups, theirs_opt.param_groups):
        group["initial_lr"] = tgroup["initial_lr"] = group["lr"]
    ours = optim.StepLR(opt, step_size=2, gamma=0.5, last_epoch=3)
    theirs = torch.optim.lr_scheduler.StepLR(theirs_opt, step_size=2, gamma=0.5, last_epoch=3)
    assert ours.last_epoch == theirs.last_epoch == 4
    assert ours.get_last_lr() == theirs.get_last_lr()
    fresh, _ = _optimizers()
    with pytest.raises(KeyError, match="needs 'initial_lr' in param_groups\\[0\\]"):
        optim.StepLR(fresh, step_size=2, last_epoch=3)


def test_scheduler_errors():
    opt, _ = _optimizers()
    with pytest.raises(TypeError, match="expects a striate optimizer"):
        optim.StepLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), step_size=2)
    with pytest.raises(ValueError, match="StepLR: step_size must be an int >= 1, got 0"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(TypeError, match="CosineAnnealingLR: T_max must be an int >= 1, got 2.5"):
        optim.CosineAnnealingLR(opt, T_max=2.5)
    with pytest.raises(ValueError, match="MultiStepLR: every milestone must be an int >= 0"):
        optim.MultiStepLR(opt, milestones=[3, -1])
    with pytest.raises(ValueError, match="ReduceLROnPlateau: factor must be a number > 0 and < 1"):
        optim.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        optim.ReduceLROnPlateau(opt, mode="best")
    with pytest.raises(ValueError, match="expected 2 min_lr values"):
        optim.ReduceLROnPlateau(opt, min_lr=[0.1])
    assert math.isinf(optim.ReduceLROnPlateau(opt).best)
