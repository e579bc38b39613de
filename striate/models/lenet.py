"""LeNet-5, as published and as it is usually rebuilt today.

Source: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning
Applied to Document Recognition", Proc. IEEE 86(11), 1998, section II.B and
appendix A.

``lenet5()`` follows the paper, layer by layer (input (N, 1, 32, 32))::

    layer  what it computes                                   output          trainable
    c1     6 convolutions 5×5 over the input, + bias, squash  (N, 6, 28, 28)        156
    s2     per map: coefficient·(sum of a 2×2 window)         (N, 6, 14, 14)         12
           + bias, squash
    c3     16 convolutions 5×5, each over the S2 maps that    (N, 16, 10, 10)     1,516
           Table I connects to it (60 connections), + bias,
           squash
    s4     as s2, on 16 maps                                  (N, 16, 5, 5)          32
    c5     120 convolutions 5×5 over all 16 maps, + bias,     (N, 120, 1, 1)     48,120
           squash
    f6     fully connected 120 → 84, + bias, squash           (N, 84)            10,164
    output 10 Euclidean RBF units, fixed ±1 centres           (N, 10)                 0
                                                                    total        60,000

The squashing function is the paper's scaled hyperbolic tangent
``f(a) = 1.7159·tanh(2a/3)`` (``F.scaled_tanh``). The paper applies it to the
weighted sum of every unit "in layers up to F6" and to the result of each
subsampling unit, so here it follows c1, s2, c3, s4, c5 and f6: six times.
The RBF layer is not squashed.

Output convention: the RBF unit i computes a *penalty*
``y_i = Σ_j (x_j − w_ij)²`` (small when F6's state is close to the bitmap of
digit i). ``LeNet5.forward`` returns ``−y``, so that

* ``argmax`` of the output is the predicted digit, and
* ``F.cross_entropy(model(x), labels)`` equals ``y_label + log Σ_i exp(−y_i)``:
  the paper's maximum a posteriori criterion (its equation 9) without the
  constant "rubbish class" term ``exp(−j)``. Like that criterion, it pulls
  the correct penalty down and pushes the others up, so the RBF centres (which
  are fixed) cannot be matched by collapsing F6. The paper's plain criterion
  (the mean penalty of the correct class) is ``model.penalties(x)`` gathered at
  the labels.

``LeNet5.penalties(x)`` gives ``y`` itself.

Initialisation is the paper's (appendix A): every weight uniform in
``±2.4 / F_in``, F_in the number of inputs of the unit the weight belongs to
(25 for c1, 75/100/150 for c3 by fan-in, 400 for c5, 120 for f6, 4 for the
subsampling coefficients). The paper says nothing separate about biases; here
they are drawn the same way (a bias is a weight from a constant input).

What this module leaves to the data pipeline: the paper pads 28×28 MNIST digits
to 32×32 and scales pixels so that the background is −0.1 and ink 1.175 (mean
about 0, variance about 1). ``striate train`` normalises with MNIST's mean and
std instead (background −0.42, ink 2.82); in short trials the paper's scaling
trained no better.

Training. The paper trains with stochastic diagonal Levenberg-Marquardt: one
sample at a time, each weight with its own step size from an estimate of the
curvature. Plain minibatch SGD works too, but only with a small learning rate,
for two reasons:

* the logits are penalties, not small linear outputs. Codes differ in at least
  6 of 84 pixels, so an F6 state on one code has a penalty of 24 or more for
  every other digit; a digit mistaken with confidence costs tens of nats and
  dominates the gradient of its batch;
* with the paper's small initialisation, F6 and C5 (and their biases) move
  fast relative to their size while C1–S4 hardly move at first.

With SGD, momentum 0.9 (Nesterov) and batches of 32 or 64, a learning rate of
0.01 can drive every tanh into saturation within about twenty steps, after
which the net never recovers (accuracy stays at chance). ``striate train
lenet5`` uses batches of 32 at learning rate 0.005, cosine-annealed over 15
epochs, with random ±2-pixel shifts: 99.1–99.4% test accuracy, depending on
the seed (99.39% with the default seed 0). Expect the training loss to
wobble in the first few epochs; it settles as the learning rate decays.

``lenet5_modern()`` is the version found in most tutorials: ReLU, 2×2 max
pooling, C3 connected to all six maps and a 10-way linear output (61,706
parameters), trained with cross-entropy on its logits.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..nn import Module, Parameter
from ..random import get_rng
from ..tensor import Tensor, array_module
from . import register

__all__ = [
    "lenet5", "lenet5_modern", "LeNet5", "LeNet5Modern",
    "PartialConv2d", "Subsampling", "RBF",
    "C3_CONNECTIONS", "RBF_BITMAPS", "digit_bitmaps",
]

# ---------------------------------------------------------------------------
# Table I of the paper: which S2 maps (rows) each C3 map (columns) reads.
# Maps 0–5 read three contiguous S2 maps, 6–11 four contiguous ones, 12–14
# four discontinuous ones, and 15 reads all six. "Contiguous" wraps around
# (map 4 reads S2 maps 4, 5, 0). The paper's reasons: fewer connections, and
# broken symmetry, so that the C3 maps are pushed to learn different features.

_TABLE_I = """
              C3 map
         0123456789012345
S2 map 0 X...XXX..XXXX.XX
       1 XX...XXX..XXXX.X
       2 XXX...XXX..X.XXX
       3 .XXX..XXXX..X.XX
       4 ..XXX..XXXX.XX.X
       5 ...XXX..XXXX.XXX
"""


def _parse_table(text: str) -> np.ndarray:
    """The X/. grid of ``_TABLE_I`` as a boolean (6, 16) array, checked against the paper."""
    rows = [line.split()[-1] for line in text.strip().splitlines()[2:]]
    table = np.array([[c == "X" for c in row] for row in rows], dtype=bool)
    # the paper's counts: 6 maps of fan-in 3, 9 of fan-in 4, 1 of fan-in 6; 60 connections
    fan_in = table.sum(axis=0)
    expected = [3] * 6 + [4] * 9 + [6]
    if table.shape != (6, 16) or fan_in.tolist() != expected or table.sum() != 60:
        raise RuntimeError(f"Table I is mistyped: shape {table.shape}, fan-ins {fan_in.tolist()}, "
                           f"expected (6, 16) and {expected}")
    return table


#: (6, 16) bool: ``C3_CONNECTIONS[s, c]`` is True when C3 map c reads S2 map s.
C3_CONNECTIONS = _parse_table(_TABLE_I)

# ---------------------------------------------------------------------------
# The RBF centres: stylised 7-wide × 12-high bitmaps of the digits, in the
# manner of the paper's Fig. 3, '#' = +1, '.' = −1 (drawn here; the paper's own
# codes cover the whole printable ASCII set, so that easily confused characters
# such as O, o and 0 get similar codes for a later linguistic stage to sort
# out). Targets of ±1 sit well inside the range of the squashing function
# (±1.7159), so F6 can reach them without saturating.

RBF_BITMAPS = """
   0       1       2       3       4       5       6       7       8       9
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
..###.. ...#... .#####. ####### ....#.. ####### ...###. ####### .#####. .#####.
.#...#. ..##... #.....# .....#. ...##.. #...... ..#.... ......# #.....# #.....#
#.....# .#.#... ......# ....#.. ..#.#.. #...... .#..... .....#. #.....# #.....#
#.....# ...#... .....#. ...#... .#..#.. ######. #...... ....#.. #.....# #....##
#.....# ...#... ....#.. ..###.. #...#.. ......# #.####. ...#... .#####. .####.#
#.....# ...#... ...#... .....#. ####### ......# ##....# ...#... #.....# ......#
#.....# ...#... ..#.... ......# ....#.. ......# #.....# ..#.... #.....# .....#.
.#...#. ...#... .#..... #.....# ....#.. #.....# #.....# ..#.... #.....# ....#..
..###.. .#####. ####### .#####. ....#.. .#####. .#####. ..#.... .#####. .###...
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
"""


def digit_bitmaps() -> np.ndarray:
    """The RBF centres: (10, 84) float32 of ±1, row i the 12×7 bitmap of digit i, row-major."""
    lines = RBF_BITMAPS.strip("\n").splitlines()[1:]
    if len(lines) != 12 or any(len(line) != 10 * 8 - 1 for line in lines):
        raise RuntimeError("RBF_BITMAPS must be 12 lines of ten 7-wide glyphs separated by spaces")
    grid = np.array([[c == "#" for c in line] for line in lines])     # (12, 79)
    glyphs = np.stack([grid[:, 8 * d:8 * d + 7] for d in range(10)])  # (10, 12, 7)
    return np.where(glyphs, 1.0, -1.0).astype(np.float32).reshape(10, 84)


# ---------------------------------------------------------------------------
# helpers


def _uniform(rng, shape, fan_in: int) -> np.ndarray:
    """The paper's initialisation: uniform in ±2.4 / fan_in, as float32."""
    bound = 2.4 / fan_in
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def _check_input(x, channels: int, size: int, model: str) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.ndim != 4 or x.shape[1:] != (channels, size, size):
        hint = ("; pad 28×28 digits by 2 pixels on each side (F.pad(x, 2))"
                if x.ndim == 4 and x.shape[2:] == (28, 28) else "")
        raise ValueError(f"{model} expects input (N, {channels}, {size}, {size}), "
                         f"got {tuple(x.shape)}{hint}")
    return x


def place_kernels(weights, rows, cols, shape) -> Tensor:
    """A full convolution kernel assembled from pieces, zero where no piece goes.

    ``dense[rows[i], cols[i]] = weights[i]`` for each piece: with ``rows[i]`` of
    shape (G, 1) (output maps) and ``cols[i]`` of shape (G, f) (the input maps
    each of them reads), piece i has shape (G, f, kh, kw). The backward hands
    each piece the gradient at its own positions; the zeros receive nothing,
    since they are not parameters.

    Shape: pieces (G_i, f_i, kh, kw) -> out ``shape`` = (C_out, C_in, kh, kw).
    """
    dense = array_module(weights[0].data).zeros(shape, dtype=weights[0].dtype)
    for w, r, c in zip(weights, rows, cols):
        dense[r, c] = w.data

    def backward(g):                                        # g (C_out, C_in, kh, kw)
        return tuple(g[r, c] if w.requires_grad else None for w, r, c in zip(weights, rows, cols))
    return Tensor.from_op(dense, tuple(weights), backward, "place_kernels")


# ---------------------------------------------------------------------------
# the paper's special layers


class PartialConv2d(Module):
    """A convolution whose output maps each read only some of the input maps.

    ``connections[c, k]`` says whether output map k reads input map c (rows are
    input maps, as in the paper's Table I). The parameters hold exactly one
    ``kh × kw`` kernel slice per connection, grouped by fan-in, plus one bias
    per output map, so the parameter count is exact (1,516 for LeNet-5's C3).

    How it runs: each call places the slices into a full
    (C_out, C_in, kh, kw) kernel, zero off the table, and does one ordinary
    convolution. The zeros are not parameters, so they never receive a
    gradient and never need masking again. This costs C_out·C_in/connections
    times the multiply-adds of the sparse form (1.6× for C3), but one large
    matrix product is several times faster in NumPy than gathering the input
    maps (each S2 map is read by ten C3 maps) for grouped convolutions.

    Args:
        connections: bool array (C_in, C_out); every output map needs at least one input.
        kernel_size: int or (kh, kw).
        rng: generator for the paper's initialisation (uniform in ±2.4/F_in).

    Parameters:
        ``weight_{f}``: (G_f, f, kh, kw) for each distinct fan-in f: the G_f
        output maps of that fan-in in increasing order, each with one slice per
        input map it reads, in increasing order. ``bias``: (C_out,).

    Shape:
        x:   (N, C_in, H, W)
        out: (N, C_out, H − kh + 1, W − kw + 1)
    """

    def __init__(self, connections, kernel_size=5, rng=None):
        super().__init__()
        table = np.asarray(connections)
        if table.ndim != 2 or table.dtype != bool:
            raise ValueError(f"PartialConv2d expects connections as a 2-D bool array "
                             f"(in_channels, out_channels), got {table.dtype} of shape {table.shape}")
        fan_in = table.sum(axis=0)
        if (fan_in == 0).any():
            raise ValueError(f"PartialConv2d: output maps {np.flatnonzero(fan_in == 0).tolist()} "
                             f"read no input map")
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        rng = get_rng(rng)
        self.connections = table.copy()
        self.in_channels, self.out_channels = table.shape
        self.kernel_size = (kh, kw)
        # where each fan-in's slices go in the full kernel: rows (G, 1), columns (G, f)
        self._fan_ins, self._rows, self._cols = [], [], []
        bias = np.empty(self.out_channels, dtype=np.float32)
        for f in np.unique(fan_in).tolist():
            maps = np.flatnonzero(fan_in == f)                                      # (G,)
            self._fan_ins.append(f)
            self._rows.append(maps[:, None])
            self._cols.append(np.stack([np.flatnonzero(table[:, k]) for k in maps]))
            setattr(self, f"weight_{f}", Parameter(_uniform(rng, (len(maps), f, kh, kw), f * kh * kw)))
            bias[maps] = _uniform(rng, len(maps), f * kh * kw)
        self.bias = Parameter(bias)

    def kernel(self) -> Tensor:
        """The full kernel (C_out, C_in, kh, kw), zero where there is no connection."""
        weights = [getattr(self, f"weight_{f}") for f in self._fan_ins]
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        return place_kernels(weights, self._rows, self._cols, shape)

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"PartialConv2d expects input (N, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        return F.conv2d(x, self.kernel(), self.bias)                # (N, C_out, OH, OW)

    def dense_weight(self) -> np.ndarray:
        """The full kernel as an array (for inspection and pictures)."""
        return self.kernel().data

    def extra_repr(self) -> str:
        kh, kw = self.kernel_size
        return (f"{self.in_channels}, {self.out_channels}, kernel_size=({kh}, {kw}), "
                f"connections={int(self.connections.sum())}")


class Subsampling(Module):
    """LeNet's trainable subsampling: coefficient · (sum of a k×k window) + bias, per map.

    Each map has one trainable coefficient and one trainable bias (2·C
    parameters); the windows do not overlap. The squashing function is applied
    by the model, after this layer.

    Shape:
        x:   (N, C, H, W)
        out: (N, C, H // k, W // k)
    """

    def __init__(self, channels: int, kernel_size: int = 2, rng=None):
        super().__init__()
        rng = get_rng(rng)
        self.channels, self.kernel_size = channels, kernel_size
        fan_in = kernel_size * kernel_size          # the k² inputs that share the coefficient
        self.coefficient = Parameter(_uniform(rng, channels, fan_in))
        self.bias = Parameter(_uniform(rng, channels, fan_in))

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"Subsampling expects input (N, {self.channels}, H, W), "
                             f"got {tuple(x.shape)}")
        s = F.sum_pool2d(x, self.kernel_size)                           # (N, C, H/k, W/k)
        return s * self.coefficient.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}"


class RBF(Module):
    """Euclidean radial basis units with fixed centres: ``y_i = Σ_j (x_j − w_ij)²``.

    The centres are a buffer (saved in ``state_dict``, never trained).

    Shape:
        x:   (N, D)
        out: (N, K), for centres (K, D)
    """

    def __init__(self, centres):
        super().__init__()
        self.register_buffer("centres", np.asarray(centres, dtype=np.float32))

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        K, D = self.centres.shape
        if x.ndim != 2 or x.shape[1] != D:
            raise ValueError(f"RBF expects input (N, {D}), got {tuple(x.shape)}")
        diff = x.reshape(x.shape[0], 1, D) - Tensor(self.centres, dtype=x.dtype)   # (N, K, D)
        return (diff * diff).sum(axis=2)                                            # (N, K)

    def extra_repr(self) -> str:
        K, D = self.centres.shape
        return f"{D} → {K}, fixed centres"


# ---------------------------------------------------------------------------
# the models


class LeNet5(Module):
    """LeNet-5 as in the 1998 paper (see the module docstring): 60,000 trainable parameters.

    ``forward`` returns the negated RBF penalties ``−y`` (N, 10): logits for
    ``F.cross_entropy``, the largest for the predicted digit.
    """

    input_shape = (1, 32, 32)

    def __init__(self, rng=None):
        super().__init__()
        rng = get_rng(rng)
        self.c1 = nn.Conv2d(1, 6, 5, rng=rng)
        self.s2 = Subsampling(6, 2, rng=rng)
        self.c3 = PartialConv2d(C3_CONNECTIONS, 5, rng=rng)
        self.s4 = Subsampling(16, 2, rng=rng)
        self.c5 = nn.Conv2d(16, 120, 5, rng=rng)
        self.f6 = nn.Linear(120, 84, rng=rng)
        self.output = RBF(digit_bitmaps())
        # the paper's initialisation, replacing the layers' defaults
        for layer, fan_in in ((self.c1, 25), (self.c5, 400), (self.f6, 120)):
            layer.weight.data[...] = _uniform(rng, layer.weight.shape, fan_in)
            layer.bias.data[...] = _uniform(rng, layer.bias.shape, fan_in)

    def penalties(self, x) -> Tensor:
        """The RBF outputs y (N, 10): the squared distance of F6's state to each digit's code."""
        x = _check_input(x, 1, 32, "lenet5")      # (N, 1, 32, 32)
        x = F.scaled_tanh(self.c1(x))             # (N, 6, 28, 28)
        x = F.scaled_tanh(self.s2(x))             # (N, 6, 14, 14)
        x = F.scaled_tanh(self.c3(x))             # (N, 16, 10, 10)
        x = F.scaled_tanh(self.s4(x))             # (N, 16, 5, 5)
        x = F.scaled_tanh(self.c5(x))             # (N, 120, 1, 1)
        x = F.scaled_tanh(self.f6(F.flatten(x)))  # (N, 84)
        return self.output(x)                     # (N, 10)

    def forward(self, x) -> Tensor:
        return -self.penalties(x)                 # (N, 10): logits, argmax = prediction


class LeNet5Modern(Module):
    """LeNet-5 as usually rebuilt today: ReLU, max pooling, full C3, linear output.

    conv 6@5×5 → ReLU → max pool 2 → conv 16@5×5 → ReLU → max pool 2 →
    flatten → linear 400→120 → ReLU → 120→84 → ReLU → 84→num_classes.
    With one input channel and ten classes: 61,706 parameters. Layers use
    their default initialisation. ``forward`` returns logits.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, rng=None):
        super().__init__()
        rng = get_rng(rng)
        self.input_shape = (in_channels, 32, 32)
        self.c1 = nn.Conv2d(in_channels, 6, 5, rng=rng)
        self.s2 = nn.MaxPool2d(2)
        self.c3 = nn.Conv2d(6, 16, 5, rng=rng)
        self.s4 = nn.MaxPool2d(2)
        self.f5 = nn.Linear(16 * 5 * 5, 120, rng=rng)
        self.f6 = nn.Linear(120, 84, rng=rng)
        self.output = nn.Linear(84, num_classes, rng=rng)

    def forward(self, x) -> Tensor:
        C = self.input_shape[0]
        x = _check_input(x, C, 32, "lenet5_modern")   # (N, C, 32, 32)
        x = self.s2(F.relu(self.c1(x)))               # (N, 6, 14, 14)
        x = self.s4(F.relu(self.c3(x)))               # (N, 16, 5, 5)
        x = F.relu(self.f5(F.flatten(x)))             # (N, 120)
        x = F.relu(self.f6(x))                        # (N, 84)
        return self.output(x)                         # (N, num_classes)


@register("lenet5")
def lenet5(rng=None) -> LeNet5:
    """LeNet-5 as published (60,000 trainable parameters); outputs −(RBF penalties)."""
    return LeNet5(rng=rng)


@register("lenet5-modern")
def lenet5_modern(rng=None, num_classes: int = 10, in_channels: int = 1) -> LeNet5Modern:
    """The modern LeNet-5 (ReLU, max pooling, linear output); 61,706 parameters by default."""
    for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"lenet5_modern: {name} must be a positive int, got {value!r}")
    return LeNet5Modern(num_classes=int(num_classes), in_channels=int(in_channels), rng=rng)
