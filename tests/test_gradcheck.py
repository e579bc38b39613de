"""st.gradcheck: it must pass correct gradients and catch wrong ones, with a message that says where."""
import numpy as np
import pytest

import striate as st
from striate import GradcheckError, Tensor


def wrong_square(x, scale=1.0, only=None):
    """x² with a deliberately wrong backward: 2x·scale, or 2x except at flat index ``only``."""
    def backward(g):
        d = 2 * x.data * scale
        if only is not None:
            d = d.copy()
            d.flat[only] *= 1.5
        return (g * d,)
    return Tensor.from_op(x.data ** 2, (x,), backward, "wrong_square")


def wrong_mul(a, b):
    """a·b whose gradient for b forgets a factor."""
    def backward(g):
        return g * b.data, g
    return Tensor.from_op(a.data * b.data, (a, b), backward, "wrong_mul")


# ---------------------------------------------------------------------------
# correct ops pass


def test_passes_on_engine_ops(rng):
    a = rng.standard_normal((3, 1, 4))
    b = rng.uniform(0.5, 2.0, size=(2, 4))
    assert st.gradcheck(lambda x, y: x * y + x / y - y ** 3, [a, b])
    assert st.gradcheck(lambda x, y: (x @ y.T).exp().mean(0), [rng.standard_normal((3, 4)), b])
    assert st.gradcheck(lambda x: (x.abs() + 1).log().sqrt().sum(1), [a])
    assert st.gradcheck(lambda x: x[:, 0, ::-2] * x.max(2, keepdims=True)[..., 0], [a])
    assert st.gradcheck(lambda x: x.reshape(4, 3).transpose() @ x.reshape(3, 4).T, [a])


def test_passes_with_non_float_inputs_passed_through(rng):
    x = rng.standard_normal((5, 3))
    index = np.array([0, 4, 4, 1])               # repeated rows accumulate
    seen = []

    def pick(t, i):
        seen.append((t.dtype, i.dtype))
        return t[i] * 2
    assert st.gradcheck(pick, [x, index])
    assert seen[0] == (np.float64, np.int64)


def test_float32_inputs_are_checked_in_float64(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    dtypes = []

    def fn(t):
        dtypes.append(t.dtype)
        return t * t
    assert st.gradcheck(fn, [x])
    assert set(dtypes) == {np.dtype(np.float64)}
    assert st.gradcheck(fn, [st.Tensor(x)])      # Tensors are accepted too


def test_multiple_outputs(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal(3)
    assert st.gradcheck(lambda x, y: (x * y, (x + y).exp(), x.sum()), [a, b])
    assert st.gradcheck(lambda x, y: [x @ y, y * 3], [a, b])
    # the second output's gradient is wrong: caught
    with pytest.raises(GradcheckError, match="input 0"):
        st.gradcheck(lambda x, y: (x * y, wrong_square(x, 1.01)), [a, b])


def test_outputs_and_inputs_without_a_path(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(4)
    # b does not reach the output: its gradient is zero on both sides
    assert st.gradcheck(lambda x, y: x * 2, [a, b])
    # an output that depends on no input at all adds nothing
    assert st.gradcheck(lambda x: (x * 2, st.Tensor(np.ones(2), dtype=np.float64)), [a])
    assert st.gradcheck(lambda x: st.Tensor(np.ones(2), dtype=np.float64), [a])


def test_large_inputs_use_random_directions(rng):
    x = rng.standard_normal((20, 30))            # 600 elements > max_elements
    calls = []

    def fn(t):
        calls.append(1)
        return (t * t).exp().mean(1)
    assert st.gradcheck(fn, [x], directions=5)
    assert len(calls) == 1 + 2 * 5              # one backward pass, then ± each direction

    calls.clear()
    assert st.gradcheck(fn, [x[:4, :4]])
    assert len(calls) == 1 + 2 * 16             # small: one probe per element


# ---------------------------------------------------------------------------
# wrong gradients fail, with a useful message


def test_fails_on_wrong_backward(rng):
    x = rng.standard_normal((2, 3))
    with pytest.raises(GradcheckError, match=r"gradcheck failed on 6 probe\(s\)") as info:
        st.gradcheck(lambda t: wrong_square(t, 0.5), [x])
    message = str(info.value)
    assert "input 0 (2, 3), element (0, 0): analytic" in message
    assert "numerical" in message and "tolerance" in message
    assert not st.gradcheck(lambda t: wrong_square(t, 0.5), [x], raise_exception=False)
    assert issubclass(GradcheckError, AssertionError)


def test_message_names_the_wrong_element_and_input(rng):
    x = rng.uniform(0.5, 1.0, size=(3, 4))       # away from 0 so that 1.5·2x is far from 2x
    with pytest.raises(GradcheckError, match=r"on 1 probe\(s\):\n  input 0 \(3, 4\), element \(1, 2\)"):
        st.gradcheck(lambda t: wrong_square(t, only=6), [x])

    a, b = rng.uniform(1.0, 2.0, size=3), rng.uniform(2.0, 3.0, size=3)
    with pytest.raises(GradcheckError) as info:
        st.gradcheck(wrong_mul, [a, b])
    assert "input 1 (3,)" in str(info.value) and "input 0" not in str(info.value)


def test_random_direction_mode_catches_wrong_gradients(rng):
    x = rng.standard_normal((16, 16))
    with pytest.raises(GradcheckError, match=r"input 0 \(16, 16\), a random direction"):
        st.gradcheck(lambda t: wrong_square(t, 1.05), [x])
    # one wrong element out of 256 still moves the directional derivative
    with pytest.raises(GradcheckError, match="a random direction"):
        st.gradcheck(lambda t: wrong_square(t, only=100), [x + 3.0])


def test_long_failure_lists_are_shortened(rng):
    with pytest.raises(GradcheckError, match=r"on 12 probe\(s\):(\n  input 0[^\n]*){10}\n  \.\.\. and 2 more"):
        st.gradcheck(lambda t: wrong_square(t, 0.5), [rng.uniform(1, 2, size=(3, 4))])


def test_tolerances_are_respected(rng):
    x = rng.uniform(1.0, 2.0, size=(2, 2))
    slightly_wrong = lambda t: wrong_square(t, 1.01)        # noqa: E731 - 1% off
    with pytest.raises(GradcheckError):
        st.gradcheck(slightly_wrong, [x])
    assert st.gradcheck(slightly_wrong, [x], rtol=0.05)


def test_op_that_loses_precision_is_reported(rng):
    x = rng.standard_normal(4)
    with pytest.raises(GradcheckError, match="output 0 is float32 for float64 inputs"):
        st.gradcheck(lambda t: t.astype(np.float32) * 2, [x])


def test_fn_must_return_tensors(rng):
    with pytest.raises(TypeError, match="fn must return Tensors, got ndarray"):
        st.gradcheck(lambda t: t.data * 2, [rng.standard_normal(3)])


def test_gradcheck_leaves_grad_mode_and_inputs_alone(rng):
    x = rng.standard_normal((2, 3))
    original = x.copy()
    t = st.Tensor(x, dtype=np.float64)
    st.gradcheck(lambda a: a * a, [t])
    assert st.is_grad_enabled()
    np.testing.assert_array_equal(x, original)
    assert t.grad is None and not t.requires_grad
