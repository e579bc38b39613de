"""Convolutions: ``conv2d``, ``conv_transpose2d`` and ``conv2d_fused``, each one big matrix product.

Letters used throughout: N batch, C input channels, K output channels (kernels), H×W input
size, kh×kw kernel, sh×sw stride, dh×dw dilation, OH×OW output size, g groups.

Every output pixel of a convolution is the dot product of a kernel with one window of the
padded input. Copying all the windows into the columns of one matrix (im2col),

    cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh·sh + i·dh, ow·sw + j·dw]      (C·kh·kw, N·OH·OW)

turns the whole convolution into a single matrix product with the kernels laid out as rows,

    out = W (K, C·kh·kw) @ cols                                                  (K, N·OH·OW)

and its backward into two more with the same matrices: dW = dout @ colsᵀ, and
dcols = Wᵀ @ dout, whose entries col2im adds back onto the pixels they were copied from.
With groups the same products are batched over a leading group axis. A transposed
convolution uses the same pieces in the other order: its forward is conv2d's input
gradient, its backward an im2col.

The matrices keep the channel axis first (rows are channels or kernels, columns are the
N·OH·OW output positions), so a single transpose at the end, a copy the size of the
output and small next to the columns, returns (N, K, OH, OW). The order of the positions
(batch second or batch last) is chosen per call so the copies move long runs; see below.
"""
from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np

from ..tensor import Tensor, array_module
from ._utils import (IntPair, Padding, check_float, check_ndim, check_same_dtype,
                     conv_output_size, nonnegative_pair, positive_pair, to_tensor)

__all__ = ["conv2d", "conv_transpose2d", "conv2d_fused"]

Fusion = Literal["sum", "concat", "product"]
_FUSIONS = ("sum", "concat", "product")


# ---------------------------------------------------------------------------
# the primitives: windows as columns, and back
#
# Inside, images are kept channel first, in one of two layouts (permutations of the
# axes N, C, H, W): (C, N, H, W), or (C, H, W, N) with the batch last. The window copies
# move runs of values that are contiguous in memory: one output row (OW values) in the
# first layout, a row times the batch (OW·N values, when sw is 1) in the second. Long runs
# copy at memory speed, short ones pay numpy's per-run overhead, so small images (short
# rows: LeNet's 10×10 maps) use batch last; large ones batch second, whose transposes
# back to (N, C, H, W) move whole rows rather than single values.

_BATCH_SECOND = (1, 0, 2, 3)   # (C, N, H, W)
_BATCH_LAST = (1, 2, 3, 0)     # (C, H, W, N)
_SHORT_ROW = 16                # output rows shorter than this use batch last


class _Geometry(NamedTuple):
    """Where the kernel windows of a convolution lie in its padded input."""
    kernel: tuple[int, int]          # kh, kw
    stride: tuple[int, int]          # sh, sw
    dilation: tuple[int, int]        # dh, dw
    pads: tuple[int, int, int, int]  # top, bottom, left, right
    out_size: tuple[int, int]        # OH, OW: windows down and across
    groups: int
    order: tuple[int, int, int, int]  # the internal layout, _BATCH_SECOND or _BATCH_LAST


def _make_geometry(kernel, stride, dilation, pads, out_size, groups) -> _Geometry:
    order = _BATCH_LAST if out_size[1] < _SHORT_ROW else _BATCH_SECOND
    return _Geometry(kernel, stride, dilation, pads, out_size, groups, order)


def _positions(geo: _Geometry, N: int) -> tuple[int, int, int]:
    """The column axes of the matrices in the internal order: (N, OH, OW) or (OH, OW, N)."""
    count = {0: N, 2: geo.out_size[0], 3: geo.out_size[1]}
    return tuple(count[axis] for axis in geo.order[1:])


def _padded_interior(geo: _Geometry, H: int, W: int) -> tuple[slice, ...]:
    """Index of the unpadded image inside a padded internal array."""
    top, _, left, _ = geo.pads
    where = {0: slice(None), 1: slice(None), 2: slice(top, top + H), 3: slice(left, left + W)}
    return tuple(where[axis] for axis in geo.order)


def _padded_shape(geo: _Geometry, N: int, C: int, H: int, W: int) -> tuple[int, ...]:
    top, bottom, left, right = geo.pads
    size = {0: N, 1: C, 2: H + top + bottom, 3: W + left + right}
    return tuple(size[axis] for axis in geo.order)


def _to_nchw_order(geo: _Geometry) -> tuple[int, ...]:
    """The permutation that takes an internal array back to (N, C, H, W)."""
    return tuple(geo.order.index(axis) for axis in range(4))


def _im2col(x, geo: _Geometry):
    """All kernel windows of ``x`` as the columns of one matrix, made with a single copy.

    x (N, C, H, W) -> cols (g, C/g·kh·kw, positions), the N·OH·OW positions in the internal
    order, with

        cols[group, (c, i, j), (n, oh, ow)] = x_pad[n, group·C/g + c, oh·sh + i·dh, ow·sw + j·dw]
    """
    xp = array_module(x)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    inner = x.transpose(geo.order)                                        # a view
    # The window copy moves runs along the last internal axis: give it contiguous ones.
    if any(geo.pads) or inner.strides[-1] != inner.itemsize:
        padded = xp.zeros(_padded_shape(geo, N, C, H, W), dtype=x.dtype)
        padded[_padded_interior(geo, H, W)] = inner                       # pad and reorder: one copy
    else:
        padded = inner
    stride = dict(zip(geo.order, padded.strides))                         # bytes per step along N, C, H, W
    step = {0: stride[0], 2: sh * stride[2], 3: sw * stride[3]}           # from one window to the next
    # A view, no copy: windows[c, i, j, (positions)] = padded[n, c, oh·sh + i·dh, ow·sw + j·dw].
    windows = xp.lib.stride_tricks.as_strided(
        padded, shape=(C, kh, kw) + _positions(geo, N),
        strides=(stride[1], dh * stride[2], dw * stride[3]) + tuple(step[a] for a in geo.order[1:]),
        writeable=False)
    OH, OW = geo.out_size
    return windows.reshape(geo.groups, C // geo.groups * kh * kw, N * OH * OW)   # the copy


def _col2im(cols, x_shape, geo: _Geometry):
    """The adjoint of ``_im2col``: add every column entry back onto the pixel it came from.

    cols (g, C/g·kh·kw, positions) -> (N, C, H, W); a pixel that lies in several windows
    receives the sum of their entries. One whole-array strided add per kernel offset.
    """
    xp = array_module(cols)
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    OH, OW = geo.out_size
    blocks = cols.reshape((C, kh, kw) + _positions(geo, N))
    padded = xp.zeros(_padded_shape(geo, N, C, H, W), dtype=cols.dtype)
    h_axis, w_axis = geo.order.index(2), geo.order.index(3)
    window = [slice(None)] * 4
    for i in range(kh):
        window[h_axis] = slice(i * dh, i * dh + (OH - 1) * sh + 1, sh)
        for j in range(kw):
            window[w_axis] = slice(j * dw, j * dw + (OW - 1) * sw + 1, sw)
            padded[tuple(window)] += blocks[:, i, j]                      # (C, positions)
    image = padded[_padded_interior(geo, H, W)].transpose(_to_nchw_order(geo))
    return xp.ascontiguousarray(image)


def _group_matrix(a, groups: int, geo: _Geometry):
    """(N, C, H, W) -> (g, C/g, positions), the layout of the matrices (a copy, or a view if N is 1)."""
    N, C, H, W = a.shape
    return a.transpose(geo.order).reshape(groups, C // groups, N * H * W)


def _to_nchw(out, geo: _Geometry, N: int, bias=None):
    """(…, positions) channel-first result -> a fresh C-contiguous (N, K, OH, OW), bias added."""
    xp = array_module(out)
    channels = math.prod(out.shape[:-1])
    out = out.reshape((channels,) + _positions(geo, N)).transpose(_to_nchw_order(geo))  # a view
    result = xp.empty(out.shape, dtype=out.dtype)
    if bias is None:
        result[...] = out
    else:
        xp.add(out, bias.reshape(1, -1, 1, 1), out=result)              # reorder and add in one pass
    return result


def _conv_forward(x, wmat, geo: _Geometry):
    """x (N, C, H, W), wmat (g, K/g, C/g·kh·kw) -> out (g, K/g, positions), cols."""
    cols = _im2col(x, geo)
    return array_module(x).matmul(wmat, cols), cols


def _conv_input_grad(gmat, wmat, x_shape, geo: _Geometry):
    """dL/dx from gmat = dL/dout (g, K/g, positions): dcols = Wᵀ @ gmat, then col2im -> (N, C, H, W)."""
    dcols = array_module(gmat).matmul(wmat.swapaxes(1, 2), gmat)    # (g, C/g·kh·kw, positions)
    return _col2im(dcols, x_shape, geo)


def _conv_weight_grad(gmat, cols):
    """dL/dW = gmat @ colsᵀ -> (g, K/g, C/g·kh·kw).

    Computed as (cols @ gmatᵀ)ᵀ, which BLAS runs faster when K is small.
    """
    return array_module(gmat).matmul(cols, gmat.swapaxes(1, 2)).swapaxes(1, 2)


# ---------------------------------------------------------------------------
# argument checks


def _float_tensor(value, op: str, name: str) -> Tensor:
    """``to_tensor`` that refuses integer data (as PyTorch does) instead of converting it."""
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind != "f":
        raise TypeError(f"{op} expects a float32 or float64 {name}, got dtype {value.dtype}")
    t = to_tensor(value, op, name)
    check_float(t, op, name)
    return t


def _check_groups(op: str, groups) -> int:
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be at least 1, got {groups}")
    return int(groups)


def _check_bias(op: str, bias, count: int, layout: str):
    """None, or a float tensor of shape (count,): one value per output map."""
    if bias is None:
        return None
    bias = _float_tensor(bias, op, "bias")
    if bias.shape != (count,):
        raise ValueError(f"{op} expects bias {layout} with {count} values (one per output map), "
                         f"got shape {tuple(bias.shape)}")
    return bias


def _geometry(op: str, size, kernel, stride, padding, dilation, groups: int) -> _Geometry:
    """Normalise stride, padding ("same", "valid", int, pair) and dilation; check the kernel fits."""
    (H, W), (kh, kw) = size, kernel
    stride = positive_pair(stride, "stride", op)
    dilation = positive_pair(dilation, "dilation", op)
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1   # the kernel's reach
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' needs stride 1 (as in PyTorch), got stride {stride}")
            # A total of reach − 1 keeps the size; an odd total puts the extra row and
            # column at the bottom and right, as PyTorch does.
            th, tw = eh - 1, ew - 1
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise ValueError(f"{op}: padding must be an int, a pair of ints, 'same' or 'valid', "
                             f"got {padding!r}")
    else:
        ph, pw = nonnegative_pair(padding, "padding", op)
        pads = (ph, ph, pw, pw)
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


def conv2d(x, weight, bias=None, stride: IntPair = 1, padding: Padding = 0,
           dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as in every deep-learning library).

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

    Shape:
        x:      (N, C, H, W)
        weight: (K, C/groups, kh, kw)
        out:    (N, K, OH, OW), OH = ⌊(H + ph_top + ph_bottom − dh·(kh − 1) − 1) / sh⌋ + 1,
                and the same for OW.

    Raises:
        ValueError: wrong shapes, channels that do not match, K not divisible by ``groups``,
            bad stride/padding/dilation, or a kernel larger than the padded input.
        TypeError: integer data, or input and weight of different dtypes.

    Example:
        >>> x = np.zeros((8, 1, 32, 32), np.float32)
        >>> conv2d(x, np.zeros((6, 1, 5, 5), np.float32)).shape
        (8, 6, 28, 28)
    """
    return _conv2d("conv2d", x, weight, bias, stride, padding, dilation, groups)


def _conv2d(op, x, weight, bias, stride, padding, dilation, groups) -> Tensor:
    groups = _check_groups(op, groups)
    x = _float_tensor(x, op, "input")
    weight = _float_tensor(weight, op, "weight")
    check_ndim(weight, 4, "(K, C/groups, kh, kw)", op, "weight")
    K, Cg, kh, kw = weight.shape
    if K % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {K} output channels of "
                         f"weight {tuple(weight.shape)}")
    if x.ndim != 4 or x.shape[1] != Cg * groups:
        raise ValueError(f"{op} expects input (N, C, H, W) with C={Cg * groups} "
                         f"(weight {tuple(weight.shape)}, groups={groups}), got {tuple(x.shape)}")
    bias = _check_bias(op, bias, K, "(K,)")
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    N, C, H, W = x.shape
    geo = _geometry(op, (H, W), (kh, kw), stride, padding, dilation, groups)

    wmat = weight.data.reshape(groups, K // groups, Cg * kh * kw)          # (g, K/g, C/g·kh·kw)
    out, cols = _conv_forward(x.data, wmat, geo)                            # (g, K/g, positions)
    cols = cols if weight.requires_grad else None                          # only dW reads them

    def backward(g):                                                        # g (N, K, OH, OW)
        gmat = _group_matrix(g, groups, geo)                                # (g, K/g, positions)
        dx = _conv_input_grad(gmat, wmat, x.shape, geo) if x.requires_grad else None
        dw = _conv_weight_grad(gmat, cols).reshape(weight.shape) if weight.requires_grad else None
        return _with_bias_grad(dx, dw, bias, g)

    out = _to_nchw(out, geo, N, None if bias is None else bias.data)
    return Tensor.from_op(out, _parents(x, weight, bias), backward, op)


def conv_transpose2d(x, weight, bias=None, stride: IntPair = 1, padding: IntPair = 0,
                     output_padding: IntPair = 0, groups: int = 1, dilation: IntPair = 1) -> Tensor:
    """Transposed convolution ("deconvolution"): the input gradient of ``conv2d`` as an op.

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
    groups = _check_groups(op, groups)
    x = _float_tensor(x, op, "input")
    weight = _float_tensor(weight, op, "weight")
    check_ndim(weight, 4, "(C, K/groups, kh, kw)", op, "weight")
    C, Kg, kh, kw = weight.shape
    if C % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {C} input channels of "
                         f"weight {tuple(weight.shape)}")
    if x.ndim != 4 or x.shape[1] != C:
        raise ValueError(f"{op} expects input (N, C, H, W) with C={C} "
                         f"(weight {tuple(weight.shape)}, groups={groups}), got {tuple(x.shape)}")
    K = Kg * groups
    bias = _check_bias(op, bias, K, "(K,)")
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    sh, sw = positive_pair(stride, "stride", op)
    dh, dw = positive_pair(dilation, "dilation", op)
    ph, pw = nonnegative_pair(padding, "padding", op)
    oph, opw = nonnegative_pair(output_padding, "output_padding", op)
    if oph >= max(sh, dh) or opw >= max(sw, dw):
        raise ValueError(f"{op}: output_padding must be smaller than the stride or the dilation "
                         f"(as in PyTorch), got output_padding {(oph, opw)} with stride {(sh, sw)}, "
                         f"dilation {(dh, dw)}")
    N, _, H, W = x.shape
    OH = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    OW = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    if OH < 1 or OW < 1:
        raise ValueError(f"{op}: the output would be {OH}×{OW}: padding {(ph, pw)} crops more than "
                         f"the {OH + 2 * ph}×{OW + 2 * pw} that input {H}×{W} with kernel "
                         f"{kh}×{kw} and stride {(sh, sw)} produces")
    # The conv2d being transposed maps (N, K, OH, OW) to (N, C, H, W) with the same settings.
    geo = _make_geometry((kh, kw), (sh, sw), (dh, dw), (ph, ph, pw, pw), (H, W), groups)
    wmat = weight.data.reshape(groups, C // groups, Kg * kh * kw)          # (g, C/g, K/g·kh·kw)
    out = _conv_input_grad(_group_matrix(x.data, groups, geo), wmat, (N, K, OH, OW), geo)
    if bias is not None:
        out += bias.data.reshape(1, K, 1, 1)

    def backward(g):                                                        # g (N, K, OH, OW)
        cols = _im2col(g, geo)                                              # (g, K/g·kh·kw, positions)
        dx = dw = None
        if x.requires_grad:                                                 # conv2d(g, weight)
            dx = _to_nchw(array_module(g).matmul(wmat, cols), geo, N)
        if weight.requires_grad:                                            # (g, C/g, K/g·kh·kw)
            xmat = _group_matrix(x.data, groups, geo)
            dw = _conv_weight_grad(xmat, cols).reshape(weight.shape)
        return _with_bias_grad(dx, dw, bias, g)

    return Tensor.from_op(out, _parents(x, weight, bias), backward, op)


def conv2d_fused(x, weight, bias=None, stride: IntPair = 1, padding: Padding = 0,
                 fusion: Fusion = "sum") -> Tensor:
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
    x = _float_tensor(x, op, "input")
    weight = _float_tensor(weight, op, "weight")
    check_ndim(weight, 4, "(K, C, kh, kw)", op, "weight")
    K, C, kh, kw = weight.shape
    if x.ndim != 4 or x.shape[1] != C:
        raise ValueError(f"{op} expects input (N, C, H, W) with C={C} "
                         f"(weight {tuple(weight.shape)}), got {tuple(x.shape)}")
    concat = fusion == "concat"
    bias = _check_bias(op, bias, K * C if concat else K,
                       "(K·C,) for fusion='concat'" if concat else f"(K,) for fusion={fusion!r}")
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    N, _, H, W = x.shape
    # The responses are a grouped convolution with one group per input channel: group c
    # applies the K slices weight[:, c] to channel c alone.
    geo = _geometry(op, (H, W), (kh, kw), stride, padding, 1, groups=C)
    wmat = weight.data.transpose(1, 0, 2, 3).reshape(C, K, kh * kw)        # (C, K, kh·kw)
    r, cols = _conv_forward(x.data, wmat, geo)                             # r[c, k] (C, K, positions)
    cols = cols if weight.requires_grad else None                          # only dW reads them

    def grads_from_responses(dr):                                          # dr = dL/dr (C, K, positions)
        dx = _conv_input_grad(dr, wmat, x.shape, geo) if x.requires_grad else None
        dw = None
        if weight.requires_grad:                                           # (C, K, kh·kw) -> (K, C, kh, kw)
            dw = _conv_weight_grad(dr, cols).reshape(C, K, kh, kw).transpose(1, 0, 2, 3)
            dw = array_module(dw).ascontiguousarray(dw)
        return dx, dw

    b = None if bias is None else bias.data
    if concat:
        out = _to_nchw(r.transpose(1, 0, 2), geo, N, b)                    # channel k·C + c = r[k, c]

        def backward(g):                                                   # g (N, K·C, OH, OW)
            dr = _group_matrix(g, K, geo).transpose(1, 0, 2)               # (C, K, positions)
            return _with_bias_grad(*grads_from_responses(dr), bias, g)
    else:
        out = _to_nchw(r.prod(axis=0), geo, N, b)

        def backward(g):                                                   # g (N, K, OH, OW)
            dr = _product_of_others(r)                                     # ∂out[k]/∂r[c, k]
            dr *= _group_matrix(g, 1, geo)                                 # × g, broadcast over c
            return _with_bias_grad(*grads_from_responses(dr), bias, g)

    return Tensor.from_op(out, _parents(x, weight, bias), backward, op)


def _parents(x, weight, bias):
    return (x, weight) if bias is None else (x, weight, bias)


def _with_bias_grad(dx, dw, bias, g):
    """The gradients to return: (dx, dw), and db = Σ g over N, OH, OW when there is a bias."""
    if bias is None:
        return dx, dw
    return dx, dw, (g.sum(axis=(0, 2, 3)) if bias.requires_grad else None)


def _product_of_others(r):
    """others[c] = Π_{c' ≠ c} r[c'] along axis 0, without dividing (exact when some r are 0).

    The exclusive prefix product times the exclusive suffix product.
    """
    xp = array_module(r)
    others = xp.ones_like(r)
    xp.cumprod(r[:-1], axis=0, out=others[1:])                             # Π_{c' < c} r[c']
    others[:-1] *= xp.cumprod(r[:0:-1], axis=0)[::-1]                      # × Π_{c' > c} r[c']
    return others
