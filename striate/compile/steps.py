"""The steps of an inference plan: each one a few NumPy calls on buffers allocated once.

A plan (``plan.py``) is a list of steps run in order over ``env``, a list of arrays
indexed by slot (one slot per traced value). A step reads its input slots and writes
its output slot, usually into a buffer it allocated when the plan was made, so that a
call allocates nothing but its result.

Layouts. A value is held in one of three layouts:

- ``"std"``: what eager striate holds, (N, C, H, W) for images, (N, F) for features;
- ``"CHWN"``: images batch last, (C, H, W, N). Every window of a convolution or a pool
  is then a block of whole rows of W·N numbers, so copying windows (im2col) moves long
  runs, a pool is a few whole-array ``maximum`` calls, and the matrix product of a
  convolution writes (K, OH, OW, N) directly: no transposes between layers;
- ``"CN"``: features batch last, (F, N): a flattened CHWN image is already one (the
  order of its rows is that of NCHW's flatten, c, h, w), and a linear layer is
  ``W @ x`` with no transposed copy.

Parameters are never copied at plan time: a step holds :class:`Source` objects that
fetch the model's current array at each call, so a training step or a
``load_state_dict`` is seen. What is derived from parameters (batch norm folded into a
convolution) is recomputed at each call, into a buffer; it costs one pass over the
convolution's weights.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..tensor import Tensor
from ..threads import run_tiles

__all__ = [
    "UNARY",
    "AddStep",
    "BatchNormStep",
    "ConcatStep",
    "ConvStep",
    "EagerStep",
    "LRNStep",
    "LayoutStep",
    "LinearStep",
    "PoolStep",
    "Source",
    "Step",
    "UnaryStep",
    "ViewStep",
    "to_layout",
]

FUNCTIONAL = ("im2col", "winograd")     # conv algorithms run by striate.functional.conv2d


def nbytes(shape, dtype) -> int:
    return int(math.prod(shape)) * np.dtype(dtype).itemsize


def fmt_bytes(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def to_layout(a: np.ndarray, src: str, dst: str, out: np.ndarray | None = None) -> np.ndarray:
    """``a`` (held in layout ``src``) as layout ``dst``, copied into ``out`` (or a fresh array)."""
    if src == dst:
        view = a
    elif (src, dst) == ("CHWN", "std"):
        view = a.transpose(3, 0, 1, 2)
    elif (src, dst) == ("std", "CHWN"):
        view = a.transpose(1, 2, 3, 0)
    elif {src, dst} == {"CN", "std"}:
        view = a.T
    else:
        raise ValueError(f"no conversion from layout {src} to {dst}")
    if out is None:
        return np.array(view, order="C")
    out[...] = view
    return out


class Source:
    """The current array of a parameter or buffer of the model (or a traced constant).

    Looked up at every call through the module that owns it, so a parameter whose
    ``.data`` was replaced, or a buffer reassigned, is still found.
    """

    def __init__(self, value, owners: dict[str, Any]):
        self.name = value.name
        self.kind = value.kind
        self.constant = value.data
        self.owner: Any = None
        if value.kind in ("parameter", "buffer"):
            module_name, _, attr = value.name.rpartition(".")
            self.owner, self.attr = owners[module_name], attr

    def get(self) -> np.ndarray:
        if self.kind == "parameter":
            return self.owner._parameters[self.attr].data
        if self.kind == "buffer":
            return self.owner._buffers[self.attr]
        return self.constant

    def tensor(self):
        """What to hand an eager op: the Parameter itself, else the array."""
        if self.kind == "parameter":
            return self.owner._parameters[self.attr]
        return self.get()


class Step:
    """One step of a plan: ``run(env)`` reads ``inputs`` slots and writes ``output``."""
    title = "step"

    def __init__(self, inputs: list[int], output: int, out_layout: str):
        self.inputs, self.output, self.out_layout = inputs, output, out_layout
        self.notes: list[str] = []          # what was fused, folded, chosen, and why
        self.buffers: dict[str, np.ndarray] = {}
        self.modules: list[str] = []
        self.out_shape: tuple[int, ...] = ()

    def buffer(self, name: str, shape, dtype, fill: float | None = None) -> np.ndarray:
        a = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
        self.buffers[name] = a
        return a

    def buffer_bytes(self) -> int:
        return sum(a.nbytes for a in self.buffers.values())

    def run(self, env: list) -> None:
        raise NotImplementedError

    def label(self) -> str:
        return self.title


# ---------------------------------------------------------------------------
# activations, applied in place on a buffer a step owns


def _relu(a, out):
    np.maximum(a, 0, out=out)


def _scaled_tanh(a, out, amp=1.7159, s=2 / 3):
    np.multiply(a, s, out=out)
    np.tanh(out, out=out)
    np.multiply(out, amp, out=out)


def _tanh(a, out):
    np.tanh(a, out=out)


def _sigmoid(a, out):
    np.negative(a, out=out)
    np.exp(out, out=out)
    np.add(out, 1, out=out)
    np.reciprocal(out, out=out)


UNARY: dict[str, Callable] = {"relu": _relu, "scaled_tanh": _scaled_tanh, "tanh": _tanh, "sigmoid": _sigmoid}
MONOTONE = {"relu", "scaled_tanh", "tanh", "sigmoid"}   # nondecreasing: they commute with max


def activation(op: str, args: dict) -> Callable | None:
    """The in-place function for a traced activation record, or None when not supported."""
    if op == "scaled_tanh":
        amp, s = float(args["a"]), float(args["s"])
        return lambda a, out: _scaled_tanh(a, out, amp, s)
    return UNARY.get(op)


# ---------------------------------------------------------------------------
# pooling on CHWN arrays


class PoolGeometry:
    """Max or average pool windows without dilation, on (C, H, W, n) arrays."""

    def __init__(self, kind: str, kernel, stride, padding, in_hw):
        self.kind, self.kernel, self.stride, self.padding = kind, kernel, stride, padding
        (H, W), (kh, kw), (sh, sw), (ph, pw) = in_hw, kernel, stride, padding
        self.in_hw = (H, W)
        self.out_hw = ((H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1)

    def describe(self) -> str:
        s = f"{self.kind}_pool {self.kernel[0]}×{self.kernel[1]}"
        if self.stride != self.kernel:
            s += f" stride {self.stride[0]}×{self.stride[1]}"
        if any(self.padding):
            s += f" padding {self.padding}"
        return s

    def apply(self, x: np.ndarray, out: np.ndarray, rows: np.ndarray) -> None:
        """Pool x (C, Hp, Wp, n), already padded, into out (C, OH, OW, n); separable:
        rows (C, OH, Wp, n) first takes the maximum (sum) down each window's rows."""
        (kh, kw), (sh, sw), (OH, OW) = self.kernel, self.stride, out.shape[1:3]
        fold = np.maximum if self.kind == "max" else np.add
        span_h, span_w = (OH - 1) * sh + 1, (OW - 1) * sw + 1
        if kh == 1:
            rows = x[:, :span_h:sh]
        else:
            fold(x[:, 0:span_h:sh], x[:, 1:1 + span_h:sh], out=rows)
            for i in range(2, kh):
                fold(rows, x[:, i:i + span_h:sh], out=rows)
        if kw == 1:
            out[...] = rows[:, :, :span_w:sw]
        else:
            fold(rows[:, :, 0:span_w:sw], rows[:, :, 1:1 + span_w:sw], out=out)
            for j in range(2, kw):
                fold(out, rows[:, :, j:j + span_w:sw], out=out)
        if self.kind == "avg":
            np.multiply(out, 1.0 / (kh * kw), out=out)


class PoolStep(Step):
    """max_pool2d or avg_pool2d on a CHWN input (padding: a border of −∞ or 0 set once)."""
    title = "pool"

    def __init__(self, inputs, output, pool: PoolGeometry, C: int, N: int, dtype):
        super().__init__(inputs, output, "CHWN")
        self.pool = pool
        (H, W), (ph, pw) = pool.in_hw, pool.padding
        self.padded = None
        if ph or pw:
            fill = -np.inf if pool.kind == "max" else 0.0
            self.padded = self.buffer("padded", (C, H + 2 * ph, W + 2 * pw, N), dtype, fill)
        Wp = W + 2 * pw
        self.rows = self.buffer("rows", (C, pool.out_hw[0], Wp, N), dtype)
        self.out = self.buffer("out", (C, *pool.out_hw, N), dtype)
        self.out_shape = self.out.shape

    def run(self, env):
        x = env[self.inputs[0]]
        if self.padded is not None:
            (H, W), (ph, pw) = self.pool.in_hw, self.pool.padding
            self.padded[:, ph:ph + H, pw:pw + W] = x
            x = self.padded
        self.pool.apply(x, self.out, self.rows)
        env[self.output] = self.out

    def label(self):
        return self.pool.describe()


# ---------------------------------------------------------------------------
# convolution


class ConvStep(Step):
    """conv2d on CHWN blocks of the batch, with what follows it fused.

    For each block of ``n`` images: copy the block (padded) into a buffer, copy its
    windows into the columns (C/g·kh·kw, OH·OW·n) with one strided copy, one matrix
    product per group writes (K, OH, OW, n); then, still in cache, the fused max pool,
    and bias (+ batch norm's shift) and activation, on the pooled block when there is a
    pool (max commutes with adding a per-channel constant and with a nondecreasing
    activation, so they run on the smaller array).

    ``algorithm`` "gemm" does the above; "im2col" and "winograd" call
    ``striate.functional.conv2d`` with that algorithm on the whole batch in NCHW (Winograd's
    F(2×2, 3×3): 2.25× fewer multiplications for 3×3 kernels) and reorder its result.
    """
    title = "conv"

    def __init__(self, inputs, output, in_layout: str, x_shape, geo, K: int, weight: Source,
                 bias: Source | None, dtype, bn: dict | None = None, act: tuple[str, Callable] | None = None,
                 pool: PoolGeometry | None = None, conv_fn: Callable | None = None, padding_arg: Any = 0,
                 threads: int = 1):
        super().__init__(inputs, output, "CHWN")
        self.threads = threads                 # 2: the blocks may be shared by two of striate's threads
        self.workers = 1
        self.blocks2: dict[int, dict] = {}
        self.padding_arg = padding_arg
        self.in_layout, self.x_shape, self.geo, self.K = in_layout, tuple(x_shape), geo, K
        self.weight, self.bias, self.bn, self.act, self.pool = weight, bias, bn, act, pool
        self.dtype, self.conv_fn = np.dtype(dtype), conv_fn
        N, C = self.x_shape[:2]
        g = geo.groups
        (kh, kw), (OH, OW) = geo.kernel, geo.out_size
        self.rows_per_group = C // g * kh * kw
        out_hw = pool.out_hw if pool else (OH, OW)
        self.out = self.buffer("out", (K, *out_hw, N), dtype)
        self.out_shape = self.out.shape
        self.fold_w: Any = self.buffer("folded weight", (g, K // g, self.rows_per_group), dtype) if bn else None
        self.shift: Any = self.buffer("shift", (K, 1, 1, 1), dtype) if (bn or bias) else None
        self.n = 0
        self.rows = geo.out_size[0]          # output rows per chunk of a block (all of them: no chunks)
        self.timings: dict[str, float] = {}
        self.algorithm = "gemm"

    # -- sizes -----------------------------------------------------------------
    def col_bytes(self, n: int) -> int:
        (OH, OW) = self.geo.out_size
        return self.x_shape[1] * self.geo.kernel[0] * self.geo.kernel[1] * OH * OW * n * self.dtype.itemsize

    def candidates(self) -> list[int]:
        """Block sizes to try: powers of two whose columns fit 4 MiB, and the whole batch."""
        N = self.x_shape[0]
        sizes = {n for n in (1, 2, 4, 8, 16, 32, 64, 128) if n < N and self.col_bytes(n) <= 4 << 20}
        if not sizes or self.col_bytes(N) <= 16 << 20 or len(sizes) < 2:
            sizes.add(N)
        return sorted(sizes)

    def row_chunks(self) -> list[int]:
        """Output rows per chunk that a block may be cut into: divisors of OH; with a fused
        pool, whole windows that do not overlap (kernel = stride down the rows)."""
        OH = self.geo.out_size[0]
        if self.pool is not None:
            (pk, _), (ps, _) = self.pool.kernel, self.pool.stride
            if pk != ps or OH % ps or self.pool.out_hw[0] * ps != OH:
                return []
            return [r for r in range(ps, OH, ps) if OH % r == 0]
        return [r for r in range(1, OH) if OH % r == 0]

    def row_options(self) -> list[tuple[int, int]]:
        """(images, rows) blocks whose columns fit 1 MiB by cutting large blocks into row chunks:
        the copies and the pool then run over long rows of many images, in cache."""
        OH = self.geo.out_size[0]
        options = []
        for n in sorted({self.x_shape[0]} | {c for c in self.candidates() if c >= 8}):
            fits = [r for r in self.row_chunks() if self.col_bytes(n) * r // OH <= 1 << 20]
            if fits and self.col_bytes(n) > 1 << 20:
                options.append((n, max(fits)))
        return options

    def default_block(self) -> int:
        """Without measuring: the most images whose columns fit 1 MiB (about an L2 cache)."""
        fits = [n for n in self.candidates() if self.col_bytes(n) <= 1 << 20]
        return max(fits) if fits else min(self.candidates())

    def set_block(self, n: int, algorithm: str = "gemm", rows: int | None = None, workers: int = 1) -> None:
        """Allocate the per-block buffers for blocks of ``n`` images (and for the shorter last
        block when ``n`` does not divide the batch), each cut in chunks of ``rows`` output rows;
        with 2 ``workers``, a second set for the thread that takes the second half."""
        for name in list(self.buffers):
            if name not in ("out", "folded weight", "shift"):
                del self.buffers[name]
        self.n, self.algorithm = n, algorithm
        self.rows = rows or self.geo.out_size[0]
        self.workers = workers if algorithm == "gemm" and n < self.x_shape[0] else 1
        self.blocks2 = {}
        if self.workers == 2:
            N = self.x_shape[0]
            self.blocks2[n] = self._block_buffers(n, " (second thread)")
            if N % n:
                self.blocks2[N % n] = self._block_buffers(N % n, f" (second thread, last block, {N % n})")
        N, C, H, W = self.x_shape
        self.blocks: dict[int, dict] = {}
        if algorithm in FUNCTIONAL:
            self.n = N
            if self.in_layout != "std":
                self.buffer("nchw in", (N, C, H, W), self.dtype)
            self.blocks[N] = {"y": self.buffer("conv out", (self.K, *self.geo.out_size, N), self.dtype)}
            if self.pool:
                self.blocks[N]["rows"] = self.buffer(
                    "pool rows", (self.K, self.pool.out_hw[0], self.geo.out_size[1], N), self.dtype)
            return
        self.blocks[n] = self._block_buffers(n, "")
        if N % n:
            self.blocks[N % n] = self._block_buffers(N % n, f" (last block, {N % n})")

    def _block_buffers(self, n: int, suffix: str) -> dict:
        N, C, H, W = self.x_shape
        (top, bottom, left, right) = self.geo.pads
        (kh, kw), (OH, OW) = self.geo.kernel, self.geo.out_size
        dt = self.dtype
        direct = self.in_layout == "CHWN" and n == N and not any(self.geo.pads)
        block = {"padded": None if direct else self.buffer(
            "padded" + suffix, (C, H + top + bottom, W + left + right, n), dt, 0.0)}  # the border stays 0
        R = self.rows
        block["cols"] = self.buffer("cols" + suffix, (C, kh, kw, R, OW, n), dt)
        fused_into_out = self.pool is None and n == N and R == OH
        block["y"] = self.out if fused_into_out else self.buffer("conv out" + suffix, (self.K, R, OW, n), dt)
        if self.pool:
            pooled_rows = self.pool.out_hw[0] if R == OH else R // self.pool.stride[0]
            block["rows"] = self.buffer("pool rows" + suffix, (self.K, pooled_rows, OW, n), dt)
        return block

    # -- weights ---------------------------------------------------------------
    def weights(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(g, K/g, C/g·kh·kw) weight matrix and the (K, 1, 1, 1) shift, batch norm folded in."""
        g, K = self.geo.groups, self.K
        w = self.weight.get().reshape(g, K // g, self.rows_per_group)
        b = None if self.bias is None else self.bias.get()
        if self.bn is None:
            if b is None:
                return w, None
            self.shift.reshape(K)[...] = b
            return w, self.shift
        mean, var = self.bn["mean"].get(), self.bn["var"].get()
        scale = 1.0 / np.sqrt(var.astype(np.float64) + self.bn["eps"])
        if self.bn["gamma"] is not None:
            scale = scale * self.bn["gamma"].get()
        shift = -mean * scale
        if b is not None:
            shift = shift + b * scale
        if self.bn["beta"] is not None:
            shift = shift + self.bn["beta"].get()
        np.multiply(w, scale.astype(self.dtype).reshape(g, K // g, 1), out=self.fold_w)
        self.shift.reshape(K)[...] = shift
        return self.fold_w, self.shift

    # -- running -----------------------------------------------------------------
    def run(self, env):
        x = env[self.inputs[0]]
        w, shift = self.weights()
        N = self.x_shape[0]
        if self.algorithm in FUNCTIONAL:
            self._eager(x, w)
            self._epilogue(self.blocks[N], self.out, shift)
        else:
            whole = self.n == N and self.rows == self.geo.out_size[0]
            ranges = [(s, min(s + self.n, N)) for s in range(0, N, self.n)]
            if self.workers == 2:                       # two halves, each with its own buffers, on striate's threads
                half = len(ranges) // 2
                halves = ((ranges[:half], self.blocks), (ranges[half:], self.blocks2))
                run_tiles(lambda i: self._run_blocks(x, w, shift, halves[i][0], halves[i][1], whole), 2)
            else:
                self._run_blocks(x, w, shift, ranges, self.blocks, whole)
            if self.pool is not None and not whole:     # the pooled output is small: one pass for all
                self._shift_act(self.out, shift)
        env[self.output] = self.out

    def _run_blocks(self, x, w, shift, ranges, blocks, whole):
        OH, R = self.geo.out_size[0], self.rows
        step = self.pool.stride[0] if (self.pool is not None and R < OH) else 1
        for s, e in ranges:
            block = blocks[e - s]
            xp = self._block_input(x, s, e, block["padded"])
            for r0 in range(0, OH, R):
                self._gemm_chunk(xp, w, r0, e - s, block)
                out = self.out[..., s:e] if R == OH else self.out[:, r0 // step:(r0 + R) // step, :, s:e]
                self._epilogue(block, out, shift, whole)

    def _block_input(self, x, s, e, padded):
        if padded is None:
            return x
        top, _, left, _ = self.geo.pads
        H, W = self.x_shape[2:]
        dst = padded[:, top:top + H, left:left + W]
        if self.in_layout == "std":
            dst[...] = x[s:e].transpose(1, 2, 3, 0)
        else:
            dst[...] = x[..., s:e]
        return padded

    def _gemm_chunk(self, xp, w, r0, n, block):
        """Output rows r0 … r0 + rows of a block: im2col of their windows, then the product."""
        (sh, sw), (dh, dw), (kh, kw) = self.geo.stride, self.geo.dilation, self.geo.kernel
        R, OW = self.rows, self.geo.out_size[1]
        C, g = self.x_shape[1], self.geo.groups
        sC, sH, sW, sN = xp.strides
        cols = block["cols"]
        cols[...] = as_strided(xp[:, r0 * sh:], (C, kh, kw, R, OW, n),
                               (sC, dh * sH, dw * sW, sh * sH, sw * sW, sN), writeable=False)   # one copy
        mats = cols.reshape(g, self.rows_per_group, R * OW * n)
        ys = block["y"].reshape(g, self.K // g, R * OW * n)
        for k in range(g):                 # 2-D products: NumPy's stacked matmul can be far slower
            np.matmul(w[k], mats[k], out=ys[k])

    def _eager(self, x, w):
        if self.in_layout != "std":
            x = to_layout(x, self.in_layout, "std", self.buffers["nchw in"])
        g = self.geo
        res = self.conv_fn(x, w.reshape(self.K, -1, *g.kernel), None, stride=g.stride,
                           padding=self.padding_arg, dilation=g.dilation, groups=g.groups,
                           algorithm=self.algorithm).data
        self.blocks[self.x_shape[0]]["y"][...] = res.transpose(1, 2, 3, 0)

    def _epilogue(self, block, out, shift, whole=True):
        y = block["y"]
        if self.pool is not None:
            self.pool.apply(y, out, block["rows"])
            if whole:                                      # else once after the last block
                self._shift_act(out, shift)
            return
        if y is not out:
            if shift is not None:
                np.add(y, shift, out=out)             # into place and add the bias: one pass
            else:
                out[...] = y
        elif shift is not None:
            np.add(out, shift, out=out)
        if self.act is not None:
            self.act[1](out, out)

    def _shift_act(self, out, shift):
        if shift is not None:
            np.add(out, shift, out=out)
        if self.act is not None:
            self.act[1](out, out)

    # -- measurement ---------------------------------------------------------------
    def choose(self, env, can_eager: bool, rounds: int = 15, budget: float = 0.3) -> None:
        """Time each candidate on the example's data and keep the fastest.

        The candidates run in turn, round after round (a burst of load from elsewhere then
        lands on all of them), and each keeps its best time; at least 3 rounds, then no
        more once ``budget`` seconds have passed.
        """
        OH, N = self.geo.out_size[0], self.x_shape[0]
        options = [("gemm", n, OH, 1) for n in self.candidates()]
        options += [("gemm", n, r, 1) for n, r in self.row_options()]
        if self.threads >= 2:
            options += [(a, n, r, 2) for a, n, r, _ in options if 2 * n <= N]
        if can_eager:
            options.append(("im2col", N, OH, 1))
            if self.winograd_applies():
                options.append(("winograd", N, OH, 1))
        made = {}
        for option in options:
            self.set_block(option[1], option[0], option[2], option[3])
            made[option] = self._state()
            self.run(env)                                           # first touch of the buffers
        best = {option: math.inf for option in options}
        start = time.perf_counter()
        for r in range(rounds):
            for option in (options if r % 2 == 0 else options[::-1]):
                self._restore(made[option])
                t0 = time.perf_counter()
                self.run(env)
                best[option] = min(best[option], time.perf_counter() - t0)
            if r >= 2 and time.perf_counter() - start > budget:
                break
        self.timings = {self._name(*option): t for option, t in best.items()}
        name = min(self.timings, key=lambda k: self.timings[k])
        option = next(o for o in options if self._name(*o) == name)
        self._restore(made[option])

    def _state(self) -> tuple:
        return (self.blocks, self.blocks2, dict(self.buffers), self.n, self.algorithm, self.rows, self.workers)

    def _restore(self, state: tuple) -> None:
        self.blocks, self.blocks2, self.buffers, self.n, self.algorithm, self.rows, self.workers = state

    def winograd_applies(self) -> bool:
        """Winograd's F(2×2, 3×3) covers 3×3 kernels at stride 1 (and 5–6 at stride 2...), no dilation."""
        (kh, kw), (sh, sw) = self.geo.kernel, self.geo.stride
        return self.geo.dilation == (1, 1) and -(-kh // sh) == 3 and -(-kw // sw) == 3

    def _name(self, algorithm, n, rows=None, workers=1) -> str:
        if algorithm == "im2col":
            return "functional im2col (NCHW, whole batch)"
        if algorithm == "winograd":
            return "Winograd F(2×2,3×3) (NCHW, whole batch)"
        name = f"im2col+GEMM, {n} image{'s' if n > 1 else ''}/block"
        if rows is not None and rows < self.geo.out_size[0]:
            name += f" in chunks of {rows} row{'s' if rows > 1 else ''}"
        if workers == 2:
            name += ", 2 threads"
        return name

    def label(self):
        C = self.x_shape[1]
        (kh, kw) = self.geo.kernel
        parts = [f"conv2d {C}→{self.K} {kh}×{kw}"]
        if self.geo.stride != (1, 1):
            parts[0] += f" stride {self.geo.stride[0]}"
        if any(self.geo.pads):
            parts[0] += f" pad {self.geo.pads[0]}"
        if self.geo.dilation != (1, 1):
            parts[0] += f" dilation {self.geo.dilation[0]}"
        if self.geo.groups != 1:
            parts[0] += f" groups {self.geo.groups}"
        if self.bn:
            parts.append("batch_norm (folded)")
        if self.bias is not None:
            parts.append("bias")
        if self.act:
            parts.append(self.act[0])
        if self.pool:
            parts.append(self.pool.describe())
        return " + ".join(parts)


# ---------------------------------------------------------------------------
# the other steps


class LinearStep(Step):
    """linear (+ activation): ``W @ x`` on CN features, ``x @ Wᵀ`` on std ones; bias and
    activation in place on the product."""
    title = "linear"

    def __init__(self, inputs, output, layout: str, N: int, weight: Source, bias: Source | None, F_out: int,
                 dtype, act=None):
        super().__init__(inputs, output, layout)
        self.weight, self.bias, self.act = weight, bias, act
        shape = (F_out, N) if layout == "CN" else (N, F_out)
        self.out = self.buffer("out", shape, dtype)
        self.out_shape = shape
        self.F_out = F_out

    def run(self, env):
        x = env[self.inputs[0]]
        w = self.weight.get()
        if self.out_layout == "CN":
            np.matmul(w, x, out=self.out)
            if self.bias is not None:
                np.add(self.out, self.bias.get()[:, None], out=self.out)
        else:
            np.matmul(x, w.T, out=self.out)
            if self.bias is not None:
                np.add(self.out, self.bias.get(), out=self.out)
        if self.act is not None:
            self.act[1](self.out, self.out)
        env[self.output] = self.out

    def label(self):
        w = self.weight.get()
        s = f"linear {w.shape[1]}→{w.shape[0]}"
        if self.bias is not None:
            s += " + bias"
        if self.act:
            s += f" + {self.act[0]}"
        return s


class UnaryStep(Step):
    """An elementwise activation, in place when its input is a buffer no one else reads."""
    title = "activation"

    def __init__(self, inputs, output, layout, shape, dtype, fn, name, in_place: bool):
        super().__init__(inputs, output, layout)
        self.fn, self.name, self.in_place = fn, name, in_place
        self.out = None if in_place else self.buffer("out", shape, dtype)
        self.out_shape = tuple(shape)

    def run(self, env):
        x = env[self.inputs[0]]
        out = x if self.in_place else self.out
        self.fn(x, out)
        env[self.output] = out

    def label(self):
        return self.name + (" (in place)" if self.in_place else "")


class AddStep(Step):
    """a + b of two traced values of the same shape and layout (a residual connection)."""
    title = "add"

    def __init__(self, inputs, output, layout, shape, dtype):
        super().__init__(inputs, output, layout)
        self.out = self.buffer("out", shape, dtype)
        self.out_shape = tuple(shape)

    def run(self, env):
        np.add(env[self.inputs[0]], env[self.inputs[1]], out=self.out)
        env[self.output] = self.out


class ConcatStep(Step):
    """Concatenation along the channels: axis 0 batch last, axis 1 in std."""
    title = "concat"

    def __init__(self, inputs, output, layout, shape, dtype, axis):
        super().__init__(inputs, output, layout)
        self.axis = axis
        self.out = self.buffer("out", shape, dtype)
        self.out_shape = tuple(shape)

    def run(self, env):
        np.concatenate([env[i] for i in self.inputs], axis=self.axis, out=self.out)
        env[self.output] = self.out


class BatchNormStep(Step):
    """Batch norm in evaluation, not after a convolution: x·scale + shift per channel."""
    title = "batch_norm"

    def __init__(self, inputs, output, layout, shape, dtype, bn: dict, in_place: bool):
        super().__init__(inputs, output, layout)
        self.bn, self.in_place = bn, in_place
        self.out = None if in_place else self.buffer("out", shape, dtype)
        C = shape[0] if layout in ("CHWN", "CN") else shape[1]
        bshape = [1] * len(shape)
        bshape[0 if layout in ("CHWN", "CN") else 1] = C
        self.scale = self.buffer("scale", bshape, dtype)
        self.shift = self.buffer("shift", bshape, dtype)
        self.out_shape = tuple(shape)

    def run(self, env):
        bn = self.bn
        scale = 1.0 / np.sqrt(bn["var"].get().astype(np.float64) + bn["eps"])
        if bn["gamma"] is not None:
            scale = scale * bn["gamma"].get()
        shift = -bn["mean"].get() * scale
        if bn["beta"] is not None:
            shift = shift + bn["beta"].get()
        self.scale.reshape(-1)[...] = scale
        self.shift.reshape(-1)[...] = shift
        x = env[self.inputs[0]]
        out = x if self.in_place else self.out
        np.multiply(x, self.scale, out=out)
        np.add(out, self.shift, out=out)
        env[self.output] = out

    def label(self):
        return "batch_norm (running statistics)"


class LRNStep(Step):
    """local_response_norm across channels on CHWN: the channel window is a sum of shifted
    whole (H, W, N) planes."""
    title = "lrn"

    def __init__(self, inputs, output, shape, dtype, size, alpha, beta, k):
        super().__init__(inputs, output, "CHWN")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.sq = self.buffer("squares", shape, dtype)
        self.acc = self.buffer("window sums", shape, dtype)
        self.out = self.buffer("out", shape, dtype)
        self.out_shape = tuple(shape)

    def run(self, env):
        x = env[self.inputs[0]]
        C = x.shape[0]
        before, after = self.size // 2, (self.size - 1) // 2
        np.multiply(x, x, out=self.sq)
        self.acc[...] = self.sq
        for off in range(-before, after + 1):
            if off == 0 or abs(off) >= C:
                continue
            if off > 0:
                np.add(self.acc[:C - off], self.sq[off:], out=self.acc[:C - off])
            else:
                np.add(self.acc[-off:], self.sq[:C + off], out=self.acc[-off:])
        dt = x.dtype.type
        np.multiply(self.acc, dt(self.alpha / self.size), out=self.acc)
        np.add(self.acc, dt(self.k), out=self.acc)
        np.power(self.acc, dt(-self.beta), out=self.acc)
        np.multiply(x, self.acc, out=self.out)
        env[self.output] = self.out

    def label(self):
        return f"local_response_norm size {self.size}"


class ViewStep(Step):
    """A reshape that costs nothing (flatten of a CHWN image to CN features)."""
    title = "view"

    def __init__(self, inputs, output, layout, shape):
        super().__init__(inputs, output, layout)
        self.out_shape = tuple(shape)

    def run(self, env):
        env[self.output] = env[self.inputs[0]].reshape(self.out_shape)

    def label(self):
        return f"flatten (a view, {self.out_layout})"


class LayoutStep(Step):
    """Reorder a value between layouts, into a buffer."""
    title = "layout"

    def __init__(self, inputs, output, src, dst, shape, dtype):
        super().__init__(inputs, output, dst)
        self.src = src
        self.out = self.buffer("out", shape, dtype)
        self.out_shape = tuple(shape)

    def run(self, env):
        to_layout(env[self.inputs[0]], self.src, self.out_layout, self.out)
        env[self.output] = self.out

    def label(self):
        return f"reorder {self.src} → {self.out_layout}"


class EagerStep(Step):
    """Any other op, run as in eager mode (no gradients): ``fn(**args)`` on std arrays."""
    title = "eager"

    def __init__(self, inputs, outputs: list[int], fn, signature, args: dict, resolve: Callable, op: str):
        super().__init__(inputs, outputs[0], "std")
        self.outputs, self.fn, self.signature, self.args, self.resolve, self.op = (
            outputs, fn, signature, args, resolve, op)

    def run(self, env):
        import inspect
        arguments = {k: self.resolve(v, env) for k, v in self.args.items()}
        bound = inspect.BoundArguments(self.signature, arguments)
        out = self.fn(*bound.args, **bound.kwargs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        for slot, o in zip(self.outputs, outs):
            env[slot] = o.data if isinstance(o, Tensor) else o

    def label(self):
        return f"{self.op} (as in eager mode)"
