"""Normalisation: batch norm, layer norm and local response normalisation.

Letters: N batch, C channels, L length, H×W spatial size. Batch norm computes one
mean and variance per channel over (N, L) or (N, H, W); layer norm one per
sample over its trailing axes; LRN divides each activation by the energy of its
neighbours across channels, at the same position (AlexNet, 2012).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..checks import check_float, check_same_dtype, to_tensor
from ..tensor import Gradients, Tensor, TensorLike, array_module

__all__ = ["batch_norm", "layer_norm", "local_response_norm"]


def _param(p: TensorLike | None, C_shape: tuple, op: str, name: str, layout: str) -> Tensor | None:
    """An optional weight or bias as a Tensor of shape ``C_shape``."""
    if p is None:
        return None
    p = to_tensor(p, op, name)
    if p.shape != C_shape:
        raise ValueError(f"{op} expects {name} of shape {C_shape} ({layout}), got {tuple(p.shape)}")
    return p


def _normalize_backward(gh: np.ndarray, xhat: np.ndarray, rstd: np.ndarray,
                        axes: tuple[int, ...]) -> np.ndarray:
    """dL/dx of xhat = (x − mean) · rstd, with mean and variance taken over ``axes``.

    ``gh`` is dL/dxhat. The three terms: the direct path, minus the path
    through the mean, minus the path through the variance.
    """
    return rstd * (gh - gh.mean(axis=axes, keepdims=True)
                   - xhat * (gh * xhat).mean(axis=axes, keepdims=True))


def _running_stat(r: TensorLike | None, C: int, name: str) -> np.ndarray | None:
    """The array behind a running statistic (updated in place), or None."""
    if r is None:
        return None
    arr: Any = r.data if isinstance(r, Tensor) else r
    if not isinstance(arr, np.ndarray) and array_module(arr) is np:
        raise TypeError(f"batch_norm expects {name} as a Tensor or an array it can update in place, "
                        f"got {type(r).__name__}")
    if arr.shape != (C,) or arr.dtype.kind != "f":
        raise ValueError(f"batch_norm expects {name} as floats of shape ({C},) (one per channel), "
                         f"got {arr.dtype} {tuple(arr.shape)}")
    return arr


def _global_statistics(xp: Any, a3: np.ndarray, C: int, n: int, reduce: Callable[[np.ndarray], np.ndarray],
                       dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and biased variance of each channel over every process's (N, C, L), and the global count.

    One ``reduce`` of [Σx (C), Σx² (C), n], summed in float64.
    """
    a64 = a3.astype(np.float64)
    local = xp.concatenate([xp.einsum("ncl->c", a64), xp.einsum("ncl,ncl->c", a64, a64),
                            xp.asarray([n], dtype=np.float64)])
    total = xp.asarray(reduce(local), dtype=np.float64)
    if total.shape != (2 * C + 1,):
        raise ValueError(f"batch_norm: reduce must return an array of the shape it was given, "
                         f"{(2 * C + 1,)}, got {tuple(total.shape)}")
    count = int(round(float(total[2 * C])))
    mean = total[:C] / max(count, 1)
    var = xp.maximum(total[C:2 * C] / max(count, 1) - mean * mean, 0.0)
    return mean.astype(dtype), var.astype(dtype), count


def _global_gradient_sums(xp: Any, sum_g: np.ndarray, sum_gxc: np.ndarray, n_local: int,
                          reduce: Callable[[np.ndarray], np.ndarray], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Σ g and Σ g·xc of each channel over the processes, in this process's units.

    Process r's g is that of the mean loss over its share, which enters the global
    mean loss weighted by n_r: the sum of n_r · (r's sums), one ``reduce`` of a
    (2C,) buffer, divided by this process's n.
    """
    C = sum_g.shape[0]
    local = xp.concatenate([sum_g.astype(np.float64), sum_gxc.astype(np.float64)]) * n_local
    total = xp.asarray(reduce(local), dtype=np.float64) / max(n_local, 1)
    return total[:C].astype(dtype), total[C:].astype(dtype)


def batch_norm(x: TensorLike, running_mean: TensorLike | None, running_var: TensorLike | None,
               weight: TensorLike | None = None, bias: TensorLike | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5,
               reduce: Callable[[np.ndarray], np.ndarray] | None = None) -> Tensor:
    """Normalise each channel to zero mean and unit variance, then scale and shift.

        out = (x − mean_c) / sqrt(var_c + eps) · weight_c + bias_c

    In training (``training=True``) mean and (biased) variance are those of the
    batch, over N and the spatial axes, and the running statistics are updated
    in place, as PyTorch does::

        running_mean = (1 − momentum) · running_mean + momentum · mean
        running_var  = (1 − momentum) · running_var  + momentum · var · n / (n − 1)

    (``n`` values per channel; the running variance is the unbiased one). In
    evaluation the running statistics are used instead. When both running
    statistics are None the batch statistics are always used (PyTorch's layer
    with ``track_running_stats=False``). For a cumulative average instead of an
    exponential one, pass ``momentum = 1 / batches_seen`` (what ``nn.BatchNorm``
    does for ``momentum=None``).

    Synchronised batch norm (PyTorch's ``SyncBatchNorm``): with ``reduce``, a
    callable that returns the elementwise sum of a float64 array over the
    processes of a data-parallel job, the batch statistics in training are those
    of the global batch (every process's share together). Forward sums Σx, Σx²
    and the count of each channel in one ``reduce`` of a (2C+1,) buffer; the
    running statistics are updated from the global mean and variance (unbiased
    with the global n), the same on every process. Backward sums Σ dL/dx̂ and
    Σ dL/dx̂·x̂ of each channel in one ``reduce`` of a (2C,) buffer, so that dx
    is the gradient of the global-batch formula. Each process's gradient is taken
    to be that of the mean loss over its own share (what ``dist.DataParallel``
    weights by share / global batch), so the backward sums are weighted by each
    share's count: with unequal shares too, the gradients weighted as
    DataParallel does are the one-process ones. The gradients of weight and bias
    stay the process's own. Every process must call it (a collective). With
    ``reduce=None`` (the default), or outside training (``training=False``), it
    is ordinary batch norm and ``reduce`` is never called.

    Args:
        x: (N, C), (N, C, L) or (N, C, H, W) (any (N, C, ...)).
        running_mean, running_var: (C,) Tensors or arrays, or both None.
        weight, bias: (C,) or None (then 1 and 0).
        reduce: None, or the sum over processes (synchronised batch norm).

    Shape:
        x:   (N, C, H, W)
        out: (N, C, H, W)
    """
    op = "batch_norm"
    x = to_tensor(x, op)
    check_float(x, op)
    if x.ndim < 2:
        raise ValueError(f"{op} expects input (N, C), (N, C, L) or (N, C, H, W), got shape {tuple(x.shape)}")
    C = x.shape[1]
    weight = _param(weight, (C,), op, "weight", f"one per channel of input {tuple(x.shape)}")
    bias = _param(bias, (C,), op, "bias", f"one per channel of input {tuple(x.shape)}")
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    rm = _running_stat(running_mean, C, "running_mean")
    rv = _running_stat(running_var, C, "running_var")
    if (rm is None) != (rv is None):
        raise ValueError(f"{op} expects running_mean and running_var both given or both None")
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: momentum must be a number in [0, 1], got {momentum!r} "
                        "(for a cumulative average pass momentum = 1 / batches_seen)")
    if not eps > 0:
        raise ValueError(f"{op}: eps must be positive, got {eps!r}")
    if reduce is not None and not callable(reduce):
        raise TypeError(f"{op}: reduce must be None or a callable that sums an array over the processes, "
                        f"got {type(reduce).__name__}")

    xp = array_module(x.data)
    N = x.shape[0]
    n = x.size // C if C else 0                      # values per channel
    # Every channel statistic is a reduction over N and the spatial axes: seen as
    # (N, C, L), one einsum each, which NumPy runs far faster than mean(axis=(0, 2, 3)),
    # and a dot product (Σ a·b) without the temporary a·b.
    L = math.prod(x.shape[2:])                       # positions per channel and sample (1 for (N, C))
    a3 = x.data.reshape(N, C, L)                     # (N, C, L), a view when x is contiguous (N = 0 too)
    col = (1, C, 1)                                  # per-channel values broadcast over (N, C, L)
    batch_stats = training or rm is None
    synced = reduce if training else None            # as PyTorch's SyncBatchNorm: in training only
    n_local = n                                      # this process's values per channel
    if synced is not None:
        mean, var, n = _global_statistics(xp, a3, C, n, synced, x.dtype)
        if n <= 1:
            raise ValueError(f"{op} needs more than one value per channel when training, "
                             f"got {n} over all processes")
        xc = a3 - mean.reshape(col)
    elif batch_stats:
        if training and n <= 1:
            raise ValueError(f"{op} needs more than one value per channel when training, "
                             f"got input {tuple(x.shape)}")
        mean = xp.einsum("ncl->c", a3) / x.dtype.type(n)                   # (C,)
        xc = a3 - mean.reshape(col)                                       # (N, C, L)
        var = xp.einsum("ncl,ncl->c", xc, xc) / x.dtype.type(n)           # biased, for normalising
    else:
        mean = xp.asarray(rm, dtype=x.dtype)
        var = xp.asarray(rv, dtype=x.dtype)
        xc = a3 - mean.reshape(col)
    if training and rm is not None and rv is not None:                # the batch's statistics, kept
        m = float(momentum)
        rm[...] = (1 - m) * rm + m * mean
        rv[...] = (1 - m) * rv + m * var * (n / (n - 1))
    rstd = 1 / xp.sqrt(var + x.dtype.type(eps))                       # (C,)
    w = None if weight is None else weight.data
    scale = rstd if w is None else rstd * w                           # out = xc·scale + bias
    out = xc * scale.reshape(col)
    if bias is not None:
        out += bias.data.reshape(col)
    out = out.reshape(x.shape)

    def backward(g: np.ndarray) -> Gradients:                         # g (N, C, H, W)
        g3 = g.reshape(N, C, L)
        dx = dw = db = None
        need_sums = batch_stats and x.requires_grad
        sum_g: Any = xp.einsum("ncl->c", g3) if need_sums or (bias is not None and bias.requires_grad) else None
        sum_gxc: Any = (xp.einsum("ncl,ncl->c", g3, xc)
                   if need_sums or (weight is not None and weight.requires_grad) else None)
        if x.requires_grad:
            if batch_stats:
                # dx = w·rstd·(g − mean(g) − xhat·mean(g·xhat)), xhat = xc·rstd: the three terms
                # (direct path, path through the mean, through the variance) as per-channel
                # coefficients of g, xc and 1; synchronised, the means are over every process's
                # share, each process's sums weighted by its count (its g is that of its share's
                # mean loss)
                tot_g, tot_gxc = (sum_g, sum_gxc) if synced is None else \
                    _global_gradient_sums(xp, sum_g, sum_gxc, n_local, synced, x.dtype)
                k = x.dtype.type(n)
                dx = g3 * scale.reshape(col)
                dx += xc * (-scale * rstd * rstd * tot_gxc / k).reshape(col)
                dx += (-scale * tot_g / k).reshape(col)
            else:                                                     # running statistics: constants
                dx = g3 * scale.reshape(col)
            dx = dx.reshape(x.shape)
        if weight is not None and weight.requires_grad:
            dw = rstd * sum_gxc                                       # Σ g·xhat, (C,)
        if bias is not None and bias.requires_grad:
            db = sum_g                                                # (C,)
        return tuple(grad for grad, p in ((dx, x), (dw, weight), (db, bias)) if p is not None)
    parents = tuple(p for p in (x, weight, bias) if p is not None)
    return Tensor.from_op(out, parents, backward, op)


def layer_norm(x: TensorLike, normalized_shape: int | Sequence[int], weight: TensorLike | None = None,
               bias: TensorLike | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample over its trailing axes ``normalized_shape``, then scale and shift.

    Unlike batch norm it uses no batch statistics, so training and evaluation
    behave alike and a batch of one is fine.

    Args:
        x: (..., *normalized_shape), e.g. (N, C, H, W) with normalized_shape (C, H, W).
        weight, bias: of shape ``normalized_shape``, or None.

    Shape:
        x:   (N, *normalized_shape)
        out: the same
    """
    op = "layer_norm"
    x = to_tensor(x, op)
    check_float(x, op)
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
    shape = tuple(int(s) for s in shape)
    k = len(shape)
    if k == 0 or x.shape[x.ndim - k:] != shape or x.ndim < k:
        raise ValueError(f"{op} expects input (..., {', '.join(map(str, shape))}) ending in "
                         f"normalized_shape {shape}, got {tuple(x.shape)}")
    weight = _param(weight, shape, op, "weight", "normalized_shape")
    bias = _param(bias, shape, op, "bias", "normalized_shape")
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    xp = array_module(x.data)
    axes = tuple(range(x.ndim - k, x.ndim))            # the normalised axes
    lead = tuple(range(x.ndim - k))                    # the others (batch): weight grads sum over them
    mean = x.data.mean(axis=axes, keepdims=True)
    xc = x.data - mean
    rstd = 1 / xp.sqrt((xc * xc).mean(axis=axes, keepdims=True) + x.dtype.type(eps))
    xhat = xc * rstd
    out = xhat
    if weight is not None:
        out = out * weight.data
    if bias is not None:
        out = out + bias.data

    def backward(g: np.ndarray) -> Gradients:
        dx = dw = db = None
        if x.requires_grad:
            gh = g if weight is None else g * weight.data
            dx = _normalize_backward(gh, xhat, rstd, axes)
        if weight is not None and weight.requires_grad:
            dw = (g * xhat).sum(axis=lead)
        if bias is not None and bias.requires_grad:
            db = g.sum(axis=lead)
        return tuple(grad for grad, p in ((dx, x), (dw, weight), (db, bias)) if p is not None)
    parents = tuple(p for p in (x, weight, bias) if p is not None)
    return Tensor.from_op(out, parents, backward, op)


def _channel_window_sum(a: np.ndarray, before: int, after: int) -> np.ndarray:
    """s_c = Σ a_c' for c − before ≤ c' ≤ c + after, zero outside 0..C−1 (axis 1)."""
    xp = array_module(a)
    C = a.shape[1]
    padded = xp.zeros((a.shape[0], C + before + after) + a.shape[2:], dtype=a.dtype)
    padded[:, before:before + C] = a
    s = padded[:, 0:C].copy()
    for j in range(1, before + after + 1):          # one whole-array slice per window offset
        s += padded[:, j:j + C]
    return s


def local_response_norm(x: TensorLike, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Divide each activation by the energy of ``size`` neighbouring channels (PyTorch's definition).

        out_c = x_c / (k + alpha/size · Σ_{c'} x_c'²)^beta

    where c' runs over the window c − size//2 … c + (size−1)//2, channels outside
    0…C−1 counting as zero. Note that alpha is divided by ``size``.

    AlexNet's form (Krizhevsky et al., 2012) is (k + α Σ x²)^β with k=2, n=5,
    α=1e-4, β=0.75 and α *not* divided by n; get it with
    ``local_response_norm(x, 5, alpha=5 * 1e-4, beta=0.75, k=2.0)``.

    Shape:
        x:   (N, C, H, W) (any (N, C, ...) with at least 3 axes)
        out: the same
    """
    op = "local_response_norm"
    x = to_tensor(x, op)
    check_float(x, op)
    if x.ndim < 3:
        raise ValueError(f"{op} expects input (N, C, L) or (N, C, H, W), got shape {tuple(x.shape)}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"{op}: size must be a positive int (the number of channels in a window), "
                         f"got {size!r}")
    before, after = size // 2, (size - 1) // 2
    scale = float(alpha) / size
    d = x.dtype.type(k) + scale * _channel_window_sum(x.data * x.data, before, after)   # (N, C, H, W)
    inv = d ** x.dtype.type(-beta)                                                   # d^(−β)
    out = x.data * inv

    def backward(g: np.ndarray) -> Gradients:
        # out_c = x_c · d_c^(−β), and d_c depends on every x_i in c's window, so
        # dL/dx_i = g_i · d_i^(−β) − 2αβ/n · x_i · Σ_{c: i in window(c)} g_c x_c d_c^(−β−1);
        # "i in window(c)" is the window with before/after swapped.
        t = g * out / d                                                            # g_c x_c d_c^(−β−1)
        return (g * inv - (2 * scale * float(beta)) * x.data * _channel_window_sum(t, after, before),)
    return Tensor.from_op(out, (x,), backward, op)
