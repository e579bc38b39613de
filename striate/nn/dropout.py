"""Dropout layers: random zeroing while training, the identity in evaluation mode.

The random numbers come from ``rng``. Left as None, each call draws from
striate's *current* default generator, so ``st.manual_seed`` (called before or
after building the model) makes runs reproducible and a checkpoint that saves
``st.random.get_state()`` restores the masks too. An int seed or a Generator
gives the layer a stream of its own.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..checks import check_number
from ..random import get_rng
from ..tensor import Tensor, TensorLike
from .module import Module

__all__ = ["Dropout", "Dropout2d"]


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the rest by 1/(1 − p) (inverted dropout).

    Shape: any shape in, the same out.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None):
        super().__init__()
        self.p = check_number(p, "p", type(self).__name__, at_least=0, at_most=1)
        # None stays None: the default generator is looked up at each call, not frozen here
        self.rng = None if rng is None else get_rng(rng)

    def forward(self, x: TensorLike) -> Tensor:
        return F.dropout(x, self.p, self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class Dropout2d(Dropout):
    """Zero whole feature maps (each channel of each sample) with probability ``p``.

    Shape: (N, C, H, W) → (N, C, H, W).
    """

    def forward(self, x: TensorLike) -> Tensor:
        return F.dropout2d(x, self.p, self.training, rng=self.rng)
