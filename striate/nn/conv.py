"""Convolution layers: they hold a weight and a bias and call ``F.conv2d`` and friends.

Letters: N batch, C input channels, K output channels (kernels), H×W input,
kh×kw kernel, OH×OW output. Output size per spatial axis::

    OH = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1                  (Conv2d)
    OH = (H − 1)·stride − 2·padding + dilation·(kh − 1) + output_padding + 1     (ConvTranspose2d)

Weights start as PyTorch's do: U(−1/√fan_in, 1/√fan_in) for weight and bias
(``kaiming_uniform_`` with a = √5), drawn from ``rng`` (weight first, then bias).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from ..checks import IntPair, Padding, check_int, check_padding, nonnegative_pair, positive_pair
from ..functional.conv import Algorithm, Fusion, check_algorithm
from ..random import get_rng
from ..tensor import Tensor, TensorLike
from . import init
from .module import Module, Parameter

__all__ = ["Conv2d", "ConvTranspose2d", "FusedConv2d"]

FUSIONS = ("sum", "concat", "product")


def _divisible(channels: int, name: str, groups: int, layer: str) -> None:
    if channels % groups:
        raise ValueError(f"{layer}: {name} (={channels}) must be divisible by groups (={groups})")


def _set_conv_shape(layer: Any, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair,
                    dilation: IntPair, groups: int) -> None:
    """Check a convolution layer's channels, groups and window, and store them on the layer."""
    name = type(layer).__name__
    layer.in_channels = check_int(in_channels, "in_channels", name)
    layer.out_channels = check_int(out_channels, "out_channels", name)
    layer.groups = check_int(groups, "groups", name)
    _divisible(layer.in_channels, "in_channels", layer.groups, name)
    _divisible(layer.out_channels, "out_channels", layer.groups, name)
    layer.kernel_size = positive_pair(kernel_size, "kernel_size", name)
    layer.stride = positive_pair(stride, "stride", name)
    layer.dilation = positive_pair(dilation, "dilation", name)


def _reset_uniform(weight: Parameter, bias: Parameter | None, fan_in: int,
                   rng: np.random.Generator | int | None) -> None:
    """weight and bias ~ U(−1/√fan_in, 1/√fan_in), PyTorch's default; weight drawn first."""
    rng = get_rng(rng)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    init.uniform_(weight, -bound, bound, rng=rng)
    if bias is not None:
        init.uniform_(bias, -bound, bound, rng=rng)


def _conv_repr(layer: Module, extra_defaults: dict) -> str:
    """PyTorch's style: the channels, kernel and stride always, the rest only when not default."""
    s = f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}, stride={layer.stride}"
    for name, default in extra_defaults.items():
        value = getattr(layer, name)
        if value != default:
            s += f", {name}={value}"
    if layer.bias is None:
        s += ", bias=False"
    return s


class Conv2d(Module):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    Args:
        in_channels: C, the channels of the input.
        out_channels: K, the number of kernels (output feature maps).
        kernel_size: kh or (kh, kw).
        stride: step between windows, int or pair.
        padding: zeros added on each side (int or pair), or "same" / "valid".
        dilation: spacing between kernel taps.
        groups: split channels into independent groups (``groups = C`` is a
            depthwise convolution); C and K must be divisible by it.
        bias: whether to learn an additive bias per output map.
        rng: Generator, int seed or None (striate's default generator) for the initial weights.
        algorithm: "auto", "im2col" or "winograd", how ``F.conv2d`` computes it (same
            result up to round-off; see ``F.conv2d``).

    Attributes:
        weight: (K, C/groups, kh, kw).
        bias: (K,) or None.

    Shape:
        input:  (N, C, H, W)
        output: (N, K, OH, OW)

    Example:
        >>> Conv2d(1, 6, 5)(st.Tensor(np.zeros((8, 1, 32, 32)))).shape
        (8, 6, 28, 28)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: Padding = 0, dilation: IntPair = 1, groups: int = 1, bias: bool = True,
                 rng: np.random.Generator | int | None = None, *, algorithm: Algorithm = "auto"):
        super().__init__()
        name = type(self).__name__
        _set_conv_shape(self, in_channels, out_channels, kernel_size, stride, dilation, groups)
        self.padding = check_padding(padding, name, self.stride)
        self.algorithm = check_algorithm(name, algorithm)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((self.out_channels, self.in_channels // self.groups, kh, kw),
                                         dtype=np.float32))
        self.bias = Parameter(np.empty(self.out_channels, dtype=np.float32)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw new initial weights (fan_in = C/groups · kh · kw)."""
        fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
        _reset_uniform(self.weight, self.bias, fan_in, rng)

    def forward(self, x: TensorLike) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                        algorithm=self.algorithm)

    def extra_repr(self) -> str:
        return _conv_repr(self, {"padding": (0, 0), "dilation": (1, 1), "groups": 1, "algorithm": "auto"})


class ConvTranspose2d(Module):
    """Transposed convolution ("deconvolution"): the gradient of Conv2d with respect to its input.

    Each input pixel scatters a kernel-sized patch into the output, which is how
    it upsamples by ``stride``. Arguments as in PyTorch:

    Args:
        in_channels, out_channels: C and K.
        kernel_size, stride, dilation: int or pair.
        padding: removed from each side of the full output (int or pair).
        output_padding: extra rows/columns added at the bottom/right to pick one of
            the output sizes that a strided Conv2d maps to the same input size;
            must be smaller than stride or dilation.
        groups: C and K must be divisible by it.
        bias, rng: as in :class:`Conv2d`.

    Attributes:
        weight: (C, K/groups, kh, kw) (PyTorch's layout: input channels first).
        bias: (K,) or None.

    Shape:
        input:  (N, C, H, W)
        output: (N, K, OH, OW)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, bias: bool = True,
                 dilation: IntPair = 1, rng: np.random.Generator | int | None = None):
        super().__init__()
        name = type(self).__name__
        _set_conv_shape(self, in_channels, out_channels, kernel_size, stride, dilation, groups)
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding must be an int or a pair of ints, got {padding!r} "
                             "(string paddings are for Conv2d)")
        self.padding = nonnegative_pair(padding, "padding", name)
        self.output_padding = nonnegative_pair(output_padding, "output_padding", name)
        for op_, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op_ >= s and op_ >= d:
                raise ValueError(f"{name}: output_padding (={self.output_padding}) must be smaller "
                                 f"than stride (={self.stride}) or dilation (={self.dilation})")
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((self.in_channels, self.out_channels // self.groups, kh, kw),
                                         dtype=np.float32))
        self.bias = Parameter(np.empty(self.out_channels, dtype=np.float32)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw new initial weights; like PyTorch, fan_in is taken from the weight's
        second axis: K/groups · kh · kw."""
        fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
        _reset_uniform(self.weight, self.bias, fan_in, rng)

    def forward(self, x: TensorLike) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)

    def extra_repr(self) -> str:
        return _conv_repr(self, {"padding": (0, 0), "dilation": (1, 1), "output_padding": (0, 0),
                                 "groups": 1})


class FusedConv2d(Module):
    """Convolution whose per-channel responses are fused by sum, concatenation or product.

    Each kernel ``k`` has one kh×kw slice per input channel ``c``; the response
    ``r[k, c] = x[:, c] ⋆ w[k, c]`` of every pair is computed, then fused:

    * ``"sum"``: Σ_c r[k, c], K maps — the ordinary convolution;
    * ``"concat"``: all K·C maps (map ``k·C + c`` is r[k, c]) — a depthwise convolution;
    * ``"product"``: Π_c r[k, c], K maps — the channels must agree (a multiplicative AND).

    Args:
        in_channels: C.
        num_kernels: K.
        kernel_size, stride, padding: as in :class:`Conv2d` (no dilation or groups).
        fusion: "sum", "concat" or "product".
        bias: one learnt value per output map (K, or K·C with "concat").
        rng: Generator, int seed or None for the initial weights.

    Initialisation: U(−1/√fan_in, 1/√fan_in) with fan_in = C·kh·kw for "sum"
    (exactly Conv2d's) and fan_in = kh·kw for "concat" and "product", where each
    response sees a single channel.

    Attributes:
        weight: (K, C, kh, kw).
        bias: (out_channels,) or None.
        out_channels: K, or K·C for "concat".

    Shape:
        input:  (N, C, H, W)
        output: (N, out_channels, OH, OW)
    """

    def __init__(self, in_channels: int, num_kernels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: Padding = 0, fusion: Fusion = "sum", bias: bool = True,
                 rng: np.random.Generator | int | None = None):
        super().__init__()
        name = type(self).__name__
        if fusion not in FUSIONS:
            raise ValueError(f"{name}: fusion must be one of {FUSIONS}, got {fusion!r}")
        self.fusion = fusion
        self.in_channels = check_int(in_channels, "in_channels", name)
        self.num_kernels = check_int(num_kernels, "num_kernels", name)
        self.out_channels = self.num_kernels * (self.in_channels if fusion == "concat" else 1)
        self.kernel_size = positive_pair(kernel_size, "kernel_size", name)
        self.stride = positive_pair(stride, "stride", name)
        self.padding = check_padding(padding, name, self.stride)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((self.num_kernels, self.in_channels, kh, kw), dtype=np.float32))
        self.bias = Parameter(np.empty(self.out_channels, dtype=np.float32)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw new initial weights (see the class docstring for fan_in)."""
        kh, kw = self.kernel_size
        fan_in = (self.in_channels if self.fusion == "sum" else 1) * kh * kw
        _reset_uniform(self.weight, self.bias, fan_in, rng)

    def forward(self, x: TensorLike) -> Tensor:
        return F.conv2d_fused(x, self.weight, self.bias, self.stride, self.padding, self.fusion)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.num_kernels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, fusion={self.fusion!r}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s
