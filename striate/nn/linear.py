"""The fully connected layer, and the identity."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..checks import check_int
from ..random import get_rng
from ..tensor import Tensor, TensorLike
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Identity"]


class Linear(Module):
    """out = x · weightᵀ + bias.

    Args:
        in_features, out_features: sizes of the last axis in and out.
        bias: whether to learn an additive bias.
        rng: Generator, int seed or None (striate's default generator) for the
            initial weights: U(−1/√in, 1/√in) for weight, then bias (PyTorch's default).

    Attributes:
        weight: (out_features, in_features).
        bias: (out_features,) or None.

    Shape:
        input:  (N, in_features), or any (..., in_features)
        output: (N, out_features)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rng: np.random.Generator | int | None = None):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", "Linear")
        self.out_features = check_int(out_features, "out_features", "Linear")
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=np.float32))
        self.bias = Parameter(np.empty(self.out_features, dtype=np.float32)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw new initial weights: U(−1/√in_features, 1/√in_features), weight then bias."""
        rng = get_rng(rng)
        bound = 1 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound, rng=rng)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, rng=rng)

    def forward(self, x: TensorLike) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, or the shortcut of a residual block)."""

    def forward(self, x: Tensor) -> Tensor:
        return x
