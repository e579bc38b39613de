"""Reference checks shared by the tests: striate against PyTorch, and against central differences.

``check_torch`` runs the same function in both libraries on the same float32
inputs, compares shapes, dtypes and values of the output, then drives both
backward passes with one random upstream gradient (not ``sum()``, so a gradient
that is right only in total cannot pass) and compares every input gradient.
"""
from __future__ import annotations

import numpy as np
import torch

import striate as st
import striate.functional as F

torch.set_num_threads(1)


def assert_close(actual, expected, rtol=1e-5, what="value"):
    """|a − e| ≤ rtol · max(1, max|e|): float32-tight, scaled to the data's magnitude."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != reference {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    err = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()) if expected.size else 0.0
    assert err <= rtol * scale, f"{what}: max abs error {err:.3g} > {rtol:g} × scale {scale:.3g}"


def check_torch(ours, theirs, arrays, rtol=1e-5, seed=0, grads=True):
    """Compare ``ours(*Tensors)`` with ``theirs(*torch tensors)``, forward and backward.

    ``arrays`` are float arrays (all requiring grad) or other values passed
    through unchanged to both sides (integers, labels: give them as
    ``("raw", striate_value, torch_value)``).
    """
    rng = np.random.default_rng(seed)
    ours_in, theirs_in, diff = [], [], []
    for a in arrays:
        if isinstance(a, tuple) and len(a) == 3 and a[0] == "raw":
            ours_in.append(a[1])
            theirs_in.append(a[2])
            continue
        a = np.asarray(a)
        x = st.Tensor(a, requires_grad=grads, dtype=a.dtype)
        t = torch.tensor(a, requires_grad=grads)
        ours_in.append(x)
        theirs_in.append(t)
        diff.append((x, t))
    out = ours(*ours_in)
    ref = theirs(*theirs_in)
    assert isinstance(out, st.Tensor), f"expected a Tensor, got {type(out).__name__}"
    assert out.dtype == np.dtype(str(ref.dtype).replace("torch.", "")), \
        f"dtype {out.dtype} != reference {ref.dtype}"
    assert_close(out.data, ref.detach().numpy(), rtol, "forward")
    if not grads:
        return out
    g = rng.standard_normal(out.shape).astype(out.dtype)
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    for i, (x, t) in enumerate(diff):
        expected = t.grad.numpy() if t.grad is not None else np.zeros(t.shape, dtype=x.dtype)
        actual = x.grad if x.grad is not None else np.zeros(x.shape, dtype=x.dtype)
        assert_close(actual, expected, rtol, f"gradient of input {i}")
    return out


def randn(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def sgd_losses(model, x, y, lr, steps):
    """Plain SGD on one batch for ``steps`` steps (cross-entropy); the loss before each step."""
    losses = []
    for _ in range(steps):
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        losses.append(float(loss.data))
        with st.no_grad():
            for p in model.parameters():
                p.data -= lr * p.grad
    return losses
