"""A multilayer perceptron: the fully connected baseline a CNN is compared with.

``mlp()`` is 784 → 300 → 100 → 10 with ReLU, the widths of the three-layer
network in LeCun et al. (1998)'s comparison on MNIST: 266,610 parameters,
over four times LeNet-5's 60,000, and no built-in notion that neighbouring
pixels belong together.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from .. import nn
from . import register

__all__ = ["mlp", "MLP", "ACTIVATIONS"]

#: activation name -> layer class, for the hidden layers
ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "scaled_tanh": nn.ScaledTanh,   # LeCun's 1.7159·tanh(2x/3)
}


class MLP(nn.Sequential):
    """Flatten, then ``Linear`` layers with an activation between them (none after the last).

    Layers are named ``flatten, fc1, act1, fc2, act2, …, fcL``.

    Args:
        sizes: the widths, input first, e.g. (784, 300, 100, 10).
        rng: generator for the layers' initialisation.
        activation: a key of ``ACTIVATIONS``: "relu", "tanh", "sigmoid",
            "leaky_relu" or "scaled_tanh".

    Shape:
        x:   (N, C, H, W) or (N, sizes[0]); C·H·W must equal sizes[0]. ``input_shape`` is
             (1, s, s) when sizes[0] = s², (3, s, s) when it is 3·s² (colour), else (sizes[0],)
        out: (N, sizes[-1])
    """

    def __init__(self, sizes: Sequence[int] = (784, 300, 100, 10), rng=None, activation: str = "relu"):
        sizes = _check_sizes(sizes)
        if activation not in ACTIVATIONS:
            raise ValueError(f"mlp: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        depth = len(sizes) - 1
        for i in range(1, depth + 1):
            layers[f"fc{i}"] = nn.Linear(sizes[i - 1], sizes[i], rng=rng)
            if i < depth:
                layers[f"act{i}"] = ACTIVATIONS[activation]()
        super().__init__(layers)
        self.sizes = sizes
        # an input width that is a square is taken for a one-channel image (784 -> 1×28×28), three times a
        # square for a colour image (2352 -> 3×28×28; 3·k² is never a square itself), else a flat vector
        self.input_shape = _image_shape(sizes[0])


def _image_shape(width: int) -> tuple[int, ...]:
    for channels in (1, 3):
        side = int(round((width / channels) ** 0.5))
        if channels * side * side == width:
            return (channels, side, side)
    return (width,)


def _check_sizes(sizes) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise ValueError(f"mlp: sizes must be a sequence of at least two widths "
                         f"(input, ..., output), got {sizes!r}")
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in sizes):
        raise ValueError(f"mlp: every width in sizes must be a positive int, got {tuple(sizes)}")
    return tuple(int(n) for n in sizes)


@register("mlp")
def mlp(sizes: Sequence[int] = (784, 300, 100, 10), rng=None, activation: str = "relu") -> MLP:
    """A fully connected network over the flattened input (266,610 parameters by default)."""
    return MLP(sizes, rng=rng, activation=activation)
