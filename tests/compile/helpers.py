"""Shared helpers: float64 twins of models and the float32-rounding comparison."""
from __future__ import annotations

import copy

import numpy as np

import striate as st


def float64_twin(model):
    """A deep copy of ``model`` with every float parameter and buffer in float64."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        for p in m._parameters.values():
            if p is not None and p.data.dtype == np.float32:
                p.data = p.data.astype(np.float64)
        for name, b in list(m._buffers.items()):
            if isinstance(b, np.ndarray) and b.dtype == np.float32:
                m._buffers[name] = b.astype(np.float64)
    return twin


def eager(model, x):
    """What the compiled model must give: ``model.eval()`` under no_grad, mode restored."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with st.no_grad():
            return model(x).data
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)


def assert_float32_close(model, fast, x, factor=8.0):
    """fast(x)'s error against a float64 eager run is of the order of eager float32's own."""
    got = fast(x)
    assert isinstance(got, st.Tensor) and got.dtype == np.float32
    ref32 = eager(model, x)
    assert got.shape == ref32.shape
    try:
        ref64 = eager(float64_twin(model), st.Tensor(x.astype(np.float64), dtype=np.float64))
    except TypeError:           # a model with float32 arrays of its own (the neocognitron): eager float32
        np.testing.assert_allclose(got.data, ref32, rtol=1e-5, atol=1e-6 * float(np.abs(ref32).max()))
        return got
    scale = float(np.abs(ref64).max()) + 1e-30
    err_eager = float(np.abs(ref32 - ref64).max())
    err_fast = float(np.abs(got.data - ref64).max())
    assert err_fast <= factor * err_eager + 2e-6 * scale, (err_fast, err_eager, scale)
    return got


def record_plan_batches(monkeypatch) -> list[int]:
    """The sizes of the batches that compiled plans compute, in order, from now on.

    A plan computes its first batch while it is made (planning runs every step on it) and
    later ones in ``Plan.run``; a forward run op by op adds nothing.
    """
    from striate.compile.plan import Plan
    batches: list[int] = []
    make, run = Plan.__init__, Plan.run

    def made(self, model, example, *args, **kwargs):
        make(self, model, example, *args, **kwargs)
        if not self.eager_only:
            batches.append(len(example))

    def ran(self, x):
        batches.append(len(x))
        return run(self, x)
    monkeypatch.setattr(Plan, "__init__", made)
    monkeypatch.setattr(Plan, "run", ran)
    return batches
