"""Inference: the forward striate's evaluate and predict run, compiled without measuring or op by op."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import striate as st
from striate import nn
from striate.compile import Inference
from striate.compile.plan import Plan
from striate.compile.steps import ConvStep

from .helpers import assert_float32_close, eager


def _x(n, shape=(1, 32, 32), seed=0):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def test_compiled_without_measuring_equals_eager_and_is_the_same_every_time():
    model = st.models.get("lenet5-modern", rng=0)
    forward = Inference(model)
    x = _x(37)
    first = assert_float32_close(model, forward, x).data
    plan = forward.compiled.last
    convs = [s for s in plan.steps if isinstance(s, ConvStep)]
    assert len(convs) == 2 and all(not s.timings for s in convs)        # nothing was timed
    again = Inference(st.models.get("lenet5-modern", rng=0))(x).data      # a fresh plan of a fresh model
    np.testing.assert_array_equal(again, first)                           # bit for bit


def test_op_by_op_is_the_model_itself_in_evaluation_mode():
    model = nn.Sequential(nn.Linear(6, 8, rng=0), nn.Dropout(0.5, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=0))
    model.train()
    x = _x(5, (6,))
    forward = Inference(model, compiled=False)
    assert forward.compiled is None
    np.testing.assert_array_equal(forward(x).data, eager(model, x))      # dropout off
    assert model.training and all(m.training for m in model.modules())   # the mode left as it was
    compiled = Inference(model)
    np.testing.assert_allclose(compiled(x).data, eager(model, x), rtol=1e-6, atol=1e-6)
    assert model.training and all(m.training for m in model.modules())


def test_a_model_the_planner_fails_on_runs_op_by_op_with_one_warning(monkeypatch):
    model = st.models.get("lenet5-modern", rng=0)

    def fail(self, *args, **kwargs):
        raise RuntimeError("no plan today")
    monkeypatch.setattr(Plan, "__init__", fail)
    forward = Inference(model)
    x = _x(4)
    with pytest.warns(RuntimeWarning, match=r"could not plan LeNet5Modern for input \(4, 1, 32, 32\) "
                                            r"\(RuntimeError: no plan today\); it runs op by op"):
        got = forward(x).data
    np.testing.assert_array_equal(got, eager(model, x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(forward(x).data, got)                # once per shape: no second warning
    assert list(forward.unplanned) == [((4, 1, 32, 32), np.dtype(np.float32).str)]


@pytest.mark.parametrize("compiled", [True, False])
def test_a_bad_input_gives_the_models_own_error_and_no_warning(compiled):
    model = st.models.get("lenet5-modern", rng=0)
    x = _x(2, (3, 32, 32))
    with pytest.raises(ValueError) as expected:
        model(x)
    forward = Inference(model, compiled=compiled)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):                                                  # planned or not, the same error
            with pytest.raises(ValueError) as got:
                forward(x)
            assert str(got.value) == str(expected.value)
            assert "lenet5_modern expects input (N, 1, 32, 32), got (2, 3, 32, 32)" in str(got.value)


def test_an_empty_batch_runs_op_by_op():
    model = st.models.get("lenet5-modern", rng=0)
    forward = Inference(model)
    assert forward(np.zeros((0, 1, 32, 32), np.float32)).shape == (0, 10)
    assert not forward.compiled.plans and not forward.unplanned


def test_it_takes_only_modules():
    with pytest.raises(TypeError, match="Inference expects a striate.nn.Module, got function"):
        Inference(lambda x: x)
