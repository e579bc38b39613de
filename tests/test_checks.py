"""striate.checks: the argument checks every op, layer and optimizer shares (good values and bad)."""
import re

import numpy as np
import pytest

import striate as st
from striate.checks import (
    check_axis,
    check_conv,
    check_float,
    check_int,
    check_ndim,
    check_number,
    check_padding,
    check_same_dtype,
    conv_output_size,
    nonnegative_pair,
    normalize_name,
    padding_sides,
    pair,
    positive_pair,
    to_tensor,
)


def f32(*shape):
    return np.zeros(shape, np.float32)


# -- names ---------------------------------------------------------------------

@pytest.mark.parametrize("text, key", [("mnist", "mnist"), ("  Fashion_MNIST ", "fashion-mnist"),
                                       ("LeNet5-Modern", "lenet5-modern")])
def test_normalize_name(text, key):
    assert normalize_name(text) == key


def test_normalize_name_refuses_what_is_not_a_str():
    with pytest.raises(TypeError, match=r"^model names are strings, got int: 5$"):
        normalize_name(5, "model")
    with pytest.raises(TypeError, match=r"^name names are strings, got NoneType: None$"):
        normalize_name(None)


# -- numbers -------------------------------------------------------------------

@pytest.mark.parametrize("value, at_least, expected", [(3, 1, 3), (np.int64(7), 1, 7), (0, 0, 0), (-4, None, -4)])
def test_check_int_good(value, at_least, expected):
    out = check_int(value, "size", "Op", at_least=at_least)
    assert out == expected and type(out) is int


@pytest.mark.parametrize("value, at_least, error, message", [
    (0, 1, ValueError, "Conv2d: in_channels must be an int >= 1, got 0"),
    (-1, 0, ValueError, "Conv2d: in_channels must be an int >= 0, got -1"),
    (3.0, 1, TypeError, "Conv2d: in_channels must be an int >= 1, got 3.0"),
    (True, 1, TypeError, "Conv2d: in_channels must be an int >= 1, got True"),
    ("3", 1, TypeError, "Conv2d: in_channels must be an int >= 1, got '3'"),
    (None, None, TypeError, "Conv2d: in_channels must be an int, got None"),
])
def test_check_int_bad(value, at_least, error, message):
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        check_int(value, "in_channels", "Conv2d", at_least=at_least)


@pytest.mark.parametrize("value, bounds, expected", [
    (0.5, {}, 0.5), (-3, {}, -3.0), (float("inf"), {}, float("inf")), (np.float32(0.25), dict(at_least=0), 0.25),
    (0, dict(at_least=0, at_most=1), 0.0), (1, dict(at_least=0, at_most=1), 1.0), (1e-5, dict(above=0), 1e-5),
    (0.999, dict(at_least=0, below=1), 0.999),
])
def test_check_number_good(value, bounds, expected):
    out = check_number(value, "x", "Op", **bounds)
    assert out == expected and type(out) is float


@pytest.mark.parametrize("value, bounds, error, message", [
    (-0.1, dict(at_least=0), ValueError, "SGD: lr must be a number >= 0, got -0.1"),
    (0.0, dict(above=0), ValueError, "SGD: lr must be a number > 0, got 0.0"),
    (1.0, dict(at_least=0, below=1), ValueError, "SGD: lr must be a number >= 0 and < 1, got 1.0"),
    (1.5, dict(at_least=0, at_most=1), ValueError, "SGD: lr must be a number >= 0 and <= 1, got 1.5"),
    (float("nan"), {}, ValueError, "SGD: lr must be a number, got nan"),
    ("0.1", dict(at_least=0), TypeError, "SGD: lr must be a number >= 0, got '0.1'"),
    (False, {}, TypeError, "SGD: lr must be a number, got False"),
    (None, {}, TypeError, "SGD: lr must be a number, got None"),
])
def test_check_number_bad(value, bounds, error, message):
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        check_number(value, "lr", "SGD", **bounds)


def test_check_axis():
    assert check_axis(-1, 4, "softmax", "dim") == 3 and check_axis(2, 4, "softmax") == 2
    with pytest.raises(ValueError, match=re.escape("softmax: dim=4 is out of range for a tensor with 4 "
                                                   "dimension(s) (expected -4 ≤ dim < 4)")):
        check_axis(4, 4, "softmax", "dim")
    with pytest.raises(TypeError, match="concat: axis must be an int, got 1.0"):
        check_axis(1.0, 4, "concat")


# -- pairs and padding ---------------------------------------------------------

def test_pairs_good():
    assert pair(3, "k", "op") == (3, 3) and pair((3, 5), "k", "op") == (3, 5) and pair([0, -1], "k", "op") == (0, -1)
    assert positive_pair(np.int32(2), "stride", "op") == (2, 2)
    assert nonnegative_pair((0, 1), "padding", "op") == (0, 1)


@pytest.mark.parametrize("call, error, message", [
    (lambda: pair(2.0, "kernel_size", "max_pool2d"), TypeError,
     "max_pool2d: kernel_size must be an int or a pair of ints, got 2.0"),
    (lambda: pair((1, 2, 3), "kernel_size", "max_pool2d"), TypeError,
     "max_pool2d: kernel_size must be an int or a pair of ints, got (1, 2, 3)"),
    (lambda: pair((True, 1), "kernel_size", "max_pool2d"), TypeError,
     "max_pool2d: kernel_size must be an int or a pair of ints, got (True, 1)"),
    (lambda: positive_pair((2, 0), "stride", "conv2d"), ValueError, "conv2d: stride must be positive, got (2, 0)"),
    (lambda: nonnegative_pair(-1, "padding", "conv2d"), ValueError, "conv2d: padding must be non-negative, got -1"),
])
def test_pairs_bad(call, error, message):
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        call()


def test_check_padding():
    assert check_padding(1, "Conv2d") == (1, 1)
    assert check_padding((0, 2), "Conv2d", stride=(2, 2)) == (0, 2)
    assert check_padding("same", "Conv2d") == "same"
    assert check_padding("valid", "Conv2d", stride=(3, 1)) == "valid"
    with pytest.raises(ValueError, match=r"^Conv2d: padding='same' needs stride 1 .*, got stride \(2, 1\)$"):
        check_padding("same", "Conv2d", stride=(2, 1))
    with pytest.raises(ValueError, match=re.escape("Conv2d: padding must be an int, a pair of ints, 'same' or "
                                                   "'valid', got 'full'")):
        check_padding("full", "Conv2d")
    with pytest.raises(ValueError, match="Conv2d: padding must be non-negative"):
        check_padding(-1, "Conv2d")
    with pytest.raises(TypeError, match="Conv2d: padding must be an int or a pair of ints, got 1.5"):
        check_padding(1.5, "Conv2d")


@pytest.mark.parametrize("padding, reach, sides", [
    ("valid", (5, 5), (0, 0, 0, 0)), ("same", (3, 3), (1, 1, 1, 1)), ("same", (4, 1), (1, 2, 0, 0)),
    ("same", (5, 2), (2, 2, 0, 1)), (2, (3, 3), (2, 2, 2, 2)), ((1, 0), (3, 3), (1, 1, 0, 0)),
])
def test_padding_sides(padding, reach, sides):
    assert padding_sides(padding, reach, "conv2d") == sides


def test_conv_output_size():
    assert conv_output_size(32, 5, 1, 0) == 28                        # LeNet's C1
    assert conv_output_size(227, 11, 4, 0) == 55                      # AlexNet's conv1
    assert conv_output_size(7, 3, 2, 2, dilation=2) == 3


# -- tensors -------------------------------------------------------------------

def test_to_tensor_keeps_integer_dtypes_and_refuses_other_kinds():
    t = st.tensor(np.ones(3, np.float32))
    assert to_tensor(t, "op") is t
    assert to_tensor(np.arange(3), "op").dtype.kind == "i"
    assert to_tensor([[1.0, 2.0]], "op").shape == (1, 2)
    with pytest.raises(TypeError, match=r"^relu expects input as a Tensor or array, got None$"):
        to_tensor(None, "relu")
    with pytest.raises(TypeError, match=r"relu expects weight as an array of real numbers .* got an array of dtype "
                                        r"complex128"):
        to_tensor(np.zeros(2, complex), "relu", "weight")
    with pytest.raises(TypeError, match=r"^relu expects input as a Tensor or array, got object$"):
        to_tensor(object(), "relu")


def test_check_float_ndim_and_dtype():
    check_float(to_tensor(f32(2), "op"), "op")
    with pytest.raises(TypeError, match=r"^relu expects a float32 or float64 input, got dtype int64$"):
        check_float(to_tensor(np.zeros(2, np.int64), "relu"), "relu")
    with pytest.raises(ValueError, match=re.escape("max_pool2d expects input (N, C, H, W), got shape (3, 8, 8)")):
        check_ndim(to_tensor(f32(3, 8, 8), "max_pool2d"), 4, "(N, C, H, W)", "max_pool2d")
    check_same_dtype("linear", input=to_tensor(f32(2), "op"), weight=to_tensor(f32(2), "op"), bias=None)
    with pytest.raises(TypeError, match=r"^linear expects all arrays of one dtype, got input float32, weight float64$"):
        check_same_dtype("linear", input=to_tensor(f32(2), "op"), weight=to_tensor(np.zeros(2), "op"))


def test_check_conv_good():
    x, w, groups = check_conv("conv2d", f32(2, 4, 5, 5), f32(6, 2, 3, 3), 2)
    assert isinstance(x, st.Tensor) and isinstance(w, st.Tensor) and groups == 2
    assert check_conv("conv_transpose2d", f32(2, 4, 5, 5), f32(4, 3, 3, 3), 2, transposed=True)[2] == 2
    assert check_conv("conv2d_fused", f32(2, 3, 5, 5), f32(4, 3, 3, 3), None)[2] == 1


@pytest.mark.parametrize("x, w, groups, transposed, error, message", [
    (f32(8, 1, 28, 28), f32(6, 3, 5, 5), 1, False, ValueError,
     "conv2d expects input (N, C, H, W) with C=3 (weight (6, 3, 5, 5), groups=1), got (8, 1, 28, 28)"),
    (f32(8, 4, 9, 9), f32(6, 2, 3, 3), 3, False, ValueError,
     "conv2d expects input (N, C, H, W) with C=6 (weight (6, 2, 3, 3), groups=3), got (8, 4, 9, 9)"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), 4, False, ValueError,
     "conv2d: groups=4 must divide the 6 output channels of weight (6, 3, 3, 3)"),
    (f32(8, 4, 9, 9), f32(4, 2, 3, 3), 3, True, ValueError,
     "conv2d: groups=3 must divide the 4 input channels of weight (4, 2, 3, 3)"),
    (f32(2, 2, 5, 5), f32(4, 3, 3, 3), None, False, ValueError,
     "conv2d expects input (N, C, H, W) with C=3 (weight (4, 3, 3, 3)), got (2, 2, 5, 5)"),
    (f32(8, 3, 9, 9), f32(6, 3, 3), 1, False, ValueError,
     "conv2d expects weight (K, C/groups, kh, kw), got shape (6, 3, 3)"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), 0, False, ValueError, "conv2d: groups must be an int >= 1, got 0"),
    (f32(8, 3, 9, 9), f32(6, 3, 3, 3), 1.0, False, TypeError, "conv2d: groups must be an int >= 1, got 1.0"),
    (np.zeros((8, 3, 9, 9), np.int32), f32(6, 3, 3, 3), 1, False, TypeError,
     "conv2d expects a float32 or float64 input, got dtype int32"),
])
def test_check_conv_bad(x, w, groups, transposed, error, message):
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        check_conv("conv2d", x, w, groups, transposed=transposed)
