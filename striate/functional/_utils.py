"""Argument normalisation and input checks shared by the ops (and the layers).

Written once here so that every op and layer accepts the same forms
(``3`` or ``(3, 5)``; padding ``1``, ``(1, 2)``, ``"same"``, ``"valid"``) and
fails with the same kind of message: the op, what it expected, what it got.
"""
from __future__ import annotations

from typing import Literal, Union

import numpy as np

from ..tensor import Tensor, as_tensor

IntPair = Union[int, tuple[int, int]]
Padding = Union[IntPair, Literal["same", "valid"]]

__all__ = ["IntPair", "Padding", "pair", "positive_pair", "nonnegative_pair",
           "conv_output_size", "check_float", "check_ndim", "check_same_dtype", "to_tensor"]


def to_tensor(x, op: str, name: str = "input") -> Tensor:
    """``as_tensor`` with a clear error for things that are not arrays of numbers.

    An integer or bool array keeps its dtype, so that ``check_float`` refuses it
    (as PyTorch does) instead of it being silently converted; complex, object and
    string arrays, and None, are refused here.
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


def pair(value, name: str, op: str) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(3, 5)`` -> ``(3, 5)``; anything else is a TypeError."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def positive_pair(value, name: str, op: str) -> tuple[int, int]:
    p = pair(value, name, op)
    if p[0] < 1 or p[1] < 1:
        raise ValueError(f"{op}: {name} must be positive, got {value!r}")
    return p


def nonnegative_pair(value, name: str, op: str) -> tuple[int, int]:
    p = pair(value, name, op)
    if p[0] < 0 or p[1] < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {value!r}")
    return p


def conv_output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1) -> int:
    """⌊(H + pad_total − dilation·(k − 1) − 1) / stride⌋ + 1 (pad_total = both sides)."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def check_float(x: Tensor, op: str, name: str = "input") -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{op} expects a float32 or float64 {name}, got dtype {x.dtype}")


def check_ndim(x: Tensor, ndim: int, layout: str, op: str, name: str = "input") -> None:
    if x.ndim != ndim:
        raise ValueError(f"{op} expects {name} {layout}, got shape {tuple(x.shape)}")


def check_same_dtype(op: str, **tensors) -> None:
    items = [(k, v) for k, v in tensors.items() if v is not None]
    dtypes = {v.dtype for _, v in items}
    if len(dtypes) > 1:
        listed = ", ".join(f"{k} {v.dtype}" for k, v in items)
        raise TypeError(f"{op} expects all arrays of one dtype, got {listed}")
