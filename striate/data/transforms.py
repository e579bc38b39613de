"""Batch transforms for images: conversion, normalisation, padding, augmentation.

Every function works on a whole batch at once, ``(N, C, H, W)`` or ``(N, H, W)``,
with no Python loop over the images: random translations gather from one padded
copy of the batch through a strided window view, random affine maps sample all
images bilinearly in one go. Random transforms take an explicit ``rng``
(a ``numpy.random.Generator``; None means striate's default generator), so a
data loader can hand each batch its own reproducible stream.

Order matters: pad and augment *before* normalising, so that what is shifted
or padded in is background (0), not the data's mean.

For chaining, each function has a small configurable step (``Normalize``,
``Pad``, ``PadTo``, ``RandomTranslate``, ``RandomAffine``, ``Lambda``); a step is
called as ``step(x, rng)``, and :class:`Compose` runs several in order.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..random import get_rng

__all__ = [
    "MNIST_MEAN", "MNIST_STD", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD",
    "to_float", "normalize", "pad", "pad_to", "translate", "random_translate", "affine", "random_affine",
    "as_step", "Compose", "Lambda", "Normalize", "Pad", "PadTo", "RandomTranslate", "RandomAffine",
]

# Mean and standard deviation of the training images' pixels scaled to [0, 1].
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530

Range = float | tuple[float, float]


def _as_nchw(x, op: str) -> tuple[np.ndarray, bool]:
    """(N, H, W) -> (N, 1, H, W) view, with a flag to drop the axis again; (N, C, H, W) as is."""
    x = np.asarray(x)
    if x.ndim == 3:
        return x[:, None], True
    if x.ndim == 4:
        return x, False
    raise ValueError(f"{op} expects a batch (N, C, H, W) or (N, H, W), got shape {x.shape}")


def _check_float(x: np.ndarray, op: str) -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{op} expects float images, got dtype {x.dtype} (convert with to_float first)")


# ---------------------------------------------------------------------------
# conversion, normalisation, padding


def to_float(images) -> np.ndarray:
    """uint8 images in [0, 255] -> float32 in [0, 1], with a channel axis.

    (N, H, W) -> (N, 1, H, W); (N, C, H, W) keeps its shape. Float input is taken
    as already in [0, 1] and only cast to float32.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"to_float expects a batch (N, H, W) or (N, C, H, W), got shape {images.shape}")
    if images.dtype == np.uint8:
        # divide (not multiply by 1/255) so values match torchvision's ToTensor bit for bit
        x = np.divide(images, np.float32(255), dtype=np.float32)
    elif images.dtype.kind == "f":
        x = images.astype(np.float32, copy=False)
    else:
        raise TypeError(f"to_float expects uint8 or float images, got dtype {images.dtype}")
    return x[:, None] if x.ndim == 3 else x


def normalize(x, mean: float | Sequence[float], std: float | Sequence[float]) -> np.ndarray:
    """(x − mean) / std, per channel when mean and std are sequences of length C.

    x: (N, C, H, W) or (N, H, W) float; the output has x's shape and dtype.
    """
    x = np.asarray(x)
    _check_float(x, "normalize")
    m = np.asarray(mean, dtype=x.dtype)
    s = np.asarray(std, dtype=x.dtype)
    if m.ndim > 1 or s.ndim > 1:
        raise ValueError(f"normalize expects mean and std as numbers or per-channel sequences, "
                         f"got shapes {m.shape} and {s.shape}")
    if np.any(s <= 0):
        raise ValueError(f"normalize expects std > 0, got {s.tolist()}")
    if m.ndim == 1 or s.ndim == 1:
        channels = x.shape[1] if x.ndim == 4 else None
        for name, v in (("mean", m), ("std", s)):
            if v.ndim == 1 and v.shape[0] != channels:
                raise ValueError(f"normalize: {name} has {v.shape[0]} values, expected one per channel of "
                                 f"a batch (N, C, H, W); got x of shape {x.shape}")
        m, s = m.reshape(-1, 1, 1), s.reshape(-1, 1, 1)
    return (x - m) / s


def pad(x, padding: int | Sequence[int], value: float = 0.0) -> np.ndarray:
    """Pad the last two axes (H, W) with ``value``.

    padding: an int for all four sides, or ``(left, right, top, bottom)`` as in
    PyTorch. (N, C, H, W) -> (N, C, H + top + bottom, W + left + right); same for
    (N, H, W). ``pad(x, 2)`` turns MNIST's 28×28 into LeNet-5's 32×32.
    """
    x = np.asarray(x)
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        left = right = top = bottom = int(padding)
    elif isinstance(padding, (tuple, list)) and len(padding) == 4 and all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding):
        left, right, top, bottom = (int(p) for p in padding)
    else:
        raise TypeError(f"pad: padding must be an int or (left, right, top, bottom), got {padding!r}")
    if min(left, right, top, bottom) < 0:
        raise ValueError(f"pad: padding must be non-negative, got {padding!r}")
    if x.ndim < 2:
        raise ValueError(f"pad expects images (..., H, W), got shape {x.shape}")
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, widths, constant_values=value)


def pad_to(x, size: int | tuple[int, int], value: float = 0.0) -> np.ndarray:
    """Pad (H, W) equally on both sides up to ``size`` (the extra pixel, if odd, goes bottom/right)."""
    x = np.asarray(x)
    th, tw = (size, size) if isinstance(size, (int, np.integer)) else size
    h, w = x.shape[-2:]
    if th < h or tw < w:
        raise ValueError(f"pad_to: target size {(th, tw)} is smaller than the images ({h}, {w})")
    top, left = (th - h) // 2, (tw - w) // 2
    return pad(x, (left, tw - w - left, top, th - h - top), value)


# ---------------------------------------------------------------------------
# translation


def translate(x, shifts) -> np.ndarray:
    """Shift each image by whole pixels, zeros shifted in.

    x: (N, C, H, W) or (N, H, W). shifts: (N, 2) integers ``(dy, dx)`` per image;
    positive moves the content down and right: ``out[n, :, y, x] = x[n, :, y − dy, x − dx]``.
    Same shape and dtype out.
    """
    x4, squeeze = _as_nchw(x, "translate")
    N, C, H, W = x4.shape
    shifts = np.asarray(shifts)
    if shifts.shape != (N, 2) or shifts.dtype.kind not in "iu":
        raise ValueError(f"translate expects shifts (N, 2) = ({N}, 2) integers (dy, dx), "
                         f"got {shifts.dtype} array of shape {shifts.shape}")
    my, mx = (int(np.abs(shifts[:, i]).max(initial=0)) for i in (0, 1))
    # One zero-padded copy; the window at offset (my − dy, mx − dx) is the shifted image.
    padded = np.pad(x4, ((0, 0), (0, 0), (my, my), (mx, mx)))
    windows = sliding_window_view(padded, (H, W), axis=(2, 3))          # (N, C, 2my+1, 2mx+1, H, W)
    out = windows[np.arange(N), :, my - shifts[:, 0], mx - shifts[:, 1]]  # (N, C, H, W)
    return out[:, 0] if squeeze else out


def random_translate(x, max_shift: int | tuple[int, int], rng: np.random.Generator | None = None) -> np.ndarray:
    """Shift each image by its own random whole-pixel offset, uniform in [−max_shift, max_shift].

    max_shift: an int, or ``(max_dy, max_dx)``. Shapes as :func:`translate`.
    """
    rng = get_rng(rng)
    my, mx = (max_shift, max_shift) if isinstance(max_shift, (int, np.integer)) else max_shift
    if my < 0 or mx < 0:
        raise ValueError(f"random_translate: max_shift must be non-negative, got {max_shift!r}")
    n = np.asarray(x).shape[0]
    shifts = np.stack([rng.integers(-my, my + 1, size=n), rng.integers(-mx, mx + 1, size=n)], axis=1)
    return translate(x, shifts)


# ---------------------------------------------------------------------------
# affine maps


def _per_image(value, n: int, name: str, trailing: tuple = ()) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    try:
        return np.broadcast_to(v, (n,) + trailing)
    except ValueError:
        raise ValueError(f"affine: {name} must be a number or one per image {(n,) + trailing}, "
                         f"got shape {v.shape}") from None


def affine(x, angle=0.0, translate=0.0, scale=1.0) -> np.ndarray:
    """Rotate, scale and shift each image about its centre, sampling bilinearly; zeros outside.

    x: (N, C, H, W) or (N, H, W) float; same shape and dtype out.
    angle: degrees, counter-clockwise as displayed (row 0 at the top), one for
        all images or (N,). translate: pixels ``(dy, dx)``, (2,) or (N, 2);
        fractions allowed. scale: > 0, one or (N,).

    The forward map of an image point p (pixel centres, c the image centre) is
    ``p' = scale · R(angle) (p − c) + c + translate``; each output pixel p' takes
    the bilinear interpolation of the input at the inverse image p. Identity
    parameters return the input exactly.
    """
    x4, squeeze = _as_nchw(x, "affine")
    _check_float(x4, "affine")
    N, C, H, W = x4.shape
    theta = np.deg2rad(_per_image(angle, N, "angle"))[:, None, None]       # (N, 1, 1)
    s = _per_image(scale, N, "scale")[:, None, None]
    if np.any(s <= 0):
        raise ValueError(f"affine: scale must be positive, got {np.asarray(scale).tolist()}")
    t = _per_image(translate, N, "translate", (2,))
    cy, cx = (H - 1) / 2, (W - 1) / 2
    # Output pixel offsets from the centre, with the shift undone:
    v = np.arange(H)[None, :, None] - cy - t[:, 0, None, None]            # (N, H, 1)
    u = np.arange(W)[None, None, :] - cx - t[:, 1, None, None]            # (N, 1, W)
    cos, sin = np.cos(theta), np.sin(theta)
    # Inverse rotation R(angle)^T and inverse scale give the input point.
    src_x = (cos * u - sin * v) / s + cx                                  # (N, H, W)
    src_y = (sin * u + cos * v) / s + cy
    out = _bilinear(x4, src_y, src_x)
    return out[:, 0] if squeeze else out


def _bilinear(x: np.ndarray, src_y: np.ndarray, src_x: np.ndarray) -> np.ndarray:
    """Sample x (N, C, H, W) at real coordinates (N, OH, OW); zero beyond the edges."""
    N, C, H, W = x.shape
    OH, OW = src_y.shape[1:]
    y0, x0 = np.floor(src_y), np.floor(src_x)
    wy = (src_y - y0).astype(x.dtype).reshape(N, 1, OH * OW)
    wx = (src_x - x0).astype(x.dtype).reshape(N, 1, OH * OW)
    # A one-pixel zero border; corners further out are clipped onto it, so they read 0.
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).reshape(N, C, (H + 2) * (W + 2))
    iy0 = np.clip(y0, -1, H).astype(np.intp) + 1
    iy1 = np.clip(y0 + 1, -1, H).astype(np.intp) + 1
    ix0 = np.clip(x0, -1, W).astype(np.intp) + 1
    ix1 = np.clip(x0 + 1, -1, W).astype(np.intp) + 1

    def at(iy, ix):                                                         # (N, C, OH·OW)
        flat = (iy * (W + 2) + ix).reshape(N, 1, OH * OW)
        return np.take_along_axis(padded, np.broadcast_to(flat, (N, C, OH * OW)), axis=2)

    top = at(iy0, ix0) * (1 - wx) + at(iy0, ix1) * wx
    bottom = at(iy1, ix0) * (1 - wx) + at(iy1, ix1) * wx
    return (top * (1 - wy) + bottom * wy).reshape(N, C, OH, OW)


def _range(value, name: str, centre: float | None = None) -> tuple[float, float]:
    """A number a -> (centre − a, centre + a); a pair -> itself."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        if value < 0:
            raise ValueError(f"random_affine: {name} must be non-negative, got {value}")
        c = 0.0 if centre is None else centre
        return c - float(value), c + float(value)
    lo, hi = value
    if lo > hi:
        raise ValueError(f"random_affine: {name} range must be (low, high) with low <= high, got {value!r}")
    return float(lo), float(hi)


def random_affine(x, degrees: Range = 0.0, translate: Range | None = None, scale: tuple[float, float] | None = None,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """A random small rotation, shift and scaling per image (see :func:`affine`).

    degrees: angles drawn uniformly from [−degrees, degrees], or from a (low, high) pair.
    translate: the largest shift as a fraction of the image size, ``f`` for both
        axes or ``(fy, fx)``; shifts are drawn uniformly in [−fy·H, fy·H] × [−fx·W, fx·W].
    scale: ``(low, high)``, drawn uniformly; None keeps the size.
    """
    rng = get_rng(rng)
    x4, _ = _as_nchw(x, "random_affine")
    N, _, H, W = x4.shape
    lo, hi = _range(degrees, "degrees")
    angle = rng.uniform(lo, hi, size=N)
    shift = np.zeros((N, 2))
    if translate is not None:
        if isinstance(translate, (int, float, np.integer, np.floating)):
            fy = fx = float(translate)
        else:
            fy, fx = translate
        if not (0 <= fy <= 1 and 0 <= fx <= 1):
            raise ValueError(f"random_affine: translate fractions must be in [0, 1], got {translate!r}")
        shift = np.stack([rng.uniform(-fy * H, fy * H, size=N), rng.uniform(-fx * W, fx * W, size=N)], axis=1)
    factor = np.ones(N)
    if scale is not None:
        if np.isscalar(scale):
            raise ValueError(f"random_affine: scale must be a (low, high) pair, got {scale!r}")
        lo, hi = _range(scale, "scale")
        if lo <= 0:
            raise ValueError(f"random_affine: scale must be positive, got {scale!r}")
        factor = rng.uniform(lo, hi, size=(N,))
    return affine(x, angle, shift, factor)


# ---------------------------------------------------------------------------
# steps and chaining


Step = Callable[[np.ndarray, np.random.Generator | None], np.ndarray]


def as_step(fn: Callable) -> Step:
    """A callable taking ``(x, rng)``: ``fn`` itself if it takes the generator, else ``fn(x)`` wrapped.

    ``fn`` takes the generator when its second positional parameter is called
    ``rng`` or has no default (``lambda x, g: ...``); ``np.sqrt`` (whose second
    parameter is ``out=None``) or ``lambda x: x * 2`` are wrapped in :class:`Lambda`.
    """
    if not callable(fn):
        raise TypeError(f"a transform must be callable, got {type(fn).__name__}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):          # some builtins have no signature: take them as fn(x)
        return Lambda(fn)
    positional = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 2 and (positional[1].name == "rng" or positional[1].default is inspect.Parameter.empty):
        return fn
    try:
        signature.bind(None)
    except TypeError:
        raise TypeError(f"a transform must accept (x, rng) or (x), got {getattr(fn, '__name__', fn)}"
                        f"{signature}") from None
    return Lambda(fn)


class Compose:
    """Run steps in order: ``Compose(PadTo(32), Normalize(MNIST_MEAN, MNIST_STD))(x, rng)``.

    Each step is called as ``step(x, rng)``; a function of ``x`` alone is accepted too.
    All steps share the one ``rng``, drawing from it in order.
    """

    def __init__(self, *steps: Callable):
        if len(steps) == 1 and isinstance(steps[0], (list, tuple)):
            steps = tuple(steps[0])
        self.steps = [as_step(s) for s in steps]

    def __call__(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        for step in self.steps:
            x = step(x, rng)
        return x

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.steps))})"


class Lambda:
    """A deterministic function of the batch as a step: ``Lambda(np.sqrt)``."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn

    def __call__(self, x, rng=None):
        return self.fn(x)

    def __repr__(self) -> str:
        return f"Lambda({getattr(self.fn, '__name__', self.fn)})"


class Normalize:
    """Step form of :func:`normalize`."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, x, rng=None):
        return normalize(x, self.mean, self.std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Pad:
    """Step form of :func:`pad`."""

    def __init__(self, padding, value: float = 0.0):
        self.padding, self.value = padding, value

    def __call__(self, x, rng=None):
        return pad(x, self.padding, self.value)

    def __repr__(self) -> str:
        return f"Pad({self.padding!r}, value={self.value})"


class PadTo:
    """Step form of :func:`pad_to`."""

    def __init__(self, size, value: float = 0.0):
        self.size, self.value = size, value

    def __call__(self, x, rng=None):
        return pad_to(x, self.size, self.value)

    def __repr__(self) -> str:
        return f"PadTo({self.size!r}, value={self.value})"


class RandomTranslate:
    """Step form of :func:`random_translate`."""

    def __init__(self, max_shift):
        self.max_shift = max_shift

    def __call__(self, x, rng=None):
        return random_translate(x, self.max_shift, rng)

    def __repr__(self) -> str:
        return f"RandomTranslate({self.max_shift!r})"


class RandomAffine:
    """Step form of :func:`random_affine`."""

    def __init__(self, degrees: Range = 0.0, translate=None, scale=None):
        self.degrees, self.translate, self.scale = degrees, translate, scale

    def __call__(self, x, rng=None):
        return random_affine(x, self.degrees, self.translate, self.scale, rng)

    def __repr__(self) -> str:
        return f"RandomAffine(degrees={self.degrees!r}, translate={self.translate!r}, scale={self.scale!r})"
