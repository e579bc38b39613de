"""``st.compile(model)``: the forward pass planned for inference (trace, plan, fused steps).

>>> import striate as st
>>> fast = st.compile(st.models.get("lenet5-modern", rng=0))
>>> import numpy as np
>>> fast(np.zeros((2, 1, 32, 32), np.float32)).shape
(2, 10)

See ``plan.py`` for what the planner does and ``steps.py`` for the steps; ``inference.py``
for :class:`Inference`, the forward that ``evaluate`` and ``Run.predict`` run (compiled
without measuring, so the same every run, or op by op).
"""
from .inference import Inference
from .plan import Compiled, Plan, compile, eager_forward

__all__ = ["Compiled", "Inference", "Plan", "compile", "eager_forward"]
