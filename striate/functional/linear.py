"""The fully connected (dense) layer's op: an affine map of the last axis."""
from __future__ import annotations

import math

import numpy as np

from ..checks import check_float, check_same_dtype, to_tensor
from ..tensor import Gradients, Tensor, TensorLike, array_module
from ..threads import for_tiles, split

__all__ = ["linear"]

_TILE = 1 << 22          # multiply-adds per tile of a product shared out over threads
_SERIAL = 1 << 23        # fewer than this: one tile (measured slower on two threads below it)


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (M, K) @ b (K, P); a large product is cut into tiles of a's rows, or of b's columns
    when there are fewer rows than columns (each entry is the same dot product either way)."""
    xp = array_module(a)
    (M, K), P = a.shape, b.shape[1]
    out = xp.empty((M, P), dtype=xp.result_type(a, b))
    if M >= P:
        for_tiles(split(M, K * P, _TILE, _SERIAL), lambda s, e: xp.matmul(a[s:e], b, out=out[s:e]))
    else:
        for_tiles(split(P, K * M, _TILE, _SERIAL), lambda s, e: xp.matmul(a, b[:, s:e], out=out[:, s:e]))
    return out


def linear(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None) -> Tensor:
    """out = x · weightᵀ + bias, applied to the last axis (one matrix product).

    Args:
        x: the features, (N, in) or any (..., in).
        weight: (out, in), PyTorch's layout.
        bias: (out,) or None.

    Shape:
        x:   (..., in)
        out: (..., out)

    Example:
        >>> linear(np.ones((8, 120), np.float32), np.ones((84, 120), np.float32)).shape
        (8, 84)
    """
    x = to_tensor(x, "linear")
    weight = to_tensor(weight, "linear", "weight")
    bias = None if bias is None else to_tensor(bias, "linear", "bias")
    check_float(x, "linear")
    check_same_dtype("linear", input=x, weight=weight, bias=bias)
    if weight.ndim != 2:
        raise ValueError(f"linear expects weight (out_features, in_features), got shape {tuple(weight.shape)}")
    n_out, n_in = weight.shape
    if x.ndim == 0 or x.shape[-1] != n_in:
        raise ValueError(f"linear expects input (..., {n_in}) to match weight {tuple(weight.shape)} "
                         f"(out_features, in_features), got {tuple(x.shape)}")
    if bias is not None and bias.shape != (n_out,):
        raise ValueError(f"linear expects bias ({n_out},) for weight {tuple(weight.shape)}, "
                         f"got {tuple(bias.shape)}")
    M = math.prod(x.shape[:-1])                      # everything before the feature axis
    x2 = x.data.reshape(M, n_in)                     # (M, in)
    out = _product(x2, weight.data.T)                # (M, out)
    if bias is not None:
        out += bias.data

    def backward(g: np.ndarray) -> Gradients:
        g2 = g.reshape(M, n_out)                     # (M, out)
        dx = _product(g2, weight.data).reshape(x.shape) if x.requires_grad else None   # (..., in)
        dw = _product(g2.T, x2) if weight.requires_grad else None                     # (out, in)
        db = g2.sum(axis=0) if bias is not None and bias.requires_grad else None   # (out,)
        return (dx, dw) if bias is None else (dx, dw, db)
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out.reshape(x.shape[:-1] + (n_out,)), parents, backward, "linear")
