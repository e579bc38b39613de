"""Every registered model, compiled, against eager striate (float32 and float64)."""
from __future__ import annotations

import numpy as np
import pytest

import striate as st

from .helpers import assert_float32_close


@pytest.mark.parametrize("name", st.models.names())
def test_every_model_compiles_and_matches_eager(name):
    model = st.models.get(name, rng=0)
    batch = 2 if name == "alexnet" else 5
    x = np.random.default_rng(1).standard_normal((batch, *model.input_shape)).astype(np.float32)
    fast = st.compile(model)
    assert_float32_close(model, fast, x)
    assert_float32_close(model, fast, x[::-1].copy())      # the same plan, other data
    assert len(fast.plans) == 1
    assert "plan for input" in repr(fast)


def test_neocognitron_falls_back_to_eager_as_a_whole():
    model = st.models.get("neocognitron", rng=0)
    fast = st.compile(model)
    x = np.random.default_rng(2).random((2, *model.input_shape)).astype(np.float32)
    assert_float32_close(model, fast, x)
    assert "eager mode" in repr(fast)


def test_lenet5_modern_plan_fuses_and_reads_well():
    model = st.models.get("lenet5-modern", rng=0)
    fast = st.compile(model)
    x = np.random.default_rng(3).standard_normal((16, 1, 32, 32)).astype(np.float32)
    assert_float32_close(model, fast, x)
    text = repr(fast)
    assert text.count("conv2d 1→6") == 1 and "conv2d 6→16" in text and "max_pool 2×2" in text and "relu" in text
    assert "measured" in text and "ms" in text and "buffers" in text
    plan = fast.plans[next(iter(fast.plans))]
    kinds = [type(s).__name__ for s in plan.steps]
    assert kinds == ["ConvStep", "ConvStep", "ViewStep", "LinearStep", "LinearStep", "LinearStep"]


def test_input_as_tensor_and_without_requires_grad():
    model = st.models.get("lenet5-modern", rng=0)
    fast = st.compile(model)
    x = np.random.default_rng(4).standard_normal((3, 1, 32, 32)).astype(np.float32)
    out = fast(st.Tensor(x, requires_grad=True))
    assert isinstance(out, st.Tensor) and not out.requires_grad
    np.testing.assert_allclose(out.data, fast(x).data)


def test_a_float64_array_is_taken_as_float32_as_the_models_do():
    model = st.models.get("lenet5-modern", rng=0)
    fast = st.compile(model)
    x = np.random.default_rng(5).standard_normal((2, 1, 32, 32))
    with st.no_grad():
        expected = model.eval()(x).data
    got = fast(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.data, expected, rtol=1e-5, atol=1e-6)


def test_lenet5_leaves_c1_to_eager_where_only_eager_ops_read_it():
    """C1's output goes to S2's sum pooling, which has no batch-last step: the convolution stays
    as in eager mode (N, K, OH, OW), not made batch last and reordered back; C5, read by a flatten,
    is planned batch last."""
    model = st.models.get("lenet5", rng=0)
    fast = st.compile(model, measure=False)
    x = np.random.default_rng(6).standard_normal((7, 1, 32, 32)).astype(np.float32)
    assert_float32_close(model, fast, x)
    plan = fast.last
    labels = [s.label() for s in plan.steps]
    assert labels[0] == "conv2d (as in eager mode)" and labels[1] == "scaled_tanh"
    assert not any(label.startswith("reorder CHWN") for label in labels), labels
    assert any(label.startswith("conv2d 16→120 5×5") for label in labels), labels
