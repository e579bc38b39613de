"""Dropout: randomly zero activations while training (inverted dropout).

Kept values are scaled by 1/(1 − p) during training, so the expected value of
each activation is unchanged and evaluation needs no rescaling: at test time
dropout is the identity. One random number per activation, drawn in the batch's
order; in a data-parallel job each process draws the whole batch's and keeps its
share (``random.set_batch_share``), so the masks do not depend on the number of
processes. The random mask lives in the backward closure of the
call that drew it, so a layer can be used twice before backward.
"""
from __future__ import annotations

import numpy as np

from .. import random as _random
from ..checks import check_float, to_tensor
from ..tensor import Gradients, Tensor, TensorLike, array_module

__all__ = ["dropout", "dropout2d"]


def _check_p(p: object, op: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"{op}: the drop probability p must be a number between 0 and 1, got {p!r}")
    return float(p)


def _masked(x: Tensor, p: float, mask_shape: tuple[int, ...], rng: np.random.Generator | int | None,
            op: str) -> Tensor:
    """x · mask / (1 − p), the mask of shape ``mask_shape`` (broadcast over x) kept with probability 1 − p."""
    xp = array_module(x.data)
    generator = _random.get_rng(rng)
    if p == 1:
        scaled_mask = xp.zeros(mask_shape, dtype=x.dtype)      # everything dropped (no 1/0)
    else:
        share = _random.batch_share()
        if share is not None and len(mask_shape) > 0 and mask_shape[0] == share[1] - share[0]:
            # this process holds samples lo:hi of a larger batch: draw the whole batch's mask, keep its rows
            lo, hi, total = share
            keep = generator.random((total,) + mask_shape[1:], dtype=x.dtype)[lo:hi] >= x.dtype.type(p)
        else:
            keep = generator.random(mask_shape, dtype=x.dtype) >= x.dtype.type(p)
        scaled_mask = xp.asarray(keep, dtype=x.dtype) * x.dtype.type(1 / (1 - p))

    def backward(g: np.ndarray) -> Gradients:
        return (g * scaled_mask,)    # the same mask and scale as the forward pass
    return Tensor.from_op(x.data * scaled_mask, (x,), backward, op)


def dropout(x: TensorLike, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | int | None = None) -> Tensor:
    """Zero each element with probability ``p``; scale the others by 1/(1 − p).

    Args:
        x: any shape.
        p: the probability of dropping an element (0 keeps all, 1 drops all).
        training: when False (evaluation), ``x`` is returned unchanged.
        rng: a ``numpy.random.Generator``, an int seed (the same seed gives the
            same mask), or None for striate's default generator.

    Shape: x any shape; out the same.
    """
    p = _check_p(p, "dropout")
    x = to_tensor(x, "dropout")
    check_float(x, "dropout")
    if not training or p == 0:
        return x
    return _masked(x, p, x.shape, rng, "dropout")


def dropout2d(x: TensorLike, p: float = 0.5, training: bool = True,
              rng: np.random.Generator | int | None = None) -> Tensor:
    """Drop whole feature maps: each channel of each sample is zeroed with probability ``p``.

    Neighbouring pixels of a feature map are strongly correlated, so dropping
    single pixels regularises convolutional layers little; dropping the whole
    map does (Tompson et al., 2015). Kept maps are scaled by 1/(1 − p).

    Shape:
        x:   (N, C, H, W)
        out: (N, C, H, W); the mask is (N, C, 1, 1)
    """
    p = _check_p(p, "dropout2d")
    x = to_tensor(x, "dropout2d")
    check_float(x, "dropout2d")
    if x.ndim != 4:
        raise ValueError(f"dropout2d expects input (N, C, H, W), got shape {tuple(x.shape)}")
    if not training or p == 0:
        return x
    return _masked(x, p, x.shape[:2] + (1, 1), rng, "dropout2d")
