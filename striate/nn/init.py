"""Weight initialisation: fill a parameter in place with numbers drawn from ``rng``.

Every function takes the tensor (a ``Parameter``, a ``Tensor`` or an ndarray),
overwrites its data in place without recording a graph, keeps its dtype, and
returns it. Random ones take ``rng``: a ``numpy.random.Generator``, an int seed,
or None for striate's default generator (``st.manual_seed`` resets it).

The scaled schemes use the fans of a weight::

    Linear weight (out, in):           fan_in = in,              fan_out = out
    Conv2d weight (K, C/groups, kh, kw): fan_in = C/groups·kh·kw, fan_out = K·kh·kw

    kaiming_uniform_:  U(−b, b),  b = gain · √(3 / fan)        (He et al., 2015)
    kaiming_normal_:   N(0, σ²),  σ = gain / √fan
    xavier_uniform_:   U(−b, b),  b = gain · √(6 / (fan_in + fan_out))   (Glorot & Bengio, 2010)
    xavier_normal_:    N(0, σ²),  σ = gain · √(2 / (fan_in + fan_out))

PyTorch's default for Conv2d and Linear is ``kaiming_uniform_(w, a=√5)``, which
works out to U(−1/√fan_in, 1/√fan_in); the bias uses the same bound.
"""
from __future__ import annotations

import math

import numpy as np

from ..random import get_rng
from ..tensor import Tensor

__all__ = ["calculate_fan_in_and_fan_out", "calculate_gain", "uniform_", "normal_", "zeros_",
           "ones_", "constant_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
           "xavier_normal_"]


def _array(tensor: Tensor | np.ndarray, fn: str) -> np.ndarray:
    """The array to fill in place (a Tensor's data, or the ndarray itself)."""
    data = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(data, np.ndarray) or data.dtype.kind != "f":
        raise TypeError(f"init.{fn} expects a float Tensor, Parameter or ndarray, "
                        f"got {type(tensor).__name__}"
                        + (f" of dtype {data.dtype}" if hasattr(data, "dtype") else ""))
    return data


def _fill(tensor: Tensor | np.ndarray, values: np.ndarray) -> Tensor | np.ndarray:
    data = tensor.data if isinstance(tensor, Tensor) else tensor
    data[...] = values.astype(data.dtype, copy=False)
    return tensor


def calculate_fan_in_and_fan_out(tensor: Tensor | np.ndarray) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape (out, in) or (out, in, kh, kw, ...).

    Accepts a tensor, an array or a shape tuple. For a convolution weight, each
    fan is multiplied by the receptive field kh·kw.
    """
    if isinstance(tensor, (tuple, list)):
        shape = tuple(int(s) for s in tensor)
    else:
        shape = tuple((tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)).shape)
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions "
                         f"(out, in, ...), got shape {shape}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


_LINEAR_LIKE = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid"}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain that keeps activations' variance steady through a nonlinearity (PyTorch's table).

    linear/conv/sigmoid: 1; tanh: 5/3; relu: √2; leaky_relu: √(2 / (1 + slope²)) with
    slope ``param`` (default 0.01); selu: 3/4.
    """
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative slope must be a number, got {slope!r}")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected one of "
                     f"{sorted(_LINEAR_LIKE | {'tanh', 'relu', 'leaky_relu', 'selu'})}")


def _fan(tensor: Tensor | np.ndarray, mode: str, fn: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init.{fn}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(_array(tensor, fn))
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"init.{fn}: cannot initialise a weight with zero elements "
                         f"(shape {tuple(_array(tensor, fn).shape)})")
    return fan


def uniform_(tensor: Tensor | np.ndarray, a: float = 0.0, b: float = 1.0,
             rng: np.random.Generator | int | None = None) -> Tensor | np.ndarray:
    """Fill with U(a, b)."""
    if not a <= b:
        raise ValueError(f"init.uniform_ expects a <= b, got a={a}, b={b}")
    data = _array(tensor, "uniform_")
    return _fill(tensor, get_rng(rng).uniform(a, b, size=data.shape))


def normal_(tensor: Tensor | np.ndarray, mean: float = 0.0, std: float = 1.0,
            rng: np.random.Generator | int | None = None) -> Tensor | np.ndarray:
    """Fill with N(mean, std²)."""
    if std < 0:
        raise ValueError(f"init.normal_ expects std >= 0, got {std}")
    data = _array(tensor, "normal_")
    return _fill(tensor, get_rng(rng).normal(mean, std, size=data.shape))


def constant_(tensor: Tensor | np.ndarray, value: float) -> Tensor | np.ndarray:
    """Fill with ``value``."""
    _array(tensor, "constant_")[...] = value
    return tensor


def zeros_(tensor: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def kaiming_uniform_(tensor: Tensor | np.ndarray, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     rng: np.random.Generator | int | None = None) -> Tensor | np.ndarray:
    """He uniform: U(−b, b) with b = gain·√(3 / fan); ``a`` is the leaky ReLU slope for the gain."""
    fan = _fan(tensor, mode, "kaiming_uniform_")
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, rng=rng)


def kaiming_normal_(tensor: Tensor | np.ndarray, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    rng: np.random.Generator | int | None = None) -> Tensor | np.ndarray:
    """He normal: N(0, σ²) with σ = gain / √fan."""
    fan = _fan(tensor, mode, "kaiming_normal_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, rng=rng)


def xavier_uniform_(tensor: Tensor | np.ndarray, gain: float = 1.0,
                    rng: np.random.Generator | int | None = None) -> Tensor | np.ndarray:
    """Glorot uniform: U(−b, b) with b = gain·√(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(_array(tensor, "xavier_uniform_"))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng=rng)


def xavier_normal_(tensor: Tensor | np.ndarray, gain: float = 1.0,
                   rng: np.random.Generator | int | None = None) -> Tensor | np.ndarray:
    """Glorot normal: N(0, σ²) with σ = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(_array(tensor, "xavier_normal_"))
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, rng=rng)
