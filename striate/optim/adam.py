"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019).

For each parameter p with gradient g, at step t = 1, 2, ... (PyTorch's algorithm)::

    g ← −g                                  if maximize
    p ← p · (1 − lr · weight_decay)         AdamW: decoupled weight decay
    g ← g + weight_decay · p                Adam: L2 penalty in the gradient
    m ← m + (1 − β₁) · (g − m)              first moment  (a lerp towards g)
    v ← β₂ · v + (1 − β₂) · g²              second moment
    v̂ ← max(v̂, v)                           amsgrad only; then used instead of v
    p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..checks import check_number
from ..tensor import Tensor, array_module
from .optimizer import Optimizer, each_block

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam: per-parameter step sizes from running moments of the gradient.

    Args:
        params: parameters, or parameter groups (dicts).
        lr: learning rate.
        betas: decay rates (β₁, β₂) of the first and second moments.
        eps: added to the denominator.
        weight_decay: L2 penalty added to the gradient (AdamW: decoupled decay).
        amsgrad: use the running maximum of the second moment (Reddi et al., 2018).
        maximize: ascend instead of descend.

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``.
    """

    _decoupled_weight_decay = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, (list, tuple)) else betas,
                        eps=eps, weight_decay=weight_decay, amsgrad=bool(amsgrad), maximize=bool(maximize))
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        name = type(self).__name__
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            check_number(beta, f"betas[{i}]", name, at_least=0, below=1)
        check_number(group["eps"], "eps", name, at_least=0)
        check_number(group["weight_decay"], "weight_decay", name, at_least=0)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict, state: dict) -> None:
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        xp = array_module(p.data)
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] = t = int(state["step"]) + 1
        # the bias corrections are Python floats (float64 maths on scalars only)
        step_size = lr / (1 - beta1 ** t)
        bias_correction2_sqrt = (1 - beta2 ** t) ** 0.5
        w = 1 - beta1
        amsgrad = group["amsgrad"]
        def update(P: Any, G: Any, m: Any, v: Any, vmax: Any) -> None:     # in place, block by block
            g = -G if group["maximize"] else G
            if weight_decay != 0:
                if self._decoupled_weight_decay:
                    P *= 1 - lr * weight_decay
                else:
                    g = g + weight_decay * P
            # m ← lerp(m, g, 1 − β₁), written the way PyTorch evaluates it for each weight
            if w < 0.5:
                m += w * (g - m)
            else:
                m[...] = g - (g - m) * (1 - w)
            v *= beta2
            v += (1 - beta2) * g * g
            if amsgrad:
                xp.maximum(vmax, v, out=vmax)
                v = vmax
            denom = xp.sqrt(v) / bias_correction2_sqrt + eps
            P += -step_size * m / denom
        each_block(update, p.data, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"))


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p ← p · (1 − lr · weight_decay)`` before the Adam step,
    instead of adding the penalty to the gradient (default weight_decay 1e-2)."""

    _decoupled_weight_decay = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
