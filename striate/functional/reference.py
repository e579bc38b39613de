"""The textbook convolution and pooling, forward and backward side by side: the file to read.

Open this file to learn the math. Each op here has the signature of its fast counterpart
(``striate.functional.conv2d``, ``max_pool2d``, ...), the same checks and errors, and gives
the same output and gradients up to round-off; the fast ops in ``conv.py`` and ``pool.py``
are the same math reorganised for speed (im2col in cache-sized chunks, two memory layouts,
reused workspaces, Winograd's algorithm, pooling tap by tap without a padded copy). Use those
to train; read these, and test those against these.

Letters used throughout:

    N batch, C input channels, H×W input size, K output channels (kernels), g groups,
    kh×kw kernel (window), sh×sw stride, ph×pw padding, dh×dw dilation, OH×OW output size.

One primitive builds everything: :func:`windows`. Output (oh, ow) looks at a kh×kw window of
the padded input, and the window's tap (i, j) reads

    cols[n, c, i, j, oh, ow] = x_pad[n, c, oh·sh + i·dh, ow·sw + j·dw]

``windows`` gathers all of them, for all images and all windows at once, with one strided
slice per tap (kh·kw slices: no loop over pixels or images). Along each axis

    OH = ⌊(H + P − dh·(kh − 1) − 1) / sh⌋ + 1          (P: the padding of both sides, 2·ph)

Then each op is one line of arithmetic on ``cols``:

    conv2d:   out[n, k, oh, ow] = b[k] + Σ_{c, i, j} w[k, c, i, j] · cols[n, c, i, j, oh, ow]   (c: k's group)
    pooling:  out[n, c, oh, ow] = max, min, sum, mean or Lp norm over (i, j) of cols[n, c, i, j, oh, ow]

and each backward is the chain rule through that line, which gives dL/dcols, followed by
:func:`windows_backward`, which adds each tap's gradient back onto the pixel it was read
from (a pixel read by several windows receives the sum) and drops the padding.
"""
from __future__ import annotations

import math
from types import EllipsisType

import numpy as np

from ..checks import IntPair, Padding, check_bias, check_conv, check_same_dtype, positive_pair
from ..tensor import Gradients, Tensor, TensorLike, array_module
from .conv import Algorithm, check_algorithm, conv_geometry, transpose_geometry
from .pool import check_norm_type, pool_input, pool_windows

__all__ = ["windows", "windows_backward", "conv2d", "conv_transpose2d", "max_pool2d", "min_pool2d",
           "avg_pool2d", "sum_pool2d", "lp_pool2d", "l2_pool2d"]


# ---------------------------------------------------------------------------
# the primitive: every window of the padded input, and its backward
#
# kernel, stride and dilation are pairs, padding is (top, bottom, left, right): already checked.

_Pair = tuple[int, int]                       # (kh, kw), (sh, sw), (dh, dw), (OH, OW), ...
_Pads = tuple[int, int, int, int]             # top, bottom, left, right
_Where = tuple[_Pair, _Pair, _Pads, _Pair]    # kernel, stride, pads, dilation: where the windows lie


def _tap(i: int, j: int, out_hw: tuple[int, ...], stride: _Pair,
         dilation: _Pair) -> tuple[EllipsisType, slice, slice]:
    """Where tap (i, j) of every window lies in the padded input: rows i·dh + oh·sh, cols j·dw + ow·sw."""
    (OH, OW), (sh, sw), (dh, dw) = out_hw, stride, dilation
    rows = slice(i * dh, i * dh + (OH - 1) * sh + 1, sh)
    columns = slice(j * dw, j * dw + (OW - 1) * sw + 1, sw)
    return ..., rows, columns


def windows(x: np.ndarray, kernel: _Pair, stride: _Pair = (1, 1), padding: _Pads = (0, 0, 0, 0),
            dilation: _Pair = (1, 1), value: float = 0.0) -> np.ndarray:
    """Every kh×kw window of x padded with ``value``: (N, C, H, W) -> cols (N, C, kh, kw, OH, OW).

        cols[n, c, i, j, oh, ow] = x_pad[n, c, oh·sh + i·dh, ow·sw + j·dw]
        OH = ⌊(top + H + bottom − dh·(kh − 1) − 1) / sh⌋ + 1, and the same for OW
    """
    xp = array_module(x)
    (kh, kw), (sh, sw), (dh, dw), (top, bottom, left, right) = kernel, stride, dilation, padding
    x_pad = xp.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)
    OH = (x_pad.shape[2] - dh * (kh - 1) - 1) // sh + 1
    OW = (x_pad.shape[3] - dw * (kw - 1) - 1) // sw + 1
    cols = xp.empty(x.shape[:2] + (kh, kw, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):                      # tap (i, j) of all windows: one strided slice
            cols[:, :, i, j] = x_pad[_tap(i, j, (OH, OW), stride, dilation)]
    return cols


def windows_backward(dcols: np.ndarray, shape: tuple[int, ...], kernel: _Pair, stride: _Pair = (1, 1),
                     padding: _Pads = (0, 0, 0, 0), dilation: _Pair = (1, 1)) -> np.ndarray:
    """The backward of :func:`windows`: dL/dcols (N, C, kh, kw, OH, OW) -> dL/dx (``shape``, N, C, H, W).

    Each tap adds its gradient back onto the pixels it read; the padding's share is dropped.
    """
    (kh, kw), (top, bottom, left, right) = kernel, padding
    N, C, H, W = shape
    dx_pad = array_module(dcols).zeros((N, C, top + H + bottom, left + W + right), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):                      # += : a pixel in several windows gets the sum
            dx_pad[_tap(i, j, dcols.shape[4:], stride, dilation)] += dcols[:, :, i, j]
    return dx_pad[:, :, top:top + H, left:left + W]


# ---------------------------------------------------------------------------
# convolution


def conv2d(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, stride: IntPair = 1,
           padding: Padding = 0, dilation: IntPair = 1, groups: int = 1, *,
           algorithm: Algorithm = "auto") -> Tensor:
    """2-D convolution (cross-correlation) as the sum it is: windows times kernels.

        out[n, k, oh, ow] = bias[k] + Σ_{c, i, j} weight[k, c, i, j] · cols[n, G(k)·C/g + c, i, j, oh, ow]
        cols[n, c, i, j, oh, ow] = x_pad[n, c, oh·sh + i·dh, ow·sw + j·dw]        (see :func:`windows`)

    With g groups, kernel k sees only the C/g channels of its group G(k) = ⌊k / (K/g)⌋.

    Shape: x (N, C, H, W), weight (K, C/g, kh, kw), bias (K,) or None -> (N, K, OH, OW),
        OH = ⌊(H + P − dh·(kh − 1) − 1) / sh⌋ + 1 with P = 2·ph; "valid": P = 0; "same":
        P = dh·(kh − 1), an odd P putting its extra row at the bottom (stride 1 only).

    Arguments and errors are those of :func:`striate.functional.conv2d`. ``algorithm`` is
    accepted and its name checked, but changes nothing: the textbook sum is the only way here.
    It is kept so that the signatures are equal and this op can stand in for the fast one
    anywhere (``nn.Conv2d`` passes it).
    """
    op = "conv2d"
    check_algorithm(op, algorithm)
    x, weight, bias, groups = _conv_args(op, x, weight, bias, groups, transposed=False)
    N, C, H, W = x.shape
    K, Cg, kh, kw = weight.shape
    geo = conv_geometry(op, (H, W), (kh, kw), stride, padding, dilation, groups)    # the fast op's sizes
    where = ((kh, kw), geo.stride, geo.pads, geo.dilation)                    # pads: top, bottom, left, right
    xp = array_module(x.data)
    OH, OW = geo.out_size
    cols = windows(x.data, *where).reshape(N, groups, Cg, kh, kw, OH, OW)   # (N, g, C/g, kh, kw, OH, OW)
    w = weight.data.reshape(groups, K // groups, Cg, kh, kw)                    # (g, K/g, C/g, kh, kw)
    out = xp.einsum("gkcij,ngcijhw->ngkhw", w, cols).reshape(N, K, OH, OW)    # Σ over c, i, j
    if bias is not None:
        out += bias.data.reshape(1, K, 1, 1)

    def backward(dout: np.ndarray) -> Gradients:                               # dL/dout (N, K, OH, OW)
        d = dout.reshape(N, groups, K // groups, OH, OW)
        dcols = xp.einsum("gkcij,ngkhw->ngcijhw", w, d)                     # dL/dcols = Σ_k w · dout
        dx = windows_backward(dcols.reshape(N, C, kh, kw, OH, OW), x.shape, *where)     # dL/dx
        dw = xp.einsum("ngkhw,ngcijhw->gkcij", d, cols)                     # dL/dw = Σ_{n,oh,ow} dout · cols
        db = dout.sum(axis=(0, 2, 3))                                       # dL/db = Σ_{n,oh,ow} dout
        dw = dw.reshape(weight.shape)
        return (dx, dw) if bias is None else (dx, dw, db)
    return Tensor.from_op(out, _parents(x, weight, bias), backward, op)


def conv_transpose2d(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                     dilation: IntPair = 1) -> Tensor:
    """Transposed convolution as the scatter it is: every input pixel stamps its kernel, scaled.

        out_full[n, k, h·sh + i·dh, w·sw + j·dw] += Σ_c x[n, c, h, w] · weight[c, k', i, j]

    (c over the C/g channels of k's group, k' = k's index within it); ``padding`` then crops
    ph rows and pw columns from each side of out_full, and ``output_padding`` leaves that many
    more at the bottom and right. It is conv2d's input gradient run as an op: its forward
    is ``windows_backward`` and its backward ``windows``, conv2d's pieces swapped.

    Shape: x (N, C, H, W), weight (C, K/g, kh, kw), bias (K,) or None -> (N, K, OH, OW),
        OH = (H − 1)·sh − 2·ph + dh·(kh − 1) + oph + 1, and the same for OW.

    Arguments and errors are those of :func:`striate.functional.conv_transpose2d`.
    """
    op = "conv_transpose2d"
    x, weight, bias, groups = _conv_args(op, x, weight, bias, groups, transposed=True)
    N, C, H, W = x.shape
    _, Kg, kh, kw = weight.shape
    K = Kg * groups
    where, (OH, OW) = transpose_geometry(op, (H, W), (kh, kw), stride, padding, output_padding,
                                         dilation)
    xp = array_module(x.data)
    xg = x.data.reshape(N, groups, C // groups, H, W)                          # (N, g, C/g, H, W)
    w = weight.data.reshape(groups, C // groups, Kg, kh, kw)                   # (g, C/g, K/g, kh, kw)
    stamps = xp.einsum("gckij,ngchw->ngkijhw", w, xg)                         # Σ_c x[n, c, h, w] · w[c, k]
    stamps = stamps.reshape(N, K, kh, kw, H, W)
    out = windows_backward(stamps, (N, K, OH, OW), *where)                    # placed, summed, cropped
    if bias is not None:
        out += bias.data.reshape(1, K, 1, 1)

    def backward(dout: np.ndarray) -> Gradients:                               # dL/dout (N, K, OH, OW)
        # What each stamp's entry was added to; output_padding can leave room for windows past x's H×W.
        dstamps = windows(dout, *where)[..., :H, :W]                           # (N, K, kh, kw, H, W)
        d = dstamps.reshape(N, groups, Kg, kh, kw, H, W)                       # dL/dstamps
        dx = xp.einsum("gckij,ngkijhw->ngchw", w, d)                           # dL/dx = Σ_{k,i,j} w · d
        dw = xp.einsum("ngchw,ngkijhw->gckij", xg, d)                          # dL/dw = Σ_{n,h,w} x · d
        db = dout.sum(axis=(0, 2, 3))                                          # dL/db
        dx, dw = dx.reshape(x.shape), dw.reshape(weight.shape)
        return (dx, dw) if bias is None else (dx, dw, db)
    return Tensor.from_op(out, _parents(x, weight, bias), backward, op)


def _conv_args(op: str, x: TensorLike, weight: TensorLike, bias: TensorLike | None, groups: int,
               transposed: bool) -> tuple[Tensor, Tensor, Tensor | None, int]:
    """The fast ops' checks, in their order: input, weight and groups together, then bias, one dtype."""
    x, weight, groups = check_conv(op, x, weight, groups, transposed=transposed)
    K = weight.shape[1] * groups if transposed else weight.shape[0]
    bias = check_bias(op, bias, K, "(K,)")
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    return x, weight, bias, groups


def _parents(x: Tensor, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, ...]:
    """The tensors the output depends on: the bias only when there is one."""
    return (x, weight) if bias is None else (x, weight, bias)


# ---------------------------------------------------------------------------
# pooling: a reduction of cols over its (i, j) axes


def _pool_args(op: str, x: TensorLike, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
               dilation: IntPair = 1, ceil_mode: bool = False) -> tuple[Tensor, _Where]:
    """x as a Tensor, and where its windows lie: (kernel, stride, pads, dilation) for ``windows``.

    The checks and output size are the fast op's (pool.py). With ``ceil_mode`` the last window
    may hang past the padding; the pads then reach that far, filled like the padding.
    """
    x = pool_input(x, op)
    win = pool_windows(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    dh, dw = positive_pair(dilation, "dilation", op)
    (H, W), (OH, OW), (kh, kw) = win.in_hw, win.out_hw, win.kernel
    (sh, sw), (ph, pw) = win.stride, win.padding
    bottom = max(ph, (OH - 1) * sh + dh * (kh - 1) + 1 - H - ph)             # the last window's reach
    right = max(pw, (OW - 1) * sw + dw * (kw - 1) + 1 - W - pw)
    return x, ((kh, kw), (sh, sw), (ph, bottom, pw, right), (dh, dw))


def max_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False) -> Tensor:
    """Maximum over each window: out[n, c, oh, ow] = max_{i, j} cols[n, c, i, j, oh, ow].

    Padding is −∞, so it never wins. Backward: a window's gradient goes whole to one element,
    the first maximum in row-major order on ties, and in a window holding NaN (whose maximum
    is NaN) its last NaN: the elements PyTorch picks.

    Shape: x (N, C, H, W) -> (N, C, OH, OW), OH = ⌊(H + 2·ph − dh·(kh − 1) − 1) / sh⌋ + 1
        (⌈·⌉ with ``ceil_mode``, less a last window that would start in the bottom padding).

    Arguments and errors are those of :func:`striate.functional.max_pool2d`.
    """
    return _extreme_pool("max_pool2d", 1, x, kernel_size, stride, padding, dilation, ceil_mode)


def min_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False) -> Tensor:
    """Minimum over each window: min x = −max(−x), forward and backward (see :func:`max_pool2d`).

    Arguments and errors are those of :func:`striate.functional.min_pool2d`.
    """
    return _extreme_pool("min_pool2d", -1, x, kernel_size, stride, padding, dilation, ceil_mode)


def _extreme_pool(op: str, sign: int, x: TensorLike, kernel_size: IntPair, stride: IntPair | None,
                  padding: IntPair, dilation: IntPair, ceil_mode: bool) -> Tensor:
    """max pooling of sign·x, times sign: max (sign 1) and min (sign −1) pooling."""
    x, where = _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    xp = array_module(x.data)
    cols = windows(sign * x.data, *where, value=-math.inf)                     # (N, C, kh, kw, OH, OW)
    N, C, kh, kw, OH, OW = cols.shape
    taps = cols.reshape(N, C, kh * kw, OH, OW)                                 # taps in row-major order
    out = taps.max(axis=2)                                                     # (N, C, OH, OW)
    winner = taps.argmax(axis=2)                                              # the first maximum
    last_nan = kh * kw - 1 - xp.isnan(taps[:, :, ::-1]).argmax(axis=2)
    winner = xp.where(xp.isnan(out), last_nan, winner)                        # or the last NaN

    def backward(dout: np.ndarray) -> Gradients:                               # dL/dout (N, C, OH, OW)
        won = xp.arange(kh * kw).reshape(kh * kw, 1, 1) == winner[:, :, None]  # (N, C, kh·kw, OH, OW)
        dtaps = xp.where(won, dout[:, :, None], 0)                            # all dout to the winner
        # dL/dx: out = sign·max(sign·x), so the two signs cancel and dout is routed as it is
        return (windows_backward(dtaps.reshape(cols.shape), x.shape, *where),)
    return Tensor.from_op(sign * out, (x,), backward, op)


def avg_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each window: out[n, c, oh, ow] = Σ_{i, j} cols[n, c, i, j, oh, ow] / divisor[oh, ow].

    Padding is zeros. The divisor is ``divisor_override`` if given, else the number of the
    window's taps that count: those on the input or its padding (``count_include_pad``) or
    on the input alone; taps that ``ceil_mode`` lets hang past the padding never count.

    Shape: x (N, C, H, W) -> (N, C, OH, OW), OH = ⌊(H + 2·ph − kh) / sh⌋ + 1
        (⌈·⌉ with ``ceil_mode``, less a last window that would start in the bottom padding).

    Arguments and errors are those of :func:`striate.functional.avg_pool2d`.
    """
    op = "avg_pool2d"
    x, where = _pool_args(op, x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (
            not isinstance(divisor_override, (int, np.integer)) or isinstance(divisor_override, bool)
            or divisor_override == 0):
        raise ValueError(f"{op}: divisor_override must be a nonzero int or None, "
                         f"got {divisor_override!r}")
    xp = array_module(x.data)
    kernel, stride, (ph, bottom, pw, right), _ = where
    if divisor_override is not None:
        divisor = x.dtype.type(divisor_override)
    else:   # pool a mask the same way: 1 on the input, 1 or 0 on the padding, 0 past it
        mask = xp.pad(xp.ones((1, 1) + x.shape[2:], dtype=x.dtype), ((0, 0), (0, 0), (ph, ph), (pw, pw)),
                      constant_values=float(count_include_pad))
        divisor = windows(mask, kernel, stride, (0, bottom - ph, 0, right - pw)).sum(axis=(2, 3))
    # divisor: a number, or (1, 1, OH, OW)
    out = windows(x.data, *where).sum(axis=(2, 3)) / divisor                   # (N, C, OH, OW)

    def backward(dout: np.ndarray) -> Gradients:                               # dL/dout (N, C, OH, OW)
        share = (dout / divisor)[:, :, None, None]                            # (N, C, 1, 1, OH, OW)
        dcols = xp.broadcast_to(share, out.shape[:2] + kernel + out.shape[2:])  # to every tap
        return (windows_backward(dcols, x.shape, *where),)                     # dL/dx
    return Tensor.from_op(out, (x,), backward, op)


def sum_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0) -> Tensor:
    """Sum over each window: out[n, c, oh, ow] = Σ_{i, j} cols[n, c, i, j, oh, ow] (zero padding).

    Shape: x (N, C, H, W) -> (N, C, OH, OW), OH = ⌊(H + 2·ph − kh) / sh⌋ + 1.

    Arguments and errors are those of :func:`striate.functional.sum_pool2d`.
    """
    op = "sum_pool2d"
    x, where = _pool_args(op, x, kernel_size, stride, padding)
    xp = array_module(x.data)
    cols = windows(x.data, *where)                                             # (N, C, kh, kw, OH, OW)
    out = cols.sum(axis=(2, 3))                                                # (N, C, OH, OW)

    def backward(dout: np.ndarray) -> Gradients:                               # dL/dout (N, C, OH, OW)
        dcols = xp.broadcast_to(dout[:, :, None, None], cols.shape)            # every tap gets dout
        return (windows_backward(dcols, x.shape, *where),)                     # dL/dx
    return Tensor.from_op(out, (x,), backward, op)


def lp_pool2d(x: TensorLike, p: float, kernel_size: IntPair, stride: IntPair | None = None,
              padding: IntPair = 0) -> Tensor:
    """Power-average pooling: out = S^(1/p) with S = Σ_{i, j} cols^p, per window (zero padding).

    Backward: d out / d x_t = x_t^(p−1) · S^(1/p − 1) = x_t^(p−1) · out / S for each tap t,
    defined as 0 where S = 0 (an all-zero window), as the fast op and PyTorch 2.x do. As in
    PyTorch, x^p is taken as is: NaN for negative x and a non-integer p.

    Shape: x (N, C, H, W) -> (N, C, OH, OW), OH = ⌊(H + 2·ph − kh) / sh⌋ + 1.

    Arguments and errors are those of :func:`striate.functional.lp_pool2d`.
    """
    op = "lp_pool2d"
    p = check_norm_type(p, op)
    x, where = _pool_args(op, x, kernel_size, stride, padding)
    xp = array_module(x.data)
    with np.errstate(invalid="ignore"):                                       # NaN where PyTorch has NaN
        cols = windows(x.data, *where)                                         # (N, C, kh, kw, OH, OW)
        S = (cols ** p).sum(axis=(2, 3))                                       # (N, C, OH, OW)
        out = S ** (1 / p)

    def backward(dout: np.ndarray) -> Gradients:                               # dL/dout (N, C, OH, OW)
        with np.errstate(invalid="ignore"):
            scale = xp.divide(out, S, out=xp.zeros_like(S), where=S != 0)      # out / S, 0 where S = 0
            dcols = (dout * scale)[:, :, None, None] * cols ** (p - 1)         # dL/dcols
        return (windows_backward(dcols, x.shape, *where),)                     # dL/dx
    return Tensor.from_op(out, (x,), backward, op)


def l2_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None,
              padding: IntPair = 0) -> Tensor:
    """L2 pooling, √(Σ x²) over each window: :func:`lp_pool2d` with p = 2."""
    return lp_pool2d(x, 2, kernel_size, stride, padding)
