"""The forward pass striate's own inference runs: compiled, or op by op.

``evaluate`` (so ``striate evaluate`` and the test pass after each epoch of ``fit``) and
``Run.predict`` (so ``striate predict`` and the explorer's confusion matrix) call their
model through :class:`Inference`. Compiled, it is ``st.compile(model, measure=False)``:
planned once per input shape and dtype without timing anything, so the plan, and so every
number, depends only on the model, the data and the shapes, and is the same on every run.
It equals the op-by-op forward to float32 rounding.

    >>> import numpy as np
    >>> forward = Inference(st.models.get("lenet5-modern", rng=0))
    >>> forward(np.zeros((3, 1, 32, 32), np.float32)).shape
    (3, 10)

A model the planner cannot handle still runs: when planning fails for an input shape, that
shape runs op by op, with a warning naming the reason. A bad input is not hidden by this: the
op-by-op forward raises the model's own error for it, as it does without compiling.
"""
from __future__ import annotations

import warnings

from ..nn.module import Module
from ..tensor import Tensor
from .plan import Compiled, eager_forward

__all__ = ["Inference"]


class Inference:
    """``model``'s forward in evaluation mode, without gradients: ``Inference(model)(x)`` -> Tensor.

    Args:
        model: the model; it is read at each call (current weights, and its mode left as it was).
        compiled: through ``st.compile(model, measure=False)`` (the default), or op by op
            (False), as ``model(x)`` after ``model.eval()`` under ``no_grad``.

    The plans are those of one :class:`~striate.compile.Compiled`, kept as long as this object
    (at most ``MAX_PLANS``, one per input shape and dtype); make one per model and keep it where
    the model is used repeatedly, as ``Run`` does.
    """

    def __init__(self, model: Module, compiled: bool = True):
        if not isinstance(model, Module):
            raise TypeError(f"Inference expects a striate.nn.Module, got {type(model).__name__}")
        self.model = model
        self.compiled = Compiled(model, measure=False) if compiled else None     # st.compile(model, measure=False)
        self.unplanned: dict[tuple, str] = {}           # (shape, dtype) -> why planning failed

    def __call__(self, x) -> Tensor:
        t = x if isinstance(x, Tensor) else Tensor(x)
        if self.compiled is None or t.data.size == 0:   # an empty batch: nothing to plan
            return eager_forward(self.model, t)
        key = (tuple(t.shape), t.data.dtype.str)
        if key not in self.unplanned:
            try:
                plan, out = self.compiled.planned(t)
            except Exception as exc:        # any failure of the planner: the eager forward below judges the input
                self.unplanned[key] = f"{type(exc).__name__}: {exc}"
            else:
                self.compiled.last = plan
                return out if out is not None else plan.run(t.data)
            out = eager_forward(self.model, t)          # a bad input raises the model's own error here
            warnings.warn(f"st.compile could not plan {type(self.model).__name__} for input {key[0]} "
                          f"({self.unplanned[key]}); it runs op by op", RuntimeWarning, stacklevel=2)
            return out
        return eager_forward(self.model, t)

    def __repr__(self) -> str:
        if self.compiled is None:
            return f"Inference({type(self.model).__name__}, op by op)"
        return f"Inference({type(self.model).__name__}, compiled without measuring)\n{self.compiled!r}"
