"""Activation layers: no parameters; each calls its op in ``F``.

Shape: any shape in, the same shape out (the softmaxes work along ``dim``).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..checks import check_number
from ..tensor import Tensor, TensorLike
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Tanh", "ScaledTanh", "Sigmoid", "Softmax", "LogSoftmax"]


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    """x for x > 0, ``negative_slope``·x otherwise."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = check_number(negative_slope, "negative_slope", "LeakyReLU")

    def forward(self, x: TensorLike) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope:g}"


class Tanh(Module):
    """tanh(x)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.tanh(x)


class ScaledTanh(Module):
    """a·tanh(s·x); LeCun's 1.7159·tanh(2x/3) by default (LeNet-5)."""

    def __init__(self, a: float = 1.7159, s: float = 2 / 3):
        super().__init__()
        self.a = check_number(a, "a", "ScaledTanh")
        self.s = check_number(s, "s", "ScaledTanh")

    def forward(self, x: TensorLike) -> Tensor:
        return F.scaled_tanh(x, self.a, self.s)

    def extra_repr(self) -> str:
        return f"a={self.a:g}, s={self.s:g}"


class Sigmoid(Module):
    """1 / (1 + e^(−x))."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.sigmoid(x)


def _dim_arg(dim: object, layer: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{layer}: dim must be an int (the axis to normalise over), got {dim!r}")
    return int(dim)


class Softmax(Module):
    """e^(x_i) / Σ_j e^(x_j) along ``dim`` (default: the last axis, like ``F.softmax``).

    For (N, C, H, W) class maps pass ``dim=1``.
    """

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = _dim_arg(dim, "Softmax")

    def forward(self, x: TensorLike) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log of :class:`Softmax` along ``dim``, computed stably."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = _dim_arg(dim, "LogSoftmax")

    def forward(self, x: TensorLike) -> Tensor:
        return F.log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
