"""The textbook ops (striate.functional.reference) against the fast ops, and against PyTorch in float64.

Three promises are checked:

- fast == reference: on random configurations, forward and every input gradient (driven
  by one random upstream gradient), with the fast op in float32 against the reference in
  float64 (a float32-sized tolerance), and both in float64 (a tight one); conv2d under
  both algorithms (im2col, and Winograd where it applies) and both internal layouts.
- reference == PyTorch, both in float64, to about 1e-10 of the data's scale.
- the reference stays readable: each op's source, its backward included, fits a screen,
  and its signature is the fast op's.
"""
import inspect

import numpy as np
import pytest
import torch

import striate as st
import striate.functional as F
import striate.functional.reference as R
from striate.functional import conv as conv_module
from striate.functional import winograd
from tests.reference import assert_close, check_torch

tF = torch.nn.functional

# PyTorch warns that it copies the input for padding="same" with an even kernel; we know.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

TIGHT = 1e-10          # float64 against float64
FLOAT32 = 1e-5         # float32 against float64, relative to the data's scale


@pytest.fixture(params=["batch_first", "batch_last"])
def layout(request, monkeypatch):
    """Force one of the fast convolution's two internal layouts for the whole test."""
    threshold = 0 if request.param == "batch_first" else 10 ** 9
    monkeypatch.setattr(conv_module, "_SHORT_ROW", threshold)
    return request.param


def assert_same(actual, expected, rtol, what):
    """``assert_close``, where non-finite values (a window that reads only padding is ±inf) must be equal."""
    odd = ~np.isfinite(expected)
    np.testing.assert_array_equal(actual[odd], expected[odd], err_msg=what)
    assert_close(np.where(odd, 0, actual), np.where(odd, 0, expected), rtol, what)


def check_same(fast, ref, arrays, seed=0, what=""):
    """``fast`` (float32, then float64) against ``ref`` (float64): forward and every input gradient.

    ``arrays`` are float64 inputs, all requiring grad; one random upstream gradient,
    rounded to float32, drives every backward.
    """
    rng = np.random.default_rng(seed)
    ref_in = [st.Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    expected = ref(*ref_in)
    assert expected.dtype == np.float64, f"{what}: the reference gave {expected.dtype}"
    g = rng.standard_normal(expected.shape).astype(np.float32)
    expected.backward(g.astype(np.float64))
    for dtype, rtol in ((np.float32, FLOAT32), (np.float64, TIGHT)):
        fast_in = [st.Tensor(a.astype(dtype), requires_grad=True, dtype=dtype) for a in arrays]
        out = fast(*fast_in)
        assert out.dtype == dtype, f"{what}: the fast op gave {out.dtype} for {np.dtype(dtype)} inputs"
        assert_same(out.data, expected.data, rtol, f"{what} {np.dtype(dtype)} forward")
        out.backward(g.astype(dtype))
        for i, (a, b) in enumerate(zip(fast_in, ref_in)):
            assert_same(a.grad, b.grad, rtol, f"{what} {np.dtype(dtype)} gradient of input {i}")


def randn(rng, *shape):
    return rng.standard_normal(shape)


# ---------------------------------------------------------------------------
# random configurations


def random_conv2d(rng):
    """A small conv2d: odd sizes, groups 1–3, kernels 1–4 (non-square), stride 1–3, dilation 1–3,
    padding an int, a pair, "same" or "valid", batch 1–3."""
    groups = int(rng.integers(1, 4))
    C, K = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 4, size=2))
    kind = int(rng.integers(4))
    if kind == 0:
        padding, totals = "valid", (0, 0)
    elif kind == 1:
        padding, stride = "same", (1, 1)
        totals = (dilation[0] * (kh - 1), dilation[1] * (kw - 1))
    elif kind == 2:
        padding = int(rng.integers(0, min(kh, kw)))
        totals = (2 * padding, 2 * padding)
    else:
        padding = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
        totals = (2 * padding[0], 2 * padding[1])
    reach = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    H = max(1, reach[0] - totals[0] + int(rng.integers(0, 9)))
    W = max(1, reach[1] - totals[1] + int(rng.integers(0, 9)))
    N = int(rng.integers(1, 4))
    return (N, C, H, W), (K, C // groups, kh, kw), dict(stride=stride, padding=padding, dilation=dilation,
                                                        groups=groups)


def random_winograd_conv2d(rng):
    """A conv2d Winograd applies to (``winograd.can_use``): a 3×3 kernel at stride 1, or, per
    axis, 2s+1 … 3s taps at stride s; padding an int, a pair or "same"; groups 1–3."""
    groups = int(rng.integers(1, 4))
    C, K = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    stride = tuple(int(v) for v in rng.choice([1, 1, 2, 3], size=2))
    kernel = tuple(int(rng.integers(2 * s + 1, 3 * s + 1)) for s in stride)
    if stride == (1, 1) and rng.integers(3) == 0:
        padding, totals = "same", (2, 2)
    else:
        padding = tuple(int(rng.integers(0, k)) for k in kernel)
        totals = tuple(2 * p for p in padding)
    H = max(1, kernel[0] - totals[0] + int(rng.integers(0, 10)))
    W = max(1, kernel[1] - totals[1] + int(rng.integers(0, 10)))
    N = int(rng.integers(1, 4))
    return (N, C, H, W), (K, C // groups, *kernel), dict(stride=stride, padding=padding, groups=groups)


def random_conv_transpose2d(rng):
    """A small conv_transpose2d: groups 1–3, kernels 1–4, stride 1–3, dilation 1–3, output_padding
    below the stride or dilation, padding that leaves an output, batch 1–3."""
    groups = int(rng.integers(1, 4))
    C, Kg = groups * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 4, size=2))
    output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    H, W = (int(v) for v in rng.integers(1, 8, size=2))
    padding = []
    for size, k, s, d, op in zip((H, W), (kh, kw), stride, dilation, output_padding):
        full = (size - 1) * s + d * (k - 1) + op + 1                       # before cropping
        padding.append(int(rng.integers(0, min(k, (full - 1) // 2 + 1))))
    N = int(rng.integers(1, 4))
    return (N, C, H, W), (C, Kg, kh, kw), dict(stride=stride, padding=tuple(padding),
                                               output_padding=output_padding, groups=groups,
                                               dilation=dilation)


def random_pool(rng, dilation=True, ceil=True):
    """A pooling configuration the fast ops accept: odd sizes, kernels 1–4, stride 1–4, padding up
    to kernel // 2, dilation 1–3, ceil_mode, batch and channels 1–3."""
    while True:
        shape = tuple(int(v) for v in (*rng.integers(1, 4, size=2), *rng.integers(1, 13, size=2)))
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        cfg = dict(kernel_size=k, stride=tuple(int(v) for v in rng.integers(1, 5, 2)),
                   padding=tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k))
        if ceil:
            cfg["ceil_mode"] = bool(rng.random() < 0.4)
        if dilation:
            cfg["dilation"] = tuple(int(v) for v in rng.integers(1, 4, 2))
        try:
            F.max_pool2d(np.zeros(shape), **cfg) if dilation else F.avg_pool2d(np.zeros(shape), **cfg)
        except ValueError:                    # the window does not fit
            continue
        return shape, cfg


def pool_input(rng, shape):
    """Half the time values with many ties (the integers 0, 1, 2 as floats)."""
    if rng.random() < 0.5:
        return rng.integers(0, 3, shape).astype(np.float64)
    return rng.standard_normal(shape)


def torch_accepts(cfg, shape, pool=tF.max_pool2d):
    """PyTorch takes this pooling configuration and gives every window an input element."""
    try:
        out = pool(torch.ones((1, 1) + shape[2:], dtype=torch.float64), **cfg)
    except RuntimeError:
        return False
    return bool(torch.isfinite(out).all())


# ---------------------------------------------------------------------------
# fast == reference


@pytest.mark.parametrize("algorithm", ["im2col", "auto"])
def test_conv2d_fast_equals_reference(layout, rng, algorithm):
    for trial in range(20):
        x_shape, w_shape, kw = random_conv2d(rng)
        x, w, b = randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, w_shape[0])
        check_same(lambda x, w, b: F.conv2d(x, w, b, **kw, algorithm=algorithm),
                   lambda x, w, b: R.conv2d(x, w, b, **kw), [x, w, b], trial, f"x {x_shape} w {w_shape} {kw}")
        check_same(lambda x, w: F.conv2d(x, w, **kw, algorithm=algorithm),
                   lambda x, w: R.conv2d(x, w, **kw), [x, w], trial, f"no bias, x {x_shape} w {w_shape} {kw}")


@pytest.mark.parametrize("tiles", ["whole images", "one row of tiles"])
def test_conv2d_winograd_equals_reference(rng, monkeypatch, tiles):
    if tiles != "whole images":
        monkeypatch.setattr(winograd, "_BLOCK_BYTES", 1)
        monkeypatch.setattr(winograd, "_MIN_TILES", 1)
    for trial in range(12):
        x_shape, w_shape, kw = random_winograd_conv2d(rng)
        x, w, b = randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, w_shape[0])
        check_same(lambda x, w, b: F.conv2d(x, w, b, **kw, algorithm="winograd"),
                   lambda x, w, b: R.conv2d(x, w, b, **kw), [x, w, b], trial, f"x {x_shape} w {w_shape} {kw}")


@pytest.mark.parametrize("x_shape, w_shape, kw", [
    ((1, 3, 7, 9), (4, 3, 3, 3), dict(stride=2, padding=1)),                 # batch of one
    ((2, 2, 8, 7), (4, 2, 4, 2), dict(padding="same")),                      # even kernel: extra row below
    ((2, 2, 8, 7), (4, 2, 2, 3), dict(padding="same", dilation=3)),          # odd total padding
    ((2, 3, 7, 9), (5, 3, 7, 9), dict(padding="valid")),                     # kernel = image: 1×1 output
    ((2, 6, 9, 11), (6, 2, 3, 2), dict(padding=(2, 1), dilation=(2, 3), groups=3)),
    ((2, 1, 32, 32), (6, 1, 5, 5), dict()),                                  # LeNet's C1
    ((1, 32, 9, 7), (32, 32, 3, 3), dict(padding=1)),                        # "auto" picks Winograd
])
def test_conv2d_cases_fast_equal_reference(layout, rng, x_shape, w_shape, kw):
    x, w, b = randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, w_shape[0])
    check_same(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: R.conv2d(x, w, b, **kw), [x, w, b])


def test_conv_transpose2d_fast_equals_reference(layout, rng):
    for trial in range(25):
        x_shape, w_shape, kw = random_conv_transpose2d(rng)
        K = w_shape[1] * kw["groups"]
        x, w, b = randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, K)
        check_same(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw),
                   lambda x, w, b: R.conv_transpose2d(x, w, b, **kw), [x, w, b], trial, f"x {x_shape} w {w_shape} {kw}")


@pytest.mark.parametrize("name", ["max_pool2d", "min_pool2d"])
def test_max_and_min_pool2d_fast_equal_reference(rng, name):
    for trial in range(60):
        shape, cfg = random_pool(rng)
        check_same(lambda x: getattr(F, name)(x, **cfg), lambda x: getattr(R, name)(x, **cfg),
                   [pool_input(rng, shape)], trial, f"{shape} {cfg}")


def test_avg_pool2d_fast_equals_reference(rng):
    for trial in range(60):
        shape, cfg = random_pool(rng, dilation=False)
        cfg["count_include_pad"] = bool(rng.random() < 0.5)
        if rng.random() < 0.25:
            cfg["divisor_override"] = int(rng.integers(1, 8))
        check_same(lambda x: F.avg_pool2d(x, **cfg), lambda x: R.avg_pool2d(x, **cfg),
                   [pool_input(rng, shape)], trial, f"{shape} {cfg}")


@pytest.mark.parametrize("name, p", [("sum_pool2d", None), ("l2_pool2d", None), ("lp_pool2d", 1),
                                     ("lp_pool2d", 2), ("lp_pool2d", 3), ("lp_pool2d", 1.5)])
def test_sum_and_lp_pool2d_fast_equal_reference(rng, name, p):
    args = () if p is None else (p,)
    for trial in range(30):
        shape, cfg = random_pool(rng, dilation=False, ceil=False)
        x = pool_input(rng, shape)                 # with ties, and all-zero windows (S = 0)
        if p in (3, 1.5):
            x = np.abs(x) + 0.1                    # NaN otherwise (a negative sum or base)
        check_same(lambda x: getattr(F, name)(x, *args, **cfg), lambda x: getattr(R, name)(x, *args, **cfg),
                   [x], trial, f"{shape} {cfg}")


@pytest.mark.parametrize("name", ["max_pool2d", "min_pool2d"])
@pytest.mark.parametrize("shape, cfg", [
    ((2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 3, 12, 16), dict(kernel_size=(6, 8))),                  # large tiling windows: the fast op's rows
    ((1, 2, 8, 7), dict(kernel_size=2, stride=1, dilation=2, ceil_mode=True)),
])
def test_max_and_min_pool2d_route_ties_and_nan_alike(rng, name, shape, cfg):
    # First extreme on ties, last NaN in a window holding NaN: the same elements, exactly.
    x = rng.integers(0, 2, shape).astype(np.float64)
    x[rng.random(shape) < 0.05] = np.nan
    results = []
    for op in (getattr(F, name), getattr(R, name)):
        t = st.Tensor(x, requires_grad=True, dtype=np.float64)
        out = op(t, **cfg)
        out.backward(np.arange(out.size, dtype=np.float64).reshape(out.shape) + 1)
        results.append((out.data, t.grad))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


# ---------------------------------------------------------------------------
# reference == PyTorch, in float64


def test_conv2d_matches_torch_float64(rng):
    for trial in range(30):
        x_shape, w_shape, kw = random_conv2d(rng)
        arrays = [randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, w_shape[0])]
        check_torch(lambda x, w, b: R.conv2d(x, w, b, **kw), lambda x, w, b: tF.conv2d(x, w, b, **kw),
                    arrays, rtol=TIGHT, seed=trial)


def test_conv_transpose2d_matches_torch_float64(rng):
    for trial in range(30):
        x_shape, w_shape, kw = random_conv_transpose2d(rng)
        arrays = [randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, w_shape[1] * kw["groups"])]
        check_torch(lambda x, w, b: R.conv_transpose2d(x, w, b, **kw),
                    lambda x, w, b: tF.conv_transpose2d(x, w, b, **kw), arrays, rtol=TIGHT, seed=trial)


def test_max_and_min_pool2d_match_torch_float64(rng):
    for trial in range(60):
        shape, cfg = random_pool(rng)
        if not torch_accepts(cfg, shape):
            continue
        x = pool_input(rng, shape)
        check_torch(lambda t: R.max_pool2d(t, **cfg), lambda t: tF.max_pool2d(t, **cfg), [x], TIGHT, trial)
        check_torch(lambda t: R.min_pool2d(t, **cfg), lambda t: -tF.max_pool2d(-t, **cfg), [x], TIGHT, trial)


def test_avg_and_sum_pool2d_match_torch_float64(rng):
    for trial in range(60):
        shape, cfg = random_pool(rng, dilation=False)
        if not torch_accepts(cfg, shape, tF.avg_pool2d):
            continue
        cfg["count_include_pad"] = bool(rng.random() < 0.5)
        if rng.random() < 0.25:
            cfg["divisor_override"] = int(rng.integers(1, 8))
        x = pool_input(rng, shape)
        check_torch(lambda t: R.avg_pool2d(t, **cfg), lambda t: tF.avg_pool2d(t, **cfg), [x], TIGHT, trial)
        if cfg["ceil_mode"]:
            continue                             # sum_pool2d has no ceil_mode
        plain = dict(kernel_size=cfg["kernel_size"], stride=cfg["stride"], padding=cfg["padding"])
        check_torch(lambda t: R.sum_pool2d(t, **plain), lambda t: tF.avg_pool2d(t, **plain, divisor_override=1),
                    [x], TIGHT, trial)


@pytest.mark.parametrize("p", [1, 2, 3, 1.5])
def test_lp_pool2d_matches_torch_float64(rng, p):
    # PyTorch's lp_pool2d has no padding; a padded one is its lp_pool2d of the zero-padded input.
    for trial in range(25):
        shape, cfg = random_pool(rng, dilation=False, ceil=False)
        kernel, stride, (ph, pw) = cfg["kernel_size"], cfg["stride"], cfg["padding"]
        x = pool_input(rng, shape)
        if p in (3, 1.5):
            x = np.abs(x) + 0.1
        check_torch(lambda t: R.lp_pool2d(t, p, kernel, stride, (ph, pw)),
                    lambda t: tF.lp_pool2d(tF.pad(t, (pw, pw, ph, ph)), p, kernel, stride), [x], TIGHT, trial)
        if p == 2:
            check_torch(lambda t: R.l2_pool2d(t, kernel, stride, (ph, pw)),
                        lambda t: tF.lp_pool2d(tF.pad(t, (pw, pw, ph, ph)), 2, kernel, stride),
                        [x], TIGHT, trial)


def test_float32_reference_is_float32_and_close_to_torch_float64(rng):
    x, w, b = randn(rng, 2, 3, 7, 9), randn(rng, 4, 3, 3, 2), randn(rng, 4)
    out = R.conv2d(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), stride=2, padding=1)
    assert out.dtype == np.float32
    expected = tF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2, padding=1).numpy()
    assert_close(out.data, expected, FLOAT32)
    pooled = R.avg_pool2d(x.astype(np.float32), 3, 2, 1, ceil_mode=True)
    assert pooled.dtype == np.float32
    assert_close(pooled.data, tF.avg_pool2d(torch.tensor(x), 3, 2, 1, ceil_mode=True).numpy(), FLOAT32)


# ---------------------------------------------------------------------------
# the promises about the file itself

OPS = ["conv2d", "conv_transpose2d", "max_pool2d", "min_pool2d", "avg_pool2d", "sum_pool2d", "lp_pool2d",
       "l2_pool2d"]
# what an op hands its work to, which a reader reads with it
DELEGATES = {"max_pool2d": R._extreme_pool, "min_pool2d": R._extreme_pool, "l2_pool2d": R.lp_pool2d}


@pytest.mark.parametrize("name", OPS + ["windows", "windows_backward"])
def test_each_op_fits_a_screen(name):
    source = inspect.getsource(getattr(R, name))
    if name in DELEGATES:
        source += inspect.getsource(DELEGATES[name])
    lines = len(source.splitlines())
    assert lines <= 60, f"reference.{name} (forward and backward) has grown to {lines} lines"


@pytest.mark.parametrize("name", OPS)
def test_signatures_are_the_fast_ops(name):
    assert inspect.signature(getattr(R, name)) == inspect.signature(getattr(F, name))


def test_reference_is_a_submodule_not_reexported():
    import striate.functional.reference as ref
    assert ref is R
    assert F.conv2d is not R.conv2d and F.max_pool2d is not R.max_pool2d
    assert not hasattr(F, "windows")


@pytest.mark.parametrize("call", [
    lambda m: m.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 3, 3))),                  # channels
    lambda m: m.conv2d(np.zeros((1, 4, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2),         # K % groups
    lambda m: m.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), stride=2, padding="same"),
    lambda m: m.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding="full"),
    lambda m: m.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3))),                  # kernel too large
    lambda m: m.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), algorithm="fft"),
    lambda m: m.conv2d(np.zeros((1, 1, 5, 5), np.float32), np.zeros((1, 1, 3, 3))),      # dtypes differ
    lambda m: m.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), np.zeros(2)),     # bias
    lambda m: m.conv2d(np.zeros((1, 1, 5, 5), int), np.zeros((1, 1, 3, 3), int)),        # integers
    lambda m: m.conv_transpose2d(np.zeros((1, 3, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2),
    lambda m: m.conv_transpose2d(np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3))),
    lambda m: m.conv_transpose2d(np.zeros((1, 2, 5, 5)), np.zeros((2, 2, 3, 3)), stride=2, output_padding=2),
    lambda m: m.conv_transpose2d(np.zeros((1, 2, 1, 1)), np.zeros((2, 2, 1, 1)), padding=1),
    lambda m: m.max_pool2d(np.zeros((1, 1, 5, 5)), 2, padding=2),
    lambda m: m.max_pool2d(np.zeros((1, 1, 2, 2)), 3),
    lambda m: m.min_pool2d(np.zeros((1, 5, 5)), 2),
    lambda m: m.avg_pool2d(np.zeros((1, 1, 5, 5)), 2, divisor_override=0),
    lambda m: m.sum_pool2d(np.zeros((1, 1, 5, 5)), (2, 0)),
    lambda m: m.lp_pool2d(np.zeros((1, 1, 5, 5)), 0.5, 2),
    lambda m: m.l2_pool2d(np.zeros((1, 1, 5, 5)), 2, stride="1"),
])
def test_errors_are_the_fast_ops(call):
    with pytest.raises((ValueError, TypeError)) as fast:
        call(F)
    with pytest.raises(fast.type) as ref:
        call(R)
    assert str(ref.value) == str(fast.value)


def test_stands_in_for_the_fast_op_in_a_layer(rng, monkeypatch):
    # nn.Conv2d passes ``algorithm``: the reference takes it, so a model runs on it unchanged.
    layer = st.nn.Conv2d(2, 3, 3, padding=1, rng=0)
    x = rng.standard_normal((2, 2, 6, 5)).astype(np.float32)
    fast = layer(x).data
    monkeypatch.setattr(F, "conv2d", R.conv2d)
    assert_close(layer(x).data, fast, FLOAT32)
