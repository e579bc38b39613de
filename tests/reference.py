"""Reference checks shared by the tests: striate against PyTorch, and against central differences.

A reference must be more accurate than what it checks. Two float32 results
from two libraries differ by their rounding, which depends on the summation
order their kernels pick on a given CPU; comparing them at a float32-sized
tolerance passes on one machine and fails on another. So PyTorch always runs
in float64 here, and striate's float32 results are compared with that float64
reference at a float32-sized tolerance.

``check_torch`` runs the same function in both libraries: striate on the given
(float32) inputs, PyTorch on the same values in float64. It compares shapes,
the dtype (striate keeps its input's dtype) and values of the output, then
drives both backward passes with one random upstream gradient (not ``sum()``,
so a gradient that is right only in total cannot pass) and compares every input
gradient. It then runs striate again in float64 and compares that with PyTorch
at ``rtol64`` (1e-10 by default): a wrong formula that a float32-sized
tolerance would let through shows there.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

import striate as st
import striate.functional as F

torch.set_num_threads(1)


def assert_close(actual, expected, rtol=1e-5, what="value", floor=1.0):
    """|a − e| ≤ rtol · max(floor, max|e|): tight, scaled to the data's magnitude.

    ``floor=1`` (the default) suits values of order one and above; gradients pass
    ``floor=0`` so that a tensor of tiny values is held to its own scale, not to 1.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != reference {expected.shape}"
    scale = max(floor, float(np.abs(expected).max())) if expected.size else floor
    err = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()) if expected.size else 0.0
    assert err <= rtol * scale, f"{what}: max abs error {err:.3g} > {rtol:g} × scale {scale:.3g}"


def to_torch64(a, requires_grad=False):
    """A float64 torch tensor holding ``a``'s values (the reference side of every comparison)."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _is_raw(a):
    return isinstance(a, tuple) and len(a) == 3 and isinstance(a[0], str) and a[0] == "raw"


def _striate_inputs(arrays, wants, dtype):
    """striate's inputs: Tensors for the float arrays (in ``dtype`` when given), raw values as they are."""
    inputs, leaves = [], []
    wanted = iter(wants)
    for a in arrays:
        if _is_raw(a):
            value = a[1]
            if dtype is not None and isinstance(value, np.ndarray) and value.dtype.kind == "f":
                value = value.astype(dtype)          # a copy: the caller's array sees one run only
            inputs.append(value)
            continue
        a = np.asarray(a)
        x = st.Tensor(a, requires_grad=next(wanted), dtype=a.dtype if dtype is None else dtype)
        inputs.append(x)
        leaves.append(x)
    return inputs, leaves


def check_torch(ours, theirs, arrays, rtol=1e-5, seed=0, grads=True, rtol64=1e-10, grad_floor=0.0):
    """Compare ``ours(*Tensors)`` with ``theirs(*torch tensors)``, forward and backward.

    ``arrays`` are float arrays (requiring grad: all of them, none, or those
    marked True when ``grads`` is a list with one bool per float array) or other values passed
    through unchanged to both sides (integers, labels: give them as
    ``("raw", striate_value, torch_value)``; a float torch value must be float64,
    like the reference it joins). ``theirs`` receives float64 tensors.

    Striate's results (in the arrays' own dtype) are compared with PyTorch's
    float64 results at ``rtol``: outputs scaled by max(1, max|ref|), gradients by
    their own magnitude, max(grad_floor, max|ref|) (a backward pass that cancels
    terms much larger than its result passes the terms' scale as ``grad_floor``).
    Striate in float64 is compared with PyTorch at ``rtol64``.
    """
    floats = [np.asarray(a) for a in arrays if not _is_raw(a)]
    in_dtype = np.result_type(*floats) if floats else None
    wants = [grads] * len(floats) if isinstance(grads, bool) else [bool(w) for w in grads]
    assert len(wants) == len(floats), "grads: one bool per float array"
    grads = any(wants)
    theirs_in, theirs_leaves = [], []
    wanted = iter(wants)
    for a in arrays:
        if _is_raw(a):
            value = a[2]
            assert not (isinstance(value, torch.Tensor) and value.is_floating_point()
                        and value.dtype != torch.float64), "a raw float torch value must be float64"
            theirs_in.append(value)
            continue
        t = to_torch64(a, requires_grad=next(wanted))
        theirs_in.append(t)
        theirs_leaves.append(t)
    ref = theirs(*theirs_in)
    ref_out = ref.detach().numpy()
    # the upstream gradient: float32 values, so that both libraries see exactly the same numbers
    g = np.random.default_rng(seed).standard_normal(ref_out.shape).astype(np.float32)
    if grads:
        ref.backward(torch.from_numpy(g.astype(np.float64)))
    ref_grads = [t.grad.numpy() if t.grad is not None else np.zeros(t.shape) for t in theirs_leaves]

    def compare(dtype, tol, label):
        inputs, leaves = _striate_inputs(arrays, wants, dtype)
        out = ours(*inputs)
        assert isinstance(out, st.Tensor), f"expected a Tensor, got {type(out).__name__}"
        if ref.dtype == torch.float64:           # a float result: striate keeps the input's dtype
            want = np.dtype(dtype) if dtype is not None else in_dtype
        else:                                    # an integer or bool result: the same as torch's
            want = np.dtype(str(ref.dtype).replace("torch.", ""))
        assert out.dtype == want, f"{label}dtype {out.dtype} != expected {want}"
        assert_close(out.data, ref_out, tol, f"{label}forward")
        if not grads:
            return out
        out.backward(g.astype(out.dtype))
        for i, (x, expected, want_grad) in enumerate(zip(leaves, ref_grads, wants)):
            if not want_grad:
                assert x.grad is None, f"{label}input {i} does not require grad, yet has one"
                continue
            actual = x.grad if x.grad is not None else np.zeros(x.shape, dtype=x.dtype)
            assert actual.dtype == x.dtype, f"{label}gradient of input {i}: dtype {actual.dtype} != {x.dtype}"
            assert_close(actual, expected, tol, f"{label}gradient of input {i}", floor=grad_floor)
        return out

    out = compare(None, rtol, "")
    if in_dtype is not None and in_dtype != np.float64:
        compare(np.float64, rtol64, "float64: ")
    return out


def as_float64(model):
    """A copy of a striate model with its parameters and float buffers in float64, and no gradients.

    Run against a PyTorch twin in float64, it separates a wrong formula (which
    shows at float64's precision) from float32 round-off (which does not).
    """
    model = copy.deepcopy(model)
    for module in model.modules():
        for p in module._parameters.values():
            if p is not None:
                p.data = p.data.astype(np.float64)
                p.grad = None                          # a fresh copy: no accumulated gradient
        for name, b in module._buffers.items():
            if isinstance(b, np.ndarray) and b.dtype == np.float32:
                module._buffers[name] = b.astype(np.float64)
    return model


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
