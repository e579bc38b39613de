"""Winograd's minimal filtering F(2×2, 3×3): a 3×3 convolution with 2.25× fewer multiplications.

A 3×3 kernel g sliding over a 4×4 tile d of one channel gives a 2×2 tile of output: 4·9 = 36
multiplications done directly. Winograd's algorithm (as used for convnets by Lavin and Gray,
2016) gets the same 2×2 tile with 16:

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A                    (⊙: elementwise, on 4×4 arrays)

         Bᵀ = [[1,  0, -1,  0],     G = [[1,  0,  0],     Aᵀ = [[1, 1,  1,  0],
               [0,  1,  1,  0],          [½,  ½,  ½],           [0, 1, -1, -1]]
               [0, -1,  1,  0],          [½, -½,  ½],
               [0,  1,  0, -1]]          [0,  0,  1]]

Summed over the input channels c, the elementwise product becomes, for each of the 16
positions (ξ, ν) of a transformed 4×4 tile, one matrix product over channels:

    M[ξν] (tiles, K) = V[ξν] (tiles, C) @ U[ξν] (C, K),    U = G g Gᵀ per kernel and channel,
                                                            V = Bᵀ d B per tile and channel

So the convolution is three steps: transform every 4×4 input tile (tiles start every 2 pixels
and overlap by 2), 16 matrix products, and transform every 4×4 result back to its 2×2 output
tile. The products do 16·C·K multiply-adds per tile where the direct sum does 36·C·K. The
input and output transforms use only additions and subtractions (the halves are in G, applied
to the weights once), so the result has round-off of the same order as the direct sum.

Backward is the same pipeline transposed. Every step is linear, so its adjoint applies the
transposed matrices in reverse order:

    dM = A dY Aᵀ                  each 2×2 output-gradient tile spread over a 4×4 one
    dU[ξν] = V[ξν]ᵀ dM[ξν]        (the product sums over the tiles)
    dV[ξν] = dM[ξν] U[ξν]ᵀ        two more products per position
    dd = B dV Bᵀ                  added back onto the overlapping input tiles
    dg = Gᵀ dU G

Strided kernels. A convolution with stride s whose kernel spans three strides (⌈kh/s⌉ = 3,
such as AlexNet's 11×11 at stride 4) is a 3×3 stride-1 convolution in disguise. Split the
padded input into its s×s phases and the kernel likewise (padded with zeros to 3s×3s; the
two axes are split independently, so sh and sw may differ as long as ⌈kh/sh⌉ = ⌈kw/sw⌉ = 3):

    X[n, P, Q, (c, r, t)] = x_pad[n, c, s·P + r, s·Q + t]
    g'[k, (c, r, t), i, j] = g[k, c, s·i + r, s·j + t]

Then out[n, k, oh, ow] = Σ g'[k, c', i, j] · X[n, oh + i, ow + j, c'], a stride-1 3×3
convolution over s²·C channels, to which the above applies. (The kernel's zero padding costs
(3s)²/(kh·kw) more multiplications, 1.19× for 11×11 at stride 4, still 1.9× fewer than directly.)
The zero taps lie over real pixels, and the transforms cancel what they see only up to
round-off; so pixels that no window of the real kernel reaches (below or right of the last
one) are not copied in at all, and get a gradient of exactly 0.

Infinite inputs: where the direct sum gives ±inf, the transforms' differences give inf − inf,
so the output is NaN there.

Layout. Inside, images are channels last, (n, rows, cols, C): the tile transforms then work on
contiguous runs of C values and the transformed tiles are already the rows of the matrices the
products need. The batch is cut into blocks (a few whole images, or a few rows of tiles of one
image) whose transformed tiles fit in the processor's cache, in reused workspace buffers.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ..tensor import array_module
from ..threads import OrderedSum, run_tiles
from ._workspace import scratch

__all__ = ["suits", "can_use", "conv_forward", "conv_backward"]

# The matrices of F(2×2, 3×3), as in the module docstring. Bᵀ and Aᵀ have entries 0 and ±1 only.
_BT = ((1, 0, -1, 0),
       (0, 1, 1, 0),
       (0, -1, 1, 0),
       (0, 1, 0, -1))
_G = ((1.0, 0.0, 0.0),
      (0.5, 0.5, 0.5),
      (0.5, -0.5, 0.5),
      (0.0, 0.0, 1.0))
_AT = ((1, 1, 1, 0),
       (0, 1, -1, -1))

_MIN_CHANNELS = 32         # for "auto": with fewer the transforms cost more than they save
_BLOCK_BYTES = 2 << 20     # transformed input and output tiles of one block (measured best from 1 to 4 MiB)
_MIN_TILES = 256           # the fewest rows a block's matrix products should have


class _Plan(NamedTuple):
    """A convolution as a stride-1 3×3 one on phases, cut into tiles."""
    stride: tuple[int, int]          # sh, sw: the phases per axis (1, 1 for a plain 3×3)
    kernel: tuple[int, int]          # kh, kw of the real kernel
    pads: tuple[int, int, int, int]  # top, bottom, left, right
    out_size: tuple[int, int]        # OH, OW
    tiles: tuple[int, int]           # th, tw: 2×2 output tiles down and across
    groups: int


def suits(geo: Any, C: int, K: int) -> bool:
    """Whether Winograd is expected to be faster than im2col for this convolution (conv's _Geometry).

    Measured (benchmarks/winograd.py, results in benchmarks/RESULTS.md): for 3×3 kernels at
    stride 1 and dilation 1, without groups, with at least 32 input and output channels and
    at least 36 output pixels. With fewer channels the transforms cost more than the products
    save; grouped layers and strided kernels on phases (AlexNet's 11×11/4) gained nothing.
    """
    OH, OW = geo.out_size
    return (geo.kernel == (3, 3) and geo.stride == (1, 1) and geo.dilation == (1, 1)
            and geo.groups == 1 and min(C, K) >= _MIN_CHANNELS and OH * OW >= 36)


def can_use(geo: Any) -> bool:
    """Whether Winograd applies at all (3×3 after phases, no dilation), whatever the channels."""
    (kh, kw), (sh, sw) = geo.kernel, geo.stride
    return geo.dilation == (1, 1) and -(-kh // sh) == 3 and -(-kw // sw) == 3


def _plan(geo: Any) -> _Plan:
    OH, OW = geo.out_size
    return _Plan(geo.stride, geo.kernel, geo.pads, geo.out_size, (-(-OH // 2), -(-OW // 2)), geo.groups)


def _blocks(N: int, plan: _Plan, channels: int, K: int, itemsize: int) -> list[tuple[int, int, int, int]]:
    """(first image, last image + 1, first tile row, last tile row + 1) of each block.

    A block's transformed tiles (V and M) should fit ``_BLOCK_BYTES``, but it also makes the
    rows of the 16 matrix products, and products with fewer than ``_MIN_TILES`` rows run
    well below the BLAS's speed: there the block grows to reach that many, cache or not.
    """
    th, tw = plan.tiles
    per_tile_row = 16 * tw * (channels + K) * itemsize             # V and M of one row of tiles
    rows = max(1, _BLOCK_BYTES // per_tile_row, -(-_MIN_TILES // tw))
    if rows >= th:                                                  # whole images per block
        step = rows // th
        return [(s, min(s + step, N), 0, th) for s in range(0, N, step)]
    return [(n, n + 1, a, min(a + rows, th)) for n in range(N) for a in range(0, th, rows)]


# ---------------------------------------------------------------------------
# the weights


def _weight_transform(w: np.ndarray, plan: _Plan) -> np.ndarray:
    """w (K, C/g, kh, kw) -> U (16, C/g·sh·sw, K): G g' Gᵀ for every kernel and phase channel.

    As vectors of 9 and 16 values, G g' Gᵀ is (G ⊗ G) g', so all kernels take one matrix product.
    """
    xp = array_module(w)
    (kh, kw), (sh, sw) = plan.kernel, plan.stride
    K, Cg = w.shape[:2]
    if (kh, kw) != (3 * sh, 3 * sw):                                # pad the kernel to 3 strides
        wp = xp.zeros((K, Cg, 3 * sh, 3 * sw), dtype=w.dtype)
        wp[:, :, :kh, :kw] = w
        w = wp
    phased = w.reshape(K, Cg, 3, sh, 3, sw).transpose(2, 4, 1, 3, 5, 0)   # (3, 3, Cg, sh, sw, K)
    GG = xp.asarray(np.kron(_G, _G), dtype=w.dtype)                # GG[(ξ, ν), (i, j)] = G[ξ, i]·G[ν, j]
    return (GG @ phased.reshape(9, -1)).reshape(16, Cg * sh * sw, K)


def _weight_transform_adjoint(dU: np.ndarray, plan: _Plan) -> np.ndarray:
    """dU (16, C/g·sh·sw, K) -> dw (K, C/g, kh, kw) = Gᵀ dU G, phases put back, padding cropped."""
    xp = array_module(dU)
    (kh, kw), (sh, sw) = plan.kernel, plan.stride
    _, channels, K = dU.shape
    Cg = channels // (sh * sw)
    GG = xp.asarray(np.kron(_G, _G), dtype=dU.dtype)
    phased = (GG.T @ dU.reshape(16, -1)).reshape(3, 3, Cg, sh, sw, K)
    w = phased.transpose(5, 2, 0, 3, 1, 4).reshape(K, Cg, 3 * sh, 3 * sw)
    return xp.ascontiguousarray(w[:, :, :kh, :kw])


# ---------------------------------------------------------------------------
# the tile transforms


def _combine(coefs: Sequence[float], terms: Any, out: np.ndarray, accumulate: bool = False) -> None:
    """out = Σ c·t over the terms whose coefficient c (±1) is not 0; or out += that sum.

    Written with in-place ufuncs, one pass per term (the first two terms in one), so no
    temporaries are made.
    """
    xp = array_module(out)
    pairs = [(c, t) for c, t in zip(coefs, terms) if c]
    if not accumulate:
        pairs.sort(key=lambda pair: pair[0] < 0)                    # a positive term first, if any
        (c, t), pairs = pairs[0], pairs[1:]
        if c < 0:
            xp.negative(t, out=out)
        elif not pairs:
            xp.copyto(out, t)
        else:
            (c1, t1), pairs = pairs[0], pairs[1:]
            (xp.add if c1 > 0 else xp.subtract)(t, t1, out=out)
    for c, t in pairs:
        (xp.add if c > 0 else xp.subtract)(out, t, out=out)


def _input_transform(X: np.ndarray, V: np.ndarray, tr: int, tw: int) -> None:
    """V[ξ, ν] = (Bᵀ d B)[ξ, ν] for every 4×4 tile d of X.

    X (n, 2·tr + 2, 2·tw + 2, C) -> V (4, 4, n, tr, tw, C): tile (a, b) is X[:, 2a:2a+4, 2b:2b+4].
    Columns are combined first (d B), then rows (Bᵀ ·), each step for all tiles at once.
    """
    n, R, _, C = X.shape
    T = scratch("wino_T", (4, n, R, tw, C), X.dtype, array_module(X))
    columns = [X[:, :, q:q + 2 * tw:2] for q in range(4)]          # column q of every tile
    for j in range(4):
        _combine(_BT[j], columns, T[j])                             # T[j] = (d B)[:, j] = Σ_q B[q, j] d[:, q]
    rows = [T[:, :, p:p + 2 * tr:2] for p in range(4)]              # row p of every tile, all j
    for i in range(4):
        _combine(_BT[i], rows, V[i])                                # V[i, j] = (Bᵀ d B)[i, j]


def _input_transform_adjoint(dV: np.ndarray, dX: np.ndarray, tr: int, tw: int) -> None:
    """The adjoint of ``_input_transform``: dX = B dV Bᵀ, each tile added onto its 4×4 place.

    dV (4, 4, n, tr, tw, C) -> dX (n, 2·tr + 2, 2·tw + 2, C). Neighbouring tiles overlap by two
    rows (columns): rows 0 and 1 of all tiles cover rows 0 … 2·tr − 1 once, so they are written;
    the last two rows are set to 0; then rows 2 and 3 of all tiles are added. Columns alike.
    """
    _, _, n, _, _, C = dV.shape
    dT = scratch("wino_dT", (4, n, 2 * tr + 2, tw, C), dV.dtype, array_module(dV))
    dT[:, :, 2 * tr:] = 0
    for p in range(4):                                              # row p of tiles: Σ_i Bᵀ[i, p] dV[i]
        _combine([_BT[i][p] for i in range(4)], dV, dT[:, :, p:p + 2 * tr:2], accumulate=p >= 2)
    dX[:, :, 2 * tw:] = 0
    for q in range(4):                                              # column q: Σ_j Bᵀ[j, q] dT[j]
        _combine([_BT[j][q] for j in range(4)], dT, dX[:, :, q:q + 2 * tw:2], accumulate=q >= 2)


def _output_transform(M: np.ndarray, Y: np.ndarray) -> None:
    """Y tile = Aᵀ M A for every transformed tile.

    M (4, 4, n, tr, tw, K) -> Y (n, tr, 2, tw, 2, K), which is (n, 2·tr, 2·tw, K) as images.
    """
    _, _, n, tr, tw, K = M.shape
    S = scratch("wino_S", (2, 4, n, tr, tw, K), M.dtype, array_module(M))
    for a in range(2):
        _combine(_AT[a], M, S[a])                                   # S[a, j] = (Aᵀ M)[a, j]
    for b in range(2):                                              # Y[a, b] = Σ_j S[a, j] A[j, b], all a
        _combine(_AT[b], [S[:, j] for j in range(4)], Y[:, :, :, :, b].transpose(2, 0, 1, 3, 4))


def _output_transform_adjoint(dY: np.ndarray, dM: np.ndarray) -> None:
    """The adjoint of ``_output_transform``: dM = A dY Aᵀ. dY (n, tr, 2, tw, 2, K) -> dM (4, 4, n, tr, tw, K)."""
    n, tr, _, tw, _, K = dY.shape
    dS = scratch("wino_dS", (2, 4, n, tr, tw, K), dY.dtype, array_module(dY))
    dYb = [dY[:, :, :, :, b].transpose(2, 0, 1, 3, 4) for b in range(2)]     # (2, n, tr, tw, K): all a
    for j in range(4):
        _combine([_AT[b][j] for b in range(2)], dYb, dS[:, j])
    for i in range(4):
        _combine([_AT[a][i] for a in range(2)], dS, dM[i])


# ---------------------------------------------------------------------------
# images in and out of the phased, channels-last layout


def _image_span(plan: _Plan, H: int, W: int, row0: int, rows: int, cols: int) -> Any:
    """(i0, i1, j0, j1): the part of a block's padded buffer (``rows`` × ``cols``, starting at
    padded row ``row0``) that holds image pixels some window reads; the rest stays 0.

    Pixels below or right of the last window are left out: a kernel padded to three strides
    has zero taps over them, which cancel them only up to round-off (an inf or NaN not at all).
    """
    (sh, sw), (kh, kw), (OH, OW) = plan.stride, plan.kernel, plan.out_size
    top, _, left, _ = plan.pads
    bottom, right = min(top + H, (OH - 1) * sh + kh), min(left + W, (OW - 1) * sw + kw)
    i0, i1 = (min(max(v - row0, 0), rows) for v in (top, bottom))
    j0, j1 = (min(max(v, 0), cols) for v in (left, right))
    return i0, max(i0, i1), j0, max(j0, j1)


def _phased_input(x: np.ndarray, plan: _Plan, a0: int, a1: int) -> Any:
    """Tile rows a0..a1 of the images x (n, C, H, W) as X (n, R, Wt, C·sh·sw), R = 2·(a1 − a0) + 2
    and Wt = 2·tw + 2 (the rows and columns of the block's tiles):

        X[n, P, Q, (c, r, t)] = x_pad[n, c, sh·(2·a0 + P) + r, sw·Q + t]

    zero outside the image and beyond the last window (``_image_span``).
    """
    xp = array_module(x)
    n, C, H, W = x.shape
    (sh, sw), (_, tw) = plan.stride, plan.tiles
    top, _, left, _ = plan.pads
    R, Wt = 2 * (a1 - a0) + 2, 2 * tw + 2
    buf = scratch("wino_x", (n, sh * R, sw * Wt, C), x.dtype, xp)  # padded rows, channels last
    row0 = sh * 2 * a0                                              # first padded row in buf
    i0, i1, j0, j1 = _image_span(plan, H, W, row0, sh * R, sw * Wt)
    buf[:, :i0] = 0
    buf[:, i1:] = 0
    buf[:, i0:i1, :j0] = 0
    buf[:, i0:i1, j1:] = 0
    if i0 < i1 and j0 < j1:
        buf[:, i0:i1, j0:j1] = x[:, :, row0 + i0 - top:row0 + i1 - top, j0 - left:j1 - left].transpose(0, 2, 3, 1)
    if (sh, sw) == (1, 1):
        return buf
    phased = scratch("wino_phases", (n, R, Wt, C, sh, sw), x.dtype, xp)
    phased[...] = buf.reshape(n, R, sh, Wt, sw, C).transpose(0, 1, 3, 5, 2, 4)
    return phased.reshape(n, R, Wt, C * sh * sw)


def _phased_input_adjoint(dX: np.ndarray, dx: np.ndarray, plan: _Plan, a0: int) -> None:
    """The adjoint of ``_phased_input``: add dX (n, R, Wt, C·sh·sw) onto the images' gradient dx (n, C, H, W)."""
    xp = array_module(dX)
    n, C, H, W = dx.shape
    (sh, sw) = plan.stride
    top, _, left, _ = plan.pads
    _, R, Wt, _ = dX.shape
    if (sh, sw) == (1, 1):
        buf = dX
    else:
        buf = scratch("wino_dx", (n, sh * R, sw * Wt, C), dX.dtype, xp)
        buf.reshape(n, R, sh, Wt, sw, C)[...] = dX.reshape(n, R, Wt, C, sh, sw).transpose(0, 1, 4, 2, 5, 3)
    row0 = sh * 2 * a0
    i0, i1, j0, j1 = _image_span(plan, H, W, row0, sh * R, sw * Wt)
    if i0 < i1 and j0 < j1:
        dx[:, :, row0 + i0 - top:row0 + i1 - top, j0 - left:j1 - left] += buf[:, i0:i1, j0:j1].transpose(0, 3, 1, 2)


# ---------------------------------------------------------------------------
# forward and backward


def conv_forward(x: np.ndarray, w: np.ndarray, geo: Any,
                 bias: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W), w (K, C/g, kh, kw), bias (K,) or None -> (a fresh out (N, K, OH, OW), U).

    U (16, C/g·sh·sw, K), the transformed weights, can be handed to ``conv_backward`` to save
    computing it again.
    """
    xp = array_module(x)
    plan = _plan(geo)
    N, C = x.shape[:2]
    K, groups = w.shape[0], plan.groups
    OH, OW = plan.out_size
    _, tw = plan.tiles
    channels = C * plan.stride[0] * plan.stride[1]                  # after phases, all groups
    cg, kg = channels // groups, K // groups
    U = _weight_transform(w, plan)                                  # (16, C'/g, K)
    out = xp.empty((N, K, OH, OW), dtype=x.dtype)
    b = None if bias is None else bias.reshape(1, K, 1, 1)
    blocks = _blocks(N, plan, channels, K, x.itemsize)

    def block(t: int) -> None:                                      # blocks write disjoint parts of out
        s, e, a0, a1 = blocks[t]
        n, tr = e - s, a1 - a0
        X = _phased_input(x[s:e], plan, a0, a1)
        V = scratch("wino_V", (4, 4, n, tr, tw, channels), x.dtype, xp)
        _input_transform(X, V, tr, tw)
        M = scratch("wino_M", (4, 4, n, tr, tw, K), x.dtype, xp)
        V16, M16 = V.reshape(16, -1, channels), M.reshape(16, -1, K)
        for k in range(groups):                                     # M = V U, group by group
            xp.matmul(V16[:, :, k * cg:(k + 1) * cg], U[:, :, k * kg:(k + 1) * kg],
                      out=M16[:, :, k * kg:(k + 1) * kg])
        Y = scratch("wino_Y", (n, tr, 2, tw, 2, K), x.dtype, xp)
        _output_transform(M, Y)
        rows = min(2 * a1, OH) - 2 * a0
        y = Y.reshape(n, 2 * tr, 2 * tw, K)[:, :rows, :OW].transpose(0, 3, 1, 2)
        dst = out[s:e, :, 2 * a0:2 * a0 + rows]
        if b is None:
            dst[...] = y
        else:
            xp.add(y, b, out=dst)
    run_tiles(block, len(blocks))
    return out, U


def conv_backward(dout: np.ndarray, w: np.ndarray, geo: Any, x: np.ndarray, input_grad: bool = True,
                  weight_grad: bool = True,
                  U: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Gradients from dout = dL/dout (N, K, OH, OW): (dx (N, C, H, W) or None, dw (K, C/g, kh, kw) or None).

    U: the transformed weights from ``conv_forward``, if at hand.
    """
    xp = array_module(dout)
    plan = _plan(geo)
    N, C = x.shape[:2]
    K = w.shape[0]
    groups = plan.groups
    OH, OW = plan.out_size
    _, tw = plan.tiles
    channels = C * plan.stride[0] * plan.stride[1]
    cg, kg = channels // groups, K // groups
    if input_grad:                                                  # Uᵀ (16, K, C'/g), read faster in rows
        UT = (_weight_transform(w, plan) if U is None else U).swapaxes(1, 2).copy()
    dU: Any = xp.zeros((16, cg, K), dtype=dout.dtype) if weight_grad else None    # each only when wanted
    dx: Any = xp.zeros(x.shape, dtype=dout.dtype) if input_grad else None
    blocks = _blocks(N, plan, channels, K, dout.itemsize)
    dU_sum: Any = OrderedSum(dU, len(blocks)) if weight_grad else None   # blocks' dU, in block order
    # the blocks of one image add onto overlapping rows of its dx: they form one tile, done in order
    tiles: list[list[int]] = []
    for t, (s, _, _, _) in enumerate(blocks):
        if tiles and blocks[tiles[-1][0]][0] == s:
            tiles[-1].append(t)
        else:
            tiles.append([t])

    def block(t: int) -> None:
        s, e, a0, a1 = blocks[t]
        n, tr = e - s, a1 - a0
        rows = min(2 * a1, OH) - 2 * a0
        dY = scratch("wino_dY", (n, 2 * tr, 2 * tw, K), dout.dtype, xp)   # dout in tiles, padded with 0
        dY[:, rows:] = 0
        dY[:, :rows, OW:] = 0
        dY[:, :rows, :OW] = dout[s:e, :, 2 * a0:2 * a0 + rows].transpose(0, 2, 3, 1)
        dM = scratch("wino_dM", (4, 4, n, tr, tw, K), dout.dtype, xp)
        _output_transform_adjoint(dY.reshape(n, tr, 2, tw, 2, K), dM)
        dM16 = dM.reshape(16, -1, K)
        if weight_grad:
            X = _phased_input(x[s:e], plan, a0, a1)
            V = scratch("wino_V", (4, 4, n, tr, tw, channels), dout.dtype, xp)
            _input_transform(X, V, tr, tw)
            V16 = V.reshape(16, -1, channels)
            part = xp.empty((16, cg, K), dtype=dout.dtype)
            for k in range(groups):                                 # dU of this block = Vᵀ dM, group by group
                xp.matmul(V16[:, :, k * cg:(k + 1) * cg].swapaxes(1, 2), dM16[:, :, k * kg:(k + 1) * kg],
                          out=part[:, :, k * kg:(k + 1) * kg])
            dU_sum.add(t, part)
        if input_grad:
            dV = scratch("wino_dV", (4, 4, n, tr, tw, channels), dout.dtype, xp)
            dV16 = dV.reshape(16, -1, channels)
            for k in range(groups):                                 # dV = dM Uᵀ, group by group
                xp.matmul(dM16[:, :, k * kg:(k + 1) * kg], UT[:, k * kg:(k + 1) * kg],
                          out=dV16[:, :, k * cg:(k + 1) * cg])
            dX = scratch("wino_dX", (n, 2 * tr + 2, 2 * tw + 2, channels), dout.dtype, xp)
            _input_transform_adjoint(dV, dX, tr, tw)
            _phased_input_adjoint(dX, dx[s:e], plan, a0)

    def tile(i: int) -> None:
        for t in tiles[i]:
            block(t)
    run_tiles(tile, len(tiles))
    dw = None if dU is None else _weight_transform_adjoint(dU, plan)
    return dx, dw
