import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import striate as st
import striate.functional as F
from tests.reference import check_torch, randn, to_torch64

REDUCTIONS = ["mean", "sum", "none"]


def targets(rng, shape, C, ignore_index=None, ignore_fraction=0.3):
    t = rng.integers(0, C, size=shape)
    if ignore_index is not None:
        t[rng.random(shape) < ignore_fraction] = ignore_index
        t.flat[0] = 0 if ignore_index != 0 else C - 1      # one row counts (else 'mean' is 0/0)
    return ("raw", t, torch.from_numpy(t))


def cross_entropy_case(rng, logits_shape, **kwargs):
    C = logits_shape[1] if len(logits_shape) > 1 else logits_shape[0]
    target_shape = (logits_shape[0],) + logits_shape[2:] if len(logits_shape) > 1 else ()
    t = targets(rng, target_shape, C, kwargs.get("ignore_index"))
    weight = kwargs.pop("weight", None)
    theirs_kwargs = dict(kwargs, weight=None if weight is None else to_torch64(weight))
    x = randn(rng, *logits_shape) * 3
    check_torch(lambda x, t: F.cross_entropy(x, t, weight=weight, **kwargs),
                lambda x, t: tF.cross_entropy(x, t, **theirs_kwargs), [x, t])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_matches_torch(reduction, rng):
    for _ in range(10):
        N, C = (int(n) for n in rng.integers(1, 12, size=2))
        cross_entropy_case(rng, (N, C), reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(2, 5, 4, 3), (3, 4, 7), (1, 3, 2, 2, 2), (6,)], ids=str)
def test_cross_entropy_dense_and_unbatched_logits(shape, reduction, rng):
    cross_entropy_case(rng, shape, reduction=reduction)
    cross_entropy_case(rng, shape, reduction=reduction, label_smoothing=0.2, ignore_index=1)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_options_match_torch(reduction, rng):
    for _ in range(12):
        N, C = int(rng.integers(1, 9)), int(rng.integers(2, 8))
        shape = (N, C) if rng.random() < 0.5 else (N, C, 3, 2)
        kwargs = dict(reduction=reduction)
        if rng.random() < 0.6:
            kwargs["weight"] = rng.uniform(0.1, 3, C).astype(np.float32)
        if rng.random() < 0.6:
            kwargs["ignore_index"] = int(rng.choice([-100, 0, -1, C - 1]))
        if rng.random() < 0.6:
            kwargs["label_smoothing"] = float(rng.choice([0.1, 0.5, 1.0]))
        cross_entropy_case(rng, shape, **kwargs)


def test_cross_entropy_is_stable_for_huge_logits(rng):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4 - 5, -1e4], [-1e4, -1e4 + 1, -1e4]],
                 np.float32)
    t = np.array([1, 2, 1, 0])
    for reduction in REDUCTIONS:
        for smoothing in (0.0, 0.1):
            with np.errstate(over="raise", divide="raise", invalid="raise"):   # underflow to 0 is fine
                out = check_torch(lambda x: F.cross_entropy(x, t, reduction, label_smoothing=smoothing),
                                  lambda x: tF.cross_entropy(x, torch.from_numpy(t), reduction=reduction,
                                                             label_smoothing=smoothing), [x])
            assert np.isfinite(out.data).all()
    assert F.cross_entropy(x, t, "none").data[0] == pytest.approx(2e4)


def test_cross_entropy_gradcheck_float64(rng):
    x = rng.standard_normal((4, 5))
    t = np.array([0, 3, -100, 4])
    w = rng.uniform(0.5, 2, 5)
    for reduction in REDUCTIONS:
        assert st.gradcheck(lambda x: F.cross_entropy(x, t, reduction, w, label_smoothing=0.2), [x])
    xd = rng.standard_normal((2, 3, 2, 2))
    td = rng.integers(0, 3, size=(2, 2, 2))
    assert st.gradcheck(lambda x: F.cross_entropy(x, td, "mean", label_smoothing=0.3), [xd])


def test_cross_entropy_equals_nll_of_log_softmax(rng):
    x, t = randn(rng, 6, 4), rng.integers(0, 4, 6)
    a = F.cross_entropy(x, t)
    b = F.nll_loss(F.log_softmax(x, dim=1), t)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_cross_entropy_targets_as_integer_tensor_and_all_ignored(rng):
    x = randn(rng, 3, 4)
    t = st.Tensor(np.array([1, 2, 3]), dtype=np.int64)
    assert F.cross_entropy(x, t).item() == pytest.approx(
        tF.cross_entropy(to_torch64(x), torch.tensor([1, 2, 3])).item(), rel=1e-6)
    everything_ignored = np.full(3, -100)
    assert np.isnan(F.cross_entropy(x, everything_ignored).item())          # 0/0, as PyTorch
    assert np.isnan(tF.cross_entropy(to_torch64(x), torch.from_numpy(everything_ignored)).item())
    assert F.cross_entropy(x, everything_ignored, "sum").item() == 0
    assert F.cross_entropy(x, np.array([1, 2, 3], np.uint8)).dtype == np.float32


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_torch(reduction, rng):
    for shape in [(7, 5), (2, 4, 3, 3), (3, 6, 5)]:
        C = shape[1]
        t = targets(rng, (shape[0],) + shape[2:], C, ignore_index=2)
        w = rng.uniform(0.2, 2, C).astype(np.float32)
        x = randn(rng, *shape)
        check_torch(lambda x, t: F.nll_loss(x, t, reduction, w, ignore_index=2),
                    lambda x, t: tF.nll_loss(x, t, to_torch64(w), ignore_index=2, reduction=reduction),
                    [x, t])
        check_torch(lambda x, t: F.nll_loss(x, t, reduction=reduction),
                    lambda x, t: tF.nll_loss(x, t, reduction=reduction), [x, targets(rng, t[1].shape, C)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_matches_torch(reduction, rng):
    for shape in [(5,), (4, 3), (2, 3, 4, 5)]:
        check_torch(lambda a, b: F.mse_loss(a, b, reduction), lambda a, b: tF.mse_loss(a, b, reduction=reduction),
                    [randn(rng, *shape), randn(rng, *shape)])
    assert st.gradcheck(lambda a, b: F.mse_loss(a, b, reduction),
                        [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))])


def test_mse_loss_target_array_takes_the_input_dtype(rng):
    a = st.Tensor(randn(rng, 3, 2), requires_grad=True)
    loss = F.mse_loss(a, np.zeros((3, 2)))          # a float64 array
    loss.backward()
    assert loss.dtype == np.float32 and a.grad.dtype == np.float32
    np.testing.assert_allclose(a.grad, 2 * a.data / 6, rtol=1e-6)


def test_loss_errors():
    x = np.zeros((4, 10), np.float32)
    with pytest.raises(ValueError, match=r"cross_entropy: target 12 is out of range for C=10 classes"):
        F.cross_entropy(x, np.array([1, 2, 12, 3]))
    with pytest.raises(ValueError, match=r"target -1 is out of range for C=10 classes.*ignore_index=-100"):
        F.cross_entropy(x, np.array([1, -1, 2, 3]))
    with pytest.raises(TypeError, match="integer class indices as target, got dtype float64"):
        F.cross_entropy(x, np.array([1.0, 2.0, 0.0, 3.0]))
    with pytest.raises(TypeError, match=r"got dtype float32.*Tensor\(y, dtype=np.int64\)"):
        F.cross_entropy(x, st.Tensor([1, 2, 0, 3]))
    with pytest.raises(ValueError,
                       match=r"target of shape \(4,\) for input \(4, 10\).*got \(5,\) \(batch sizes differ\)"):
        F.cross_entropy(x, np.arange(5))
    with pytest.raises(ValueError, match=r"target of shape \(2, 3, 3\) for input \(2, 4, 3, 3\).*got \(2, 3\)"):
        F.cross_entropy(np.zeros((2, 4, 3, 3), np.float32), np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.cross_entropy(x, np.arange(4), reduction="avg")
    with pytest.raises(ValueError, match=r"weight of shape \(10,\) \(one per class\), got \(3,\)"):
        F.cross_entropy(x, np.arange(4), weight=np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(x, np.arange(4), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"nll_loss: target 10 is out of range for C=10"):
        F.nll_loss(x, np.array([0, 1, 2, 10]))
    with pytest.raises(ValueError,
                       match=r"mse_loss expects input and target of the same shape, got \(4, 10\) and \(10,\)"):
        F.mse_loss(x, np.zeros(10, np.float32))
    with pytest.raises(TypeError, match="cross_entropy expects a float32 or float64 logits, got dtype int64"):
        F.cross_entropy(st.Tensor(np.zeros((4, 10)), dtype=np.int64), np.arange(4))
