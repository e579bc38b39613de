"""conv2d, conv_transpose2d and conv2d_fused: against PyTorch, against central differences, and their errors.

Every check runs under both internal layouts of the op (batch second and batch last; the
op picks one from the output width), forced by the ``layout`` fixture.
"""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import striate as st
import striate.functional as F
from striate.functional import conv as conv_module
from tests.reference import check_torch, randn, to_torch64

# PyTorch warns that it copies the input for padding="same" with an even kernel; we know.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


@pytest.fixture(params=["batch_second", "batch_last"])
def layout(request, monkeypatch):
    """Force one internal layout for the whole test."""
    threshold = 0 if request.param == "batch_second" else 10 ** 9
    monkeypatch.setattr(conv_module, "_SHORT_ROW", threshold)
    return request.param


def described(description, check):
    """Run ``check()``; on failure, say which configuration failed."""
    try:
        check()
    except AssertionError as exc:
        raise AssertionError(f"{description}: {exc}") from None


def check_torch_frozen_input(ours, theirs, x, params):
    """Like check_torch, but x does not require grad: compare the output and the params' gradients."""
    check_torch(ours, theirs, [x, *params], grads=[False] + [True] * len(params))


def run_against_torch(ours, theirs, x, params, input_grad):
    if input_grad:
        check_torch(ours, theirs, [x, *params])
    else:
        check_torch_frozen_input(ours, theirs, x, params)


# ---------------------------------------------------------------------------
# conv2d

CONV2D_CASES = [
    # x shape,       weight shape,  kwargs
    ((2, 3, 7, 9), (4, 3, 3, 3), dict(stride=2, padding=1)),
    ((1, 1, 5, 5), (1, 1, 2, 2), dict()),                                   # batch 1, one channel
    ((2, 2, 9, 8), (3, 2, 2, 5), dict(stride=3)),                           # stride > kernel height
    ((2, 2, 9, 11), (3, 2, 1, 1), dict(stride=(4, 3))),                     # 1×1 kernel, big stride
    ((2, 4, 9, 8), (6, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
    ((2, 6, 11, 10), (6, 2, 3, 2), dict(padding=(2, 1), dilation=(2, 3), groups=3)),
    ((3, 2, 8, 7), (4, 2, 4, 3), dict(padding="same")),                     # even kernel: extra row below
    ((3, 2, 8, 7), (4, 2, 2, 2), dict(padding="same", dilation=3)),         # odd total padding 3
    ((2, 3, 7, 9), (5, 3, 7, 9), dict(padding="valid")),                    # kernel = image: 1×1 output
    ((2, 3, 6, 6), (4, 3, 5, 5), dict(padding=4)),                          # padding k − 1
    ((2, 3, 20, 24), (4, 3, 3, 3), dict(padding=1)),
    ((2, 1, 32, 32), (6, 1, 5, 5), dict()),                                 # LeNet's C1
    ((2, 6, 14, 14), (16, 6, 5, 5), dict()),                                # LeNet's C3
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV2D_CASES)
def test_conv2d_cases_match_torch(layout, rng, x_shape, w_shape, kwargs):
    x, w, b = randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, w_shape[0])
    check_torch(lambda x, w, b: F.conv2d(x, w, b, **kwargs),
                lambda x, w, b: tF.conv2d(x, w, b, **kwargs), [x, w, b])
    check_torch(lambda x, w: F.conv2d(x, w, **kwargs), lambda x, w: tF.conv2d(x, w, **kwargs), [x, w])


def random_conv2d_config(rng):
    """A random small conv2d: groups 1–3, kernels 1–4 (non-square), stride 1–4, dilation 1–3,
    padding up to k − 1 or "same"/"valid", odd sizes, batch 1–3."""
    groups = int(rng.integers(1, 4))
    C, K = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    stride = tuple(int(v) for v in rng.integers(1, 5, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 4, size=2))
    kind = int(rng.integers(4))
    if kind == 0:
        padding, pads = "valid", (0, 0)
    elif kind == 1:
        padding, stride = "same", (1, 1)
        pads = (dilation[0] * (kh - 1), dilation[1] * (kw - 1))             # totals
    elif kind == 2:
        p = int(rng.integers(0, min(kh, kw)))
        padding, pads = p, (2 * p, 2 * p)
    else:
        padding = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
        pads = (2 * padding[0], 2 * padding[1])
    reach = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    H = max(1, reach[0] - pads[0] + int(rng.integers(0, 9)))
    W = max(1, reach[1] - pads[1] + int(rng.integers(0, 9)))
    N = int(rng.integers(1, 4))
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (N, C, H, W), (K, C // groups, kh, kw), kwargs


@pytest.mark.parametrize("trial", range(6))
def test_conv2d_random_configurations_match_torch(layout, rng, trial):
    for _ in range(15):
        x_shape, w_shape, kwargs = random_conv2d_config(rng)
        x, w, b = randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, w_shape[0])
        with_bias, input_grad = bool(rng.integers(2)), bool(rng.integers(4))
        params = [w, b] if with_bias else [w]
        described(f"x {x_shape}, weight {w_shape}, {kwargs}, bias {with_bias}, input grad {input_grad}",
                  lambda: run_against_torch(lambda x, *p: F.conv2d(x, *p, **kwargs),
                                            lambda x, *p: tF.conv2d(x, *p, **kwargs),
                                            x, params, input_grad))


def test_conv2d_same_padding_keeps_the_size(layout, rng):
    for kh, kw, d in [(3, 3, 1), (4, 2, 1), (2, 5, 2), (1, 4, 3)]:
        x = randn(rng, 2, 3, 7, 6)
        out = F.conv2d(x, randn(rng, 4, 3, kh, kw), padding="same", dilation=d)
        assert out.shape == (2, 4, 7, 6)


def test_conv2d_without_input_grad_skips_the_input_gradient(layout, rng, monkeypatch):
    # The first layer of a network: no col2im at all in backward.
    def fail(*args):
        raise AssertionError("col2im ran although the input needs no gradient")
    monkeypatch.setattr(conv_module, "_col2im", fail)
    x = st.Tensor(randn(rng, 2, 1, 12, 12))
    w = st.Tensor(randn(rng, 4, 1, 5, 5), requires_grad=True)
    F.conv2d(x, w, padding=2).sum().backward()
    assert x.grad is None and w.grad.shape == (4, 1, 5, 5)


def test_conv2d_frozen_weight_gets_no_gradient(layout, rng, monkeypatch):
    def fail(*args):
        raise AssertionError("the weight gradient was computed although the weight needs none")
    monkeypatch.setattr(conv_module, "_conv_weight_grad", fail)
    x = st.Tensor(randn(rng, 2, 3, 8, 8), requires_grad=True)
    w = st.Tensor(randn(rng, 4, 3, 3, 3))
    F.conv2d(x, w).sum().backward()
    assert w.grad is None and x.grad.shape == x.shape


def test_conv2d_keeps_dtype_and_records_no_graph_under_no_grad(layout, rng):
    x64 = rng.standard_normal((2, 2, 6, 5))
    w64 = rng.standard_normal((3, 2, 3, 3))
    X = st.Tensor(x64, requires_grad=True, dtype=np.float64)
    W = st.Tensor(w64, requires_grad=True, dtype=np.float64)
    out = F.conv2d(X, W, np.zeros(3), padding=1)
    assert out.dtype == np.float64
    out.sum().backward()
    assert X.grad.dtype == np.float64 and W.grad.dtype == np.float64
    out32 = F.conv2d(x64.astype(np.float32), w64.astype(np.float32))
    assert out32.dtype == np.float32 and out32.data.flags.c_contiguous
    with st.no_grad():
        assert not F.conv2d(X, W).requires_grad


def test_empty_batch(layout):
    for op, x, w, shape in [
        (F.conv2d, np.zeros((0, 3, 8, 8)), np.ones((4, 3, 3, 3)), (0, 4, 6, 6)),
        (F.conv_transpose2d, np.zeros((0, 3, 4, 4)), np.ones((3, 2, 3, 3)), (0, 2, 6, 6)),
        (lambda x, w: F.conv2d_fused(x, w, fusion="concat"), np.zeros((0, 3, 8, 8)), np.ones((4, 3, 3, 3)),
         (0, 12, 6, 6)),
    ]:
        X = st.Tensor(x, requires_grad=True)
        W = st.Tensor(w, requires_grad=True)
        out = op(X, W)
        assert out.shape == shape
        out.sum().backward()
        assert X.grad.shape == X.shape and not W.grad.any()


@pytest.mark.parametrize("kwargs", [
    dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
    dict(padding="same", dilation=(2, 1)),
    dict(stride=3, padding=2),
])
def test_conv2d_gradcheck(layout, rng, kwargs):
    x = rng.standard_normal((2, 4, 6, 7))
    w = rng.standard_normal((4, 4 // kwargs.get("groups", 1), 3, 2))
    b = rng.standard_normal(4)
    assert st.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kwargs), [x, w, b])


# ---------------------------------------------------------------------------
# conv_transpose2d

TRANSPOSE_CASES = [
    ((2, 4, 3, 5), (4, 3, 3, 3), dict()),
    ((2, 4, 3, 5), (4, 3, 3, 2), dict(stride=2, padding=1, output_padding=1)),
    ((1, 1, 4, 4), (1, 1, 2, 2), dict(stride=3)),                           # stride > kernel: gaps
    ((2, 6, 3, 4), (6, 2, 3, 3), dict(stride=(2, 3), groups=3, dilation=2, padding=(1, 2))),
    ((2, 2, 4, 3), (2, 3, 2, 3), dict(dilation=3, output_padding=2)),       # output_padding < dilation
    ((2, 16, 7, 7), (16, 8, 4, 4), dict(stride=2, padding=1)),              # 7×7 -> 14×14
    ((2, 3, 9, 10), (3, 2, 3, 3), dict(padding=1)),                         # 9×10 -> 9×10
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", TRANSPOSE_CASES)
def test_conv_transpose2d_cases_match_torch(layout, rng, x_shape, w_shape, kwargs):
    groups = kwargs.get("groups", 1)
    x, w, b = randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, w_shape[1] * groups)
    check_torch(lambda x, w, b: F.conv_transpose2d(x, w, b, **kwargs),
                lambda x, w, b: tF.conv_transpose2d(x, w, b, **kwargs), [x, w, b])


def random_transpose_config(rng):
    groups = int(rng.integers(1, 4))
    C, Kg = groups * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    stride = tuple(int(v) for v in rng.integers(1, 5, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 4, size=2))
    output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    H, W = (int(v) for v in rng.integers(1, 7, size=2))
    padding = []
    for size, k, s, d, op in zip((H, W), (kh, kw), stride, dilation, output_padding):
        full = (size - 1) * s + d * (k - 1) + op + 1                       # before cropping
        padding.append(int(rng.integers(0, min(k, (full - 1) // 2 + 1))))
    N = int(rng.integers(1, 4))
    kwargs = dict(stride=stride, padding=tuple(padding), output_padding=output_padding,
                  groups=groups, dilation=dilation)
    return (N, C, H, W), (C, Kg, kh, kw), kwargs


@pytest.mark.parametrize("trial", range(5))
def test_conv_transpose2d_random_configurations_match_torch(layout, rng, trial):
    for _ in range(15):
        x_shape, w_shape, kwargs = random_transpose_config(rng)
        K = w_shape[1] * kwargs["groups"]
        x, w, b = randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, K)
        with_bias, input_grad = bool(rng.integers(2)), bool(rng.integers(4))
        params = [w, b] if with_bias else [w]
        described(f"x {x_shape}, weight {w_shape}, {kwargs}, bias {with_bias}, input grad {input_grad}",
                  lambda: run_against_torch(lambda x, *p: F.conv_transpose2d(x, *p, **kwargs),
                                            lambda x, *p: tF.conv_transpose2d(x, *p, **kwargs),
                                            x, params, input_grad))


def test_conv_transpose2d_inverts_the_shape_of_conv2d(layout, rng):
    x = randn(rng, 2, 3, 11, 10)
    w = randn(rng, 5, 3, 3, 3)
    y = F.conv2d(x, w, stride=2, padding=1)
    back = F.conv_transpose2d(y, w, stride=2, padding=1, output_padding=(0, 1))
    assert back.shape == x.shape


@pytest.mark.parametrize("kwargs", [
    dict(stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2)),
    dict(dilation=3, output_padding=2),
])
def test_conv_transpose2d_gradcheck(layout, rng, kwargs):
    x = rng.standard_normal((2, 4, 3, 4))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(3 * kwargs.get("groups", 1))
    assert st.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **kwargs), [x, w, b])


# ---------------------------------------------------------------------------
# conv2d_fused


def torch_responses(x, w, stride, padding):
    """r[n, k, c] = x[n, c] ⋆ w[k, c] from PyTorch, one input channel at a time: (N, K, C, OH, OW)."""
    C = x.shape[1]
    return torch.stack([tF.conv2d(x[:, c:c + 1], w[:, c:c + 1], stride=stride, padding=padding)
                        for c in range(C)], dim=2)


def torch_fused(fusion, stride, padding):
    def reference(x, w, b=None):
        if fusion == "sum":
            return tF.conv2d(x, w, b, stride=stride, padding=padding)
        r = torch_responses(x, w, stride, padding)
        N, K, C, OH, OW = r.shape
        out = r.reshape(N, K * C, OH, OW) if fusion == "concat" else r.prod(dim=2)
        return out if b is None else out + b.reshape(1, -1, 1, 1)
    return reference


FUSED_CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), 1, 1),
    ((1, 1, 6, 5), (2, 1, 2, 3), 1, "same"),                                # one channel
    ((2, 4, 9, 8), (3, 4, 3, 2), 2, (1, 0)),
    ((2, 2, 5, 5), (1, 2, 5, 5), 3, "valid"),
    ((2, 3, 18, 17), (2, 3, 3, 3), 1, 0),
]


@pytest.mark.parametrize("fusion", ["sum", "concat", "product"])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", FUSED_CASES)
def test_conv2d_fused_matches_torch(layout, rng, fusion, x_shape, w_shape, stride, padding):
    x, w = randn(rng, *x_shape), randn(rng, *w_shape)
    maps = w_shape[0] * w_shape[1] if fusion == "concat" else w_shape[0]
    b = randn(rng, maps)

    def ours(x, w, b=None):
        return F.conv2d_fused(x, w, b, stride=stride, padding=padding, fusion=fusion)

    check_torch(ours, torch_fused(fusion, stride, padding), [x, w, b])
    check_torch_frozen_input(ours, torch_fused(fusion, stride, padding), x, [w])


@pytest.mark.parametrize("trial", range(3))
def test_conv2d_fused_random_configurations_match_torch(layout, rng, trial):
    for _ in range(10):
        fusion = ("sum", "concat", "product")[int(rng.integers(3))]
        x_shape, w_shape, kwargs = random_conv2d_config(rng)
        N, _, H, W = x_shape
        K, C = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        stride, padding = kwargs["stride"], kwargs["padding"]
        if kwargs["dilation"] != (1, 1):                                    # fused convs have no dilation
            kh, kw = w_shape[2:]
            H, W = H + kh, W + kw
        x, w = randn(rng, N, C, H, W), randn(rng, K, C, *w_shape[2:])
        b = randn(rng, K * C if fusion == "concat" else K)
        params = [w, b] if rng.integers(2) else [w]
        input_grad = bool(rng.integers(4))
        described(f"{fusion}: x {x.shape}, weight {w.shape}, stride {stride}, padding {padding!r}",
                  lambda: run_against_torch(
                      lambda x, *p: F.conv2d_fused(x, *p, stride=stride, padding=padding, fusion=fusion),
                      torch_fused(fusion, stride, padding), x, params, input_grad))


def test_conv2d_fused_concat_layout(rng):
    """Output channel k·C + c is the response of kernel k's slice c to input channel c alone."""
    x, w = randn(rng, 2, 3, 6, 6), randn(rng, 4, 3, 3, 3)
    out = F.conv2d_fused(x, w, fusion="concat").data
    for k, c in [(0, 0), (1, 2), (3, 1)]:
        alone = F.conv2d(x[:, c:c + 1], w[k:k + 1, c:c + 1]).data[:, 0]
        np.testing.assert_allclose(out[:, k * 3 + c], alone, rtol=1e-5, atol=1e-5)


def zeroed_input(rng):
    """An input whose channels 0 and 2 are exactly zero over patches: many responses are exactly 0."""
    x = rng.standard_normal((2, 3, 6, 6))
    x[:, 0, :4, :4] = 0.0
    x[0, 2, 2:, 1:] = 0.0
    return x


def test_conv2d_fused_product_with_zero_responses_matches_torch(layout, rng):
    x = zeroed_input(rng).astype(np.float32)
    w = randn(rng, 2, 3, 2, 2)
    r = torch_responses(to_torch64(x), to_torch64(w), 1, 0)
    assert (r == 0).any(), "the test needs exactly-zero responses"
    out = check_torch(lambda x, w: F.conv2d_fused(x, w, fusion="product"),
                      torch_fused("product", 1, 0), [x, w])
    assert np.isfinite(out.data).all()


@pytest.mark.parametrize("fusion", ["sum", "concat", "product"])
def test_conv2d_fused_gradcheck(layout, rng, fusion):
    x = rng.standard_normal((2, 3, 5, 6))
    w = rng.standard_normal((2, 3, 3, 2))
    b = rng.standard_normal(6 if fusion == "concat" else 2)
    assert st.gradcheck(lambda x, w, b: F.conv2d_fused(x, w, b, stride=(1, 2), padding=1, fusion=fusion),
                        [x, w, b])


def test_conv2d_fused_product_gradcheck_with_exact_zeros(layout, rng):
    x = zeroed_input(rng)
    w = rng.standard_normal((2, 3, 2, 2))
    assert st.gradcheck(lambda x, w: F.conv2d_fused(x, w, fusion="product"), [x, w])


# ---------------------------------------------------------------------------
# errors


def f32(*shape):
    return np.zeros(shape, np.float32)


CONV2D_ERRORS = [
    # input, weight, kwargs, error, message
    (f32(8, 1, 28, 28), f32(6, 3, 5, 5), {}, ValueError,
     re.escape("conv2d expects input (N, C, H, W) with C=3 (weight (6, 3, 5, 5), groups=1), "
               "got (8, 1, 28, 28)")),
    (f32(1, 28, 28), f32(6, 1, 5, 5), {}, ValueError,
     r"expects input \(N, C, H, W\) with C=1 .*got \(1, 28, 28\)"),
    (f32(8, 4, 9, 9), f32(6, 2, 3, 3), dict(groups=3), ValueError,
     r"with C=6 .*groups=3\), got \(8, 4, 9, 9\)"),
    (f32(8, 3, 9, 9), f32(6, 3, 3), {}, ValueError,
     r"conv2d expects weight \(K, C/groups, kh, kw\), got shape \(6, 3, 3\)"),
    (f32(8, 4, 9, 9), f32(6, 1, 3, 3), dict(groups=4), ValueError,
     r"groups=4 must divide the 6 output channels"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), dict(groups=0), ValueError, r"groups must be an int >= 1, got 0"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), dict(groups=1.5), TypeError, r"groups must be an int"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), dict(bias=f32(5)), ValueError,
     r"conv2d expects bias \(K,\) with 6 values .*got shape \(5,\)"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), dict(stride=0), ValueError, r"stride must be positive, got 0"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), dict(stride=(1, -2)), ValueError, r"stride must be positive"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), dict(padding=-1), ValueError, r"padding must be non-negative"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), dict(dilation=0), ValueError, r"dilation must be positive"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), dict(padding="full"), ValueError,
     r"padding must be an int, a pair of ints, 'same' or 'valid', got 'full'"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), dict(padding="same", stride=2), ValueError,
     r"padding='same' needs stride 1"),
    (f32(8, 3, 4, 4), f32(6, 3, 5, 5), {}, ValueError,
     r"kernel reaches 5×5 .*larger than the padded input 4×4 \(input 4×4"),
    (f32(8, 3, 8, 8), f32(6, 3, 3, 3), dict(dilation=4), ValueError,
     r"kernel reaches 9×9 \(kernel 3×3, dilation \(4, 4\)\), larger than the padded input 8×8"),
    (np.zeros((8, 3, 9, 9), np.uint8), f32(6, 3, 3, 3), {}, TypeError,
     r"conv2d expects a float32 or float64 input, got dtype uint8"),
    (st.Tensor(np.zeros((8, 3, 9, 9)), dtype=np.int64), f32(6, 3, 3, 3), {}, TypeError,
     r"conv2d expects a float32 or float64 input, got dtype int64"),
    (f32(8, 3, 9, 9), np.zeros((6, 3, 3, 3)), {}, TypeError,
     r"conv2d expects all arrays of one dtype, got input float32, weight float64"),
]


@pytest.mark.parametrize("x, w, kwargs, error, message", CONV2D_ERRORS)
def test_conv2d_errors(x, w, kwargs, error, message):
    with pytest.raises(error, match=message):
        F.conv2d(x, w, **kwargs)


TRANSPOSE_ERRORS = [
    (f32(2, 3, 5, 5), f32(4, 2, 3, 3), {}, ValueError,
     re.escape("conv_transpose2d expects input (N, C, H, W) with C=4 (weight (4, 2, 3, 3), groups=1), "
               "got (2, 3, 5, 5)")),
    (f32(2, 4, 5, 5), f32(4, 2, 3), {}, ValueError, r"expects weight \(C, K/groups, kh, kw\)"),
    (f32(2, 4, 5, 5), f32(4, 2, 3, 3), dict(groups=3), ValueError,
     r"groups=3 must divide the 4 input channels"),
    (f32(2, 4, 5, 5), f32(4, 2, 3, 3), dict(stride=2, output_padding=2), ValueError,
     r"output_padding must be smaller than the stride or the dilation"),
    (f32(2, 4, 5, 5), f32(4, 2, 3, 3), dict(output_padding=1), ValueError, r"output_padding"),
    (f32(2, 4, 1, 1), f32(4, 2, 2, 2), dict(padding=1), ValueError, r"the output would be 0×0"),
    (f32(2, 4, 5, 5), f32(4, 2, 3, 3), dict(bias=f32(4)), ValueError, r"bias \(K,\) with 2 values"),
    (f32(2, 4, 5, 5), f32(4, 2, 3, 3), dict(padding="same"), TypeError, r"padding must be an int or a pair"),
]


@pytest.mark.parametrize("x, w, kwargs, error, message", TRANSPOSE_ERRORS)
def test_conv_transpose2d_errors(x, w, kwargs, error, message):
    with pytest.raises(error, match=message):
        F.conv_transpose2d(x, w, **kwargs)


FUSED_ERRORS = [
    (f32(2, 3, 5, 5), f32(4, 3, 3, 3), dict(fusion="max"), ValueError,
     r"fusion must be one of 'sum', 'concat', 'product', got 'max'"),
    (f32(2, 2, 5, 5), f32(4, 3, 3, 3), dict(fusion="product"), ValueError,
     re.escape("conv2d_fused expects input (N, C, H, W) with C=3 (weight (4, 3, 3, 3)), got (2, 2, 5, 5)")),
    (f32(2, 2, 5, 5), f32(4, 3, 3, 3), dict(fusion="sum"), ValueError, r"conv2d_fused expects input .*C=3"),
    (f32(2, 3, 5, 5), f32(4, 3, 3, 3), dict(fusion="concat", bias=f32(4)), ValueError,
     r"bias \(K·C,\) for fusion='concat' with 12 values"),
    (f32(2, 3, 5, 5), f32(4, 3, 3, 3), dict(fusion="product", bias=f32(12)), ValueError,
     r"bias \(K,\) for fusion='product' with 4 values"),
    (f32(2, 3, 2, 2), f32(4, 3, 3, 3), dict(fusion="concat"), ValueError,
     r"larger than the padded input 2×2"),
    (f32(2, 3, 5, 5), f32(4, 3, 3, 3), dict(fusion="product", padding="same", stride=2), ValueError,
     r"padding='same' needs stride 1"),
]


@pytest.mark.parametrize("x, w, kwargs, error, message", FUSED_ERRORS)
def test_conv2d_fused_errors(x, w, kwargs, error, message):
    with pytest.raises(error, match=message):
        F.conv2d_fused(x, w, **kwargs)
