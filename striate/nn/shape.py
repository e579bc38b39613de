"""Layers that only move data around: flattening, reshaping, padding."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import functional as F
from ..checks import check_number, to_tensor
from ..tensor import Tensor, TensorLike
from .module import Module

__all__ = ["Flatten", "Unflatten", "ZeroPad2d", "ConstantPad2d"]


def _axis_arg(value: object, name: str, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{layer}: {name} must be an int (an axis), got {value!r}")
    return int(value)


class Flatten(Module):
    """Merge axes ``start_dim`` … ``end_dim`` into one; by default everything but the batch.

    Shape: (N, C, H, W) → (N, C·H·W).
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = _axis_arg(start_dim, "start_dim", "Flatten")
        self.end_dim = _axis_arg(end_dim, "end_dim", "Flatten")

    def forward(self, x: TensorLike) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split axis ``dim`` into ``sizes`` (the inverse of Flatten).

    Shape: e.g. ``Unflatten(1, (16, 5, 5))``: (N, 400) → (N, 16, 5, 5).
    """

    def __init__(self, dim: int, sizes: Sequence[int]):
        super().__init__()
        self.dim = _axis_arg(dim, "dim", "Unflatten")
        if isinstance(sizes, (int, np.integer)) or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes):
            raise TypeError(f"Unflatten: sizes must be a tuple of ints, got {sizes!r}")
        self.sizes = tuple(int(s) for s in sizes)
        if sum(s == -1 for s in self.sizes) > 1 or any(s < 1 and s != -1 for s in self.sizes):
            raise ValueError(f"Unflatten: sizes must be positive, with at most one -1, got {self.sizes}")

    def forward(self, x: TensorLike) -> Tensor:
        x = to_tensor(x, "Unflatten")
        shape = tuple(x.shape)
        if not -len(shape) <= self.dim < len(shape):
            raise ValueError(f"Unflatten: dim={self.dim} is out of range for input {shape}")
        dim = self.dim % len(shape)
        known = math.prod(s for s in self.sizes if s != -1)
        n = shape[dim]
        if (n % known) if -1 in self.sizes else (n != known):
            raise ValueError(f"Unflatten: axis {dim} of input {shape} has {n} elements, which cannot be "
                             f"split into {self.sizes}")
        return x.reshape(shape[:dim] + self.sizes + shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.sizes}"


class ConstantPad2d(Module):
    """Pad the last two axes with a constant.

    Args:
        padding: int (all four sides) or (left, right, top, bottom), as in PyTorch.
        value: the fill value.

    Shape: (N, C, H, W) → (N, C, H + top + bottom, W + left + right).
    """

    def __init__(self, padding: int | Sequence[int], value: float):
        super().__init__()
        name = type(self).__name__
        if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
            padding = (int(padding),) * 4
        if not isinstance(padding, (tuple, list)) or len(padding) != 4 or not all(
                isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding):
            raise TypeError(f"{name}: padding must be an int or (left, right, top, bottom), got {padding!r}")
        self.padding = tuple(int(p) for p in padding)
        self.value = check_number(value, "value", name)

    def forward(self, x: TensorLike) -> Tensor:
        return F.pad(x, self.padding, self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value:g}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two axes with zeros (e.g. MNIST's 28×28 to LeNet-5's 32×32: ``ZeroPad2d(2)``).

    Shape: (N, C, H, W) → (N, C, H + top + bottom, W + left + right).
    """

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"
