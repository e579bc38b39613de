"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

For each parameter p with gradient g (PyTorch's algorithm, step for step)::

    g ← −g                       if maximize
    g ← g + weight_decay · p     (L2 penalty)
    b ← g                        on the first step, else  b ← momentum · b + (1 − dampening) · g
    g ← g + momentum · b         if nesterov, else  g ← b          (only when momentum ≠ 0)
    p ← p − lr · g
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..checks import check_number
from ..tensor import Tensor, array_module
from .optimizer import Optimizer, each_block

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent.

    Args:
        params: parameters, or parameter groups (dicts).
        lr: learning rate.
        momentum: momentum factor (0: plain SGD).
        dampening: scales the new gradient in the momentum buffer by (1 − dampening).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        weight_decay: L2 penalty coefficient added to the gradient.
        maximize: ascend instead of descend.

    State per parameter: ``momentum_buffer`` (when momentum ≠ 0).

    Example:
        >>> model = nn.Linear(4, 2)
        >>> opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
        >>> loss = (model(np.ones((8, 4), np.float32)) ** 2).mean()
        >>> opt.zero_grad(); loss.backward(); opt.step()
        >>> sorted(opt.state[model.weight])
        ['momentum_buffer']
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=bool(nesterov),
                        weight_decay=weight_decay, maximize=bool(maximize))
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        momentum = check_number(group["momentum"], "momentum", "SGD", at_least=0)
        dampening = check_number(group["dampening"], "dampening", "SGD", at_least=0)
        check_number(group["weight_decay"], "weight_decay", "SGD", at_least=0)
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening = 0, "
                             f"got momentum={momentum:g}, dampening={dampening:g}")

    def _update(self, p: Tensor, grad: np.ndarray, group: dict, state: dict) -> None:
        # Python floats keep the float32 arithmetic float32 (an np.float64 would not)
        lr, momentum = float(group["lr"]), float(group["momentum"])
        dampening, weight_decay = float(group["dampening"]), float(group["weight_decay"])
        maximize, nesterov = group["maximize"], group["nesterov"]
        buf = state.get("momentum_buffer") if momentum != 0 else None
        first = momentum != 0 and buf is None
        if first:
            buf = state["momentum_buffer"] = array_module(p.data).empty_like(p.data)
        def update(P: Any, G: Any, B: Any) -> None:            # in place, block by block
            g = -G if maximize else G
            if weight_decay != 0:
                g = g + weight_decay * P
            if B is not None:
                if first:
                    B[...] = g
                else:
                    B *= momentum
                    B += g if dampening == 0 else (1 - dampening) * g
                g = g + momentum * B if nesterov else B
            P -= lr * g
        each_block(update, p.data, grad, buf)
