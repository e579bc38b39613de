"""Ops that move data around without arithmetic: padding, flattening, joining, splitting.

Their backward passes move the gradient back the same way: the gradient of
padding is cropping (and of cropping, padding with zeros); of concatenation,
splitting; of flattening, reshaping.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..checks import check_axis, check_same_dtype, to_tensor
from ..tensor import Gradients, Tensor, TensorLike, array_module

__all__ = ["pad", "flatten", "concat", "cat", "stack", "split"]


# ---------------------------------------------------------------------------
# padding


def pad_widths(padding: int | Sequence[int], ndim: int) -> list[tuple[int, int]]:
    """PyTorch's flat padding tuple -> one (before, after) pair per axis of the array."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        if ndim < 2:
            raise ValueError(f"pad: an int padding pads the last two axes (H, W), "
                             f"but the input has {ndim} dimension(s); pass (left, right)")
        padding = (int(padding),) * 4
    if not isinstance(padding, (tuple, list)) or not all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding):
        raise TypeError(f"pad: padding must be an int or a tuple of ints "
                        f"(left, right, top, bottom, ...), got {padding!r}")
    if len(padding) % 2 or len(padding) // 2 > ndim:
        raise ValueError(f"pad: padding needs an even number of values, two per padded axis and "
                         f"at most {2 * ndim} for a {ndim}-D input, got {len(padding)}: {tuple(padding)}")
    widths = [(0, 0)] * ndim
    for i in range(len(padding) // 2):   # the pairs run from the last axis backwards
        widths[ndim - 1 - i] = (int(padding[2 * i]), int(padding[2 * i + 1]))
    return widths


def _pad_array(a: np.ndarray, widths: list[tuple[int, int]], value: float) -> np.ndarray:
    """Pad (positive widths) or crop (negative widths) each axis of ``a``."""
    xp = array_module(a)
    out_shape = tuple(n + lo + hi for n, (lo, hi) in zip(a.shape, widths))
    out = xp.full(out_shape, value, dtype=a.dtype)
    src = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(a.shape, widths))
    dst = tuple(slice(max(lo, 0), m - max(hi, 0)) for m, (lo, hi) in zip(out_shape, widths))
    out[dst] = a[src]
    return out


def pad(x: TensorLike, padding: int | Sequence[int], value: float = 0.0) -> Tensor:
    """Pad with a constant, PyTorch's way; negative padding crops.

    Args:
        x: any shape, e.g. (N, C, H, W).
        padding: an int ``p`` pads the last two axes by ``p`` on every side
            (as ``nn.ZeroPad2d(p)``); a tuple pads from the last axis backwards:
            ``(left, right)`` the last axis, ``(left, right, top, bottom)`` the
            last two, and so on.
        value: the fill value (``float("-inf")`` for max pooling, say).

    Shape:
        x:   (N, C, H, W)
        out: (N, C, H + top + bottom, W + left + right)

    Example:
        >>> pad(np.zeros((1, 1, 3, 5)), (1, 2, 0, 1)).shape
        (1, 1, 4, 8)
    """
    x = to_tensor(x, "pad")
    widths = pad_widths(padding, x.ndim)
    for n, (lo, hi) in zip(x.shape, widths):
        crop = -min(lo, 0) - min(hi, 0)
        if crop > n:
            raise ValueError(f"pad: padding {padding!r} crops {crop} from an axis of size {n} "
                             f"of input {tuple(x.shape)}")
    out = _pad_array(x.data, widths, value)
    inverse = [(-lo, -hi) for lo, hi in widths]

    def backward(g: np.ndarray) -> Gradients:
        # padding's gradient crops the border off; cropping's pads the gradient with zeros
        return (_pad_array(g, inverse, 0),)
    return Tensor.from_op(out, (x,), backward, "pad")


# ---------------------------------------------------------------------------
# reshaping and joining


def flatten(x: TensorLike, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim`` … ``end_dim`` (inclusive) into one.

    Shape:
        x:   (N, C, H, W)
        out: (N, C·H·W) with the defaults (the batch axis is kept)
    """
    x = to_tensor(x, "flatten")
    if x.ndim == 0:
        return Tensor.from_op(x.data.reshape(1), (x,), lambda g: (g.reshape(()),), "flatten")
    start = check_axis(start_dim, x.ndim, "flatten", "start_dim")
    end = check_axis(end_dim, x.ndim, "flatten", "end_dim")
    if start > end:
        raise ValueError(f"flatten: start_dim={start_dim} comes after end_dim={end_dim} "
                         f"for input {tuple(x.shape)}")
    shape = x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]
    out = x.data.reshape(shape)
    return Tensor.from_op(out, (x,), lambda g: (g.reshape(x.shape),), "flatten")


def _tensors(xs: Sequence[TensorLike], op: str) -> list[Tensor]:
    if isinstance(xs, (Tensor, np.ndarray)) or not isinstance(xs, Sequence) or len(xs) == 0:
        raise TypeError(f"{op} expects a non-empty list or tuple of tensors, got {type(xs).__name__}")
    ts = [to_tensor(t, op, f"tensor {i}") for i, t in enumerate(xs)]
    check_same_dtype(op, **{f"tensor {i}": t for i, t in enumerate(ts)})
    return ts


def concat(xs: Sequence, axis: int = 1) -> Tensor:
    """Join tensors along an existing axis (channels by default: DenseNet, Inception, U-Net).

    Shape:
        xs:  (N, C_1, H, W), (N, C_2, H, W), ...
        out: (N, C_1 + C_2 + ..., H, W)
    """
    ts = _tensors(xs, "concat")
    ndim = ts[0].ndim
    if ndim == 0:
        raise ValueError("concat: zero-dimensional tensors cannot be concatenated; use stack")
    ax = check_axis(axis, ndim, "concat")
    first = ts[0].shape
    for i, t in enumerate(ts):
        if t.ndim != ndim or t.shape[:ax] + t.shape[ax + 1:] != first[:ax] + first[ax + 1:]:
            raise ValueError(f"concat along axis {ax} expects tensors whose shapes agree except on "
                             f"that axis; tensor 0 is {tuple(first)}, tensor {i} is {tuple(t.shape)}")
    xp = array_module(ts[0].data)
    out = xp.concatenate([t.data for t in ts], axis=ax)
    bounds = np.cumsum([t.shape[ax] for t in ts])[:-1]

    def backward(g: np.ndarray) -> Gradients:
        return tuple(piece if t.requires_grad else None
                     for t, piece in zip(ts, xp.split(g, bounds, axis=ax)))
    return Tensor.from_op(out, tuple(ts), backward, "concat")


cat = concat


def stack(xs: Sequence, axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis.

    Shape:
        xs:  k tensors of shape (C, H, W)
        out: (k, C, H, W) with ``axis=0``
    """
    ts = _tensors(xs, "stack")
    for i, t in enumerate(ts):
        if t.shape != ts[0].shape:
            raise ValueError(f"stack expects tensors of one shape; tensor 0 is {tuple(ts[0].shape)}, "
                             f"tensor {i} is {tuple(t.shape)}")
    ax = check_axis(axis, ts[0].ndim + 1, "stack")
    xp = array_module(ts[0].data)
    out = xp.stack([t.data for t in ts], axis=ax)

    def backward(g: np.ndarray) -> Gradients:
        return tuple(xp.take(g, i, axis=ax) if t.requires_grad else None for i, t in enumerate(ts))
    return Tensor.from_op(out, tuple(ts), backward, "stack")


def split(x: TensorLike, sizes: int | Sequence[int], axis: int = 1) -> tuple[Tensor, ...]:
    """Cut a tensor along ``axis`` into pieces, the inverse of :func:`concat`.

    Args:
        sizes: an int gives pieces of that size (the last may be smaller), as
            ``torch.split``; a list gives each piece's size (they must add up to
            the axis' length).

    Shape:
        x:   (N, C, H, W)
        out: (N, sizes[0], H, W), (N, sizes[1], H, W), ...
    """
    x = to_tensor(x, "split")
    if x.ndim == 0:
        raise ValueError("split: a zero-dimensional tensor has no axis to split")
    ax = check_axis(axis, x.ndim, "split")
    n = x.shape[ax]
    if isinstance(sizes, bool):
        raise TypeError(f"split: sizes must be an int or a sequence of ints, got {sizes!r}")
    if isinstance(sizes, (int, np.integer)):
        if sizes < 1:
            raise ValueError(f"split: the piece size must be positive, got {sizes}")
        sizes = [min(int(sizes), n - start) for start in range(0, n, int(sizes))] or [0]
    else:
        sizes = [int(s) for s in sizes]
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} must be non-negative and add up to {n}, "
                             f"the length of axis {ax} of {tuple(x.shape)}")
    pieces = []
    start = 0
    for size in sizes:
        index = (slice(None),) * ax + (slice(start, start + size),)
        pieces.append(x[index])   # basic slicing: its backward writes g into a zero array
        start += size
    return tuple(pieces)
