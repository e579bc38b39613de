"""Numerical faults: extreme inputs keep every op's output and gradient finite; a NaN or infinity that
does appear in training stops the run with the epoch, the step and the learning rate.

The op table runs with NumPy's overflow, invalid-operation and division warnings turned into errors,
so an op that only happens to end finite after an intermediate infinity fails too (underflow to zero
is harmless and allowed). The loss-of-precision cases are also compared with PyTorch in float64. The
loss / Inf checks of ``fit`` and ``train_step`` themselves are in tests/train/test_loop.py and
tests/test_cli.py; here the gradient path through ``fit``.
"""
import numpy as np
import pytest
import torch

import striate as st
import striate.functional as F
from striate import nn, optim
from striate.data import DataLoader
from striate.train import CHECKPOINT, TrainingDiverged, fit, load_checkpoint


def logits(s):
    """(3, 3) logits with values ±s, ties at s, and zeros."""
    return np.array([[s, 0, -s], [s, s, s], [0, -s, s]])


def constant(shape, value):
    return np.full(shape, value)


def lrn_input(s):
    x = np.full((2, 5, 3, 3), s)
    x[0, 1], x[1, 2] = -s, 0
    return x


TARGET = np.array([2, 0, 1])
CASES = [
    # name, op, input (float64; cast per dtype), the extreme values tried
    ("softmax", lambda t: F.softmax(t, dim=1), logits, (1e4, -1e4, 1e30)),
    ("log_softmax", lambda t: F.log_softmax(t, dim=1), logits, (1e4, -1e4, 1e30)),
    ("cross_entropy", lambda t: F.cross_entropy(t, TARGET), logits, (1e4, -1e4, 1e30)),
    ("cross_entropy smoothed, weighted", lambda t: F.cross_entropy(t, TARGET, label_smoothing=0.1,
                                                                   weight=np.array([1.0, 2.0, 0.5])), logits, (1e4,)),
    ("nll_loss of log_softmax", lambda t: F.nll_loss(F.log_softmax(t, dim=1), TARGET), logits, (1e4, -1e4)),
    ("sigmoid", F.sigmoid, lambda s: np.array([s, -s, 0.0]), (1e4, 1e30)),
    ("tanh", F.tanh, lambda s: np.array([s, -s, 0.0]), (1e4, 1e30)),
    ("scaled_tanh", F.scaled_tanh, lambda s: np.array([s, -s, 0.0]), (1e4, 1e30)),
    ("relu", F.relu, lambda s: np.array([s, -s, 0.0]), (1e30,)),
    ("leaky_relu", F.leaky_relu, lambda s: np.array([s, -s, 0.0]), (1e30,)),
    ("local_response_norm", lambda t: F.local_response_norm(t, 3), lrn_input, (1e4, 1e9)),
    ("local_response_norm AlexNet", lambda t: F.local_response_norm(t, 5, alpha=5e-4, beta=0.75, k=2.0),
     lrn_input, (1e4, 1e9)),
    ("l2_pool2d all-zero windows", lambda t: F.l2_pool2d(t, 2), lambda s: constant((1, 2, 4, 4), s), (0.0, 1e-30, 1e9)),
    ("l2_pool2d padded zeros", lambda t: F.l2_pool2d(t, 3, stride=2, padding=1), lambda s: constant((1, 1, 5, 5), s),
     (0.0,)),
    ("lp_pool2d p=3 zeros", lambda t: F.lp_pool2d(t, 3, 2), lambda s: constant((1, 1, 4, 4), s), (0.0, 1e9)),
    ("lp_pool2d p=1 zeros", lambda t: F.lp_pool2d(t, 1, 2), lambda s: constant((1, 1, 4, 4), s), (0.0,)),
    ("batch_norm training, constant input", lambda t: F.batch_norm(t, None, None, training=True),
     lambda s: constant((4, 3, 2, 2), s), (0.0, 1.0, -7.5, 1e9)),
    ("batch_norm eval, zero running variance",
     lambda t: F.batch_norm(t, np.zeros(3, t.dtype), np.zeros(3, t.dtype), training=False),
     lambda s: constant((4, 3, 2, 2), s), (0.0, 1e4)),
    ("layer_norm constant rows", lambda t: F.layer_norm(t, 3), lambda s: constant((2, 3), s), (0.0, 1e9)),
    ("avg_pool2d", lambda t: F.avg_pool2d(t, 2), lambda s: constant((1, 1, 4, 4), s), (1e30,)),
    ("max_pool2d", lambda t: F.max_pool2d(t, 2), lambda s: constant((1, 1, 4, 4), s), (1e30, -1e30)),
    ("conv2d_fused product, zero responses",
     lambda t: F.conv2d_fused(t, np.ones((2, 3, 2, 2), t.dtype), fusion="product"),
     lambda s: constant((1, 3, 3, 3), s), (0.0,)),
    ("mse_loss", lambda t: F.mse_loss(t, np.zeros(3, t.dtype)), lambda s: np.array([s, -s, 0.0]), (1e9,)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, op, make, values", CASES, ids=[c[0] for c in CASES])
def test_extreme_inputs_keep_outputs_and_gradients_finite(name, op, make, values, dtype, rng):
    for s in values:
        x = st.Tensor(make(s).astype(dtype), requires_grad=True, dtype=dtype)
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            out = op(x)
            out.backward(rng.standard_normal(out.shape).astype(dtype))
        assert out.dtype == dtype and x.grad.dtype == dtype
        assert np.isfinite(out.data).all(), f"{name} at {s}: output {out.data}"
        assert np.isfinite(x.grad).all(), f"{name} at {s}: gradient {x.grad}"


@pytest.mark.parametrize("ours, theirs", [
    (lambda t: F.softmax(t, dim=1), lambda t: torch.softmax(t, dim=1)),
    (lambda t: F.log_softmax(t, dim=1), lambda t: torch.log_softmax(t, dim=1)),
    (lambda t: F.cross_entropy(t, TARGET), lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(TARGET))),
    (lambda t: F.sigmoid(t), lambda t: torch.sigmoid(t)),
    (lambda t: F.tanh(t), lambda t: torch.tanh(t)),
])
@pytest.mark.parametrize("s", [1e4, -1e4])
def test_extreme_logits_agree_with_pytorch(ours, theirs, s, rng):
    x = logits(s).astype(np.float32)
    g = rng.standard_normal((3, 3)).astype(np.float32)
    a = st.Tensor(x, requires_grad=True)
    out = ours(a)
    out.backward(g if out.shape else np.float32(g[0, 0]))
    b = torch.tensor(x, dtype=torch.float64, requires_grad=True)      # the reference: float64
    ref = theirs(b)
    g64 = torch.tensor(g, dtype=torch.float64)
    ref.backward(g64 if ref.shape else g64[0, 0])
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_lrn_stays_finite_where_squares_overflow_float32():
    """x² overflows float32 beyond about 1.8e19: the output and gradient are still finite (as PyTorch's)."""
    for s in (1e19, 1e25):
        x = st.Tensor(lrn_input(s).astype(np.float32), requires_grad=True)
        with np.errstate(all="ignore"):
            out = F.local_response_norm(x, 5, alpha=5e-4, beta=0.75, k=2.0)
            out.backward(np.ones(out.shape, np.float32))
        assert np.isfinite(out.data).all() and np.isfinite(x.grad).all()


# ---------------------------------------------------------------------------
# a NaN gradient in training


class PoisonAt(nn.Module):
    """Identity on the forward; on the backward of the ``at``-th training call, a NaN in the gradient."""

    def __init__(self, at):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x):
        self.calls += self.training
        poison = self.training and self.calls == self.at

        def backward(g):
            g = g.copy()
            if poison:
                g.flat[0] = np.nan
            return (g,)
        return st.Tensor.from_op(x.data, (x,), backward, "poison")


def test_a_nan_gradient_stops_fit_with_epoch_step_and_lr_and_the_last_checkpoint_is_good(tmp_path):
    g = np.random.default_rng(0)
    images, labels = g.random((64, 1, 6, 6)).astype(np.float32), g.integers(0, 3, 64)
    train = DataLoader((images, labels), batch_size=8)                 # 8 steps per epoch
    st.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), PoisonAt(8 + 5), nn.Flatten(), nn.Linear(32, 3))
    opt = optim.SGD(model.parameters(), lr=0.125, momentum=0.9)
    with pytest.raises(TrainingDiverged, match=r"training diverged at epoch 2, step 5 of 8 \(learning rate 0.125\): "
                                               r"the gradient of 0\.(weight|bias) is not finite"):
        fit(model, F.cross_entropy, opt, train, epochs=3, out_dir=tmp_path, progress=False, log=lambda line: None,
            checkpoint_seconds=0, plots=False)
    assert all(np.isfinite(v).all() for v in model.state_dict().values())      # the bad step was not taken
    st.manual_seed(1)
    fresh = nn.Sequential(nn.Conv2d(1, 2, 3), PoisonAt(0), nn.Flatten(), nn.Linear(32, 3))
    position, history = load_checkpoint(tmp_path / CHECKPOINT, fresh, optim.SGD(fresh.parameters(), lr=0.125,
                                                                                  momentum=0.9), None)
    assert (position["epoch"], position["batch"]) == (2, 4) and len(history) == 1
    for k, v in fresh.state_dict().items():
        assert np.array_equal(v, model.state_dict()[k]), k              # the checkpoint is the state before
