"""Inside a trained model: its first-layer kernels and the feature maps of one image, as PNG.

>>> from striate.viz.kernels import first_conv_weight, plot_kernels, feature_maps, plot_feature_maps
>>> name, weight = first_conv_weight(model)                     # doctest: +SKIP
>>> plot_kernels(weight, "kernels.png", title=name)              # doctest: +SKIP
>>> maps, probs = feature_maps(model, x)                         # doctest: +SKIP
>>> plot_feature_maps(x[0], maps, "maps.png", probs, classes)    # doctest: +SKIP

Kernels share one colour scale, blue below 0 and red above, so their signs and
sizes can be compared at a glance; colour kernels (three input channels) are
also drawn as small RGB pictures, the way AlexNet's paper shows its first layer.
Feature maps share one scale per layer, with a colour bar for each.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .images import DPI, colorbar, draw_matrix, save_png
from .mpl import plt

__all__ = ["LayerMaps", "first_conv_weight", "conv_layers", "feature_maps", "plot_kernels", "kernels_size",
           "plot_feature_maps", "feature_maps_size"]


# ---------------------------------------------------------------------------
# finding the layers


def _dense_weight(module) -> np.ndarray | None:
    """The (K, C, kh, kw) kernel of a conv-like module, or None if it has none."""
    if hasattr(module, "dense_weight"):             # a partly connected conv (LeNet-5's C3): zeros off its table
        return np.asarray(module.dense_weight(), dtype=np.float32)
    weight = getattr(module, "weight", None)
    data = getattr(weight, "data", None)
    if data is not None and np.ndim(data) == 4:
        return np.asarray(data, dtype=np.float32)
    return None


def conv_layers(model) -> list[tuple[str, object]]:
    """The (name, module) of every module with a 4-D kernel, in definition order."""
    return [(name, m) for name, m in model.named_modules() if name and _dense_weight(m) is not None]


def first_conv_weight(model) -> tuple[str, np.ndarray]:
    """The name and the (K, C, kh, kw) weight of the model's first convolution."""
    layers = conv_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no convolution layer (no module with a 4-D weight)")
    name, module = layers[0]
    weight = _dense_weight(module)
    assert weight is not None                       # conv_layers keeps only modules that have one
    return name, weight


@dataclass
class LayerMaps:
    """The output of one conv or pooling layer for one image."""
    name: str                 # the module's name in the model ("c1", "features.0", ...)
    type: str                 # its class ("Conv2d", "MaxPool2d", ...)
    maps: np.ndarray          # (C, H, W)


def feature_maps(model, x: np.ndarray) -> tuple[list[LayerMaps], np.ndarray]:
    """Run ``x`` (1, C, H, W) through ``model`` and keep what each conv and pooling layer outputs.

    A layer is kept when it has a 4-D kernel (a convolution) or changes the height
    and width of a 4-D input (pooling, subsampling). Runs in evaluation mode
    without recording a graph. Returns the layers' maps and the model's output (1, classes).
    """
    from ..tensor import Tensor, no_grad

    names = {id(m): n for n, m in model.named_modules()}
    kept: list[LayerMaps] = []

    def hook(module, inputs, output):
        if module._modules or not hasattr(output, "data") or np.ndim(output.data) != 4:
            return
        in_shape = getattr(inputs[0], "shape", None) if inputs else None
        resized = in_shape is not None and len(in_shape) == 4 and tuple(in_shape[2:]) != tuple(output.shape[2:])
        if _dense_weight(module) is not None or resized:
            kept.append(LayerMaps(names.get(id(module), type(module).__name__), type(module).__name__,
                                  np.array(output.data[0], dtype=np.float32)))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            out = model(Tensor(np.asarray(x, dtype=np.float32)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return kept, np.asarray(out.data)


# ---------------------------------------------------------------------------
# kernels


_KERNEL_IN = 0.62          # inches per kernel picture
_KERNEL_GAP = 0.12
_MARGIN = 0.3
_TITLE_H = 0.55
_LABEL_W = 0.55            # row labels ("kernel 3") on the left
_BAR_H = 0.55


@dataclass
class _KernelGrid:
    """How the kernels of a (K, C, kh, kw) weight are laid out."""
    mode: str                 # "single" (C = 1), "rgb" (C = 3: pictures and slices), "rgb-only", "channels"
    per_kernel: int           # cells per kernel
    per_row: int              # kernels per row
    rows: int
    numbers: bool             # values written in
    cell: float               # inches per cell


def _kernel_grid(weight: np.ndarray) -> _KernelGrid:
    K, C, kh, kw = weight.shape
    numbers = K * C <= 16 and kh * kw <= 25
    if C == 1:
        mode, per_kernel, per_row = "single", 1, min(K, 6 if numbers else 8)
    elif C == 3 and K <= 8:                    # each kernel as a colour picture, then its R, G, B slices
        mode, per_kernel, per_row = "rgb", 4, min(K, 2)
    elif C == 3:                               # many colour kernels: the pictures alone (as AlexNet's paper)
        mode, per_kernel, per_row, numbers = "rgb-only", 1, min(K, 16), False
    else:                                      # one row per kernel, one cell per input channel
        mode, per_kernel, per_row = "channels", C, 1
    cell = max(_KERNEL_IN, 0.3 * kw) if numbers else _KERNEL_IN
    return _KernelGrid(mode, per_kernel, per_row, math.ceil(K / per_row), numbers, cell)


def kernels_size(weight: np.ndarray, dpi: int = DPI) -> tuple[int, int]:
    """The (width, height) in pixels of the PNG :func:`plot_kernels` writes for ``weight``."""
    w, h = _kernels_inches(weight)
    return round(w * dpi), round(h * dpi)


def _kernels_inches(weight: np.ndarray) -> tuple[float, float]:
    g = _kernel_grid(weight)
    kernel_gap = 0.25 if g.per_kernel > 1 else 0.0          # extra room between kernels of several cells
    grid_w = g.per_row * (g.per_kernel * (g.cell + _KERNEL_GAP) + kernel_gap)
    width = max(2 * _MARGIN + _LABEL_W + grid_w, 4.5)
    height = 2 * _MARGIN + _TITLE_H + g.rows * (g.cell + 0.28) + _BAR_H
    return width, height


def plot_kernels(weight: np.ndarray, path, title: str = "", dpi: int = DPI) -> tuple[int, int]:
    """Draw every kernel of a (K, C, kh, kw) weight on one shared blue–white–red scale.

    One input channel: a grid of K kernels. Three (colour) channels: each kernel as
    an RGB picture (scaled on its own, grey = 0) followed by its R, G and B slices;
    with more than 8 kernels, the pictures alone. Other channel counts: one row per
    kernel, one cell per input channel. Small kernels have their values written
    in. Returns the PNG's (width, height) in pixels.
    """
    weight = np.asarray(weight, dtype=np.float32)
    if weight.ndim != 4:
        raise ValueError(f"plot_kernels expects a weight (K, C, kh, kw), got shape {weight.shape}")
    K, C, kh, kw = weight.shape
    g = _kernel_grid(weight)
    cell = g.cell
    W, H = _kernels_inches(weight)
    fig = plt.figure(figsize=(W, H))
    top = float(np.abs(weight).max()) or 1.0
    kernel_gap = 0.25 if g.per_kernel > 1 else 0.0

    def place(x, y):                           # top-left corner in inches → axes of one kernel cell
        return fig.add_axes([x / W, (y - cell) / H, cell / W, cell / H])

    y0 = H - _MARGIN - _TITLE_H
    x_start = _MARGIN + _LABEL_W
    for k in range(K):
        r, c = divmod(k, g.per_row)
        y = y0 - r * (cell + 0.28)
        if g.mode == "single":
            slices = [(weight[k, 0], f"{k}")]
        elif g.mode == "rgb":
            slices = [(None, f"kernel {k}")] + [(weight[k, i], n) for i, n in enumerate("RGB")]
        elif g.mode == "rgb-only":
            slices = [(None, f"{k}")]
        else:
            slices = [(weight[k, i], f"in {i}") for i in range(C)]
            fig.text((x_start - 0.08) / W, (y - cell / 2) / H, f"kernel {k}", ha="right", va="center",
                     fontsize=7.5)
        for s, (values, label) in enumerate(slices):
            x = x_start + c * (g.per_kernel * (cell + _KERNEL_GAP) + kernel_gap) + s * (cell + _KERNEL_GAP)
            ax = place(x, y)
            if values is None:                 # the colour kernel as a picture, each kernel scaled on its own
                rgb_image = weight[k].transpose(1, 2, 0)
                span = float(np.abs(rgb_image).max()) or 1.0
                ax.imshow(0.5 + 0.5 * rgb_image / span, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                draw_matrix(ax, values, cmap="RdBu_r", vmin=-top, vmax=top, numbers=g.numbers,
                            decimals=2, fontsize=min(7.0, cell * 72 / (kw * 3.2)))
            ax.set_title(label, fontsize=7, pad=2)
    bar_w = min(3.0, W - 2 * _MARGIN)
    bar_y = y0 - g.rows * (cell + 0.28) - 0.05 - 0.1           # just under the last row of kernels
    if g.mode == "rgb-only":                   # no values drawn on a shared scale: no colour bar
        fig.text(0.5, bar_y / H, "each kernel as a colour picture, scaled on its own: grey = 0, brighter red "
                 "= a larger red weight, ...", ha="center", va="bottom", fontsize=8, color="#444444")
    else:
        mappable = plt.cm.ScalarMappable(norm=plt.Normalize(-top, top), cmap="RdBu_r")
        colorbar(fig, mappable, [(W - bar_w) / 2 / W, bar_y / H, bar_w / W, 0.1 / H],
                  "weight value (0 = white)" + ("; colour pictures: grey = 0" if g.mode == "rgb" else ""))
    heading = title or "first-layer kernels"
    fig.text(0.5, 1 - _MARGIN / H, f"{heading}: {K} kernels of {C}×{kh}×{kw}", ha="center", va="top",
             fontsize=11, fontweight="bold")
    return save_png(fig, path, dpi)


# ---------------------------------------------------------------------------
# feature maps

_MAP_IN = 0.72            # inches per feature map
_MAP_GAP = 0.08
_MAPS_PER_ROW = 8
_MAX_MAPS = 16            # maps drawn per layer (the title says how many there are)
_LAYER_HEAD = 0.42
_LAYER_BAR = 0.45
_INPUT_IN = 1.6
_PROBS_W = 3.2


def _layer_rows(n_maps: int) -> int:
    return math.ceil(min(n_maps, _MAX_MAPS) / _MAPS_PER_ROW)


def _maps_inches(layers: Sequence[LayerMaps], with_probs: bool, n_classes: int) -> tuple[float, float]:
    shown = [layer for layer in layers if layer.maps.shape[1] * layer.maps.shape[2] > 1]
    grid_w = _MAPS_PER_ROW * (_MAP_IN + _MAP_GAP)
    left_w = max(_INPUT_IN, _PROBS_W if with_probs else 0) + 0.5
    width = 2 * _MARGIN + left_w + grid_w
    body = sum(_LAYER_HEAD + _layer_rows(layer.maps.shape[0]) * (_MAP_IN + _MAP_GAP) + _LAYER_BAR
               for layer in shown)
    left_h = _INPUT_IN + 0.5 + ((0.6 + 0.22 * n_classes) if with_probs else 0)
    return width, 2 * _MARGIN + _TITLE_H + max(body, left_h)


def feature_maps_size(layers: Sequence[LayerMaps], n_classes: int = 0, dpi: int = DPI) -> tuple[int, int]:
    """The (width, height) in pixels of the PNG :func:`plot_feature_maps` writes."""
    w, h = _maps_inches(layers, n_classes > 0, n_classes)
    return round(w * dpi), round(h * dpi)


def plot_feature_maps(image: np.ndarray, layers: Sequence[LayerMaps], path, probabilities=None,
                      class_names: Sequence[str] | None = None, title: str = "", dpi: int = DPI) -> tuple[int, int]:
    """The input, then each layer's feature maps (one block per layer), and the class probabilities.

    Args:
        image: the model's input for this image, (C, H, W) or (H, W).
        layers: from :func:`feature_maps`; layers whose maps are 1×1 are listed in
            no picture (they are single numbers; the text output gives them).
        probabilities: (classes,) or None.
        class_names: labels for the probability bars.

    Each layer's maps share one colour scale (its bar beside the block), so maps of
    one layer can be compared; at most 16 maps per layer are drawn.
    Returns the PNG's (width, height) in pixels.
    """
    probs = None if probabilities is None else np.asarray(probabilities, dtype=np.float64).ravel()
    n_classes = 0 if probs is None else probs.size
    W, H = _maps_inches(layers, probs is not None, n_classes)
    fig = plt.figure(figsize=(W, H))

    def rect(x, y, w, h):
        return [x / W, y / H, w / W, h / H]

    top = H - _MARGIN - _TITLE_H
    # the input, top left
    img = np.asarray(image, dtype=np.float32)
    img = img[0] if img.ndim == 3 and img.shape[0] == 1 else (img.transpose(1, 2, 0) if img.ndim == 3 else img)
    ax = fig.add_axes(rect(_MARGIN + 0.2, top - _INPUT_IN, _INPUT_IN, _INPUT_IN))
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", interpolation="nearest")
    else:
        ax.imshow(np.clip((img - img.min()) / (np.ptp(img) or 1.0), 0, 1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"input {tuple(np.asarray(image).shape)}", fontsize=8)

    if probs is not None:
        names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
        ph = 0.22 * n_classes
        ax = fig.add_axes(rect(_MARGIN + 1.0, top - _INPUT_IN - 0.6 - ph, _PROBS_W - 1.1, ph))
        order = np.arange(n_classes)
        colours = ["#e6550d" if i == int(np.argmax(probs)) else "#9ecae1" for i in order]
        ax.barh(order, probs, color=colours)
        ax.set_yticks(order, labels=names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.18)
        ax.tick_params(axis="x", labelsize=7)
        for i, p in enumerate(probs):
            ax.text(min(p, 1.0) + 0.02, i, f"{100 * p:.1f}%", va="center", fontsize=6.5)
        ax.set_title("predicted probabilities", fontsize=8)

    x0 = W - _MARGIN - _MAPS_PER_ROW * (_MAP_IN + _MAP_GAP)
    y = top
    for layer in layers:
        C, h, w = layer.maps.shape
        if h * w <= 1:
            continue
        shown = min(C, _MAX_MAPS)
        more = f", first {shown} of {C} maps" if shown < C else ""
        fig.text(x0 / W, (y - 0.12) / H, f"{layer.name}  {layer.type}  →  (1, {C}, {h}, {w}){more}",
                 ha="left", va="top", fontsize=9, fontweight="bold")
        y -= _LAYER_HEAD
        low, high = float(layer.maps[:shown].min()), float(layer.maps[:shown].max())
        if low < 0 < high:
            span = max(-low, high)
            norm, cmap = plt.Normalize(-span, span), "RdBu_r"
        else:
            norm, cmap = plt.Normalize(low, high if high > low else low + 1), "viridis"
        for i in range(shown):
            r, c = divmod(i, _MAPS_PER_ROW)
            ax = fig.add_axes(rect(x0 + c * (_MAP_IN + _MAP_GAP), y - (r + 1) * (_MAP_IN + _MAP_GAP),
                                   _MAP_IN, _MAP_IN))
            ax.imshow(layer.maps[i], cmap=cmap, norm=norm, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.03, 0.97, str(i), transform=ax.transAxes, ha="left", va="top", fontsize=6,
                    color="white", bbox=dict(boxstyle="square,pad=0.1", fc="black", alpha=0.45, lw=0))
        y -= _layer_rows(C) * (_MAP_IN + _MAP_GAP)
        colorbar(fig, plt.cm.ScalarMappable(norm=norm, cmap=cmap),
                  rect(x0, y - 0.2, min(3.0, _MAPS_PER_ROW * (_MAP_IN + _MAP_GAP) - 0.1), 0.08))
        y -= _LAYER_BAR
    fig.text(0.5, 1 - _MARGIN / H, title or "feature maps", ha="center", va="top", fontsize=11,
             fontweight="bold")
    fig.text(0.5, 1 - (_MARGIN + 0.25) / H, "each layer's own output (an activation applied after a "
             "conv layer is not included); one colour scale per layer", ha="center", va="top", fontsize=8,
             color="#444444")
    return save_png(fig, path, dpi)
