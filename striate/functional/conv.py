"""Convolutions: ``conv2d``, ``conv_transpose2d`` and ``conv2d_fused``, each a few large matrix products.

To learn the math, read ``reference.py`` first (``striate.functional.reference``): the textbook
conv2d and conv_transpose2d, windows times kernels, forward and backward side by side in a
screenful each, with the same signatures. This module computes the same thing reorganised for
speed, as described below; the tests hold the two equal.

Letters used throughout: N batch, C input channels, K output channels (kernels), H×W input
size, kh×kw kernel, sh×sw stride, dh×dw dilation, OH×OW output size, g groups.

Every output pixel of a convolution is the dot product of a kernel with one window of the
padded input. Copying all the windows into the columns of a matrix (im2col),

    cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh·sh + i·dh, ow·sw + j·dw]      (C·kh·kw, N·OH·OW)

turns the whole convolution into a matrix product with the kernels laid out as rows,

    out = W (K, C·kh·kw) @ cols                                                  (K, N·OH·OW)

and its backward into two more with the same matrices: dW = dout @ colsᵀ, and
dcols = Wᵀ @ dout, whose entries col2im adds back onto the pixels they were copied from.
With groups the same products are batched over a leading group axis. A transposed
convolution uses the same pieces in the other order: its forward is conv2d's input
gradient, its backward a conv2d and a weight gradient.

Wide 3×3 convolutions take another route by default: Winograd's F(2×2, 3×3), which gets
each 2×2 block of outputs with 16 multiplications per channel pair instead of 36
(``winograd.py``; ``conv2d(..., algorithm=...)`` chooses). The result is the same up to
round-off.

How the work is laid out, for speed (the arithmetic is the same whatever the layout):

- The batch is cut into chunks of a few images, so that one chunk's columns (kh·kw times
  the chunk's input) fit in the processor's L2 cache: im2col writes them there, the matrix
  product reads them from there, and they never travel to main memory. The columns are
  not kept for backward; backward copies them again, chunk by chunk, which costs less
  than storing and re-reading the full matrix (and keeps training memory small).
- The columns and other per-chunk temporaries live in a small per-thread workspace that
  is reused from call to call, instead of fresh arrays that the allocator would hand back
  to the operating system and fault in again at every step.
- Images are kept in one of two layouts inside (permutations of N, C, H, W). Batch first,
  (N, C, H, W) itself, with one matrix product per image writing straight into the
  (N, K, OH, OW) output: no transposes. Or batch last, (C, H, W, N), with one product per
  chunk: the window copies then move runs of OW·N values rather than OW, which is what
  small maps (LeNet's 10×10) need, at the price of transposing each chunk in and out.
  The output width decides (``_SHORT_ROW``).
"""
from __future__ import annotations

from typing import Any, Literal, NamedTuple, cast

import numpy as np

from ..checks import (
    IntPair,
    Padding,
    check_bias,
    check_conv,
    check_same_dtype,
    conv_output_size,
    nonnegative_pair,
    padding_sides,
    positive_pair,
)
from ..tensor import Gradients, Tensor, TensorLike, array_module
from ..threads import OrderedSum, run_tiles
from . import winograd
from ._workspace import scratch as _scratch

__all__ = ["conv2d", "conv_transpose2d", "conv2d_fused"]

Fusion = Literal["sum", "concat", "product"]
_FUSIONS = ("sum", "concat", "product")
Algorithm = Literal["auto", "im2col", "winograd"]
_ALGORITHMS = ("auto", "im2col", "winograd")


# ---------------------------------------------------------------------------
# the primitives: windows as columns, and back, one chunk of images at a time

_BATCH_FIRST = (0, 1, 2, 3)    # (N, C, H, W)
_BATCH_LAST = (1, 2, 3, 0)     # (C, H, W, N)
_SHORT_ROW = 16                # output rows shorter than this use batch last
_CHUNK_BYTES = 1 << 21         # columns per chunk (measured best from 1 to 4 MiB)
_MIN_COLUMNS = 2048            # batch last, the fewest columns a chunk's products should have

_Grads = tuple[np.ndarray | None, np.ndarray | None]     # (dx, dw), each None when not wanted


class _Geometry(NamedTuple):
    """Where the kernel windows of a convolution lie in its padded input."""
    kernel: tuple[int, int]          # kh, kw
    stride: tuple[int, int]          # sh, sw
    dilation: tuple[int, int]        # dh, dw
    pads: tuple[int, int, int, int]  # top, bottom, left, right
    out_size: tuple[int, int]        # OH, OW: windows down and across
    groups: int
    order: tuple[int, int, int, int]  # the internal layout, _BATCH_FIRST or _BATCH_LAST


def _make_geometry(kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                   pads: tuple[int, int, int, int], out_size: tuple[int, int], groups: int) -> _Geometry:
    order = _BATCH_LAST if out_size[1] < _SHORT_ROW else _BATCH_FIRST
    return _Geometry(kernel, stride, dilation, pads, out_size, groups, order)


def _chunks(N: int, C: int, geo: _Geometry, itemsize: int) -> list[tuple[int, int]]:
    """(start, stop) of each chunk of images: the tiles that ``threads.run_tiles`` shares out.

    A chunk's columns should fit ``_CHUNK_BYTES``. Batch last, a chunk's images also make
    the matrix products' long side (n·OH·OW columns), and products with fewer than
    ``_MIN_COLUMNS`` columns run well below the BLAS's speed: there the chunk grows to
    reach that many, cache or not (AlexNet's 13×13 layers). The cut depends on the shapes
    only, never on the number of threads (the threads take the chunks in turn).
    """
    (kh, kw), (OH, OW) = geo.kernel, geo.out_size
    per_image = C * kh * kw * OH * OW * itemsize
    step = max(1, _CHUNK_BYTES // max(per_image, 1))
    if geo.order == _BATCH_LAST:
        step = max(step, -(-_MIN_COLUMNS // (OH * OW)))
    return [(s, min(s + step, N)) for s in range(0, N, step)]


def _padded_shape(geo: _Geometry, n: int, C: int, H: int, W: int) -> tuple[int, ...]:
    top, bottom, left, right = geo.pads
    size = {0: n, 1: C, 2: H + top + bottom, 3: W + left + right}
    return tuple(size[axis] for axis in geo.order)


def _interior(geo: _Geometry, H: int, W: int) -> tuple[slice, ...]:
    """Index of the unpadded images inside a padded internal array."""
    top, _, left, _ = geo.pads
    where = {0: slice(None), 1: slice(None), 2: slice(top, top + H), 3: slice(left, left + W)}
    return tuple(where[axis] for axis in geo.order)


def _to_nchw_order(geo: _Geometry) -> tuple[int, ...]:
    """The permutation that takes an internal array back to (N, C, H, W)."""
    return tuple(geo.order.index(axis) for axis in range(4))


def _padded(x: np.ndarray, geo: _Geometry) -> np.ndarray:
    """A chunk x (n, C, H, W) in the internal layout with its zero padding.

    x itself when that is already the case (batch first, no padding), else a workspace copy.
    """
    inner = x.transpose(geo.order)                                        # a view
    if not any(geo.pads) and geo.order == _BATCH_FIRST:
        return inner
    n, C, H, W = x.shape
    padded = _scratch("padded", _padded_shape(geo, n, C, H, W), x.dtype, array_module(x))
    top, _, left, _ = geo.pads
    h_axis, w_axis = geo.order.index(2), geo.order.index(3)
    for axis, before, size in ((h_axis, top, H), (w_axis, left, W)):      # zero the border only
        edge = [slice(None)] * 4
        edge[axis] = slice(0, before)
        padded[tuple(edge)] = 0
        edge[axis] = slice(before + size, None)
        padded[tuple(edge)] = 0
    padded[_interior(geo, H, W)] = inner                                  # pad and reorder: one copy
    return padded


def _window_axes(geo: _Geometry, n: int, C: int) -> tuple[int, ...]:
    """The shape of the columns before they are flattened into matrices:
    (n, C, kh, kw, OH, OW) batch first, (C, kh, kw, OH, OW, n) batch last."""
    (kh, kw), (OH, OW) = geo.kernel, geo.out_size
    if geo.order == _BATCH_FIRST:
        return (n, C, kh, kw, OH, OW)
    return (C, kh, kw, OH, OW, n)


def _matrix_shape(geo: _Geometry, n: int, rows: int) -> tuple[int, ...]:
    """Matrices with ``rows`` rows per group (C/g·kh·kw for columns, K/g for outputs):
    (n, g, rows, OH·OW) batch first, (g, rows, OH·OW·n) batch last."""
    g, (OH, OW) = geo.groups, geo.out_size
    if geo.order == _BATCH_FIRST:
        return (n, g, rows, OH * OW)
    return (g, rows, OH * OW * n)


def _im2col(padded: np.ndarray, geo: _Geometry, C: int) -> np.ndarray:
    """All kernel windows of a padded chunk as the columns of matrices, made with one copy.

    padded: a chunk in the internal layout (from ``_padded``). Returns, in the workspace,
    cols (n, g, C/g·kh·kw, OH·OW) batch first or (g, C/g·kh·kw, OH·OW·n) batch last, with

        cols[group, (c, i, j), (oh, ow)] of image n = x_pad[n, group·C/g + c, oh·sh + i·dh, ow·sw + j·dw]
    """
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    stride = dict(zip(geo.order, padded.strides))                        # bytes per step along N, C, H, W
    n = padded.shape[geo.order.index(0)]
    shape = _window_axes(geo, n, C)
    if geo.order == _BATCH_FIRST:                                         # (n, C, kh, kw, OH, OW)
        steps = (stride[0], stride[1], dh * stride[2], dw * stride[3], sh * stride[2], sw * stride[3])
    else:                                                                 # (C, kh, kw, OH, OW, n)
        steps = (stride[1], dh * stride[2], dw * stride[3], sh * stride[2], sw * stride[3], stride[0])
    xp = array_module(padded)
    windows = xp.lib.stride_tricks.as_strided(padded, shape=shape, strides=steps, writeable=False)
    cols = _scratch("cols", shape, padded.dtype, xp)
    cols[...] = windows                                                   # the copy
    kh, kw = geo.kernel
    return cols.reshape(_matrix_shape(geo, n, C // geo.groups * kh * kw))


def _col2im(dcols: np.ndarray, geo: _Geometry, n: int, C: int, H: int, W: int) -> np.ndarray:
    """The adjoint of ``_im2col``: add every column entry back onto the pixel it came from.

    dcols (matrices as ``_im2col`` returns them) -> the padded chunk gradient in the internal
    layout (workspace). A pixel that lies in several windows receives the sum of their
    entries. One whole-array strided add per kernel offset.
    """
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    OH, OW = geo.out_size
    blocks = dcols.reshape(_window_axes(geo, n, C))
    padded = _scratch("dpadded", _padded_shape(geo, n, C, H, W), dcols.dtype, array_module(dcols))
    padded.fill(0)
    h_axis, w_axis = geo.order.index(2), geo.order.index(3)
    tap: list[slice | int] = [slice(None)] * blocks.ndim                  # picks offset (i, j) of blocks
    i_axis = 2 if geo.order == _BATCH_FIRST else 1
    window = [slice(None)] * 4
    for i in range(kh):
        window[h_axis] = slice(i * dh, i * dh + (OH - 1) * sh + 1, sh)
        tap[i_axis] = i
        for j in range(kw):
            window[w_axis] = slice(j * dw, j * dw + (OW - 1) * sw + 1, sw)
            tap[i_axis + 1] = j
            padded[tuple(window)] += blocks[tuple(tap)]
    return padded


def _output_matrix(a: np.ndarray, geo: _Geometry) -> np.ndarray:
    """An (n, K, OH, OW) chunk as matrices (``_matrix_shape`` with K/g rows).

    Batch first this is a view; batch last a transposed copy in the workspace.
    """
    n, K = a.shape[:2]
    shape = _matrix_shape(geo, n, K // geo.groups)
    if geo.order == _BATCH_FIRST:
        return a.reshape(shape)
    out = _scratch("gmat", shape, a.dtype, array_module(a))
    out.reshape(K, *a.shape[2:], n)[...] = a.transpose(1, 2, 3, 0)      # (K, OH, OW, n)
    return out


def _conv_forward(x: np.ndarray, wmat: np.ndarray, geo: _Geometry,
                  bias: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W), wmat (g, K/g, C/g·kh·kw), bias (K,) or None -> a fresh out (N, K, OH, OW)."""
    xp = array_module(x)
    N, C = x.shape[:2]
    g, Kg, _ = wmat.shape
    OH, OW = geo.out_size
    out = xp.empty((N, g * Kg, OH, OW), dtype=x.dtype)
    b = None if bias is None else bias.reshape(1, -1, 1, 1)
    chunks = _chunks(N, C, geo, x.itemsize)

    def chunk(t: int) -> None:
        s, e = chunks[t]
        cols = _im2col(_padded(x[s:e], geo), geo, C)
        if geo.order == _BATCH_FIRST:                       # one product per image, straight into out
            xp.matmul(wmat, cols, out=out[s:e].reshape(_matrix_shape(geo, e - s, Kg)))
            if b is not None:
                out[s:e] += b
        else:                                               # (K, OH, OW, n) -> (n, K, OH, OW)
            res = xp.matmul(wmat, cols, out=_scratch("res", _matrix_shape(geo, e - s, Kg), x.dtype, xp))
            res = res.reshape(g * Kg, OH, OW, e - s).transpose(3, 0, 1, 2)
            if b is None:
                out[s:e] = res
            else:
                xp.add(res, b, out=out[s:e])                # reorder and add in one pass
    run_tiles(chunk, len(chunks))
    return out


def _conv_weight_grad(gmat: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """dL/dW of one chunk: gmat @ colsᵀ summed over images -> (g, K/g, C/g·kh·kw).

    Computed as (cols @ gmatᵀ)ᵀ, which BLAS runs faster when K is small.
    """
    dw = array_module(cols).matmul(cols, gmat.swapaxes(-1, -2))
    if dw.ndim == 4:                                        # batch first: one product per image
        dw = dw.sum(axis=0)
    return dw.swapaxes(-1, -2)


def _conv_backward(g: np.ndarray, wmat: np.ndarray, geo: _Geometry, x_shape: tuple[int, ...],
                   x: np.ndarray | None = None, input_grad: bool = True,
                   weight_shape: tuple[int, ...] | None = None) -> _Grads:
    """Gradients of a convolution from g = dL/dout (N, K, OH, OW).

    Returns (dx, dW): dx (N, C, H, W) = col2im(Wᵀ @ g) when ``input_grad`` (else None), and
    dW = g @ im2col(x)ᵀ when the input x is given (else None), of shape ``weight_shape``
    (default (g, K/g, C/g·kh·kw)), a fresh array that owns its memory.
    """
    xp = array_module(g)
    N, C, H, W = x_shape
    dx: Any = xp.empty(x_shape, dtype=g.dtype) if input_grad else None
    dw: Any = None if x is None else xp.zeros(weight_shape or wmat.shape, dtype=g.dtype)
    dw_mat: Any = None if x is None else dw.reshape(wmat.shape)      # a view: sums land in dw
    wmat_t = wmat.swapaxes(1, 2)                            # (g, C/g·kh·kw, K/g)
    chunks = _chunks(N, C, geo, g.itemsize)
    dw_sum: Any = None if x is None else OrderedSum(dw_mat, len(chunks))   # chunks' dW, in chunk order

    def chunk(t: int) -> None:
        s, e = chunks[t]
        gmat = _output_matrix(g[s:e], geo)
        if x is not None:
            dw_sum.add(t, _conv_weight_grad(gmat, _im2col(_padded(x[s:e], geo), geo, C)))
        if input_grad:
            rows = wmat_t.shape[1]
            dcols = xp.matmul(wmat_t, gmat, out=_scratch("dcols", _matrix_shape(geo, e - s, rows), g.dtype, xp))
            padded = _col2im(dcols, geo, e - s, C, H, W)
            dx[s:e] = padded[_interior(geo, H, W)].transpose(_to_nchw_order(geo))
    run_tiles(chunk, len(chunks))
    return dx, dw


# ---------------------------------------------------------------------------
# argument checks


def conv_geometry(op: str, size: tuple[int, int], kernel: tuple[int, int], stride: IntPair, padding: Padding,
              dilation: IntPair, groups: int) -> _Geometry:
    """Normalise stride, padding ("same", "valid", int, pair) and dilation; check the kernel fits."""
    (H, W), (kh, kw) = size, kernel
    stride = positive_pair(stride, "stride", op)
    dilation = positive_pair(dilation, "dilation", op)
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1   # the kernel's reach
    pads = padding_sides(padding, (eh, ew), op, stride)
    Hp, Wp = H + pads[0] + pads[1], W + pads[2] + pads[3]
    if eh > Hp or ew > Wp:
        raise ValueError(
            f"{op}: the kernel reaches {eh}×{ew} (kernel {kh}×{kw}, dilation {dilation}), "
            f"larger than the padded input {Hp}×{Wp} (input {H}×{W}, padding "
            f"top/bottom {pads[0]}/{pads[1]}, left/right {pads[2]}/{pads[3]})")
    out_size = (conv_output_size(H, kh, stride[0], pads[0] + pads[1], dilation[0]),
                conv_output_size(W, kw, stride[1], pads[2] + pads[3], dilation[1]))
    return _make_geometry((kh, kw), stride, dilation, pads, out_size, groups)


# ---------------------------------------------------------------------------
# the ops


def conv2d(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, stride: IntPair = 1,
           padding: Padding = 0, dilation: IntPair = 1, groups: int = 1, *,
           algorithm: Algorithm = "auto") -> Tensor:
    """2-D convolution (cross-correlation, as in every deep-learning library).

    The textbook version, forward and backward in a screenful:
    :func:`striate.functional.reference.conv2d` (same signature, same result up to round-off).

        out[n, k, oh, ow] = bias[k] + Σ_{c, i, j} weight[k, c, i, j] ·
                            x_pad[n, G(k)·C/g + c, oh·sh + i·dh, ow·sw + j·dw]

    With ``groups`` g, the input channels and the kernels are split into g equal groups,
    and kernel k sees only the C/g input channels of its own group G(k) = ⌊k / (K/g)⌋.

    Args:
        x: the input, (N, C, H, W).
        weight: the kernels, (K, C/groups, kh, kw).
        bias: (K,) or None.
        stride: int or (sh, sw), at least 1.
        padding: int or (ph, pw) zeros on each side; "valid" (none); or "same" (output as
            large as the input; stride 1 only; an odd total puts the extra row and column
            at the bottom and right, as PyTorch does).
        dilation: int or (dh, dw), the spacing between kernel taps.
        groups: how many independent channel groups; divides C and K.
        algorithm: how to compute it; the result is the same up to round-off.
            ``"im2col"``: windows as columns and one matrix product (this module).
            ``"winograd"``: Winograd's F(2×2, 3×3), 2.25× fewer multiplications, for 3×3
            kernels at stride 1, and kernels spanning three strides (``winograd.py``).
            ``"auto"`` (default): Winograd where it measured faster (3×3, stride 1,
            dilation 1, no groups, at least 32 input and output channels, at least 36
            output pixels), im2col elsewhere.

    Shape:
        x:      (N, C, H, W)
        weight: (K, C/groups, kh, kw)
        out:    (N, K, OH, OW), OH = ⌊(H + ph_top + ph_bottom − dh·(kh − 1) − 1) / sh⌋ + 1,
                and the same for OW.

    Raises:
        ValueError: wrong shapes, channels that do not match, K not divisible by ``groups``,
            bad stride/padding/dilation, a kernel larger than the padded input, or an
            algorithm that does not apply.
        TypeError: integer data, or input and weight of different dtypes.

    Example:
        >>> x = np.zeros((8, 1, 32, 32), np.float32)
        >>> conv2d(x, np.zeros((6, 1, 5, 5), np.float32)).shape
        (8, 6, 28, 28)
    """
    return _conv2d("conv2d", x, weight, bias, stride, padding, dilation, groups, algorithm)


def _conv2d(op: str, x: TensorLike, weight: TensorLike, bias: TensorLike | None, stride: IntPair,
            padding: Padding, dilation: IntPair, groups: int, algorithm: str = "auto") -> Tensor:
    x, weight, groups = check_conv(op, x, weight, groups)
    K, Cg, kh, kw = weight.shape
    bias = check_bias(op, bias, K, "(K,)")
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    N, C, H, W = x.shape
    geo = conv_geometry(op, (H, W), (kh, kw), stride, padding, dilation, groups)
    if _choose_algorithm(op, algorithm, geo, C, K) == "winograd":
        return _winograd_conv2d(op, x, weight, bias, geo)

    wmat = weight.data.reshape(groups, K // groups, Cg * kh * kw)          # (g, K/g, C/g·kh·kw)
    out = _conv_forward(x.data, wmat, geo, None if bias is None else bias.data)   # (N, K, OH, OW)

    def backward(g: np.ndarray) -> Gradients:                               # g (N, K, OH, OW)
        dx, dw = _conv_backward(g, wmat, geo, x.shape, x=x.data if weight.requires_grad else None,
                                input_grad=x.requires_grad, weight_shape=weight.shape)   # each only when wanted
        return _with_bias_grad(dx, dw, bias, g)

    return Tensor.from_op(out, _parents(x, weight, bias), backward, op)


def check_algorithm(op: str, algorithm: object) -> Algorithm:
    """``algorithm`` if it names one of conv2d's algorithms ("auto", "im2col", "winograd"), else a ValueError."""
    if not isinstance(algorithm, str) or algorithm not in _ALGORITHMS:
        raise ValueError(f"{op}: algorithm must be one of 'auto', 'im2col', 'winograd', got {algorithm!r}")
    return cast(Algorithm, algorithm)


def _choose_algorithm(op: str, algorithm: str, geo: _Geometry, C: int, K: int) -> str:
    """"im2col" or "winograd": what ``algorithm`` asks for, with "auto" resolved; errors for
    an unknown name, or for "winograd" where it does not apply."""
    if check_algorithm(op, algorithm) == "auto":
        return "winograd" if winograd.suits(geo, C, K) else "im2col"
    if algorithm == "winograd" and not winograd.can_use(geo):
        raise ValueError(f"{op}: algorithm='winograd' needs dilation 1 and, on each axis, a kernel of "
                         f"2s+1 to 3s taps at stride s (3 at stride 1, 5–6 at 2, 7–9 at 3, 9–12 at 4), "
                         f"got kernel {geo.kernel}, stride {geo.stride}, dilation {geo.dilation}")
    return algorithm


def _winograd_conv2d(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, geo: _Geometry) -> Tensor:
    """conv2d by Winograd's F(2×2, 3×3) (winograd.py); arguments already checked."""
    out, transformed = winograd.conv_forward(x.data, weight.data, geo, None if bias is None else bias.data)
    U = transformed if x.requires_grad else None                            # only dx needs it

    def backward(g: np.ndarray) -> Gradients:                               # g (N, K, OH, OW)
        dx = dw = None
        if x.requires_grad or weight.requires_grad:
            dx, dw = winograd.conv_backward(g, weight.data, geo, x.data, input_grad=x.requires_grad,
                                            weight_grad=weight.requires_grad, U=U)
        return _with_bias_grad(dx, dw, bias, g)

    return Tensor.from_op(out, _parents(x, weight, bias), backward, op)


def transpose_geometry(op: str, size: tuple[int, int], kernel: tuple[int, int], stride: IntPair,
                       padding: IntPair, output_padding: IntPair, dilation: IntPair
                       ) -> tuple[tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int], tuple[int, int]],
                                  tuple[int, int]]:
    """A transposed convolution's settings, checked, and its output size (OH, OW).

    Returns ``((kh, kw), (sh, sw), (top, bottom, left, right), (dh, dw))`` and ``(OH, OW)``:
    OH = (H − 1)·sh − 2·ph + dh·(kh − 1) + output_padding + 1 (likewise OW).
    """
    (H, W), (kh, kw) = size, kernel
    sh, sw = positive_pair(stride, "stride", op)
    dh, dw = positive_pair(dilation, "dilation", op)
    ph, pw = nonnegative_pair(padding, "padding", op)
    oph, opw = nonnegative_pair(output_padding, "output_padding", op)
    if oph >= max(sh, dh) or opw >= max(sw, dw):
        raise ValueError(f"{op}: output_padding must be smaller than the stride or the dilation "
                         f"(as in PyTorch), got output_padding {(oph, opw)} with stride {(sh, sw)}, "
                         f"dilation {(dh, dw)}")
    OH = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    OW = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    if OH < 1 or OW < 1:
        raise ValueError(f"{op}: the output would be {OH}×{OW}: padding {(ph, pw)} crops more than "
                         f"the {OH + 2 * ph}×{OW + 2 * pw} that input {H}×{W} with kernel "
                         f"{kh}×{kw} and stride {(sh, sw)} produces")
    return ((kh, kw), (sh, sw), (ph, ph, pw, pw), (dh, dw)), (OH, OW)


def conv_transpose2d(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                     dilation: IntPair = 1) -> Tensor:
    """Transposed convolution ("deconvolution"): the input gradient of ``conv2d`` as an op.

    The textbook version, forward and backward in a screenful:
    :func:`striate.functional.reference.conv_transpose2d` (same signature, same result up to round-off).

    Each input pixel scatters a copy of its kernel, scaled by its value, into the output
    at stride ``stride``; overlapping copies add up. This is exactly the map that sends
    conv2d's output gradient back to its input, so ``conv_transpose2d(y, w)`` has the
    shape of the ``x`` for which ``conv2d(x, w)`` has the shape of ``y`` (same stride,
    padding, dilation and groups). ``padding`` crops that many rows and columns from each
    side of the full result; ``output_padding`` adds rows and columns at the bottom and
    right, to pick one of the input sizes that a strided conv2d maps to the same size.
    Semantics and argument order are PyTorch's.

    Args:
        x: the input, (N, C, H, W).
        weight: (C, K/groups, kh, kw), input channels first, as in PyTorch.
        bias: (K,) or None.
        stride, padding, dilation: int or pair, those of the conv2d being transposed.
        output_padding: int or pair, smaller than the stride or the dilation.
        groups: channel groups; divides C.

    Shape:
        x:   (N, C, H, W)
        out: (N, K, OH, OW), OH = (H − 1)·sh − 2·ph + dh·(kh − 1) + output_padding_h + 1,
             and the same for OW.

    Raises:
        ValueError: wrong shapes, channels that do not match, C not divisible by ``groups``,
            bad stride/padding/dilation/output_padding, or padding that crops everything.
        TypeError: integer data, or input and weight of different dtypes.

    Example:
        >>> x = np.zeros((2, 16, 7, 7), np.float32)
        >>> conv_transpose2d(x, np.zeros((16, 8, 4, 4), np.float32), stride=2, padding=1).shape
        (2, 8, 14, 14)
    """
    op = "conv_transpose2d"
    x, weight, groups = check_conv(op, x, weight, groups, transposed=True)
    C, Kg, kh, kw = weight.shape
    K = Kg * groups
    bias = check_bias(op, bias, K, "(K,)")
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    N, _, H, W = x.shape
    ((_, _), (sh, sw), (ph, _, pw, _), (dh, dw)), (OH, OW) = transpose_geometry(
        op, (H, W), (kh, kw), stride, padding, output_padding, dilation)
    # The conv2d being transposed maps (N, K, OH, OW) to (N, C, H, W) with the same settings.
    geo = _make_geometry((kh, kw), (sh, sw), (dh, dw), (ph, ph, pw, pw), (H, W), groups)
    wmat = weight.data.reshape(groups, C // groups, Kg * kh * kw)          # (g, C/g, K/g·kh·kw)
    out = _conv_backward(x.data, wmat, geo, (N, K, OH, OW))[0]              # conv2d's input gradient
    if bias is not None:
        out += bias.data.reshape(1, K, 1, 1)

    def backward(g: np.ndarray) -> Gradients:                               # g (N, K, OH, OW)
        dx = dw = None
        if x.requires_grad:                                                 # conv2d(g, weight)
            dx = _conv_forward(g, wmat, geo)
        if weight.requires_grad:                                            # conv2d's weight gradient
            dw = _conv_backward(x.data, wmat, geo, g.shape, x=g, input_grad=False,
                                weight_shape=weight.shape)[1]
        return _with_bias_grad(dx, dw, bias, g)

    return Tensor.from_op(out, _parents(x, weight, bias), backward, op)


def conv2d_fused(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, stride: IntPair = 1,
                 padding: Padding = 0, fusion: Fusion = "sum") -> Tensor:
    """Convolution with a choice of how the per-channel responses are combined.

    Kernel k has one 2-D slice per input channel c, and each slice gives a response map

        r[n, k, c] = x[n, c] ⋆ weight[k, c]                               (OH, OW)

    An ordinary convolution adds them up; here ``fusion`` chooses:

    - ``"sum"``: out[n, k] = Σ_c r[n, k, c] — the ordinary convolution, K maps. On a colour
      image each kernel mixes its red, green and blue responses into one map (a kernel
      with equal slices sees brightness; slices of opposite sign see colour contrast).
    - ``"concat"``: all K·C responses kept apart; output channel k·C + c holds r[n, k, c]
      (a depthwise convolution; PyTorch's ``groups=C`` equivalent orders the same maps
      channel-major, c·K + k). On a colour image every kernel gives three maps — its
      response in the red, the green and the blue plane — so an edge is found separately
      in each colour.
    - ``"product"``: out[n, k] = Π_c r[n, k, c], K maps: a conjunction. On a colour image
      a map is large only where the kernel responds in red *and* green *and* blue; a
      zero response in any one plane silences it.

    ``bias``, if given, has one value per output map (K for "sum" and "product", K·C for
    "concat") and is added after the fusion. Gradients are exact for every fusion; the
    product's uses, for channel c, the product of the *other* responses (prefix and suffix
    products, no division), so responses that are exactly zero are handled.

    Args:
        x: the input, (N, C, H, W).
        weight: (K, C, kh, kw).
        bias: (K,) for "sum" and "product", (K·C,) for "concat"; or None.
        stride: int or (sh, sw).
        padding: int, (ph, pw), "same" or "valid", as in :func:`conv2d`.
        fusion: "sum", "concat" or "product".

    Shape:
        out: (N, K, OH, OW) for "sum" and "product", (N, K·C, OH, OW) for "concat";
        OH and OW as in :func:`conv2d`.

    Example:
        >>> x = np.zeros((4, 3, 32, 32), np.float32)
        >>> conv2d_fused(x, np.zeros((6, 3, 5, 5), np.float32), fusion="concat").shape
        (4, 18, 28, 28)
    """
    op = "conv2d_fused"
    if not isinstance(fusion, str) or fusion not in _FUSIONS:
        raise ValueError(f"{op}: fusion must be one of 'sum', 'concat', 'product', got {fusion!r}")
    if fusion == "sum":
        return _conv2d(op, x, weight, bias, stride, padding, 1, 1)
    x, weight, _ = check_conv(op, x, weight, groups=None)
    K, C, kh, kw = weight.shape
    concat = fusion == "concat"
    bias = check_bias(op, bias, K * C if concat else K,
                       "(K·C,) for fusion='concat'" if concat else f"(K,) for fusion={fusion!r}")
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    N, _, H, W = x.shape
    # The responses are a grouped convolution with one group per input channel: group c
    # applies the K slices weight[:, c] to channel c alone, giving maps c·K + k.
    geo = conv_geometry(op, (H, W), (kh, kw), stride, padding, 1, groups=C)
    OH, OW = geo.out_size
    wmat = weight.data.transpose(1, 0, 2, 3).reshape(C, K, kh * kw)        # (C, K, kh·kw)
    r = _conv_forward(x.data, wmat, geo).reshape(N, C, K, OH, OW)          # r[:, c, k]
    xp = array_module(r)

    def grads_from_responses(dr: np.ndarray) -> _Grads:                    # dr = dL/dr (N, C, K, OH, OW)
        dr = dr.reshape(N, C * K, OH, OW)
        dx, dw = _conv_backward(dr, wmat, geo, x.shape, x=x.data if weight.requires_grad else None,
                                input_grad=x.requires_grad)
        if dw is not None:                                                 # (C, K, kh·kw) -> (K, C, kh, kw)
            dw = xp.ascontiguousarray(dw.reshape(C, K, kh, kw).transpose(1, 0, 2, 3))
        return dx, dw

    b = None if bias is None else bias.data.reshape(1, -1, 1, 1)
    if concat:
        out = r.transpose(0, 2, 1, 3, 4).reshape(N, K * C, OH, OW)         # channel k·C + c = r[:, c, k]
        out = out + b if b is not None else xp.ascontiguousarray(out)

        def backward(g: np.ndarray) -> Gradients:                          # g (N, K·C, OH, OW)
            dr = g.reshape(N, K, C, OH, OW).transpose(0, 2, 1, 3, 4)
            return _with_bias_grad(*grads_from_responses(dr), bias, g)
    else:
        out = r.prod(axis=1)                                               # (N, K, OH, OW)
        if b is not None:
            out += b

        def backward(g: np.ndarray) -> Gradients:                          # g (N, K, OH, OW)
            dr = _product_of_others(r.swapaxes(0, 1)).swapaxes(0, 1)       # ∂out[k]/∂r[c, k]
            dr *= g[:, None]                                               # × g, broadcast over c
            return _with_bias_grad(*grads_from_responses(dr), bias, g)

    return Tensor.from_op(out, _parents(x, weight, bias), backward, op)


def _parents(x: Tensor, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, ...]:
    return (x, weight) if bias is None else (x, weight, bias)


def _with_bias_grad(dx: np.ndarray | None, dw: np.ndarray | None, bias: Tensor | None,
                    g: np.ndarray) -> Gradients:
    """The gradients to return: (dx, dw), and db = Σ g over N, OH, OW when there is a bias."""
    if bias is None:
        return dx, dw
    return dx, dw, (g.sum(axis=(0, 2, 3)) if bias.requires_grad else None)


def _product_of_others(r: np.ndarray) -> np.ndarray:
    """others[c] = Π_{c' ≠ c} r[c'] along axis 0, without dividing (exact when some r are 0).

    The exclusive prefix product times the exclusive suffix product.
    """
    xp = array_module(r)
    others = xp.ones_like(r)
    xp.cumprod(r[:-1], axis=0, out=others[1:])                             # Π_{c' < c} r[c']
    others[:-1] *= xp.cumprod(r[:0:-1], axis=0)[::-1]                      # × Π_{c' > c} r[c']
    return others
