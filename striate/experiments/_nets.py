"""The small CNN the experiments vary one choice at a time.

    c1    conv 5×5                    (N, C1, 24, 24)
    ...   [bn1] act1 [bn1] pool1      (N, C1, 12, 12)   the order of these is what varies
    c2    conv 5×5                    (N, C2, 8, 8)
    ...   [bn2] act2 [bn2] pool2      (N, C2, 4, 4)
    fc1   linear C2·4·4 → hidden, act, [dropout]      (one such layer per hidden width: fc1, fc2, ...)
    fcL   linear last hidden → 10                    (L = number of hidden widths + 1)

Everything but the varied choice stays fixed, and the initial weights come from the
same seed, so two variants whose layers have the same shapes start from the same point.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn

__all__ = ["POOLS", "ACTIVATIONS", "small_cnn"]

#: pooling name -> layer maker (2×2 windows, stride 2)
POOLS = {
    "max": lambda: nn.MaxPool2d(2),
    "average": lambda: nn.AvgPool2d(2),
    "sum": lambda: nn.SumPool2d(2),
    "min": lambda: nn.MinPool2d(2),
    "l2": lambda: nn.L2Pool2d(2),
}

#: activation name -> layer maker
ACTIVATIONS = {
    "relu": nn.ReLU,
    "scaled_tanh": nn.ScaledTanh,      # LeCun's 1.7159·tanh(2x/3)
}

_ORDERS = ("act-pool", "pool-act")
_NORMS = ("none", "after", "before")


def small_cnn(rng, in_channels: int = 1, widths: tuple[int, int] = (8, 16), hidden: int | tuple[int, ...] = 64,
              pool: str = "max", activation: str = "relu", order: str = "act-pool", norm: str = "none",
              dropout: float = 0.0, first=None, num_classes: int = 10, size: int = 28) -> nn.Sequential:
    """Build the small CNN.

    Args:
        rng: generator for the initial weights.
        in_channels: input channels.
        widths: (C1, C2), the maps of the two convolutions.
        hidden: units of the hidden dense layer, or a tuple of widths for several.
        pool: a key of POOLS.
        activation: a key of ACTIVATIONS.
        order: "act-pool" (activation after the convolution, before pooling: the chapter's
            placement) or "pool-act" (pooling first, the activation on the pooled maps).
        norm: "none"; "after": batch norm after the activation (conv → act → bn → pool, the
            chapter's placement); "before": conv → bn → act → pool (the original paper's).
        dropout: drop probability after each hidden dense layer's activation (0: none).
        first: a module to use as c1 instead of the plain convolution (it must give C1 maps
            (size − 4)×(size − 4) maps; its ``out_channels`` says how many); used for channel fusion.
        num_classes: outputs.
        size: input height and width (28: (size − 4) / 2 − 4 must be even).

    Shape: (N, in_channels, size, size) → (N, num_classes).
    """
    if pool not in POOLS:
        raise ValueError(f"small_cnn: pool must be one of {sorted(POOLS)}, got {pool!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"small_cnn: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if order not in _ORDERS or norm not in _NORMS:
        raise ValueError(f"small_cnn: order must be one of {_ORDERS} and norm one of {_NORMS}, "
                         f"got {order!r} and {norm!r}")
    c1, c2 = widths
    layers = OrderedDict()
    first_maps = c1 if first is None else first.out_channels
    layers["c1"] = nn.Conv2d(in_channels, c1, 5, rng=rng) if first is None else first
    _stage(layers, 1, first_maps, pool, activation, order, norm)
    layers["c2"] = nn.Conv2d(first_maps, c2, 5, rng=rng)
    _stage(layers, 2, c2, pool, activation, order, norm)
    layers["flatten"] = nn.Flatten()
    side = ((size - 4) // 2 - 4) // 2                      # 28 → 24 → 12 → 8 → 4
    widths_in = [c2 * side * side] + list(hidden if isinstance(hidden, (tuple, list)) else (hidden,))
    for i, (n_in, n_out) in enumerate(zip(widths_in[:-1], widths_in[1:]), start=1):
        layers[f"fc{i}"] = nn.Linear(n_in, n_out, rng=rng)
        layers[f"act{i + 2}"] = ACTIVATIONS[activation]()
        if dropout > 0:
            layers[f"drop{i}"] = nn.Dropout(dropout)
    layers[f"fc{len(widths_in)}"] = nn.Linear(widths_in[-1], num_classes, rng=rng)
    return nn.Sequential(layers)


def _stage(layers: OrderedDict, i: int, channels: int, pool: str, activation: str, order: str, norm: str):
    """Append activation, pooling and batch norm after convolution ``c{i}`` in the asked order."""
    act, pooling = ACTIVATIONS[activation](), POOLS[pool]()
    if norm == "before":
        layers[f"bn{i}"] = nn.BatchNorm2d(channels)
    if order == "act-pool":
        layers[f"act{i}"] = act
        if norm == "after":
            layers[f"bn{i}"] = nn.BatchNorm2d(channels)
        layers[f"pool{i}"] = pooling
    else:
        layers[f"pool{i}"] = pooling
        layers[f"act{i}"] = act
        if norm == "after":
            layers[f"bn{i}"] = nn.BatchNorm2d(channels)
