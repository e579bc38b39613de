"""conv2d by Winograd's F(2×2, 3×3): against PyTorch, against im2col, against central differences.

``algorithm="winograd"`` forces it on every geometry it applies to (3×3 at stride 1, and
kernels spanning three strides, split into phases); ``"auto"`` picks it only for 3×3 layers
with enough channels and no groups.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import striate as st
import striate.functional as F
from striate.functional import winograd
from tests.reference import assert_close, check_torch, randn

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


@pytest.fixture(params=["whole images", "one row of tiles", "several rows of tiles"])
def blocks(request, monkeypatch):
    """Cut the batch into blocks of whole images (the default for small inputs), of one row of
    tiles each, or of a few rows (a last block that is shorter, or several images at once)."""
    if request.param != "whole images":
        monkeypatch.setattr(winograd, "_BLOCK_BYTES", 1)
        monkeypatch.setattr(winograd, "_MIN_TILES", 1 if request.param == "one row of tiles" else 7)
    return request.param


def random_winograd_config(rng):
    """A random convolution Winograd applies to: a 3×3 kernel at stride 1, or a kernel of
    2s+1 … 3s taps at stride s (per axis), padding up to k + 1, groups 1–3, odd sizes, batch 1–3."""
    groups = int(rng.integers(1, 4))
    C, K = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    stride = tuple(int(v) for v in rng.choice([1, 1, 2, 3, 4], size=2))
    kernel = tuple(int(rng.integers(2 * s + 1, 3 * s + 1)) for s in stride)
    if stride == (1, 1) and rng.integers(3) == 0:
        padding = "same"
        pad_totals = (2, 2)
    else:
        padding = tuple(int(rng.integers(0, k + 2)) for k in kernel)
        pad_totals = tuple(2 * p for p in padding)
    H = max(1, kernel[0] - pad_totals[0] + int(rng.integers(0, 12)))
    W = max(1, kernel[1] - pad_totals[1] + int(rng.integers(0, 12)))
    N = int(rng.integers(1, 4))
    kwargs = dict(stride=stride, padding=padding, groups=groups)
    return (N, C, H, W), (K, C // groups, *kernel), kwargs


@pytest.mark.parametrize("trial", range(4))
def test_random_configurations_match_torch(blocks, rng, trial):
    for _ in range(12):
        x_shape, w_shape, kwargs = random_winograd_config(rng)
        x, w, b = randn(rng, *x_shape), randn(rng, *w_shape), randn(rng, w_shape[0])
        try:
            check_torch(lambda x, w, b: F.conv2d(x, w, b, **kwargs, algorithm="winograd"),
                        lambda x, w, b: tF.conv2d(x, w, b, **kwargs), [x, w, b])
        except AssertionError as exc:
            raise AssertionError(f"x {x_shape}, weight {w_shape}, {kwargs}: {exc}") from None


@pytest.mark.parametrize("trial", range(2))
def test_random_configurations_match_torch_in_float64(blocks, rng, trial):
    """float64 at 1e-10: a transform or adjoint right only to float32 precision fails here."""
    for _ in range(12):
        x_shape, w_shape, kwargs = random_winograd_config(rng)
        arrays = [randn(rng, *shape, dtype=np.float64) for shape in (x_shape, w_shape, (w_shape[0],))]
        try:
            check_torch(lambda x, w, b: F.conv2d(x, w, b, **kwargs, algorithm="winograd"),
                        lambda x, w, b: tF.conv2d(x, w, b, **kwargs), arrays, rtol=1e-10)
        except AssertionError as exc:
            raise AssertionError(f"x {x_shape}, weight {w_shape}, {kwargs}: {exc}") from None


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((4, 64, 16, 16), (128, 64, 3, 3), dict(padding=1)),                # the benchmark's 3×3 layer
    ((2, 48, 13, 13), (64, 24, 3, 3), dict(padding=1, groups=2)),       # AlexNet's grouped 3×3, smaller
    ((2, 3, 63, 59), (16, 3, 11, 11), dict(stride=4, padding=2)),       # AlexNet's first layer, smaller
    ((3, 40, 9, 7), (33, 40, 3, 3), dict()),                            # odd output: tiles cut at the edge
])
def test_layer_sized_convolutions_match_torch(blocks, rng, x_shape, w_shape, kwargs):
    x, w, b = randn(rng, *x_shape), randn(rng, *w_shape) * 0.1, randn(rng, w_shape[0])
    check_torch(lambda x, w, b: F.conv2d(x, w, b, **kwargs, algorithm="winograd"),
                lambda x, w, b: tF.conv2d(x, w, b, **kwargs), [x, w, b])


def test_agrees_with_im2col_and_keeps_float64(rng):
    x, w, b = randn(rng, 2, 5, 11, 10, dtype=np.float64), randn(rng, 7, 5, 3, 3, dtype=np.float64), \
        randn(rng, 7, dtype=np.float64)
    ours = F.conv2d(x, w, b, padding=1, algorithm="winograd")
    ref = F.conv2d(x, w, b, padding=1, algorithm="im2col")
    assert ours.dtype == np.float64
    assert_close(ours.data, ref.data, 1e-12)


@pytest.mark.parametrize("kwargs, shapes", [
    (dict(padding=1), ((2, 3, 5, 6), (2, 3, 3, 3))),
    (dict(stride=2, padding=(1, 2), groups=2), ((1, 4, 9, 8), (2, 2, 5, 6))),
    (dict(stride=(4, 1), padding=(0, 1)), ((2, 1, 13, 5), (3, 1, 11, 3))),
])
def test_gradcheck(rng, kwargs, shapes):
    x_shape, w_shape = shapes
    inputs = [randn(rng, *x_shape, dtype=np.float64), randn(rng, *w_shape, dtype=np.float64),
              randn(rng, w_shape[0], dtype=np.float64)]
    st.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kwargs, algorithm="winograd"), inputs)


@pytest.mark.parametrize("wanted", [(True, False, False), (False, True, False), (False, False, True),
                                    (True, True, False)])
def test_only_the_wanted_gradients_and_right_ones(rng, wanted):
    x, w, b = randn(rng, 2, 4, 9, 7), randn(rng, 3, 4, 5, 11), randn(rng, 3)
    kwargs = dict(stride=(2, 4), padding=(1, 3))
    # check_torch: the unwanted inputs get no gradient, the wanted ones the right one
    check_torch(lambda x, w, b: F.conv2d(x, w, b, **kwargs, algorithm="winograd"),
                lambda x, w, b: tF.conv2d(x, w, b, **kwargs), [x, w, b], grads=list(wanted))


def test_non_contiguous_inputs(rng):
    x = randn(rng, 2, 7, 9, 6).transpose(0, 1, 3, 2)[:, ::2]      # (2, 4, 6, 9), a strided view
    w = randn(rng, 3, 3, 3, 4).transpose(0, 3, 2, 1)              # (3, 4, 3, 3), a transposed view
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    check_torch(lambda x, w: F.conv2d(x, w, padding=2, algorithm="winograd"),
                lambda x, w: tF.conv2d(x, w, padding=2), [x, w])


@pytest.mark.parametrize("x_shape, w_shape, stride", [
    ((2, 3, 12, 13), (4, 3, 11, 11), 4),     # row 11, columns 11 and 12 lie past the last window
    ((2, 3, 6, 6), (4, 3, 5, 5), 2),         # row 5 and column 5
])
def test_pixels_no_window_reads_reach_neither_output_nor_gradients(rng, x_shape, w_shape, stride):
    """The kernel padded to three strides has zero taps over pixels no window reads: they must
    not leak in through round-off (nor an inf turn into NaN), and their gradient must be 0."""
    x, w = randn(rng, *x_shape), randn(rng, *w_shape)
    clean = F.conv2d(x.astype(np.float64), w.astype(np.float64), stride=stride, algorithm="im2col").data
    x[:, :, -1] = np.inf
    x[:, :, :, -1] = np.inf
    xt, wt = st.Tensor(x, requires_grad=True), st.Tensor(w, requires_grad=True)
    out = F.conv2d(xt, wt, stride=stride, algorithm="winograd")
    assert_close(out.data, clean)
    out.backward(randn(rng, *out.shape))
    assert np.isfinite(wt.grad).all()
    assert not xt.grad[:, :, -1].any() and not xt.grad[:, :, :, -1].any()


def test_round_off_at_large_magnitude_is_that_of_the_direct_sum(rng):
    x = (1e3 + 1e3 * rng.standard_normal((2, 256, 10, 10))).astype(np.float32)
    w = rng.standard_normal((16, 256, 3, 3)).astype(np.float32)
    exact = tF.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64), padding=1).numpy()
    scale = np.abs(exact).max()
    errors = {alg: np.abs(F.conv2d(x, w, padding=1, algorithm=alg).data - exact).max() / scale
              for alg in ("im2col", "winograd")}
    assert errors["winograd"] < 1e-5 and errors["winograd"] < 10 * errors["im2col"], errors


def test_auto_picks_winograd_for_wide_3x3_layers_only(rng, monkeypatch):
    calls = []
    forward = winograd.conv_forward
    monkeypatch.setattr(winograd, "conv_forward", lambda *a: calls.append(1) or forward(*a))
    F.conv2d(randn(rng, 1, 32, 8, 8), randn(rng, 32, 32, 3, 3), padding=1)
    assert calls == [1]
    F.conv2d(randn(rng, 1, 8, 8, 8), randn(rng, 8, 8, 3, 3), padding=1)           # few channels
    F.conv2d(randn(rng, 1, 32, 8, 8), randn(rng, 32, 32, 3, 3), stride=2)         # strided
    F.conv2d(randn(rng, 1, 32, 9, 9), randn(rng, 32, 32, 3, 3), dilation=2)       # dilated
    F.conv2d(randn(rng, 1, 32, 9, 9), randn(rng, 32, 32, 5, 5), padding=2)        # 5×5
    F.conv2d(randn(rng, 1, 64, 8, 8), randn(rng, 64, 32, 3, 3), padding=1, groups=2)   # grouped
    F.conv2d(randn(rng, 1, 32, 4, 4), randn(rng, 32, 32, 3, 3), padding=1)        # maps under 6×6
    assert calls == [1]


def test_errors_name_the_algorithm_and_what_it_needs(rng):
    x, w = randn(rng, 1, 2, 9, 9), randn(rng, 2, 2, 3, 3)
    with pytest.raises(ValueError, match="algorithm must be one of 'auto', 'im2col', 'winograd', got 'fft'"):
        F.conv2d(x, w, algorithm="fft")
    with pytest.raises(ValueError, match=r"needs dilation 1 and, on each axis, a kernel of 2s\+1 to 3s taps "
                                         r"at stride s .*dilation \(2, 2\)"):
        F.conv2d(x, w, dilation=2, algorithm="winograd")
    with pytest.raises(ValueError, match=r"kernel \(3, 3\), stride \(2, 2\)"):
        F.conv2d(x, w, stride=2, algorithm="winograd")
