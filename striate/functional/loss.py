"""Loss functions: cross-entropy, negative log-likelihood, mean squared error.

Letters: N batch, C classes, and for dense prediction (segmentation) extra axes
d1, d2, ...: logits (N, C, d1, ...) with targets (N, d1, ...), as in PyTorch.
Internally the class axis is moved last and everything else flattened into
M = N·d1·... rows, so one code path serves every layout.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..checks import check_float, check_same_dtype, to_tensor
from ..tensor import Gradients, Tensor, TensorLike, array_module

__all__ = ["cross_entropy", "nll_loss", "mse_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: object, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _rows(x: Tensor, op: str, name: str) -> np.ndarray:
    """(N, C, d1, ...) -> (M, C) with the class axis last; also (C,) -> (1, C)."""
    if x.ndim == 0:
        raise ValueError(f"{op} expects {name} (N, C) or (N, C, d1, ...), got a scalar")
    if x.ndim == 1:
        return x.data.reshape(1, -1)
    C = x.shape[1]
    return array_module(x.data).moveaxis(x.data, 1, -1).reshape(-1, C)


def _unrows(a2: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The inverse of ``_rows``: (M, C) -> ``shape``."""
    if len(shape) <= 2:
        return a2.reshape(shape)
    N, C, *rest = shape
    return array_module(a2).moveaxis(a2.reshape((N, *rest, C)), -1, 1)


def _class_targets(target: TensorLike, shape: tuple, op: str) -> np.ndarray:
    """Integer targets of shape (N, d1, ...) for input (N, C, d1, ...), as an array."""
    t: Any = target.data if isinstance(target, Tensor) else target
    if array_module(t) is np:
        t = np.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op} expects integer class indices as target, got dtype {t.dtype} "
                        "(class probabilities are not supported; for a Tensor of labels use "
                        "Tensor(y, dtype=np.int64))")
    expected = () if len(shape) == 1 else (shape[0],) + shape[2:]
    if t.shape != expected:
        batch_differs = t.ndim > 0 and len(shape) > 1 and t.shape[0] != shape[0]
        raise ValueError(f"{op} expects target of shape {expected} for input {shape} (N, C, d1, ...), "
                         f"got {tuple(t.shape)}" + (" (batch sizes differ)" if batch_differs else ""))
    return t.reshape(-1).astype(np.int64, copy=False)


def _loss_shape(shape: tuple, reduction: str) -> tuple:
    """(N, d1, ...) for 'none' (() for unbatched (C,) input), else ()."""
    return shape[:1] + shape[2:] if reduction == "none" and len(shape) > 1 else ()


def _class_weight(weight: TensorLike | None, C: int, dtype: npt.DTypeLike, xp: Any,
                  op: str) -> np.ndarray | None:
    if weight is None:
        return None
    w = weight.data if isinstance(weight, Tensor) else weight
    w = xp.asarray(w, dtype=dtype)       # the input's dtype: no float64 creeping in
    if w.shape != (C,):
        raise ValueError(f"{op} expects weight of shape ({C},) (one per class), got {tuple(w.shape)}")
    return w


def _nll_rows(logp: np.ndarray, t: np.ndarray, weight: np.ndarray | None, ignore_index: int,
              label_smoothing: float, reduction: str, op: str) -> tuple[Any, Callable[[Any], np.ndarray]]:
    """The negative log-likelihood of rows of log-probabilities.

    Args:
        logp: (M, C) log-probabilities.
        t: (M,) integer classes (or ``ignore_index``).
        weight: (C,) class weights or None.

    Returns:
        the loss (shape (M,) for reduction 'none', else a scalar array), and
        ``grad(g)``: dL/dlogp (M, C) given dL/dloss ``g``.

    Per row, with ε = label_smoothing and w the weights (1 when None):
        loss_i = (1 − ε)·w_{t_i}·(−logp_{i,t_i}) + ε/C · Σ_c w_c·(−logp_{i,c})
    and 'mean' divides the sum by Σ_i w_{t_i} over the rows not ignored, as PyTorch.
    """
    xp = array_module(logp)
    M, C = logp.shape
    valid = t != ignore_index                                        # (M,)
    out_of_range = valid & ((t < 0) | (t >= C))
    if out_of_range.any():
        bad = t[out_of_range].reshape(-1)[0].item()
        raise ValueError(f"{op}: target {bad} is out of range for C={C} classes "
                         f"(expected 0 ≤ target < {C}, or ignore_index={ignore_index})")
    cls = xp.where(valid, t, 0)                                      # safe indices for ignored rows
    rows = xp.arange(M)
    mask = valid.astype(logp.dtype)
    w_t = mask if weight is None else weight[cls] * mask             # (M,) weight of each row's class
    eps = float(label_smoothing)
    loss = -(1 - eps) * w_t * logp[rows, cls]                        # (M,)
    if eps:
        smooth = -(logp.sum(axis=1) if weight is None else logp @ weight)
        loss = loss + (eps / C) * smooth * mask
    denom = w_t.sum()
    if reduction == "none":
        value = loss
    elif reduction == "sum":
        value = loss.sum()
    else:
        with np.errstate(invalid="ignore", divide="ignore"):    # every row ignored: nan, as PyTorch
            value = loss.sum() / denom

    def grad(g: np.ndarray) -> np.ndarray:
        if reduction == "none":
            coef = g.reshape(M)
        elif reduction == "sum":
            coef = xp.broadcast_to(g, (M,))
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                coef = xp.broadcast_to(g / denom, (M,))
        dlogp = xp.zeros((M, C), dtype=logp.dtype)
        if eps:
            w = 1 if weight is None else weight
            dlogp -= (eps / C) * (coef * mask)[:, None] * w          # the smoothing term, every class
        dlogp[rows, cls] -= (1 - eps) * coef * w_t                   # the target class
        return dlogp
    return value, grad


def cross_entropy(logits: TensorLike, target: TensorLike, reduction: str = "mean",
                  weight: TensorLike | None = None, ignore_index: int = -100,
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of raw scores against integer class labels.

        loss_i = −log softmax(logits_i)[target_i] = logsumexp(logits_i) − logits_i[target_i]

    Computed through a max-shifted log-softmax, so logits of ±1e4 give finite,
    exact losses; the gradient is softmax − one-hot (times the weights and the
    reduction's scale).

    Args:
        logits: (N, C), or (N, C, d1, ...) for a class per position, or (C,).
        target: integer classes, (N,) or (N, d1, ...) (a scalar for (C,) logits),
            as an ndarray or an integer Tensor; no gradient flows to it.
        reduction: 'mean' (over the rows not ignored, weighted), 'sum' or 'none'.
        weight: (C,) rescales each class' loss; no gradient flows to it.
        ignore_index: rows with this target add nothing, not even to the mean's count.
        label_smoothing: ε in [0, 1]: the target becomes (1 − ε)·one-hot + ε/C.

    Shape:
        logits: (N, C, d1, ...)
        target: (N, d1, ...)
        out:    () for 'mean' and 'sum', (N, d1, ...) for 'none'

    Example:
        >>> round(cross_entropy(np.zeros((4, 10), np.float32), np.array([0, 1, 2, 3])).item(), 4)  # log 10
        2.3026
    """
    op = "cross_entropy"
    x = to_tensor(logits, op, "logits")
    check_float(x, op, "logits")
    _check_reduction(reduction, op)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    xp = array_module(x.data)
    z = _rows(x, op, "logits")                                        # (M, C)
    t = _class_targets(target, x.shape, op)                           # (M,)
    w = _class_weight(weight, z.shape[1], x.dtype, xp, op)
    z = z - z.max(axis=1, keepdims=True)                              # largest logit per row is 0
    logp = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))           # (M, C) log-softmax
    value, nll_grad = _nll_rows(logp, t, w, ignore_index, label_smoothing, reduction, op)
    out_shape = _loss_shape(x.shape, reduction)

    def backward(g: np.ndarray) -> Gradients:
        dlogp = nll_grad(g)                                           # (M, C)
        # through log-softmax: dz = dlogp − softmax · Σ_c dlogp
        dz = dlogp - xp.exp(logp) * dlogp.sum(axis=1, keepdims=True)
        return (_unrows(dz, x.shape),)
    return Tensor.from_op(xp.asarray(value).reshape(out_shape), (x,), backward, op)


def nll_loss(log_probs: TensorLike, target: TensorLike, reduction: str = "mean",
             weight: TensorLike | None = None, ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of log-probabilities: −log_probs[target] (per row).

    ``cross_entropy(x, t)`` equals ``nll_loss(log_softmax(x, dim=1), t)``; use
    this one after your own ``log_softmax``.

    Shape:
        log_probs: (N, C, d1, ...) (or (N, C), or (C,))
        target:    (N, d1, ...) integer classes
        out:       () for 'mean' and 'sum', (N, d1, ...) for 'none'
    """
    op = "nll_loss"
    x = to_tensor(log_probs, op, "log_probs")
    check_float(x, op, "log_probs")
    _check_reduction(reduction, op)
    xp = array_module(x.data)
    logp = _rows(x, op, "log_probs")
    t = _class_targets(target, x.shape, op)
    w = _class_weight(weight, logp.shape[1], x.dtype, xp, op)
    value, nll_grad = _nll_rows(logp, t, w, ignore_index, 0.0, reduction, op)
    out_shape = _loss_shape(x.shape, reduction)
    return Tensor.from_op(xp.asarray(value).reshape(out_shape), (x,),
                          lambda g: (_unrows(nll_grad(g), x.shape),), op)


def mse_loss(input: TensorLike, target: TensorLike, reduction: str = "mean") -> Tensor:
    """Mean squared error, (input − target)² averaged (or summed) over every element.

    Both arguments may require gradients. An array target takes the input's dtype.

    Shape:
        input, target: any shape, the same
        out: () for 'mean' and 'sum', the input's shape for 'none'
    """
    op = "mse_loss"
    a = to_tensor(input, op)
    check_float(a, op)
    b = target if isinstance(target, Tensor) else to_tensor(
        array_module(a.data).asarray(target, dtype=a.dtype), op, "target")
    check_same_dtype(op, input=a, target=b)
    _check_reduction(reduction, op)
    if a.shape != b.shape:
        raise ValueError(f"{op} expects input and target of the same shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    diff = a.data - b.data
    sq = diff * diff
    value = sq if reduction == "none" else sq.sum() if reduction == "sum" else sq.mean()
    n = a.size

    def backward(g: np.ndarray) -> Gradients:
        scale = 2 / n if reduction == "mean" else 2
        d = (g * scale) * diff
        return (d if a.requires_grad else None, -d if b.requires_grad else None)
    return Tensor.from_op(array_module(a.data).asarray(value), (a, b), backward, op)
