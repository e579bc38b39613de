"""Pooling: max, min, average, sum and Lp pooling over windows, plus adaptive and global pools.

To learn the math, read ``reference.py`` first (``striate.functional.reference``): every
pooling there is a reduction over the axes of one array of windows, forward and backward in a
screenful, with the same signatures. This module computes the same thing reorganised for
speed, as described below; the tests hold the two equal.

Letters used throughout: N batch, C channels, H×W input size, kh×kw window (kernel),
sh×sw stride, ph×pw padding, dh×dw dilation, OH×OW output size. Every pool maps
(N, C, H, W) to (N, C, OH, OW), each channel on its own, with PyTorch's output size

    OH = ⌊(H + 2·ph − dh·(kh − 1) − 1) / sh⌋ + 1

(⌈·⌉ instead of ⌊·⌋ with ``ceil_mode``, dropping a last window that would start in the
right padding), and the same for OW.

One primitive builds the whole family. A window's tap (i, j) reads, for all windows at
once, one strided slice of the input,

    x[n, c, oh·sh − ph + i·dh, ow·sw − pw + j·dw]        for all n, c, oh, ow,

so a pool is kh·kw whole-array ufunc calls, ``out = reduce(out, slice)``, with ``out``
starting at the padding value of its kind: −∞ for max, +∞ for min, 0 for the sums
(average, sum, Lp). The backward is the same loop run the other way: each tap adds its
share of the output gradient back onto the slice it read. Outputs whose tap falls in
the padding simply skip that tap, so no padded copy of the input is ever made.

Why taps and not a reduction over a ``(N, C, OH, kh, OW, kw)`` view: NumPy's reductions
over small inner axes are slow (for a 2×2 max pool on (64, 6, 28, 28), 30 times slower
than four ``np.maximum`` calls). The view wins only for large windows that tile the
input (global pooling), where each window becomes one contiguous row; ``_Windows``
picks that layout then.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..checks import IntPair, check_float, check_ndim, nonnegative_pair, positive_pair, to_tensor
from ..tensor import Gradients, Tensor, TensorLike, array_module
from ..threads import for_tiles, split

__all__ = [
    "max_pool2d", "min_pool2d", "avg_pool2d", "sum_pool2d", "lp_pool2d", "l2_pool2d",
    "adaptive_avg_pool2d", "adaptive_max_pool2d", "global_avg_pool2d", "global_max_pool2d",
]

OutputSize = int | None | tuple[int | None, int | None]

# Windows that tile the input and hold at least this many elements are reduced as
# contiguous rows (one reduction call) instead of tap by tap (kh·kw ufunc calls).
_BLOCKS_MIN_WINDOW = 32
_TILE = 1 << 18             # input values per tile of a max or min pooling shared out over threads
_SERIAL = 1 << 19           # backward: fewer input values than this, one tile (slower on two threads below it)
_SERIAL_FORWARD = 1 << 22   # forward: two threads measured slower up to 1.2M input values


# ---------------------------------------------------------------------------
# the primitive: where each window reads, forward reduction, backward scatter


def _axis_taps(size: int, out_size: int, k: int, s: int, p: int, d: int) -> Any:
    """For each tap i < k of a 1-D window: (tap, outputs it serves, inputs it reads).

    Output o reads input o·s − p + i·d; the outputs for which that index lies in
    the padding are cut from both ranges (a tap that only ever reads padding is
    left out).
    """
    taps = []
    for i in range(k):
        offset = i * d - p                               # input index read by window 0
        lo = max(0, -(offset // s))                      # first o with o·s + offset ≥ 0
        hi = min(out_size, (size - 1 - offset) // s + 1)  # past the last o inside the input
        if lo < hi:
            start = lo * s + offset
            taps.append((i, slice(lo, hi), slice(start, start + (hi - lo - 1) * s + 1, s)))
    return taps


def _out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1       # the last window would start in the right padding
    return out


class _Windows:
    """Where the windows of one pooling call read their input (N, C, H, W).

    Attributes:
        in_hw, out_hw, kernel, stride, padding: (H, W), (OH, OW), (kh, kw), (sh, sw), (ph, pw).
        blocks: True when the windows tile the input exactly and are large; the
            input is then viewed as (N, C, OH, OW, kh·kw) rows (see ``_rows``).
        taps: (used when not blocks) one ``(out_index, in_index)`` pair per tap
            (i, j) in row-major order; ``out[out_index]`` (N, C, oh_t, ow_t) is
            served by ``x[in_index]``, a strided slice of the same shape.
        disjoint: no input element is read by two windows (stride ≥ dilated kernel).
        covers_input: disjoint and every input element is read by some window.
    """

    def __init__(self, in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], dilation: tuple[int, int], out_hw: tuple[int, ...]) -> None:
        (H, W), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = in_hw, kernel, stride, padding, dilation
        OH, OW = out_hw
        self.in_hw, self.kernel, self.out_hw = (H, W), (kh, kw), (OH, OW)
        self.stride, self.padding = (sh, sw), (ph, pw)
        self.blocks = ((sh, sw) == (kh, kw) and (ph, pw) == (0, 0) and (dh, dw) == (1, 1)
                       and (OH * kh, OW * kw) == (H, W) and kh * kw >= _BLOCKS_MIN_WINDOW)
        rows = _axis_taps(H, OH, kh, sh, ph, dh)
        cols = _axis_taps(W, OW, kw, sw, pw, dw)
        self.taps = [((..., orow, ocol), (..., irow, icol))
                     for _, orow, irow in rows for _, ocol, icol in cols]
        self.disjoint = sh >= dh * (kh - 1) + 1 and sw >= dw * (kw - 1) + 1
        read_rows = sum(o.stop - o.start for _, o, _ in rows)
        read_cols = sum(o.stop - o.start for _, o, _ in cols)
        self.covers_input = self.disjoint and (read_rows, read_cols) == (H, W)

    def _rows(self, a: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> (N, C, OH, OW, kh·kw): each window one contiguous row (blocks only)."""
        N, C = a.shape[:2]
        (OH, OW), (kh, kw) = self.out_hw, self.kernel
        a = a.reshape(N, C, OH, kh, OW, kw).transpose(0, 1, 2, 4, 3, 5)   # (N, C, OH, OW, kh, kw)
        return a.reshape(N, C, OH, OW, kh * kw)

    def _unrows(self, r: np.ndarray) -> np.ndarray:
        """Inverse of ``_rows``: (N, C, OH, OW, kh·kw) -> (N, C, H, W)."""
        N, C = r.shape[:2]
        (OH, OW), (kh, kw) = self.out_hw, self.kernel
        r = r.reshape(N, C, OH, OW, kh, kw).transpose(0, 1, 2, 4, 3, 5)   # (N, C, OH, kh, OW, kw)
        return r.reshape(N, C, OH * kh, OW * kw)


def pool_windows(op: str, x: Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
             dilation: IntPair = 1, ceil_mode: bool = False) -> _Windows:
    """Check a pool's arguments against its input and say where its windows lie."""
    kernel = positive_pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None else positive_pair(stride, "stride", op)
    padding = nonnegative_pair(padding, "padding", op)
    dilation = positive_pair(dilation, "dilation", op)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding must be at most half the kernel size "
                         f"(padding ≤ kernel_size // 2, as in PyTorch), "
                         f"got padding={padding} with kernel_size={kernel}")
    H, W = x.shape[2:]
    out_hw = tuple(_out_size(n, k, s, p, d, bool(ceil_mode))
                   for n, k, s, p, d in zip((H, W), kernel, stride, padding, dilation))
    if out_hw[0] < 1 or out_hw[1] < 1:
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ValueError(f"{op}: the window ({span[0]}×{span[1]} with kernel_size={kernel}, "
                         f"dilation={dilation}) is larger than the padded input "
                         f"({H + 2 * padding[0]}×{W + 2 * padding[1]}: input {H}×{W}, "
                         f"padding={padding}); got input shape {tuple(x.shape)}")
    return _Windows((H, W), kernel, stride, padding, dilation, out_hw)


_REDUCE = {  # kind: (ufunc folding one tap into the output, padding value = its identity)
    "max": ("maximum", -math.inf),
    "min": ("minimum", math.inf),
    "sum": ("add", 0.0),
}


def _reduce(a: np.ndarray, win: _Windows, kind: str, out: np.ndarray | None = None) -> np.ndarray:
    """Reduce every window of a (N, C, H, W) with max, min or sum -> (N, C, OH, OW) (into ``out`` if given)."""
    xp = array_module(a)
    if win.blocks:
        return getattr(win._rows(a), kind)(axis=-1, out=out)
    name, identity = _REDUCE[kind]
    fold = getattr(xp, name)
    if out is None:
        out = xp.empty(a.shape[:2] + win.out_hw, dtype=a.dtype)
    out.fill(identity)
    for o, i in win.taps:
        part = out[o]                      # a view: folding in place fills out
        fold(part, a[i], out=part)
    return out


def _winners(x: np.ndarray, out: np.ndarray, win: _Windows, kind: str) -> Any:
    """Which element of each window holds its extreme ``out`` (max or min): the routing for ``_scatter``.

    Ties go to the first extreme in row-major order within the window, and a window
    holding NaN (whose extreme is NaN) to its last NaN: both are the element PyTorch's
    CPU max pooling picks. Returns, with taps, one boolean mask (N, C, oh_t, ow_t)
    per tap, true for the windows whose winner that tap reads; with blocks, the
    winner's position in each window's row (N, C, OH, OW).
    """
    xp = array_module(x)
    if win.blocks:
        rows = win._rows(x)
        idx = rows.argmax(axis=-1) if kind == "max" else rows.argmin(axis=-1)
        nan = xp.isnan(out)
        if nan.any():
            last_nan = rows.shape[-1] - 1 - xp.isnan(rows[..., ::-1]).argmax(axis=-1)
            idx = xp.where(nan, last_nan, idx)
        return idx
    free = xp.ones(out.shape, dtype=bool)          # windows that have no winner yet
    masks = []
    for o, i in win.taps:
        won = x[i] == out[o]
        won &= free[o]
        f = free[o]
        xp.logical_xor(f, won, out=f)
        masks.append(won)
    if free.any():
        # Only windows whose extreme is NaN are left (NaN == NaN is false): hand
        # each to its last NaN by walking the taps backwards.
        for t in range(len(win.taps) - 1, -1, -1):
            o, i = win.taps[t]
            won = xp.isnan(x[i]) & free[o]
            f = free[o]
            xp.logical_xor(f, won, out=f)
            masks[t] |= won
    return masks


def _scatter(g: np.ndarray, win: _Windows, shape: tuple[int, ...],
             route: np.ndarray | None = None, dx: np.ndarray | None = None) -> np.ndarray:
    """The backward of window reading: g (N, C, OH, OW) -> dx (N, C, H, W) (into ``dx`` if given).

    Every tap adds its share of g back onto the input slice it read: all of g
    (sums), or only the windows whose winner it read (``route`` from ``_winners``).
    """
    xp = array_module(g)
    if win.blocks:
        K = win.kernel[0] * win.kernel[1]
        rows = (xp.empty if route is None else xp.zeros)(g.shape + (K,), dtype=g.dtype)
        if route is None:
            rows[...] = g[..., None]                              # every element gets g
        else:
            xp.put_along_axis(rows, route[..., None], g[..., None], axis=-1)
        if dx is None:
            return win._unrows(rows)                              # (N, C, OH, OW, kh·kw) -> x's shape
        dx[...] = win._unrows(rows)
        return dx
    # g·mask is the fast way to route; an infinite g would give inf·0 = NaN at the
    # losing taps, so such (diverged) gradients take the exact, slower where().
    finite = route is None or bool(xp.isfinite(g).all())
    if dx is None:
        dx = (xp.empty if win.covers_input else xp.zeros)(shape, dtype=g.dtype)
    elif not win.covers_input:
        dx.fill(0)
    for t, (o, i) in enumerate(win.taps):
        d, part = dx[i], g[o]                          # both (N, C, oh_t, ow_t)
        if route is not None and win.disjoint and finite:
            xp.multiply(part, route[t], out=d)         # max pooling's common case, no temporary
            continue
        if route is not None:
            part = part * route[t] if finite else xp.where(route[t], part, g.dtype.type(0))
        if win.disjoint:
            d[...] = part                  # each element is read by one window: write, don't add
        else:
            d += part
    return dx


def pool_input(x: TensorLike, op: str) -> Tensor:
    x = to_tensor(x, op)
    check_ndim(x, 4, "(N, C, H, W)", op)
    check_float(x, op)
    return x


# ---------------------------------------------------------------------------
# max and min pooling


def _extreme_pool(op: str, kind: str, x: TensorLike, kernel_size: IntPair, stride: IntPair | None,
                  padding: IntPair, dilation: IntPair, ceil_mode: bool) -> Tensor:
    x = pool_input(x, op)
    win = pool_windows(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    xp, a = array_module(x.data), x.data
    out = xp.empty(a.shape[:2] + win.out_hw, dtype=a.dtype)            # (N, C, OH, OW)
    per_image = math.prod(a.shape[1:])
    for_tiles(split(a.shape[0], per_image, _TILE, _SERIAL_FORWARD),
              lambda s, e: _reduce(a[s:e], win, kind, out=out[s:e]))
    tiles = split(a.shape[0], per_image, _TILE, _SERIAL)                 # images shared out over threads

    def backward(g: np.ndarray) -> Gradients:
        # Each window's gradient goes to one element, its first extreme (the
        # winners are found again from x and out rather than kept from forward).
        dx = xp.empty(a.shape, dtype=g.dtype)
        for_tiles(tiles, lambda s, e: _scatter(g[s:e], win, dx[s:e].shape, _winners(a[s:e], out[s:e], win, kind),
                                               dx=dx[s:e]))
        return (dx,)
    return Tensor.from_op(out, (x,), backward, op)


def max_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False) -> Tensor:
    """Maximum over each kh×kw window of each channel.

    The textbook version, forward and backward in a screenful:
    :func:`striate.functional.reference.max_pool2d` (same signature, same result up to round-off).

    Args:
        x: (N, C, H, W), float32 or float64.
        kernel_size: kh×kw, an int or a pair.
        stride: step between windows; ``None`` means ``kernel_size``.
        padding: added on both sides, at most ``kernel_size // 2``; padded
            positions never win (they count as −∞).
        dilation: spacing between the taps of a window.
        ceil_mode: round the output size up, so that a partial window at the
            bottom/right edge still gives an output.

    Returns:
        (N, C, OH, OW), OH = ⌊(H + 2·ph − dh·(kh − 1) − 1) / sh⌋ + 1.

    The gradient of each window goes to a single element: on ties the first
    maximum in row-major order, and where a window holds NaN (its maximum is NaN,
    as in PyTorch) the last NaN — the elements PyTorch picks.

    Example:
        >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
        >>> max_pool2d(x, 2).data[0, 0]
        array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
    """
    return _extreme_pool("max_pool2d", "max", x, kernel_size, stride, padding, dilation, ceil_mode)


def min_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False) -> Tensor:
    """Minimum over each kh×kw window of each channel: the mirror of :func:`max_pool2d`.

    The textbook version, forward and backward in a screenful:
    :func:`striate.functional.reference.min_pool2d` (same signature, same result up to round-off).

    Same arguments, shapes and rules (padding ≤ kernel_size // 2; padded positions
    count as +∞ and never win). On ties the gradient goes to the first minimum in
    row-major order, a window holding NaN gives NaN and sends its gradient to its
    last NaN: exactly ``-max_pool2d(-x)``, forward and backward.

    Returns:
        (N, C, OH, OW), sizes as in :func:`max_pool2d`.
    """
    return _extreme_pool("min_pool2d", "min", x, kernel_size, stride, padding, dilation, ceil_mode)


# ---------------------------------------------------------------------------
# average, sum and Lp pooling: a window sum, then a per-window transform


def _avg_divisor(win: _Windows, count_include_pad: bool, divisor_override: int | None, dtype: np.dtype,
                 xp: Any) -> Any:
    """What each window's sum is divided by, as PyTorch's avg_pool2d does: (OH, OW) or a scalar.

    With ``count_include_pad`` a window counts its padding but not the part that
    ``ceil_mode`` lets hang past the padding; without it, only input elements.
    """
    if divisor_override is not None:
        return dtype.type(divisor_override)
    counts = []
    for size, out_size, k, s, p in zip(win.in_hw, win.out_hw, win.kernel, win.stride, win.padding):
        start = np.arange(out_size) * s - p                   # first row of each window
        end = np.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        counts.append(end - start)
    divisor = np.outer(*counts)
    if (divisor == divisor.flat[0]).all():
        return dtype.type(divisor.flat[0])
    return xp.asarray(divisor, dtype=dtype)


def avg_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each kh×kw window of each channel (PyTorch's ``avg_pool2d``).

    The textbook version, forward and backward in a screenful:
    :func:`striate.functional.reference.avg_pool2d` (same signature, same result up to round-off).

    Args:
        x: (N, C, H, W), float32 or float64.
        kernel_size, stride, padding, ceil_mode: as in :func:`max_pool2d`
            (no dilation); padding adds zeros, at most ``kernel_size // 2``.
        count_include_pad: divide by the window size including its zero padding
            (True), or by the number of input elements it covers (False).
        divisor_override: divide every window sum by this nonzero int instead.

    Returns:
        (N, C, OH, OW), OH = ⌊(H + 2·ph − kh) / sh⌋ + 1.
    """
    op = "avg_pool2d"
    x = pool_input(x, op)
    if divisor_override is not None and (
            not isinstance(divisor_override, (int, np.integer)) or isinstance(divisor_override, bool)
            or divisor_override == 0):
        raise ValueError(f"{op}: divisor_override must be a nonzero int or None, "
                         f"got {divisor_override!r}")
    win = pool_windows(op, x, kernel_size, stride, padding, 1, ceil_mode)
    divisor = _avg_divisor(win, count_include_pad, divisor_override, x.dtype, array_module(x.data))
    out = _reduce(x.data, win, "sum")                      # (N, C, OH, OW) window sums
    out /= divisor

    def backward(g: np.ndarray) -> Gradients:
        return (_scatter(g / divisor, win, x.shape),)      # each element gets g / divisor
    return Tensor.from_op(out, (x,), backward, op)


def sum_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0) -> Tensor:
    """Sum over each kh×kw window of each channel (zero padding, at most ``kernel_size // 2``).

    The textbook version, forward and backward in a screenful:
    :func:`striate.functional.reference.sum_pool2d` (same signature, same result up to round-off).

    The same as ``avg_pool2d(x, ..., divisor_override=1)``, and as kh·kw times
    ``avg_pool2d`` with ``count_include_pad=True``.

    Returns:
        (N, C, OH, OW), OH = ⌊(H + 2·ph − kh) / sh⌋ + 1.
    """
    op = "sum_pool2d"
    x = pool_input(x, op)
    win = pool_windows(op, x, kernel_size, stride, padding)
    out = _reduce(x.data, win, "sum")

    def backward(g: np.ndarray) -> Gradients:
        return (_scatter(g, win, x.shape),)                # every element gets its windows' g
    return Tensor.from_op(out, (x,), backward, op)


def check_norm_type(p: object, op: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: p (norm_type) must be a number, got {p!r}")
    p = float(p)
    if not math.isfinite(p) or p < 1:
        hint = "; for p = inf use max_pool2d" if p == math.inf else ""
        raise ValueError(f"{op}: p (norm_type) must be a finite number ≥ 1, got {p!r}{hint}")
    return p


def lp_pool2d(x: TensorLike, p: float, kernel_size: IntPair, stride: IntPair | None = None,
              padding: IntPair = 0) -> Tensor:
    """Power-average pooling: (Σ x^p)^(1/p) over each kh×kw window, like PyTorch's ``lp_pool2d``.

    The textbook version, forward and backward in a screenful:
    :func:`striate.functional.reference.lp_pool2d` (same signature, same result up to round-off).

    p = 1 is sum pooling, p = 2 L2 pooling (the root of the window's energy), and
    for non-negative inputs a large p approaches max pooling.

    Args:
        x: (N, C, H, W), float32 or float64; usually non-negative. As in PyTorch,
            x^p is taken as is: negative inputs give NaN for non-integer p, and
            a negative window sum gives NaN for p > 1 (odd p).
        p: the norm type, a finite number ≥ 1.
        kernel_size, stride: as in :func:`max_pool2d`.
        padding: PyTorch's lp_pool2d has none; here padded positions are zeros that
            add nothing to the sum (at most ``kernel_size // 2``, the rule of the
            other pools).

    Returns:
        (N, C, OH, OW), OH = ⌊(H + 2·ph − kh) / sh⌋ + 1.

    Gradient: d out / d x = x^(p−1) · S^(1/p − 1) with S = Σ x^p of the window.
    Where S = 0 (an all-zero window) this is 0·∞; we define it as 0, which keeps
    gradients finite (the result PyTorch 2.x gives there too). For p = 1 that
    rule also zeroes the gradient of windows whose sum is exactly 0, as PyTorch does.
    """
    op = "lp_pool2d"
    p = check_norm_type(p, op)
    x = pool_input(x, op)
    xp = array_module(x.data)
    win = pool_windows(op, x, kernel_size, stride, padding)
    a = x.data
    with np.errstate(invalid="ignore"):               # NaN where PyTorch gives NaN, silently
        powered = a if p == 1 else a * a if p == 2 else a ** a.dtype.type(p)
        S = _reduce(powered, win, "sum")                                # (N, C, OH, OW)
        out = S if p == 1 else xp.sqrt(S) if p == 2 else S ** S.dtype.type(1 / p)

    def backward(g: np.ndarray) -> Gradients:
        # dout/dx = x^(p-1) · S^(1/p - 1) = x^(p-1) · out / S, and 0 where S = 0.
        with np.errstate(invalid="ignore"):
            scale = xp.divide(out, S, out=xp.zeros_like(S), where=S != 0)
            dx = _scatter(g * scale, win, x.shape)
            if p != 1:
                dx *= a if p == 2 else a ** a.dtype.type(p - 1)
        return (dx,)
    return Tensor.from_op(out, (x,), backward, op)


def l2_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None,
              padding: IntPair = 0) -> Tensor:
    """L2 pooling, √(Σ x²) over each window: ``lp_pool2d`` with p = 2 (see there).

    The textbook version, forward and backward in a screenful:
    :func:`striate.functional.reference.l2_pool2d` (same signature, same result up to round-off).
    """
    return lp_pool2d(x, 2, kernel_size, stride, padding)


# ---------------------------------------------------------------------------
# adaptive and global pooling


def _adaptive_size(output_size: OutputSize, x: Tensor, op: str) -> tuple[int, int]:
    H, W = x.shape[2:]
    size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(size) != 2 or any(
            s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer)))
            for s in size):
        raise TypeError(f"{op}: output_size must be an int or a pair of ints "
                        f"(None keeps the input size), got {output_size!r}")
    OH, OW = (n if s is None else int(s) for s, n in zip(size, (H, W)))
    if OH < 1 or OW < 1:
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return OH, OW


def _adaptive_bounds(size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive windows along one axis: [⌊o·H/OH⌋, ⌈(o+1)·H/OH⌉) for each o."""
    o = np.arange(out_size)
    return (o * size) // out_size, -((-(o + 1) * size) // out_size)


def _adaptive_max_axis(a: np.ndarray, axis: int, start: np.ndarray,
                       end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum of a over adaptive windows [start, end) along one axis (2 or 3), and where it is.

    Walks the taps of the largest window; a tap past the end of a smaller window
    re-reads that window's last element, which changes neither its maximum nor
    which element wins. The winner follows PyTorch's update rule, ``v > best or
    isnan(v)``: the first maximum, or the last NaN, starting from the window's
    first element (which stays the winner of an all −∞ window).
    """
    xp = array_module(a)
    taps = int((end - start).max())
    best: Any = None
    winner: Any = None
    for i in range(taps):
        tap = xp.take(a, xp.asarray(np.minimum(start + i, end - 1)), axis=axis)
        if best is None:
            best, winner = tap, xp.zeros(tap.shape, dtype=np.int32)      # tap taken
            continue
        wins = tap > best
        wins |= xp.isnan(tap)
        xp.maximum(best, tap, out=best)           # NaN-propagating, like the rule
        # taps come in increasing order, so the last win is the largest i·win
        # (branch-free, where np.where with a random mask is slow)
        xp.maximum(winner, wins * np.int32(i), out=winner)
    shape = (-1,) if axis == 3 else (-1, 1)
    first, last = (xp.asarray(b.reshape(shape)) for b in (start, end - 1))
    return best, xp.minimum(first + winner, last)


def adaptive_avg_pool2d(x: TensorLike, output_size: OutputSize) -> Tensor:
    """Mean over windows chosen to give an output of ``output_size``, as PyTorch does.

    Output row o averages input rows ⌊o·H/OH⌋ … ⌈(o+1)·H/OH⌉ − 1 (and the same for
    columns); the windows may differ in size by one and may overlap.

    Args:
        x: (N, C, H, W), float32 or float64.
        output_size: OH×OW, an int or a pair; a ``None`` entry keeps that input size.

    Returns:
        (N, C, OH, OW).
    """
    op = "adaptive_avg_pool2d"
    x = pool_input(x, op)
    H, W = x.shape[2:]
    OH, OW = _adaptive_size(output_size, x, op)
    if H % OH == 0 and W % OW == 0:                 # equal windows that tile the input
        return avg_pool2d(x, (H // OH, W // OW))
    # Otherwise the pool is a fixed linear map on each axis: with 0/1 matrices
    # Mh (OH, H), Mw (OW, W) marking the windows, out = Mh x Mwᵀ / (counts).
    xp = array_module(x.data)
    (h0, h1), (w0, w1) = _adaptive_bounds(H, OH), _adaptive_bounds(W, OW)
    Mh = xp.asarray((np.arange(H) >= h0[:, None]) & (np.arange(H) < h1[:, None]), dtype=x.dtype)
    Mw = xp.asarray((np.arange(W) >= w0[:, None]) & (np.arange(W) < w1[:, None]), dtype=x.dtype)
    counts = xp.asarray(np.outer(h1 - h0, w1 - w0), dtype=x.dtype)            # (OH, OW)
    out = Mh @ x.data @ Mw.T / counts                                         # (N, C, OH, OW)

    def backward(g: np.ndarray) -> Gradients:
        return (Mh.T @ (g / counts) @ Mw,)                                    # (N, C, H, W)
    return Tensor.from_op(out, (x,), backward, op)


def adaptive_max_pool2d(x: TensorLike, output_size: OutputSize) -> Tensor:
    """Maximum over windows chosen to give an output of ``output_size``, as PyTorch does.

    Windows as in :func:`adaptive_avg_pool2d`; gradient routing (first maximum on
    ties, last NaN in a window holding NaN) as in :func:`max_pool2d`.

    Args:
        x: (N, C, H, W), float32 or float64.
        output_size: OH×OW, an int or a pair; a ``None`` entry keeps that input size.

    Returns:
        (N, C, OH, OW).
    """
    op = "adaptive_max_pool2d"
    x = pool_input(x, op)
    N, C, H, W = x.shape
    OH, OW = _adaptive_size(output_size, x, op)
    if H % OH == 0 and W % OW == 0:                 # equal windows that tile the input
        return max_pool2d(x, (H // OH, W // OW))
    # Unequal windows. The maximum over a rectangle is the maximum over its rows
    # of each row's maximum, so reduce the columns, then the rows: kh + kw taps
    # rather than kh·kw. The first winning row, then that row's first maximum, is
    # the first maximum in row-major order (and the last NaN likewise).
    (h0, h1), (w0, w1) = _adaptive_bounds(H, OH), _adaptive_bounds(W, OW)
    xp = array_module(x.data)
    rowmax, col = _adaptive_max_axis(x.data, 3, w0, w1)         # (N, C, H, OW)
    out, row = _adaptive_max_axis(rowmax, 2, h0, h1)            # (N, C, OH, OW)
    winner = row * W + xp.take_along_axis(col, row, axis=2)     # flat index h·W + w

    def backward(g: np.ndarray) -> Gradients:
        # Windows may share elements, so the winners' gradients are summed per element.
        flat = (xp.arange(N * C).reshape(N, C, 1, 1) * (H * W) + winner).ravel()
        dx = xp.bincount(flat, weights=g.ravel(), minlength=N * C * H * W)
        return (dx.astype(x.dtype).reshape(N, C, H, W),)
    return Tensor.from_op(out, (x,), backward, op)


def global_avg_pool2d(x: TensorLike) -> Tensor:
    """Mean of each channel over all positions: (N, C, H, W) -> (N, C, 1, 1)."""
    return adaptive_avg_pool2d(pool_input(x, "global_avg_pool2d"), 1)


def global_max_pool2d(x: TensorLike) -> Tensor:
    """Maximum of each channel over all positions: (N, C, H, W) -> (N, C, 1, 1)."""
    return adaptive_max_pool2d(pool_input(x, "global_max_pool2d"), 1)
