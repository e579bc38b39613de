"""The few ops an imported graph needs that ``striate.functional`` does not have.

Each is forward beside backward, like the ops in ``striate.functional``; the
integer and boolean ones (shape arithmetic) need no gradient.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, array_module, as_tensor

__all__ = ["cast", "constant", "equal", "expand", "maximum", "minimum", "power", "prod", "scatter_nd",
           "sign", "take"]


def constant(array) -> Tensor:
    """An array as a Tensor of its own dtype (``Tensor(a)`` would make ints float32)."""
    a = np.asarray(array)
    if a.dtype.kind == "f" and a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32)
    return Tensor(a, dtype=a.dtype)


def power(x, p: float) -> Tensor:
    """x ** p for a constant p; where x = 0 and p < 1 the gradient (infinite) is taken as 0.

    Exporters write LPPool as ``(Σ x^p)^(1/p)`` with Pow nodes; an all-zero window
    (after a ReLU) would otherwise send ∞ · 0 = NaN back, where PyTorch gives 0. The
    same rule as ``F.lp_pool2d``.
    """
    x = as_tensor(x)
    if p >= 1 or p == 0:
        return x ** p
    xp = array_module(x.data)
    out = x.data ** x.dtype.type(p)

    def backward(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            d = p * x.data ** x.dtype.type(p - 1)
        return (g * xp.where(x.data == 0, 0, d).astype(x.dtype),)
    return Tensor.from_op(out, (x,), backward, "pow")


def sign(x) -> Tensor:
    """−1, 0 or 1 elementwise; the gradient is 0 everywhere (taken as 0 at 0 too)."""
    x = as_tensor(x)
    xp = array_module(x.data)
    return Tensor.from_op(xp.sign(x.data), (x,), lambda g: (xp.zeros_like(x.data),), "sign")


def _extreme(a, b, pick_a, op):
    a, b = (t if isinstance(t, Tensor) else constant(t) for t in (a, b))
    from ..tensor import unbroadcast
    out = np.where(pick_a, a.data, b.data)

    def backward(g):                                     # the gradient goes to the winner
        return (unbroadcast(np.where(pick_a, g, 0).astype(a.dtype), a.shape),
                unbroadcast(np.where(pick_a, 0, g).astype(b.dtype), b.shape))
    return Tensor.from_op(out, (a, b), backward, op)


def maximum(a, b) -> Tensor:
    """Elementwise maximum (broadcasting); ties send the gradient to ``a``."""
    return _extreme(a, b, np.asarray(_data(a) >= _data(b)), "maximum")


def minimum(a, b) -> Tensor:
    """Elementwise minimum (broadcasting); ties send the gradient to ``a``."""
    return _extreme(a, b, np.asarray(_data(a) <= _data(b)), "minimum")


def _data(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def equal(a, b) -> Tensor:
    """Elementwise ``a == b`` as a bool tensor (no gradient)."""
    return constant(np.equal(_data(a), _data(b)))


def cast(x, dtype) -> Tensor:
    """Convert to ``dtype``; float to float keeps the gradient."""
    x = x if isinstance(x, Tensor) else constant(x)
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and x.dtype.kind == "f":
        if dtype == np.float16:
            dtype = np.dtype(np.float32)
        return x if dtype == x.dtype else x.astype(dtype)
    return constant(x.data.astype(dtype))


def take(x, indices, axis: int) -> Tensor:
    """``numpy.take`` (ONNX Gather): the gradient adds up where an index repeats."""
    x = x if isinstance(x, Tensor) else constant(x)
    idx = np.asarray(_data(indices)).astype(np.int64)
    axis = axis % x.ndim
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    index = (slice(None),) * axis + (idx,)
    if x.dtype.kind != "f":
        return constant(x.data[index])
    return x[index]


def scatter_nd(data, indices, updates) -> Tensor:
    """ONNX ScatterND: ``out = data; out[indices[i]] = updates[i]``; each gets its own gradient."""
    data = data if isinstance(data, Tensor) else constant(data)
    updates = updates if isinstance(updates, Tensor) else constant(updates)
    idx = np.asarray(_data(indices)).astype(np.int64)
    k = idx.shape[-1]
    where = tuple(idx[..., j] for j in range(k))            # each (indices.shape[:-1])
    out = data.data.copy()
    out[where] = updates.data

    def backward(g):
        dd = g.copy()
        dd[where] = 0
        return dd, g[where]
    return Tensor.from_op(out, (data, updates), backward, "scatter_nd")


def prod(x, axes, keepdims: bool) -> Tensor:
    """Product over ``axes``; d/dx_i = Π_{j≠i} x_j (computed without dividing)."""
    x = as_tensor(x)
    axes = tuple(int(a) % x.ndim for a in axes)
    out = x.data.prod(axis=axes, keepdims=keepdims)

    def backward(g):
        gk = g if keepdims else np.expand_dims(g, axes)
        # product of the others: the exclusive prefix times the exclusive suffix products
        moved = np.moveaxis(x.data, axes, range(len(axes))).reshape((-1,) + tuple(
            s for i, s in enumerate(x.shape) if i not in axes))
        before = np.cumprod(np.concatenate([np.ones_like(moved[:1]), moved[:-1]]), axis=0)
        after = np.cumprod(np.concatenate([np.ones_like(moved[:1]), moved[::-1][:-1]]), axis=0)[::-1]
        others = (before * after).reshape(tuple(x.shape[a] for a in axes) + moved.shape[1:])
        others = np.moveaxis(others, range(len(axes)), axes)
        return (gk * others,)
    return Tensor.from_op(out, (x,), backward, "prod")


def expand(x, shape) -> Tensor:
    """Broadcast to ``shape`` (ONNX Expand: numpy broadcasting of both shapes)."""
    x = x if isinstance(x, Tensor) else constant(x)
    target = np.broadcast_shapes(x.shape, tuple(int(s) for s in shape))
    if x.dtype.kind != "f":
        return constant(np.broadcast_to(x.data, target).copy())
    return x + np.zeros(target, dtype=x.dtype)
