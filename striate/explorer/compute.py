"""What the explorer shows, computed by striate: each layer's output, one unit's arithmetic,
the playground's sizes, the hand-made filters, and the run's test-set confusion matrix.

Nothing here knows about HTTP: functions take arrays and return plain dicts and lists
(ready for JSON), and raise :class:`Refused` for a request that cannot be answered (a
layer that does not exist, a unit outside its map). ``app.py`` turns those into responses.

Letters as in ``functional/reference.py``: C input channels, K output channels, kh×kw
kernel, sh×sw stride, ph×pw padding, dh×dw dilation, OH×OW output size.

One input image goes through the model once, with a forward hook on every leaf module
(:func:`trace`): each layer's input and output are kept, so a unit's arithmetic is read
off the very arrays the forward pass used, and adds up to the value it returned. That pass
runs op by op: a plan of ``st.compile`` gives only the model's output. What needs only the
output (the test set's confusion matrix, ``state.py``) runs compiled, through ``Run.predict``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import filters as st_filters
from .. import functional as F
from ..tensor import Tensor, no_grad

__all__ = ["Refused", "LayerTrace", "trace", "describe_layers", "layer_json", "conv_unit", "pool_unit",
           "is_conv", "is_pool", "conv_weight", "activation_after", "playground", "filter_bank", "DIGITS"]

DIGITS = 6          # decimals kept in JSON: float32 carries about 7 significant digits


class Refused(ValueError):
    """A request that cannot be answered as asked: the message says why (a 400 for the page)."""


def rounded(values) -> list:
    """float32 values as nested lists of floats rounded to ``DIGITS`` decimals."""
    return np.round(np.asarray(values, dtype=np.float64), DIGITS).tolist()


# ---------------------------------------------------------------------------
# the layers of a model, and one forward pass through them


@dataclass
class LayerTrace:
    """One leaf module's call in a forward pass (batch of one)."""
    name: str                 # the module's name in the model ("c1", "features.0")
    module: object
    input: np.ndarray         # what it received, without the batch axis: (C, H, W) or (F,)
    output: np.ndarray        # what it returned, without the batch axis


def trace(model, x: np.ndarray) -> tuple[list[LayerTrace], np.ndarray]:
    """Run ``x`` (1, C, H, W) through ``model`` (eval mode, no graph) and keep every leaf layer's
    input and output, in the order they ran. Returns the traces and the model's output (1, K).

    The hooks are put on the model for this call only: the caller must hold the model's lock.
    """
    names = {id(m): n for n, m in model.named_modules()}
    kept: list[LayerTrace] = []

    def hook(module, inputs, output):
        if module._modules or not inputs or not hasattr(output, "data"):
            return
        first = inputs[0]
        kept.append(LayerTrace(names.get(id(module), type(module).__name__), module,
                               np.array(getattr(first, "data", first)[0], dtype=np.float32),
                               np.array(output.data[0], dtype=np.float32)))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with no_grad():
            out = model(Tensor(np.asarray(x, dtype=np.float32)))
    finally:
        for h in handles:
            h.remove()
    return kept, np.asarray(out.data)


def parameters_of(module) -> int:
    return int(sum(p.size for p in module.parameters()))


# The functions an activation between two layers may be: the first that maps one layer's
# output onto the next layer's input is named (checked on a random input, so that ReLU and
# the identity differ).
_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda a: a,
    "ReLU": lambda a: np.maximum(a, 0),
    "tanh": np.tanh,
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
    "scaled tanh": lambda a: 1.7159 * np.tanh(2 * a / 3),
}


def activation_after(traces: list[LayerTrace], i: int) -> str | None:
    """The function applied between layer i's output and the next layer's input, when the
    next layer received an array of the same shape (None when it did not, e.g. a flatten)."""
    if i + 1 >= len(traces) or traces[i + 1].input.shape != traces[i].output.shape:
        return None
    a, b = traces[i].output.astype(np.float64), traces[i + 1].input.astype(np.float64)
    for name, f in _ACTIVATIONS.items():
        with np.errstate(over="ignore"):
            if np.allclose(f(a), b, rtol=1e-4, atol=1e-5):
                return name
    return "?"


def describe_layers(model, input_shape) -> list[dict]:
    """name, type, output shape, parameter count and the activation after it, of every leaf layer.

    From one forward pass of a fixed random input (so that ReLU is told apart from nothing).
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1,) + tuple(input_shape)).astype(np.float32)
    traces, _ = trace(model, x)
    return [{"name": t.name, "type": type(t.module).__name__, "output_shape": list(t.output.shape),
             "parameters": parameters_of(t.module), "activation": activation_after(traces, i)}
            for i, t in enumerate(traces)]


def layer_json(t: LayerTrace) -> dict:
    return {"name": t.name, "type": type(t.module).__name__, "shape": list(t.output.shape),
            "values": rounded(t.output)}


# ---------------------------------------------------------------------------
# one unit's arithmetic


def conv_weight(module) -> np.ndarray | None:
    """A conv layer's kernel (K, C/groups, kh, kw); LeNet-5's partly connected C3 gives its full
    (K, C, kh, kw) kernel, zero off its connection table. None for a layer that is no convolution."""
    if hasattr(module, "dense_weight"):
        return np.asarray(module.dense_weight(), dtype=np.float32)
    weight = getattr(getattr(module, "weight", None), "data", None)
    if weight is not None and np.ndim(weight) == 4 and type(module).__name__ == "Conv2d":
        return np.asarray(weight, dtype=np.float32)
    return None


def _read_channels(module, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The input channels output map k reads, and its kernel slices for them (len(channels), kh, kw).

    All channels for an ordinary convolution; its group's C/g channels with groups; the
    channels of its connection table for a partly connected layer.
    """
    weight = conv_weight(module)
    if weight is None:
        raise ValueError(f"{type(module).__name__} is not a convolution")
    if hasattr(module, "connections"):                      # rows: input maps, columns: output maps
        channels = np.flatnonzero(np.asarray(module.connections)[:, k])
        return channels, weight[k, channels]
    groups = int(getattr(module, "groups", 1))
    K, Cg = weight.shape[:2]
    first = (k // (K // groups)) * Cg                       # the first channel of k's group
    return np.arange(first, first + Cg), weight[k]


def is_conv(module) -> bool:
    return conv_weight(module) is not None


_POOLS = {"MaxPool2d": "max", "AvgPool2d": "average", "SumPool2d": "sum", "MinPool2d": "min",
          "L2Pool2d": "L2", "LPPool2d": "Lp"}


def is_pool(module) -> bool:
    return type(module).__name__ in _POOLS


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    return int(v[0]), int(v[1])


def _pads(padding, kernel, dilation) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from a layer's padding: int, pair, "valid" or "same"."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        ph, pw = (d * (k - 1) for d, k in zip(dilation, kernel))        # "same": all the kernel's reach
        return ph // 2, ph - ph // 2, pw // 2, pw - pw // 2
    ph, pw = _pair(padding)
    return ph, ph, pw, pw


def _where(module) -> dict:
    """A conv or pooling layer's window geometry: kernel, stride, padding, dilation.

    A layer without a stride attribute steps by 1 (a convolution) or by its window (a pool)."""
    kernel = _pair(module.kernel_size)
    stride = _pair(getattr(module, "stride", None) or (kernel if is_pool(module) else 1))
    dilation = _pair(getattr(module, "dilation", 1))
    return {"kernel": kernel, "stride": stride, "dilation": dilation,
            "pads": _pads(getattr(module, "padding", 0), kernel, dilation)}


def _check_unit(t: LayerTrace, channel: int, y: int, x: int) -> None:
    C, OH, OW = t.output.shape
    for what, v, n in (("channel", channel, C), ("y", y, OH), ("x", x, OW)):
        if not 0 <= v < n:
            raise Refused(f"layer {t.name} has output (C, H, W) = {(C, OH, OW)}: {what} must be in "
                          f"0..{n - 1}, got {v}")


def _window(plane: np.ndarray, y: int, x: int, where: dict, fill: float):
    """The window of output (y, x) on one input plane (H, W): its values (kh, kw) with ``fill`` on
    the padding, whether each tap is padding, and each tap's row and column in the input."""
    (kh, kw), (sh, sw), (dh, dw) = where["kernel"], where["stride"], where["dilation"]
    top, _, left, _ = where["pads"]
    rows = y * sh - top + dh * np.arange(kh)                  # input rows of the taps (may be < 0: padding)
    cols = x * sw - left + dw * np.arange(kw)
    H, W = plane.shape
    inside = ((rows >= 0) & (rows < H))[:, None] & ((cols >= 0) & (cols < W))[None, :]
    values = np.full((kh, kw), fill, dtype=np.float32)
    r, c = np.nonzero(inside)
    values[r, c] = plane[rows[r], cols[c]]
    return values, ~inside, rows, cols


def conv_unit(traces: list[LayerTrace], i: int, channel: int, y: int, x: int) -> dict:
    """Output (channel, y, x) of conv layer i, as the sum it is:

        value = bias[k] + Σ_{c, i, j} window[c, i, j] · kernel[k, c, i, j]

    over the input channels c that map k reads (``channels``: all of them, its group's, or
    those of a connection table), with the window read from the input the layer received
    (zeros on the padding), then the
    activation the next layer saw. ``sum`` is computed in float64 from the float32 products
    shown; ``value`` is what the forward pass returned (they agree to float32 round-off).
    """
    t = traces[i]
    _check_unit(t, channel, y, x)
    channels, weight = _read_channels(t.module, channel)                    # the C' channels it reads
    where = _where(t.module)
    read = [_window(plane, y, x, where, 0.0) for plane in t.input[channels]]   # per channel read (H, W)
    window = np.stack([values for values, *_ in read])                      # (C', kh, kw)
    _, padded, rows, cols = read[-1]                                        # the same positions for each
    products = window * weight                                              # float32, as the op multiplies
    total = float(products.astype(np.float64).sum())
    bias_param = getattr(t.module, "bias", None)
    bias = float(np.asarray(bias_param.data)[channel]) if bias_param is not None else 0.0
    value = float(t.output[channel, y, x])
    activation = activation_after(traces, i)
    after = float(traces[i + 1].input[channel, y, x]) if activation not in (None, "?") else None
    return {
        "layer": t.name, "type": type(t.module).__name__, "kind": "conv", "channel": channel, "y": y, "x": x,
        "kernel_size": list(where["kernel"]), "stride": list(where["stride"]),
        "padding": list(where["pads"]), "dilation": list(where["dilation"]),
        "input_shape": list(t.input.shape), "channels": channels.tolist(), "input": rounded(t.input[channels]),
        "rows": rows.tolist(), "cols": cols.tolist(), "padded": padded.tolist(),
        "window": rounded(window), "kernel": rounded(weight), "products": rounded(products),
        "channel_sums": rounded(products.astype(np.float64).sum(axis=(1, 2))),
        "sum": round(total, DIGITS), "bias": round(bias, DIGITS),
        "value": round(value, DIGITS), "activation": activation,
        "after_activation": None if after is None else round(after, DIGITS),
    }


def pool_unit(traces: list[LayerTrace], i: int, channel: int, y: int, x: int) -> dict:
    """Output (channel, y, x) of pooling layer i, and what the five poolings give on its window.

    Each result is striate's own pooling op run over the layer's input channel with the layer's
    window, stride and padding, read at (y, x); one of them is the value the layer returned.
    Average, sum and L2 pooling take no dilation: with a dilated window they are left out (None).
    """
    t = traces[i]
    _check_unit(t, channel, y, x)
    where = _where(t.module)
    plane = t.input[channel]                                               # (H, W)
    values, padded, rows, cols = _window(plane, y, x, where, 0.0)
    (kh, kw), (sh, sw), (dh, dw) = where["kernel"], where["stride"], where["dilation"]
    top, bottom, left, right = where["pads"]
    ph, pw = top, left
    xin = plane[None, None]                                                # (1, 1, H, W)
    dilated = (dh, dw) != (1, 1)
    ops = {
        "max": lambda: F.max_pool2d(xin, (kh, kw), (sh, sw), (ph, pw), (dh, dw)),
        "average": None if dilated else lambda: F.avg_pool2d(xin, (kh, kw), (sh, sw), (ph, pw)),
        "sum": None if dilated else lambda: F.sum_pool2d(xin, (kh, kw), (sh, sw), (ph, pw)),
        "min": lambda: F.min_pool2d(xin, (kh, kw), (sh, sw), (ph, pw), (dh, dw)),
        "L2": None if dilated else lambda: F.l2_pool2d(xin, (kh, kw), (sh, sw), (ph, pw)),
    }
    results: dict[str, Any] = {}
    with no_grad():
        for name, op in ops.items():
            if op is None:
                results[name] = None
                continue
            out = op().data[0, 0]
            results[name] = round(float(out[y, x]), DIGITS) if y < out.shape[0] and x < out.shape[1] else None
    activation = activation_after(traces, i)
    after = float(traces[i + 1].input[channel, y, x]) if activation not in (None, "?") else None
    return {
        "layer": t.name, "type": type(t.module).__name__, "kind": "pool", "channel": channel, "y": y, "x": x,
        "pool": _POOLS[type(t.module).__name__],
        "kernel_size": [kh, kw], "stride": [sh, sw], "padding": [top, bottom, left, right],
        "dilation": [dh, dw], "input_shape": list(t.input.shape), "input": rounded(plane),
        "rows": rows.tolist(), "cols": cols.tolist(),
        "padded": padded.tolist(), "window": rounded(values), "results": results,
        "value": round(float(t.output[channel, y, x]), DIGITS), "activation": activation,
        "after_activation": None if after is None else round(after, DIGITS),
    }


# ---------------------------------------------------------------------------
# the hyper-parameter playground

PLAYGROUND_LIMITS = {"size": (1, 32), "kernel": (1, 11), "stride": (1, 8), "padding": (0, 8), "dilation": (1, 5)}


def playground(size: int, kernel: int, stride: int, padding: int, dilation: int) -> dict:
    """A size×size example input convolved and pooled with the given window, by striate's ops.

        OH = ⌊(H + 2·p − d·(k − 1) − 1) / s⌋ + 1

    Returns the output size with the formula's numbers, the example input and kernel, the
    convolution's output and each pooling's (None where striate's op refuses the setting,
    with its message). Square inputs and windows: one number per hyper-parameter.
    """
    args = {"size": size, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation}
    for name, v in args.items():
        lo, hi = PLAYGROUND_LIMITS[name]
        if not lo <= v <= hi:
            raise Refused(f"{name} must be in {lo}..{hi}, got {v}")
    reach = dilation * (kernel - 1) + 1                   # the window's extent on the input
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1
    formula = (f"⌊({size} + 2·{padding} − {dilation}·({kernel} − 1) − 1) / {stride}⌋ + 1 "
               f"= ⌊{numerator} / {stride}⌋ + 1")
    rng = np.random.default_rng(size * 7 + 3)
    x = rng.integers(0, 10, (1, 1, size, size)).astype(np.float32)         # small integers: easy sums
    k = np.array([[(-1) ** (i + j) * (1 + (i + j) % 2) for j in range(kernel)] for i in range(kernel)],
                 dtype=np.float32)[None, None]                              # a fixed ±1/±2 pattern
    result = {"size": size, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation,
              "reach": reach, "numerator": numerator, "formula": formula,
              "input": x[0, 0].tolist(), "weights": k[0, 0].tolist()}
    with no_grad():
        try:
            conv = F.conv2d(x, k, stride=stride, padding=padding, dilation=dilation).data[0, 0]
        except ValueError as exc:
            result.update(output=None, error=str(exc), conv=None, pools={})
            return result
        result.update(output=list(conv.shape), error=None, conv=conv.tolist())
        pools: dict[str, Any] = {}
        notes: dict[str, str] = {}
        ops = {"max": lambda: F.max_pool2d(x, kernel, stride, padding, dilation),
               "average": lambda: F.avg_pool2d(x, kernel, stride, padding),
               "sum": lambda: F.sum_pool2d(x, kernel, stride, padding),
               "min": lambda: F.min_pool2d(x, kernel, stride, padding, dilation),
               "L2": lambda: F.l2_pool2d(x, kernel, stride, padding)}
        for name, op in ops.items():
            if dilation > 1 and name in ("average", "sum", "L2"):
                pools[name], notes[name] = None, f"striate's {name} pooling takes no dilation"
                continue
            try:
                pools[name] = rounded(op().data[0, 0])
            except ValueError as exc:
                pools[name], notes[name] = None, str(exc)
        result.update(pools=pools, pool_notes=notes)
    return result


# ---------------------------------------------------------------------------
# hand-made filters

FILTER_SIDE = 256          # pictures are shrunk to at most this side before filtering


def filter_bank(gray: np.ndarray) -> list[dict]:
    """Every filter of ``striate.filters`` on a grayscale picture (H, W) in [0, 1].

    Returns per filter: name, description, kernel (None for the two gradient magnitudes,
    which combine two kernels), and the output (H, W) as float32 for the caller to encode.
    """
    out = []
    for name in st_filters.names():
        kernel = None if name in st_filters.MAGNITUDES else st_filters.get_kernel(name)
        result = st_filters.apply(gray, name, padding="same", border="replicate")
        out.append({"name": name, "description": st_filters.describe(name),
                    "short": st_filters.SHORT_DESCRIPTIONS.get(name, ""),
                    "kernel": None if kernel is None else rounded(kernel),
                    "combines": list(st_filters.MAGNITUDES.get(name, ())), "output": result})
    return out


def shrink(gray: np.ndarray, side: int = FILTER_SIDE) -> np.ndarray:
    """(H, W) in [0, 1] → at most side×side, aspect kept (antialiased)."""
    from PIL import Image
    H, W = gray.shape
    scale = side / max(H, W)
    if scale >= 1:
        return gray.astype(np.float32)
    size = (max(1, round(W * scale)), max(1, round(H * scale)))
    img = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(img, dtype=np.float32), 0, 1)


def to_png(image: np.ndarray, mode: str = "clip") -> bytes:
    """A float map (H, W) as an 8-bit grayscale PNG, for the eye.

    mode "clip": values in [0, 1] as they are (a blur, a sharpened picture); "signed": 0 at
    mid-grey, the scale ending at the 99.5th percentile of |value| (an edge map, whose kernel
    sums to 0: a few extreme pixels would otherwise leave every other edge grey); "stretch":
    the smallest value black, the largest white (an edge strength).
    """
    import io

    from PIL import Image
    a = np.asarray(image, dtype=np.float64)
    if mode == "signed":
        span = float(np.percentile(np.abs(a), 99.5)) or float(np.abs(a).max()) or 1.0
        a = 0.5 + 0.5 * a / span
    elif mode == "stretch":
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / ((hi - lo) or 1.0)
    buf = io.BytesIO()
    Image.fromarray(np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def display_mode(kernel) -> str:
    """How to show a filter's output: "signed" when its kernel sums to 0 (edges, lines), "clip"
    when it sums to 1 and keeps the picture's brightness (blur, sharpen, relief), "stretch"
    otherwise (the gradient magnitudes, which have no kernel; the 0/1 oblique line)."""
    total = None if kernel is None else float(np.sum(kernel))
    if total is not None and abs(total) < 1e-6:
        return "signed"
    return "clip" if total is not None and abs(total - 1) < 1e-4 else "stretch"


def confusion(predicted: np.ndarray, labels: np.ndarray, classes: int, examples: int) -> dict:
    """The confusion matrix (true class × predicted class) and up to ``examples`` test indices per cell."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    cells: list[list[list[int]]] = [[[] for _ in range(classes)] for _ in range(classes)]
    for index in range(len(labels)):
        cell = cells[labels[index]][predicted[index]]
        if len(cell) < examples:
            cell.append(index)
    accuracy = float(np.trace(matrix) / max(1, matrix.sum()))
    return {"matrix": matrix.tolist(), "examples": cells, "accuracy": accuracy, "count": int(len(labels))}


def softmax(logits: np.ndarray) -> np.ndarray:
    with no_grad():
        return F.softmax(Tensor(np.asarray(logits, dtype=np.float32)), dim=1).data


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """OH = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1 (for tests and the docs)."""
    return math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1
