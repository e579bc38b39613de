"""Containers for graphs that are not a chain: skip connections and parallel branches.

Autograd sums the gradients of a tensor used twice, so these need no backward
of their own: the input's gradient is the sum over the paths it feeds.
"""
from __future__ import annotations

from .. import functional as F
from ..checks import to_tensor
from ..tensor import Tensor, TensorLike
from .module import Module

__all__ = ["Residual", "Concat"]


class Residual(Module):
    """``body(x) + shortcut(x)``: a skip connection (He et al., 2016).

    Args:
        body: the residual branch (e.g. conv → bn → relu → conv → bn).
        shortcut: a module applied to x on the skip path (e.g. a 1×1 Conv2d
            when the body changes the shape), or None for x itself.

    Shape: whatever the body produces; the shortcut's output must have the same shape.
    """

    def __init__(self, body: Module, shortcut: Module | None = None):
        super().__init__()
        for what, m in (("body", body), ("shortcut", shortcut)):
            if m is not None and not isinstance(m, Module):
                raise TypeError(f"Residual: {what} must be a Module, got {type(m).__name__}")
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: TensorLike) -> Tensor:
        x = to_tensor(x, "Residual")
        y = self.body(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if tuple(y.shape) != tuple(skip.shape):
            what = "the input" if self.shortcut is None else "the shortcut's output"
            raise ValueError(f"Residual: the body's output {tuple(y.shape)} and {what} "
                             f"{tuple(skip.shape)} must have the same shape "
                             "(give a shortcut, e.g. a 1×1 Conv2d, that matches them)")
        return y + skip


class Concat(Module):
    """Run branches on the same input and join their outputs along ``dim`` (channels by
    default), as in Inception blocks.

    Shape: (N, C, H, W) → (N, K_1 + K_2 + ..., OH, OW); every branch must give the
    same N, OH, OW.
    """

    def __init__(self, *branches: Module, dim: int = 1):
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        for i, m in enumerate(branches):
            if not isinstance(m, Module):
                raise TypeError(f"Concat expects Modules, got {type(m).__name__} at position {i}")
            self.add_module(str(i), m)
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"Concat: dim must be an int (the axis to join along), got {dim!r}")
        self.dim = dim

    def forward(self, x: TensorLike) -> Tensor:
        return F.concat([branch(x) for branch in self._modules.values()], axis=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
