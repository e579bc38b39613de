"""``st.compile(model)``: the forward pass planned for inference (trace, plan, fused steps).

>>> import striate as st
>>> fast = st.compile(st.models.get("lenet5-modern", rng=0))
>>> import numpy as np
>>> fast(np.zeros((2, 1, 32, 32), np.float32)).shape
(2, 10)

See ``plan.py`` for what the planner does and ``steps.py`` for the steps.
"""
from .plan import Compiled, Plan, compile

__all__ = ["Compiled", "Plan", "compile"]
