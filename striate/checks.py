"""Argument checks shared by the whole library: the ops, the layers, the optimizers and the rest.

Written once here so that everything accepts the same forms (``3`` or ``(3, 5)``; padding
``1``, ``(1, 2)``, ``"same"``, ``"valid"``; names in any case, with ``_`` or ``-``) and fails
with one kind of message: the op or layer, the argument, what was expected, what was received::

    Conv2d: in_channels must be an int >= 1, got 0
    SGD: momentum must be a number >= 0, got -0.5
    conv2d expects input (N, C, H, W) with C=3 (weight (6, 3, 5, 5), groups=1), got (8, 1, 28, 28)

Wrong kinds of value (a str where an int belongs, integer data where floats belong) raise
``TypeError``; values of the right kind out of range raise ``ValueError``. The argument
order is ``(value, name, op)`` for the checks of one number or pair, and ``(x, op, name)``
for the checks of a tensor (whose name is usually "input").
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .tensor import Tensor, as_tensor

IntPair = int | tuple[int, int]
Padding = IntPair | Literal["same", "valid"]

__all__ = ["IntPair", "Padding", "normalize_name", "check_int", "check_number", "check_axis",
           "pair", "positive_pair", "nonnegative_pair", "check_padding", "padding_sides",
           "conv_output_size", "to_tensor", "check_float", "check_ndim", "check_same_dtype",
           "check_conv", "check_bias"]


# ---------------------------------------------------------------------------
# names


def normalize_name(text: str, what: str = "name") -> str:
    """A name as the registries store it: trimmed, lower case, ``_`` written as ``-``.

    ``what`` names the kind of name in the TypeError raised for anything but a str.

    Example:
        >>> normalize_name("  Fashion_MNIST ")
        'fashion-mnist'
        >>> normalize_name(5, "model")
        Traceback (most recent call last):
        ...
        TypeError: model names are strings, got int: 5
    """
    if not isinstance(text, str):
        raise TypeError(f"{what} names are strings, got {type(text).__name__}: {text!r}")
    return text.strip().lower().replace("_", "-")


# ---------------------------------------------------------------------------
# numbers


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_int(value: Any, name: str, op: str, at_least: int | None = 1) -> int:
    """``value`` as a Python int of at least ``at_least`` (None: any int).

    A bool, a float or anything else is a TypeError, a smaller int a ValueError; both say
    what was expected.

    Example:
        >>> check_int(6, "out_channels", "Conv2d")
        6
        >>> check_int(0, "out_channels", "Conv2d")
        Traceback (most recent call last):
        ...
        ValueError: Conv2d: out_channels must be an int >= 1, got 0
    """
    expected = "an int" if at_least is None else f"an int >= {at_least}"
    if not _is_int(value):
        raise TypeError(f"{op}: {name} must be {expected}, got {value!r}")
    if at_least is not None and value < at_least:
        raise ValueError(f"{op}: {name} must be {expected}, got {int(value)!r}")
    return int(value)


def check_number(value: Any, name: str, op: str, *, at_least: float | None = None,
                 above: float | None = None, at_most: float | None = None,
                 below: float | None = None) -> float:
    """``value`` as a Python float within the bounds given (none given: any number but NaN).

    ``at_least``/``above`` bound it from below (``>=``/``>``), ``at_most``/``below`` from
    above (``<=``/``<``). A bool, a str or anything else is a TypeError; NaN or a number
    out of range a ValueError.

    Example:
        >>> check_number(0.9, "momentum", "SGD", at_least=0)
        0.9
        >>> check_number(1.0, "betas[1]", "Adam", at_least=0, below=1)
        Traceback (most recent call last):
        ...
        ValueError: Adam: betas[1] must be a number >= 0 and < 1, got 1.0
    """
    bounds = [f"{sign} {bound:g}" for sign, bound in
              ((">=", at_least), (">", above), ("<=", at_most), ("<", below)) if bound is not None]
    expected = "a number" + (" " + " and ".join(bounds) if bounds else "")
    if not _is_real(value):
        raise TypeError(f"{op}: {name} must be {expected}, got {value!r}")
    number = float(value)
    ok = number == number                                          # NaN fails every bound
    if at_least is not None:
        ok = ok and number >= at_least
    if above is not None:
        ok = ok and number > above
    if at_most is not None:
        ok = ok and number <= at_most
    if below is not None:
        ok = ok and number < below
    if not ok:
        raise ValueError(f"{op}: {name} must be {expected}, got {number!r}")
    return number


def check_axis(axis: Any, ndim: int, op: str, name: str = "axis") -> int:
    """``axis`` as a non-negative index into ``ndim`` axes (negative counts from the end).

    Example:
        >>> check_axis(-1, 4, "softmax", "dim")
        3
    """
    if not _is_int(axis):
        raise TypeError(f"{op}: {name} must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: {name}={axis} is out of range for a tensor with {ndim} "
                         f"dimension(s) (expected {-ndim} ≤ {name} < {ndim})")
    return int(axis) % ndim


# ---------------------------------------------------------------------------
# pairs and padding


def pair(value: Any, name: str, op: str) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(3, 5)`` -> ``(3, 5)``; anything else is a TypeError.

    Example:
        >>> pair(3, "kernel_size", "max_pool2d"), pair([3, 5], "kernel_size", "max_pool2d")
        ((3, 3), (3, 5))
    """
    if _is_int(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def positive_pair(value: Any, name: str, op: str) -> tuple[int, int]:
    """:func:`pair` of ints >= 1 (kernel sizes, strides, dilations).

    Example:
        >>> positive_pair((2, 0), "stride", "conv2d")
        Traceback (most recent call last):
        ...
        ValueError: conv2d: stride must be positive, got (2, 0)
    """
    p = pair(value, name, op)
    if p[0] < 1 or p[1] < 1:
        raise ValueError(f"{op}: {name} must be positive, got {value!r}")
    return p


def nonnegative_pair(value: Any, name: str, op: str) -> tuple[int, int]:
    """:func:`pair` of ints >= 0 (paddings)."""
    p = pair(value, name, op)
    if p[0] < 0 or p[1] < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {value!r}")
    return p


def check_padding(padding: Any, op: str,
                  stride: tuple[int, int] = (1, 1)) -> tuple[int, int] | Literal["same", "valid"]:
    """A convolution's padding: ``(ph, pw)`` from an int or a pair, or ``"same"`` / ``"valid"``.

    ``"same"`` needs ``stride`` (1, 1), as in PyTorch. Layers keep the result as given;
    :func:`padding_sides` turns it into rows and columns once the kernel is known.

    Example:
        >>> check_padding(2, "Conv2d"), check_padding("same", "Conv2d")
        ((2, 2), 'same')
        >>> check_padding("same", "Conv2d", stride=(2, 2))  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        ValueError: Conv2d: padding='same' needs stride 1 (a strided convolution cannot keep the input's size;
        give the padding as a number instead), got stride (2, 2)
    """
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"{op}: padding must be an int, a pair of ints, 'same' or 'valid', "
                             f"got {padding!r}")
        if padding == "same" and tuple(stride) != (1, 1):
            raise ValueError(f"{op}: padding='same' needs stride 1 (a strided convolution cannot keep "
                             f"the input's size; give the padding as a number instead), got stride "
                             f"{tuple(stride)}")
        return "same" if padding == "same" else "valid"
    return nonnegative_pair(padding, "padding", op)


def padding_sides(padding: Any, reach: tuple[int, int], op: str,
                  stride: tuple[int, int] = (1, 1)) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zeros for a kernel that reaches ``reach`` = (eh, ew) pixels.

    The reach is dilation·(k − 1) + 1 on each axis. ``padding`` is anything
    :func:`check_padding` accepts. ``"same"`` pads reach − 1 in total on each axis, which
    keeps the size; an odd total puts the extra row and column at the bottom and right,
    as PyTorch does.

    Example:
        >>> padding_sides("same", (4, 3), "conv2d")
        (1, 2, 1, 1)
        >>> padding_sides(1, (4, 3), "conv2d")
        (1, 1, 1, 1)
    """
    spec = check_padding(padding, op, stride)
    if spec == "valid":
        return 0, 0, 0, 0
    if spec == "same":
        th, tw = reach[0] - 1, reach[1] - 1
        return th // 2, th - th // 2, tw // 2, tw - tw // 2
    ph, pw = spec
    return ph, ph, pw, pw


def conv_output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1) -> int:
    """⌊(H + pad_total − dilation·(k − 1) − 1) / stride⌋ + 1 (pad_total = both sides).

    Example:
        >>> conv_output_size(32, 5, 1, 0)       # LeNet's C1: 32×32 -> 28×28
        28
    """
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


# ---------------------------------------------------------------------------
# tensors


def to_tensor(x: Any, op: str, name: str = "input") -> Tensor:
    """``as_tensor`` with a clear error for things that are not arrays of numbers.

    An integer or bool array keeps its dtype, so that :func:`check_float` refuses it
    (as PyTorch does) instead of it being silently converted; complex, object and
    string arrays, and None, are refused here.

    Example:
        >>> to_tensor(np.zeros((2, 3), np.float32), "relu").shape
        (2, 3)
        >>> to_tensor(None, "relu")
        Traceback (most recent call last):
        ...
        TypeError: relu expects input as a Tensor or array, got None
    """
    if isinstance(x, Tensor):
        return x
    if x is None:
        raise TypeError(f"{op} expects {name} as a Tensor or array, got None")
    if isinstance(x, (np.ndarray, np.generic)):
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{op} expects {name} as an array of real numbers (float32 or float64), "
                            f"got an array of dtype {x.dtype}")
        if x.dtype.kind != "f":
            return as_tensor(x, dtype=x.dtype)
    try:
        return as_tensor(x)
    except TypeError as exc:
        raise TypeError(f"{op} expects {name} as a Tensor or array, got {type(x).__name__}") from exc


def check_float(x: Tensor, op: str, name: str = "input") -> None:
    """A TypeError unless ``x`` holds floats (integer data is refused, as PyTorch does)."""
    if x.dtype.kind != "f":
        raise TypeError(f"{op} expects a float32 or float64 {name}, got dtype {x.dtype}")


def check_ndim(x: Tensor, ndim: int, layout: str, op: str, name: str = "input") -> None:
    """A ValueError unless ``x`` has ``ndim`` axes; ``layout`` (e.g. "(N, C, H, W)") names them.

    Example:
        >>> check_ndim(to_tensor(np.zeros((28, 28)), "max_pool2d"), 4, "(N, C, H, W)", "max_pool2d")
        Traceback (most recent call last):
        ...
        ValueError: max_pool2d expects input (N, C, H, W), got shape (28, 28)
    """
    if x.ndim != ndim:
        raise ValueError(f"{op} expects {name} {layout}, got shape {tuple(x.shape)}")


def check_same_dtype(op: str, **tensors: Tensor | None) -> None:
    """A TypeError unless the tensors given by name (None ones skipped) share one dtype."""
    items = [(k, v) for k, v in tensors.items() if v is not None]
    dtypes = {v.dtype for _, v in items}
    if len(dtypes) > 1:
        listed = ", ".join(f"{k} {v.dtype}" for k, v in items)
        raise TypeError(f"{op} expects all arrays of one dtype, got {listed}")


def check_conv(op: str, x: Any, weight: Any, groups: int | None = 1, *,
               transposed: bool = False) -> tuple[Tensor, Tensor, int]:
    """A convolution's input, weight and groups, checked together: ``(x, weight, groups)``.

    x must be (N, C, H, W) and both float. The weight is (K, C/groups, kh, kw) for a
    convolution, (C, K/groups, kh, kw) for a transposed one (``transposed=True``), and
    (K, C, kh, kw) with ``groups=None`` (a convolution without groups, e.g. conv2d_fused).
    groups must divide the weight's first axis.

    Example:
        >>> x, w = np.zeros((8, 1, 28, 28), np.float32), np.zeros((6, 3, 5, 5), np.float32)
        >>> check_conv("conv2d", x, w)
        Traceback (most recent call last):
        ...
        ValueError: conv2d expects input (N, C, H, W) with C=3 (weight (6, 3, 5, 5), groups=1), got (8, 1, 28, 28)
    """
    g = 1 if groups is None else check_int(groups, "groups", op)
    x = to_tensor(x, op, "input")
    check_float(x, op, "input")
    weight = to_tensor(weight, op, "weight")
    check_float(weight, op, "weight")
    layout = ("(K, C, kh, kw)" if groups is None else
              "(C, K/groups, kh, kw)" if transposed else "(K, C/groups, kh, kw)")
    check_ndim(weight, 4, layout, op, "weight")
    first, second = weight.shape[0], weight.shape[1]
    if first % g:
        channels = "input" if transposed else "output"
        raise ValueError(f"{op}: groups={g} must divide the {first} {channels} channels of "
                         f"weight {tuple(weight.shape)}")
    C = first if transposed else second * g
    if x.ndim != 4 or x.shape[1] != C:
        settings = f"weight {tuple(weight.shape)}" + ("" if groups is None else f", groups={g}")
        raise ValueError(f"{op} expects input (N, C, H, W) with C={C} ({settings}), got {tuple(x.shape)}")
    return x, weight, g


def check_bias(op: str, bias: Any, count: int, layout: str) -> Tensor | None:
    """None, or a float tensor of shape (count,): one value per output map.

    Example:
        >>> check_bias("conv2d", np.zeros(5, np.float32), 6, "(K,)")
        Traceback (most recent call last):
        ...
        ValueError: conv2d expects bias (K,) with 6 values (one per output map), got shape (5,)
    """
    if bias is None:
        return None
    bias = to_tensor(bias, op, "bias")
    check_float(bias, op, "bias")
    if bias.shape != (count,):
        raise ValueError(f"{op} expects bias {layout} with {count} values (one per output map), "
                         f"got shape {tuple(bias.shape)}")
    return bias
