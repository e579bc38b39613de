"""The neocognitron: Fukushima's self-organising, shift-tolerant network of 1980.

Source: K. Fukushima, "Neocognitron: A Self-organizing Neural Network Model for a
Mechanism of Pattern Recognition Unaffected by Shift in Position", Biological
Cybernetics 36, 193–202 (1980).

It is the ancestor of the convolutional network: its S-cells (after the simple
cells of Hubel and Wiesel) share their input weights across a whole cell-plane,
which is a convolution, and its C-cells (complex cells) blur and subsample the
S-planes with fixed weights, which is a pooling. What differs from a CNN is
everything else: the cells divide instead of add (shunting inhibition), and
nothing is trained by gradients. The weights organise themselves, without
labels, while patterns are shown.

Layout (``Neocognitron()``)::

    layer  cell-planes  cells per plane  each cell reads
    U0          1          16×16         (the input, 0 = dark, 1 = lit)
    US1        24          16×16         5×5 cells of U0
    UC1        24          10×10         5×5 cells of its own US1 plane
    US2        24           8×8          5×5 cells of every UC1 plane
    UC2        24           6×6          5×5 cells of its own US2 plane
    US3        24           2×2          5×5 cells of every UC2 plane
    UC3        24           1×1          2×2 cells (all) of its own US3 plane

What is learnt are the S-layers' a and b: 24·(1 + 24 + 24)·25 + 3·24 = 29,472
numbers, kept as buffers, not parameters (no gradient ever reaches them), so
``st.summary`` counts 0 parameters. Every layer covers the same 16×16 field at a
lower density. A cell j of an
n-cell row sits at field position (j + ½)·16/n; it reads the k×k window of the
layer below centred on the cell of that layer under it (cells beyond the edge
are silent). For equal sizes this is a stride-1 convolution with zero
padding; for 16 → 10 it is a convolution sampled at the positions
0, 2, 4, 5, 7, 8, 10, 12, 13, 15 (a "stride" of 1.6).

Notation: l the stage (1, 2, 3), k a cell-plane of this stage, κ a plane of the
stage below, n a position, ν an offset inside a connectable area, φ[x] = max(x, 0).

**S-cells** (feature extraction; ``SLayer``)::

    u_S(k, n) = r · φ[ (1 + Σ_κ Σ_ν a(κ, ν, k) · u_C(κ, n+ν)) / (1 + θ · b(k) · v_C(n)) − 1 ],
                θ = 2r / (1 + r)

with one inhibitory **V-cell** per position, shared by the S-cells of all planes
there: a weighted root mean square of their inputs::

    v_C(n) = sqrt( Σ_κ Σ_ν c(ν) · u_C(κ, n+ν)² )

The excitatory weights a ≥ 0 and the inhibitory weight b ≥ 0 are learnt; c is
fixed. The division is the shunting inhibition. After a plane has learnt a
feature well (large a and b; see below), its cells answer an input x with about
``(1 + r)·cos(x, feature) − r`` (cos in the inner product weighted by c): only
inputs closer than cos = r/(1 + r) excite it. r is the **selectivity**: with
r = 4 an S1 cell needs cos > 0.8, with r = 1.5 an S2 or S3 cell cos > 0.6.

**C-cells** (tolerance to shift; ``CLayer``): fixed blurring connections d from
the S-plane of the same index, inhibition by the mean over planes, and
saturation::

    u_C(k, n) = ψ[ (1 + Σ_ν d(ν) · u_S(k, n+ν)) / (1 + v_S(n)) − 1 ],   ψ[x] = φ[x] / (α + φ[x])
    v_S(n)   = (1/K) Σ_k Σ_ν d(ν) · u_S(k, n+ν)

**Self-organisation** (``Neocognitron.present``), for each pattern shown, with
no teacher: in each S-column (the cells of all planes around one position)
the cell with the largest output is a *candidate*; in each plane the
strongest candidate, if any, is the plane's *representative*; only
representatives are reinforced, and since all cells of a plane share their
weights, the whole plane learns::

    Δa(κ, ν, k̂) = q · c(ν) · u_C(κ, n̂+ν)          Δb(k̂) = (q/2) · v_C(n̂)

(k̂ a plane with a representative, n̂ where it is). Planes that never won keep
their small random initial weights and b = 0, so they answer anything weakly:
they are the reserve from which new features are recruited.

What comes from the paper and what does not. From the paper: the equations
above, the layer structure (U0 of 16×16, three stages of 24 cell-planes, S-cells
with 5×5 connectable areas), the learning rule and the representative
selection, and the experiment with the digit patterns "0"–"4". The constants
marked (unconfirmed) are our own choices, set so that the network behaves as
the paper reports, because we could not check them against the paper's text::

    r = (4.0, 1.5, 1.5)            selectivity of US1, US2, US3               (unconfirmed)
    q = (1.0, 16.0, 16.0)          reinforcement rate                         (unconfirmed)
    α = 0.5                        C-cell saturation                          (unconfirmed)
    c(ν) ∝ 0.8^|ν|, Σ_κ Σ_ν c = 1  V-cell weights                             (unconfirmed)
    d(ν) ∝ 0.8^|ν|, d(0) = 1       C-cell blurring weights                    (unconfirmed)
    plane sizes 16, 10, 8, 6, 2, 1; C-cell areas 5×5, 5×5, 2×2                (unconfirmed)
    S-column: 7×7 positions × all planes                                      (unconfirmed)
    initial a uniform in [0, 0.01·max c]; b = 0                               (unconfirmed)
    stage 1 organised first, then stage 2, then stage 3                       (unconfirmed)

Two of them matter a lot. With d summing to 1 the C-cells pass on a small
fraction of a lone S-cell's output; an S-cell's answer to a weak input is only
the weak input times a gain below one (the normalised answer above holds once
θ·b·v is large against 1), so activity fades away stage by stage and UC3 is
all but silent. With d(0) = 1 a C-cell answers one strong S-cell nearby
almost as it would a crowd. And small S-columns (3×3)
make every presentation reinforce several planes on pieces of the same
stroke, which merges "2" with "3" or "1" with "4" in US2 for some random
starts; with 7×7 columns each pattern got its own UC3 cell for all six seeds
we tried (see ``run_digits``).

The paper's "0"–"4" experiment, the MNIST readout and the pictures of the
S-planes are in ``striate.experiments.neocognitron``; ``striate neocognitron
digits|mnist|planes`` runs them.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..nn import Module
from ..random import get_rng
from ..tensor import Tensor
from . import register

__all__ = ["neocognitron", "Neocognitron", "SLayer", "CLayer", "cell_positions"]


# ---------------------------------------------------------------------------
# geometry


def cell_positions(n_in: int, n_out: int) -> np.ndarray:
    """Where the n_out cells of a row sit among the n_in cells of the row below.

    Both rows tile the same field; cell j of the upper row is at (j + ½)/n_out of
    it, and its centre below is the lower cell containing that point:
    ``⌊(2j + 1)·n_in / (2·n_out)⌋`` (integer arithmetic, no rounding surprises).
    """
    j = np.arange(n_out)
    return (2 * j + 1) * n_in // (2 * n_out)


def _pad_around(u: np.ndarray, k: int) -> np.ndarray:
    """Zero-pad (..., H, W) so that a k×k window can be centred on every cell (offsets −⌊k/2⌋ … k−1−⌊k/2⌋)."""
    before, after = k // 2, k - 1 - k // 2
    return np.pad(u, [(0, 0)] * (u.ndim - 2) + [(before, after), (before, after)])


def _correlate(u: np.ndarray, weight: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Σ_κ Σ_ν weight(k, κ, ν) · u(κ, n + ν) at the cells centred on (rows × cols).

    u (N, C, H, W), weight (K, C, k, k) -> (N, K, h, w). A stride-1 convolution
    (striate's ``F.conv2d``) over the zero-padded input, read at the cell positions.
    """
    from .. import functional as F
    from ..tensor import no_grad
    with no_grad():
        dense = F.conv2d(_pad_around(u, weight.shape[-1]), weight).data              # (N, K, H, W)
    return dense[:, :, rows[:, None], cols[None, :]]


def _windows_at(u: np.ndarray, k: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The k×k windows of one input (C, H, W) centred on the cells (rows[i], cols[i]): (R, C, k, k)."""
    view = np.lib.stride_tricks.sliding_window_view(_pad_around(u, k), (k, k), axis=(1, 2))  # (C, H, W, k, k)
    return view[:, rows, cols].transpose(1, 0, 2, 3)


def _decaying(k: int, ratio: float, dtype, total: float | None = None, peak: float | None = None) -> np.ndarray:
    """A k×k array ∝ ratio^(distance from the centre), scaled to sum to ``total`` or to peak at ``peak``."""
    o = np.arange(k) - (k - 1) / 2
    dist = np.sqrt(o[:, None] ** 2 + o[None, :] ** 2)
    w = ratio ** dist
    scale = total / w.sum() if total is not None else peak / w.max()
    return (w * scale).astype(dtype)


def _max_filter(a: np.ndarray, size: int, fill: float, reduce) -> np.ndarray:
    """``reduce`` (np.max or np.min) over size×size neighbourhoods of (..., H, W), edges padded."""
    if size == 1:
        return a
    p = size // 2
    width = [(0, 0)] * (a.ndim - 2) + [(p, p), (p, p)]
    padded = np.pad(a, width, constant_values=fill)
    view = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(-2, -1))
    return reduce(view, axis=(-2, -1))


# ---------------------------------------------------------------------------
# the two kinds of layer


class SLayer(Module):
    """A layer of S-cells with their V-cells (see the module docstring for the equations).

    Args:
        in_planes: K_{l−1}, the C-planes below.
        planes: K_l, the S-planes of this layer.
        in_size, size: cells per row below and here.
        area: k, the side of the connectable area.
        r: selectivity. q: reinforcement rate.
        gamma: c(ν) ∝ gamma^|ν|, normalised so that Σ_κ Σ_ν c = 1.
        init_scale: initial a uniform in [0, init_scale · max c].
        column: side of an S-column (positions), for choosing candidates.
        rng: generator for the initial a.

    Buffers (saved by ``state_dict``): ``a`` (K_l, K_{l−1}, k, k), ``b`` (K_l,),
    ``c`` (k, k), ``wins`` (K_l,): how often each plane was reinforced.

    Shape:
        u_C: (N, K_{l−1}, in_size, in_size)  ->  u_S: (N, K_l, size, size)
    """

    def __init__(self, in_planes: int, planes: int, in_size: int, size: int, area: int = 5,
                 r: float = 1.5, q: float = 16.0, gamma: float = 0.8, init_scale: float = 0.01,
                 column: int = 7, rng=None, dtype=np.float32):
        super().__init__()
        for name, value in (("in_planes", in_planes), ("planes", planes), ("in_size", in_size),
                            ("size", size), ("area", area), ("column", column)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"SLayer: {name} must be a positive int, got {value!r}")
        if size > in_size:
            raise ValueError(f"SLayer: a layer cannot be denser than the one below "
                             f"(size {size} > in_size {in_size})")
        if r <= 0 or q <= 0:
            raise ValueError(f"SLayer: selectivity r and rate q must be positive, got r={r}, q={q}")
        rng = get_rng(rng)
        self.in_planes, self.planes, self.in_size, self.size, self.area = in_planes, planes, in_size, size, area
        self.r, self.q, self.column = float(r), float(q), int(column)
        self.positions = cell_positions(in_size, size)
        c = _decaying(area, gamma, dtype, total=1.0 / in_planes)
        self.register_buffer("c", c)
        a = rng.uniform(0.0, init_scale * float(c.max()), size=(planes, in_planes, area, area))
        self.register_buffer("a", a.astype(dtype))
        self.register_buffer("b", np.zeros(planes, dtype=dtype))
        self.register_buffer("wins", np.zeros(planes, dtype=np.int64))

    def respond(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The S-cells' outputs and their V-cells: u (N, K_{l−1}, H, W) -> u_S (N, K_l, h, w), v (N, 1, h, w)."""
        rows = cols = self.positions
        excite = _correlate(u, self.a, rows, cols)                                 # Σ a·u_C
        # the V-cell: Σ_κ Σ_ν c(ν)·u_C(κ, n+ν)², one map whatever the plane
        v = np.sqrt(_correlate((u * u).sum(axis=1, keepdims=True), self.c[None, None], rows, cols))
        inhibit = (2 * self.r / (1 + self.r)) * self.b[:, None, None] * v          # θ·b·v, (N, K_l, h, w)
        # (1 + e)/(1 + i) − 1 written as (e − i)/(1 + i): the same number without cancellation
        out = self.r * np.maximum((excite - inhibit) / (1 + inhibit), 0)
        return out.astype(u.dtype, copy=False), v

    def forward(self, u):
        data = u.data if isinstance(u, Tensor) else np.asarray(u)
        self._check(data)
        return Tensor(self.respond(data)[0])

    def _check(self, u: np.ndarray) -> None:
        want = (self.in_planes, self.in_size, self.in_size)
        if u.ndim != 4 or u.shape[1:] != want:
            raise ValueError(f"SLayer expects input (N, {want[0]}, {want[1]}, {want[2]}), got {u.shape}")

    def representatives(self, u_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The representative of each plane for one pattern.

        u_s: (K, h, w), the outputs for that pattern. A cell is a candidate when it
        is the largest of some S-column (``column``×``column`` positions × all
        planes, one column centred on every position) and its output is positive;
        the representative of a plane is its largest candidate.

        Returns (planes, rows, cols): the planes that have a representative and where it is.
        """
        K, h, w = u_s.shape
        strongest = u_s.max(axis=0)                                              # (h, w), over planes
        column_max = _max_filter(strongest, self.column, -np.inf, np.max)        # max of the column at m
        # a cell is the maximum of some column containing it exactly when it equals the
        # smallest of those columns' maxima (each of them is at least its value)
        needed = _max_filter(column_max, self.column, np.inf, np.min)            # (h, w)
        candidate = (u_s >= needed) & (u_s > 0)                                  # (K, h, w)
        score = np.where(candidate, u_s, -1.0).reshape(K, h * w)
        best = score.argmax(axis=1)                                              # first maximum
        planes = np.flatnonzero(score[np.arange(K), best] > 0)
        return planes, best[planes] // w, best[planes] % w

    def reinforce(self, u: np.ndarray, u_s: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Reinforce the representatives for one pattern; returns the planes reinforced.

        u (K_{l−1}, H, W) the input, u_s (K_l, h, w) and v (1, h, w) from ``respond``::

            a(κ, ν, k̂) += q · c(ν) · u_C(κ, n̂ + ν)        b(k̂) += (q / 2) · v_C(n̂)
        """
        planes, rows, cols = self.representatives(u_s)
        if planes.size:
            seen = _windows_at(u, self.area, self.positions[rows], self.positions[cols])   # (R, K_{l−1}, k, k)
            self.a[planes] += (self.q * self.c) * seen
            self.b[planes] += (self.q / 2) * v[0, rows, cols]
            self.wins[planes] += 1
        return planes

    def extra_repr(self) -> str:
        k = self.area
        return (f"{self.in_planes}×{self.in_size}² → {self.planes}×{self.size}², area {k}×{k}, "
                f"r={self.r:g}, q={self.q:g}")


class CLayer(Module):
    """A layer of C-cells: fixed blurring of each S-plane, divisive inhibition, saturation.

    Args:
        planes: K, the S-planes below (one C-plane each).
        in_size, size: cells per row below and here.
        area: side of the blurring window.
        alpha: saturation, ψ[x] = φ[x] / (α + φ[x]).
        delta: d(ν) ∝ delta^|ν|, normalised so that Σ_ν d = 1.

    Shape:
        u_S: (N, K, in_size, in_size)  ->  u_C: (N, K, size, size), values in [0, 1)
    """

    def __init__(self, planes: int, in_size: int, size: int, area: int = 5, alpha: float = 0.5,
                 delta: float = 0.8, d_peak: float = 1.0, dtype=np.float32):
        super().__init__()
        if size > in_size:
            raise ValueError(f"CLayer: a layer cannot be denser than the one below "
                             f"(size {size} > in_size {in_size})")
        if alpha <= 0:
            raise ValueError(f"CLayer: alpha must be positive, got {alpha}")
        self.planes, self.in_size, self.size, self.area, self.alpha = planes, in_size, size, area, float(alpha)
        self.positions = cell_positions(in_size, size)
        self.register_buffer("d", _decaying(area, delta, dtype, peak=d_peak))

    def respond(self, u: np.ndarray) -> np.ndarray:
        """u_S (N, K, H, W) -> u_C (N, K, h, w)."""
        N, K, H, W = u.shape
        k = self.area
        padded = _pad_around(u, k)
        blurred = np.zeros_like(u)                                                # Σ_ν d(ν)·u_S(k, n+ν)
        for y in range(k):                                                        # k² whole-array steps
            for x in range(k):
                blurred += self.d[y, x] * padded[:, :, y:y + H, x:x + W]
        blurred = blurred[:, :, self.positions[:, None], self.positions[None, :]]   # (N, K, h, w)
        v = blurred.mean(axis=1, keepdims=True)                                   # the V-cell v_S
        excess = np.maximum((blurred - v) / (1 + v), 0)                           # (1+s)/(1+v) − 1
        return (excess / (self.alpha + excess)).astype(u.dtype, copy=False)

    def forward(self, u):
        data = u.data if isinstance(u, Tensor) else np.asarray(u)
        want = (self.planes, self.in_size, self.in_size)
        if data.ndim != 4 or data.shape[1:] != want:
            raise ValueError(f"CLayer expects input (N, {want[0]}, {want[1]}, {want[2]}), got {data.shape}")
        return Tensor(self.respond(data))

    def extra_repr(self) -> str:
        k = self.area
        return f"{self.planes}×{self.in_size}² → {self.planes}×{self.size}², area {k}×{k}, α={self.alpha:g}"


# ---------------------------------------------------------------------------
# the network


class Neocognitron(Module):
    """U0 → US1 → UC1 → US2 → UC2 → US3 → UC3, self-organised by ``present`` (see the module docstring).

    Args:
        planes: cell-planes per layer (24 in the paper), an int or one per stage.
        sizes: cells per row of U0, US1, UC1, US2, UC2, US3, UC3.
        s_area: side of the S-cells' connectable areas (5).
        c_areas: side of the C-cells' blurring windows, per stage.
        r, q: selectivity and reinforcement rate per stage.
        alpha: C-cell saturation. gamma, delta: decay of c(ν) and d(ν).
        column: side of an S-column. init_scale: initial a relative to max c.
        rng: generator for the initial weights.

    ``forward(x)`` gives UC3, (N, K, 1, 1); ``layers(x)`` every layer's output.

    Shape:
        x: (N, 1, 16, 16) with values in [0, 1]
    """

    def __init__(self, planes=24, sizes: Sequence[int] = (16, 16, 10, 8, 6, 2, 1), s_area: int = 5,
                 c_areas: Sequence[int] = (5, 5, 2), r: Sequence[float] = (4.0, 1.5, 1.5),
                 q: Sequence[float] = (1.0, 16.0, 16.0), alpha: float = 0.5, gamma: float = 0.8,
                 delta: float = 0.8, d_peak: float = 1.0, column=7, init_scale: float = 0.01,
                 rng=None):
        super().__init__()
        planes = (planes,) * 3 if isinstance(planes, (int, np.integer)) else tuple(planes)
        column = (column,) * 3 if isinstance(column, (int, np.integer)) else tuple(column)
        for name, value, n in (("planes", planes, 3), ("sizes", sizes, 7), ("c_areas", c_areas, 3),
                               ("r", r, 3), ("q", q, 3), ("column", column, 3)):
            if len(value) != n:
                raise ValueError(f"neocognitron: {name} needs {n} values, got {tuple(value)!r}")
        rng = get_rng(rng)
        self.input_shape = (1, sizes[0], sizes[0])
        below = 1
        for i in range(3):                                           # stage i + 1
            s_in, s_out, c_out = sizes[2 * i], sizes[2 * i + 1], sizes[2 * i + 2]
            setattr(self, f"us{i + 1}", SLayer(below, planes[i], s_in, s_out, s_area, r[i], q[i], gamma,
                                               init_scale, column[i], rng=rng))
            setattr(self, f"uc{i + 1}", CLayer(planes[i], s_out, c_out, c_areas[i], alpha, delta, d_peak))
            below = planes[i]

    @property
    def stages(self) -> list[tuple[SLayer, CLayer]]:
        return [(self.us1, self.uc1), (self.us2, self.uc2), (self.us3, self.uc3)]

    def _input(self, x) -> np.ndarray:
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        if data.ndim == 3:
            data = data[:, None]
        if data.ndim != 4 or data.shape[1:] != self.input_shape:
            raise ValueError(f"neocognitron expects input (N, {', '.join(map(str, self.input_shape))}) "
                             f"or (N, {self.input_shape[1]}, {self.input_shape[2]}), got {data.shape}")
        if data.dtype.kind != "f":
            raise TypeError(f"neocognitron expects float input in [0, 1], got dtype {data.dtype}")
        return data

    def layers(self, x) -> dict[str, np.ndarray]:
        """Every layer's output for a batch: {"u0", "us1", "uc1", ..., "uc3"}, arrays (N, K, h, w)."""
        u = self._input(x)
        out = {"u0": u}
        for stage, (s, c) in enumerate(self.stages, start=1):
            out[f"us{stage}"] = s.respond(u)[0]
            out[f"uc{stage}"] = u = c.respond(out[f"us{stage}"])
        return out

    def forward(self, x) -> Tensor:
        u = Tensor(self._input(x))                                   # (N, 1, 16, 16)
        for s, c in self.stages:
            u = c(s(u))                                              # through the layers' hooks
        return u                                                     # (N, K3, 1, 1)

    def features(self, x, layer: str = "uc3", batch_size: int = 1000) -> np.ndarray:
        """One layer's outputs, flattened per sample: (N, K·h·w), computed in batches."""
        x = self._input(x)
        parts = [self.layers(x[i:i + batch_size])[layer] for i in range(0, len(x), batch_size)]
        return np.concatenate(parts).reshape(len(x), -1)

    def present(self, pattern, stages: Sequence[int] = (1, 2, 3)) -> dict[int, np.ndarray]:
        """Show one pattern (H, W) or (1, H, W) and reinforce the given stages; returns their winners.

        Each stage's response is computed with the weights it had when the pattern
        arrived; the stage above then sees that response.
        """
        u = self._input(np.asarray(pattern, dtype=np.float32).reshape((1,) + self.input_shape))
        winners = {}
        for stage, (s, c) in enumerate(self.stages, start=1):
            u_s, v = s.respond(u)
            if stage in stages:
                winners[stage] = s.reinforce(u[0], u_s[0], v[0])
            if stage >= max(stages, default=0):
                break
            u = c.respond(u_s)
        return winners

    def organise(self, patterns: np.ndarray, rounds: int = 1, layerwise: bool = True, rng=None,
                 shuffle: bool = False, progress: bool = False) -> None:
        """Self-organise on ``patterns`` (P, H, W) with no labels.

        ``layerwise`` (our reading; unconfirmed): organise stage 1 with ``rounds``
        passes over the patterns, then stage 2, then stage 3. Otherwise all
        stages learn from every presentation. ``shuffle`` changes the order each round.
        """
        patterns = np.asarray(patterns, dtype=np.float32)
        schedule = [(1,), (2,), (3,)] if layerwise else [(1, 2, 3)]
        rng = get_rng(rng)
        total = len(schedule) * rounds * len(patterns)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, desc="self-organising", unit="pattern", dynamic_ncols=True)
        try:
            for stages in schedule:
                for _ in range(rounds):
                    order = rng.permutation(len(patterns)) if shuffle else range(len(patterns))
                    for i in order:
                        self.present(patterns[i], stages)
                        if bar is not None:
                            bar.update(1)
                    if bar is not None:
                        bar.set_postfix(stage=stages[-1], planes_used=[int((s.wins > 0).sum())
                                                                       for s, _ in self.stages])
        finally:
            if bar is not None:
                bar.close()


@register("neocognitron")
def neocognitron(planes: int = 24, r: Sequence[float] = (4.0, 1.5, 1.5), q: Sequence[float] = (1.0, 16.0, 16.0),
                 alpha: float = 0.5, column: int = 7, rng=None) -> Neocognitron:
    """Fukushima's 1980 network, not yet organised: 16×16 input, three stages of ``planes`` cell-planes."""
    return Neocognitron(planes=planes, r=tuple(r), q=tuple(q), alpha=alpha, column=column, rng=rng)
