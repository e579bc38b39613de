"""Pooling ops: forward and input gradient against PyTorch, central differences, and errors.

PyTorch has no min, sum or (padded) Lp pooling; their references are written with
the PyTorch ops that define them: ``min_pool2d(x) = -max_pool2d(-x)``, ``sum_pool2d`` is
``avg_pool2d`` with ``divisor_override=1``, and a padded ``lp_pool2d`` is PyTorch's
``lp_pool2d`` of the zero-padded input.
"""
import math

import numpy as np
import pytest
import torch

import striate as st
import striate.functional as F
import striate.functional.pool as pool
from tests.reference import check_torch, to_torch64

tF = torch.nn.functional

# One line per case: op, input shape, arguments (the same for both libraries).
CASES = [
    ("max_pool2d", (2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),     # overlapping, as AlexNet
    ("max_pool2d", (3, 2, 28, 28), dict(kernel_size=2)),                        # LeNet's subsampling
    ("max_pool2d", (1, 1, 9, 8), dict(kernel_size=(2, 3), stride=(3, 1), dilation=(2, 1))),
    ("max_pool2d", (2, 2, 8, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", (2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg_pool2d", (2, 2, 8, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", (1, 2, 6, 6), dict(kernel_size=(3, 2), divisor_override=4)),
    ("adaptive_avg_pool2d", (2, 3, 13, 11), dict(output_size=(6, 4))),
    ("adaptive_max_pool2d", (2, 3, 13, 11), dict(output_size=(6, None))),
]


@pytest.mark.parametrize("name, shape, kwargs", CASES)
def test_cases_match_torch(rng, name, shape, kwargs):
    x = rng.standard_normal(shape).astype(np.float32)
    check_torch(lambda t: getattr(F, name)(t, **kwargs), lambda t: getattr(tF, name)(t, **kwargs), [x])


# ---------------------------------------------------------------------------
# random configurations


def _draw_input(rng, shape):
    """Half the time values with many ties (the integers 0, 1, 2 as floats)."""
    if rng.random() < 0.5:
        return rng.integers(0, 3, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def _draw_config(rng, dilation=True, ceil=True):
    """A pooling configuration PyTorch accepts, every window holding an input element.

    Odd sizes, stride below, at and above the kernel, padding up to kernel // 2,
    dilation, ceil_mode, batch and channels of 1, non-square kernels.
    """
    while True:
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)),
                 int(rng.integers(1, 13)), int(rng.integers(1, 13)))
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        cfg = dict(kernel_size=k,
                   stride=tuple(int(v) for v in rng.integers(1, 6, 2)),
                   padding=tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k),
                   ceil_mode=bool(ceil and rng.random() < 0.4))
        if dilation:
            cfg["dilation"] = tuple(int(v) for v in rng.integers(1, 4, 2))
        probe = torch.ones((1, 1) + shape[2:])
        try:
            if dilation:
                out = tF.max_pool2d(probe, **cfg)
            else:
                out = tF.avg_pool2d(probe, **cfg)
        except RuntimeError:                   # PyTorch rejects it (window too large)
            continue
        if dilation and not torch.isfinite(out).all():
            continue   # a dilated window reading only padding: see test_window_without_input
        return shape, cfg


def test_max_pool2d_matches_torch(rng):
    for _ in range(120):
        shape, cfg = _draw_config(rng)
        x = _draw_input(rng, shape)
        check_torch(lambda t: F.max_pool2d(t, **cfg), lambda t: tF.max_pool2d(t, **cfg), [x])


def test_min_pool2d_is_max_pool2d_of_negated_input(rng):
    for _ in range(80):
        shape, cfg = _draw_config(rng)
        x = _draw_input(rng, shape)
        check_torch(lambda t: F.min_pool2d(t, **cfg), lambda t: -tF.max_pool2d(-t, **cfg), [x])


def test_avg_pool2d_matches_torch(rng):
    for _ in range(120):
        shape, cfg = _draw_config(rng, dilation=False)
        cfg["count_include_pad"] = bool(rng.random() < 0.5)
        if rng.random() < 0.25:
            cfg["divisor_override"] = int(rng.integers(1, 8))
        x = _draw_input(rng, shape)
        check_torch(lambda t: F.avg_pool2d(t, **cfg), lambda t: tF.avg_pool2d(t, **cfg), [x])


def test_sum_pool2d_is_avg_pool2d_times_window_size(rng):
    for _ in range(60):
        shape, cfg = _draw_config(rng, dilation=False, ceil=False)
        del cfg["ceil_mode"]
        kh, kw = cfg["kernel_size"]
        x = _draw_input(rng, shape)
        check_torch(lambda t: F.sum_pool2d(t, **cfg),
                    lambda t: tF.avg_pool2d(t, **cfg, divisor_override=1), [x])
        check_torch(lambda t: F.sum_pool2d(t, **cfg),
                    lambda t: tF.avg_pool2d(t, **cfg, count_include_pad=True) * (kh * kw), [x])


@pytest.mark.parametrize("p", [1, 2, 3, 1.5])
def test_lp_pool2d_matches_torch(rng, p):
    for _ in range(30):
        shape, cfg = _draw_config(rng, dilation=False, ceil=False)
        kernel, stride = cfg["kernel_size"], cfg["stride"]
        if kernel[0] > shape[2] or kernel[1] > shape[3]:
            continue                          # needs padding, which PyTorch's lp_pool2d lacks
        x = _draw_input(rng, shape)
        if p in (3, 1.5):
            x = np.abs(x) + 0.1               # PyTorch gives NaN for negative sums / bases
        check_torch(lambda t: F.lp_pool2d(t, p, kernel, stride),
                    lambda t: tF.lp_pool2d(t, p, kernel, stride), [x])


@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool2d_padding_adds_zeros(rng, p):
    for _ in range(20):
        shape, cfg = _draw_config(rng, dilation=False, ceil=False)
        kernel, stride, (ph, pw) = cfg["kernel_size"], cfg["stride"], cfg["padding"]
        x = np.abs(_draw_input(rng, shape)) + 0.1
        check_torch(lambda t: F.lp_pool2d(t, p, kernel, stride, (ph, pw)),
                    lambda t: tF.lp_pool2d(tF.pad(t, (pw, pw, ph, ph)), p, kernel, stride), [x])


def test_l2_pool2d_is_lp_pool2d_with_p_2(rng):
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    check_torch(lambda t: F.l2_pool2d(t, 3, 2), lambda t: tF.lp_pool2d(t, 2, 3, 2), [x])
    ours = F.l2_pool2d(x, (2, 3), 1, 1).data
    np.testing.assert_array_equal(ours, F.lp_pool2d(x, 2, (2, 3), 1, 1).data)


def test_adaptive_pools_match_torch(rng):
    for _ in range(60):
        N, C, H, W = (int(rng.integers(1, 3)), int(rng.integers(1, 3)),
                      int(rng.integers(1, 15)), int(rng.integers(1, 15)))
        # output sizes below, equal to, dividing and above the input size; None keeps it
        size = tuple(None if rng.random() < 0.15 else int(rng.integers(1, n + 3)) for n in (H, W))
        if rng.random() < 0.2:
            size = int(rng.integers(1, 6))
        x = _draw_input(rng, (N, C, H, W))
        check_torch(lambda t: F.adaptive_avg_pool2d(t, size),
                    lambda t: tF.adaptive_avg_pool2d(t, size), [x])
        check_torch(lambda t: F.adaptive_max_pool2d(t, size),
                    lambda t: tF.adaptive_max_pool2d(t, size), [x])


def test_global_pools(rng):
    for shape in [(2, 3, 7, 7), (1, 1, 5, 9), (3, 2, 1, 1), (2, 4, 8, 8)]:
        x = _draw_input(rng, shape)
        out = check_torch(F.global_avg_pool2d, lambda t: t.mean((2, 3), keepdim=True), [x])
        assert out.shape == shape[:2] + (1, 1)
        out = check_torch(F.global_max_pool2d, lambda t: tF.adaptive_max_pool2d(t, 1), [x])
        assert out.shape == shape[:2] + (1, 1)


@pytest.mark.parametrize("kernel, hw", [((6, 6), (12, 18)), ((8, 4), (16, 4)), ((7, 7), (7, 7))])
def test_large_tiling_windows(rng, kernel, hw, monkeypatch):
    """Large windows that tile the input take the window-per-row layout; both layouts agree with PyTorch."""
    x = _draw_input(rng, (2, 3) + hw)
    kh, kw = kernel
    for threshold in (pool._BLOCKS_MIN_WINDOW, 10 ** 9):       # rows layout, then taps
        monkeypatch.setattr(pool, "_BLOCKS_MIN_WINDOW", threshold)
        check_torch(lambda t: F.max_pool2d(t, kernel), lambda t: tF.max_pool2d(t, kernel), [x])
        check_torch(lambda t: F.min_pool2d(t, kernel), lambda t: -tF.max_pool2d(-t, kernel), [x])
        check_torch(lambda t: F.avg_pool2d(t, kernel), lambda t: tF.avg_pool2d(t, kernel), [x])
        check_torch(lambda t: F.sum_pool2d(t, kernel),
                    lambda t: tF.avg_pool2d(t, kernel) * (kh * kw), [x])
        check_torch(lambda t: F.l2_pool2d(t, kernel), lambda t: tF.lp_pool2d(t, 2, kernel), [x])


# ---------------------------------------------------------------------------
# ties, NaN, infinities: which element receives a window's gradient


def _same_as_torch(ours, theirs, x, rng):
    """Forward equal (NaN and ±inf included) and input gradient equal, for one upstream gradient.

    The reference runs in float64: a selection is exact in either precision, and the sums of the
    upstream gradients that overlapping windows send to one element are exact there."""
    a = st.Tensor(x, requires_grad=True)
    t = to_torch64(x, requires_grad=True)
    out, ref = ours(a), theirs(t)
    np.testing.assert_array_equal(out.data, ref.detach().numpy())
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(to_torch64(g))
    np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_ties_go_to_the_first_extreme(rng):
    # every window of a constant input ties: the first element in row-major order wins
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    a = st.Tensor(x, requires_grad=True)
    F.max_pool2d(a, 2).backward(np.ones((1, 1, 2, 2), dtype=np.float32))
    np.testing.assert_array_equal(a.grad[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    for _ in range(40):   # overlapping windows and padding over a handful of values
        shape, cfg = _draw_config(rng)
        x = rng.integers(0, 2, shape).astype(np.float32)
        _same_as_torch(lambda t: F.max_pool2d(t, **cfg), lambda t: tF.max_pool2d(t, **cfg), x, rng)
        _same_as_torch(lambda t: F.min_pool2d(t, **cfg), lambda t: -tF.max_pool2d(-t, **cfg), x, rng)


def test_nan_wins_and_all_minus_inf_windows_match_torch(rng):
    for _ in range(30):
        H, W = (int(v) for v in rng.integers(3, 10, 2))
        x = rng.integers(0, 3, (2, 2, H, W)).astype(np.float32)
        x[rng.random(x.shape) < 0.15] = np.nan
        x[rng.random(x.shape) < 0.3] = -np.inf
        k, s = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        p = int(rng.integers(0, k // 2 + 1))
        _same_as_torch(lambda t: F.max_pool2d(t, k, s, p), lambda t: tF.max_pool2d(t, k, s, p), x, rng)
        _same_as_torch(lambda t: F.min_pool2d(t, k, s, p), lambda t: -tF.max_pool2d(-t, k, s, p), -x, rng)
        size = int(rng.integers(1, H + 2))
        _same_as_torch(lambda t: F.adaptive_max_pool2d(t, size),
                       lambda t: tF.adaptive_max_pool2d(t, size), x, rng)
        _same_as_torch(F.global_max_pool2d, lambda t: tF.adaptive_max_pool2d(t, 1), x, rng)
        x6 = x[:, :, :3, :3].repeat(2, axis=2).repeat(2, axis=3)              # 6×6, rows layout
        _same_as_torch(lambda t: F.max_pool2d(t, 6), lambda t: tF.max_pool2d(t, 6), x6, rng)


def test_infinite_upstream_gradient_reaches_only_the_winners(rng):
    x = rng.standard_normal((2, 2, 6, 7)).astype(np.float32)
    for args in [(2,), (3, 2, 1), (3, 1)]:                 # disjoint and overlapping windows
        a, t = st.Tensor(x, requires_grad=True), to_torch64(x, requires_grad=True)
        out, ref = F.max_pool2d(a, *args), tF.max_pool2d(t, *args)
        g = np.where(rng.random(out.shape) < 0.5, np.inf, 1.0).astype(np.float32)
        out.backward(g)
        ref.backward(to_torch64(g))
        np.testing.assert_array_equal(a.grad, t.grad.numpy())   # zeros stay zeros, no inf·0


def test_window_without_input_gives_identity_and_no_gradient():
    # Dilation can make a window read only padding: its max is -inf and no element
    # gets its gradient (PyTorch sends it to an element outside the window there).
    x = st.Tensor(np.arange(9, dtype=np.float32).reshape(1, 1, 9, 1), requires_grad=True)
    out = F.max_pool2d(x, (1, 3), (2, 3), (0, 1), (1, 2), ceil_mode=True)
    assert np.all(out.data == -np.inf)
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert np.all(x.grad == 0)


# ---------------------------------------------------------------------------
# Lp pooling at zero


def test_l2_pool2d_gradient_is_zero_on_all_zero_windows():
    x = np.zeros((1, 2, 4, 4))
    x[0, 0, 0, 0] = 3.0                       # one window with a single non-zero element
    a = st.Tensor(x, requires_grad=True, dtype=np.float64)
    F.l2_pool2d(a, 2).backward(np.ones((1, 2, 2, 2)))
    assert np.isfinite(a.grad).all()
    expected = np.zeros_like(x)
    expected[0, 0, 0, 0] = 1.0                # d√(x²)/dx = sign(x) in a window of one element
    np.testing.assert_array_equal(a.grad, expected)
    t = torch.tensor(x, requires_grad=True)   # PyTorch 2.x gives the same zeros
    tF.lp_pool2d(t, 2, 2).backward(torch.ones(1, 2, 2, 2, dtype=torch.float64))
    np.testing.assert_array_equal(a.grad, t.grad.numpy())
    for p in (1, 3, 1.5):
        b = st.Tensor(np.zeros((1, 1, 4, 4)), requires_grad=True, dtype=np.float64)
        F.lp_pool2d(b, p, 2, 1, 1).backward(np.ones((1, 1, 5, 5)))
        assert np.all(b.grad == 0)


# ---------------------------------------------------------------------------
# central differences in float64


def _distinct(rng, shape, positive=False):
    """Values 0.1 apart: no ties, so max and min are differentiable at them."""
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) - (0 if positive else 10)) * 0.1
    return x + (0.05 if positive else 0.0)


GRADCHECKS = [
    ("max", lambda t: F.max_pool2d(t, 3, 2, 1), (1, 2, 5, 6)),
    ("max dilated ceil", lambda t: F.max_pool2d(t, (2, 3), (2, 1), (1, 1), (2, 1), True), (1, 2, 5, 6)),
    ("min", lambda t: F.min_pool2d(t, (3, 2), (1, 2), (1, 0)), (2, 1, 5, 5)),
    ("avg", lambda t: F.avg_pool2d(t, 3, 2, 1, True, False), (1, 2, 6, 5)),
    ("avg divisor", lambda t: F.avg_pool2d(t, 2, 1, divisor_override=3), (1, 2, 4, 5)),
    ("sum", lambda t: F.sum_pool2d(t, (2, 3), (2, 1), (1, 1)), (1, 2, 5, 6)),
    ("lp 1", lambda t: F.lp_pool2d(t, 1, 2, 1), (1, 2, 4, 5)),
    ("lp 2 padded", lambda t: F.lp_pool2d(t, 2, 3, 2, 1), (1, 2, 5, 6)),
    ("lp 3", lambda t: F.lp_pool2d(t, 3, (2, 3), 1), (1, 2, 4, 5)),
    ("lp 1.5", lambda t: F.lp_pool2d(t, 1.5, 2, 2), (2, 1, 4, 6)),
    ("l2", lambda t: F.l2_pool2d(t, 2), (1, 2, 4, 6)),
    ("adaptive avg", lambda t: F.adaptive_avg_pool2d(t, (3, 4)), (1, 2, 5, 6)),
    ("adaptive max", lambda t: F.adaptive_max_pool2d(t, (3, 4)), (1, 2, 5, 6)),
    ("global avg", F.global_avg_pool2d, (2, 2, 3, 4)),
    ("global max", F.global_max_pool2d, (2, 2, 3, 4)),
    ("rows layout max", lambda t: F.max_pool2d(t, (6, 6)), (1, 1, 6, 12)),
    ("rows layout avg", lambda t: F.avg_pool2d(t, (6, 6)), (1, 1, 6, 12)),
]


@pytest.mark.parametrize("name, fn, shape", GRADCHECKS, ids=[c[0] for c in GRADCHECKS])
def test_gradcheck(rng, name, fn, shape):
    assert st.gradcheck(fn, [_distinct(rng, shape, positive=name.startswith(("lp", "l2")))])


# ---------------------------------------------------------------------------
# dtypes, graph recording


@pytest.mark.parametrize("fn", [
    lambda t: F.max_pool2d(t, 2), lambda t: F.min_pool2d(t, 2), lambda t: F.avg_pool2d(t, 3, 1, 1),
    lambda t: F.sum_pool2d(t, 2), lambda t: F.lp_pool2d(t, 3, 2), lambda t: F.l2_pool2d(t, 2),
    lambda t: F.adaptive_avg_pool2d(t, 3), lambda t: F.adaptive_max_pool2d(t, 3),
    F.global_avg_pool2d, F.global_max_pool2d, lambda t: F.max_pool2d(t, (4, 8)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype_and_records_graph_only_when_needed(rng, fn, dtype):
    x = st.Tensor(np.abs(rng.standard_normal((2, 3, 4, 8))), requires_grad=True, dtype=dtype)
    out = fn(x)
    assert out.dtype == dtype and out.requires_grad
    out.backward(np.ones(out.shape, dtype=dtype))
    assert x.grad.dtype == dtype and x.grad.shape == x.shape
    with st.no_grad():
        assert not fn(x).requires_grad


# ---------------------------------------------------------------------------
# errors


ZEROS = np.zeros((1, 2, 6, 6), dtype=np.float32)

ERRORS = [
    (lambda: F.max_pool2d(np.zeros((2, 6, 6)), 2), ValueError,
     r"max_pool2d expects input \(N, C, H, W\), got shape \(2, 6, 6\)"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 2, 6, 6)), 2), ValueError,
     r"avg_pool2d expects input \(N, C, H, W\)"),
    (lambda: F.min_pool2d(ZEROS, 0), ValueError, r"min_pool2d: kernel_size must be positive, got 0"),
    (lambda: F.sum_pool2d(ZEROS, (2, -1)), ValueError, r"sum_pool2d: kernel_size must be positive"),
    (lambda: F.max_pool2d(ZEROS, "2"), TypeError, r"kernel_size must be an int or a pair of ints"),
    (lambda: F.max_pool2d(ZEROS, 2, 0), ValueError, r"max_pool2d: stride must be positive, got 0"),
    (lambda: F.lp_pool2d(ZEROS, 2, 2, (1, 0)), ValueError, r"lp_pool2d: stride must be positive"),
    (lambda: F.max_pool2d(ZEROS, 2, dilation=0), ValueError, r"dilation must be positive"),
    (lambda: F.avg_pool2d(ZEROS, 2, padding=-1), ValueError, r"padding must be non-negative"),
    (lambda: F.max_pool2d(ZEROS, 3, 1, 2), ValueError,
     r"max_pool2d: padding must be at most half the kernel size .* got padding=\(2, 2\) "
     r"with kernel_size=\(3, 3\)"),
    (lambda: F.avg_pool2d(ZEROS, (2, 4), 1, (1, 3)), ValueError, r"avg_pool2d: padding must be at most half"),
    (lambda: F.min_pool2d(ZEROS, 2, 1, 2), ValueError, r"min_pool2d: padding must be at most half"),
    (lambda: F.sum_pool2d(ZEROS, 2, 1, 2), ValueError, r"sum_pool2d: padding must be at most half"),
    (lambda: F.l2_pool2d(ZEROS, 2, 1, 2), ValueError, r"lp_pool2d: padding must be at most half"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 2, 2)), 3), ValueError,
     r"max_pool2d: the window \(3×3 .*\) is larger than the padded input \(2×2: input 2×2"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 5, 5)), 3, dilation=3), ValueError,
     r"the window \(7×7 with kernel_size=\(3, 3\), dilation=\(3, 3\)\) "
     r"is larger than the padded input \(5×5"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 6, 2)), (2, 5), padding=(0, 1)), ValueError,
     r"avg_pool2d: the window .* padded input \(6×4: input 6×2, padding=\(0, 1\)\)"),
    (lambda: F.max_pool2d(st.Tensor(np.zeros((1, 1, 4, 4), dtype=np.int64), dtype=np.int64), 2),
     TypeError, r"max_pool2d expects a float32 or float64 input, got dtype int64"),
    (lambda: F.adaptive_avg_pool2d(st.Tensor(np.zeros((1, 1, 4, 4)), dtype=np.int32), 2), TypeError,
     r"adaptive_avg_pool2d expects a float32 or float64 input, got dtype int32"),
    (lambda: F.lp_pool2d(ZEROS, 0, 2), ValueError,
     r"lp_pool2d: p \(norm_type\) must be a finite number ≥ 1, got 0"),
    (lambda: F.lp_pool2d(ZEROS, 0.5, 2), ValueError, r"must be a finite number ≥ 1, got 0.5"),
    (lambda: F.lp_pool2d(ZEROS, math.inf, 2), ValueError, r"got inf; for p = inf use max_pool2d"),
    (lambda: F.lp_pool2d(ZEROS, math.nan, 2), ValueError, r"must be a finite number ≥ 1, got nan"),
    (lambda: F.lp_pool2d(ZEROS, "2", 2), TypeError,
     r"lp_pool2d: p \(norm_type\) must be a number, got '2'"),
    (lambda: F.avg_pool2d(ZEROS, 2, divisor_override=0), ValueError,
     r"avg_pool2d: divisor_override must be a nonzero int or None, got 0"),
    (lambda: F.adaptive_avg_pool2d(ZEROS, 0), ValueError,
     r"adaptive_avg_pool2d: output_size must be positive"),
    (lambda: F.adaptive_max_pool2d(ZEROS, (2,)), TypeError,
     r"adaptive_max_pool2d: output_size must be an int or a pair of ints \(None keeps the input size\)"),
    (lambda: F.adaptive_max_pool2d(ZEROS, 2.5), TypeError, r"output_size must be an int or a pair"),
    (lambda: F.global_max_pool2d(np.zeros((6, 6))), ValueError,
     r"global_max_pool2d expects input \(N, C, H, W\)"),
    (lambda: F.global_avg_pool2d(st.Tensor(np.zeros((1, 1, 4, 4)), dtype=np.int64)), TypeError,
     r"global_avg_pool2d expects a float32 or float64 input"),
    (lambda: F.max_pool2d("x", 2), TypeError, r"max_pool2d expects input as a Tensor or array, got str"),
]


@pytest.mark.parametrize("call, error, match", ERRORS)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
