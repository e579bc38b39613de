"""Hand-made kernels, and applying them to pictures with striate's own ``conv2d``.

Before networks learned their kernels, people chose them by hand: a few numbers
in a small grid, slid over the picture, each output pixel the weighted sum of
the pixels under the grid. This module holds a bank of such kernels, with their
exact values, and :func:`apply` runs any of them over a grayscale (H, W) or a
colour (H, W, 3) image.

>>> from striate import filters
>>> filters.names()[:4]
['identity', 'box-3', 'box-5', 'gaussian']
>>> filters.KERNELS["sobel-x"]
array([[-1.,  0.,  1.],
       [-2.,  0.,  2.],
       [-1.,  0.,  1.]], dtype=float32)
>>> image = np.zeros((28, 28), np.float32); image[:, 14:] = 1      # a vertical edge
>>> edges = filters.apply(image, "sobel")
>>> edges.shape, float(edges[14, 13]), float(edges[14, 2])
((28, 28), 4.0, 0.0)

Cross-correlation, not convolution
----------------------------------
What deep learning calls a convolution (PyTorch's ``conv2d``, striate's, the
conv layers of every CNN) is, in mathematical terms, a *cross-correlation*:
the kernel is laid on the image as it is written,

    correlation:  out[y, x] = Σ_{i, j} k[i, j] · img[y + i, x + j]

while the convolution of signal processing first turns the kernel by 180°
(flips it top-to-bottom and left-to-right):

    convolution:  out[y, x] = Σ_{i, j} k[i, j] · img[y − i, x − j]
                            = correlation with k[::-1, ::-1]

For a kernel that looks the same turned by 180° (blur, sharpen, Laplacian, the
line detectors) the two agree. For the others they do not: Sobel-x flipped is
−Sobel-x, so a true convolution marks a dark-to-bright edge negative instead
of positive; the emboss kernel flipped lights the relief from the opposite
side. In a CNN the difference does not matter, since the kernels are learned
(a network would learn the flipped kernel instead), but it matters when
comparing with textbooks and tools: ``scipy.ndimage.correlate`` and OpenCV's
``filter2D`` correlate, ``scipy.ndimage.convolve`` and ``scipy.signal.convolve2d``
convolve. :func:`apply` correlates, as conv2d does; :func:`convolve` flips the
kernel first.

Borders
-------
Near the border the kernel reaches past the image. ``padding="same"`` adds
(kh − 1) and (kw − 1) rows and columns (the extra one of an even kernel at the
bottom and right, as PyTorch does) so the output keeps the input's size;
``"valid"`` adds none (the output shrinks by kh − 1 and kw − 1); an int or a
pair adds that many on each side. What the added pixels hold is ``border``:

==============  =================  ==================  =======================
``border``      pixels past edge   scipy.ndimage mode  OpenCV borderType
==============  =================  ==================  =======================
``"zeros"``     0 0 | a b c        ``"constant"``      ``BORDER_CONSTANT``
``"reflect"``   c b | a b c        ``"mirror"``        ``BORDER_REFLECT_101``
``"replicate"`` a a | a b c        ``"nearest"``       ``BORDER_REPLICATE``
==============  =================  ==================  =======================

Zeros are what conv layers use (and darken a blurred photo's border);
``"reflect"`` is OpenCV's default.

One difference remains for kernels of even size: with ``"same"`` the extra
padding row and column go at the bottom and right (PyTorch's rule, which
conv2d follows), while scipy and OpenCV anchor the kernel at index kh // 2, which
puts them at the top and left: their correlations are ours moved by one pixel.
(Their convolutions, which turn the kernel, agree with :func:`convolve` exactly.)
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .checks import normalize_name, padding_sides, positive_pair
from .functional import conv2d
from .tensor import no_grad

__all__ = ["KERNELS", "DESCRIPTIONS", "SHORT_DESCRIPTIONS", "MAGNITUDES", "names", "get_kernel", "gaussian_kernel",
           "parse_kernel", "flip", "is_flip_symmetric", "flip_relation", "describe",
           "apply", "convolve"]

Border = Literal["zeros", "reflect", "replicate"]
KernelLike = str | np.ndarray

# ---------------------------------------------------------------------------
# the bank: exact values, written as the integers they are (scaled where needed)

_INTEGER_KERNELS: dict[str, tuple[list[list[int]], int]] = {
    # name: (values, divisor)
    "identity": ([[0, 0, 0], [0, 1, 0], [0, 0, 0]], 1),
    "box-3": ([[1] * 3] * 3, 9),
    "box-5": ([[1] * 5] * 5, 25),
    "sharpen": ([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], 1),
    "laplacian-4": ([[0, 1, 0], [1, -4, 1], [0, 1, 0]], 1),
    "laplacian-8": ([[1, 1, 1], [1, -8, 1], [1, 1, 1]], 1),
    "sobel-x": ([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], 1),
    "sobel-y": ([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], 1),
    "prewitt-x": ([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], 1),
    "prewitt-y": ([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], 1),
    "emboss": ([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], 1),
    "oblique": ([[0, 0, 1], [0, 1, 0], [1, 0, 0]], 1),
    "line-horizontal": ([[-1, -1, -1], [2, 2, 2], [-1, -1, -1]], 1),
    "line-vertical": ([[-1, 2, -1], [-1, 2, -1], [-1, 2, -1]], 1),
    "line-45": ([[-1, -1, 2], [-1, 2, -1], [2, -1, -1]], 1),
    "line-135": ([[2, -1, -1], [-1, 2, -1], [-1, -1, 2]], 1),
}

#: The Gaussian in the bank: σ = 1, cut at 2σ (a 5×5 kernel) and renormalised.
_GAUSSIAN_SIGMA, _GAUSSIAN_RADIUS = 1.0, 2

DESCRIPTIONS: dict[str, str] = {
    "identity": "copies each pixel: 1 at the centre, 0 elsewhere",
    "box-3": "3×3 box blur: the mean of each 3×3 neighbourhood",
    "box-5": "5×5 box blur: the mean of each 5×5 neighbourhood",
    "gaussian": "Gaussian blur, σ = 1, 5×5: a weighted mean, nearer pixels count more",
    "sharpen": "sharpen: the pixel plus its difference from its four neighbours (identity − Laplacian)",
    "laplacian-4": "Laplacian (4 neighbours): the second derivative, 0 on flat areas and even ramps, "
                   "a ± pair across every edge",
    "laplacian-8": "Laplacian (8 neighbours): as laplacian-4, diagonals included",
    "sobel-x": "Sobel x: brightness change to the right (positive where it gets brighter), "
               "finds vertical edges; rows weighted 1 2 1",
    "sobel-y": "Sobel y: brightness change downwards (positive where it gets brighter), "
               "finds horizontal edges; columns weighted 1 2 1",
    "prewitt-x": "Prewitt x: as Sobel x with equal row weights 1 1 1",
    "prewitt-y": "Prewitt y: as Sobel y with equal column weights 1 1 1",
    "emboss": "emboss: the pixel plus its brightness change towards the bottom right; "
              "edges look raised or sunken",
    "oblique": "oblique line, 0/1: the sum of the three pixels on a line rising to the right (/)",
    "line-horizontal": "thin horizontal lines: +2 on the middle row, −1 above and below",
    "line-vertical": "thin vertical lines: +2 on the middle column, −1 on each side",
    "line-45": "thin oblique lines rising to the right (/, 45°): +2 on that diagonal, −1 elsewhere",
    "line-135": "thin oblique lines falling to the right (\\, 135°): +2 on that diagonal, −1 elsewhere",
    "sobel": "edge strength √(sobel-x² + sobel-y²): two kernels combined, not one",
    "prewitt": "edge strength √(prewitt-x² + prewitt-y²): two kernels combined, not one",
}

#: A few words per filter, for picture titles.
SHORT_DESCRIPTIONS: dict[str, str] = {
    "identity": "unchanged", "box-3": "blur (mean)", "box-5": "stronger blur (mean)",
    "gaussian": "blur (weighted mean)", "sharpen": "edges boosted", "laplacian-4": "edges, every direction",
    "laplacian-8": "edges, every direction", "sobel-x": "vertical edges", "sobel-y": "horizontal edges",
    "prewitt-x": "vertical edges", "prewitt-y": "horizontal edges", "emboss": "relief",
    "oblique": "rising lines (/)", "line-horizontal": "thin horizontal lines",
    "line-vertical": "thin vertical lines", "line-45": "thin rising lines (/)",
    "line-135": "thin falling lines (\\)", "sobel": "edge strength", "prewitt": "edge strength",
}

#: Filters made of two kernels: the length of the gradient (gx, gy) at each pixel.
MAGNITUDES: dict[str, tuple[str, str]] = {"sobel": ("sobel-x", "sobel-y"),
                                           "prewitt": ("prewitt-x", "prewitt-y")}

_ORDER = ["identity", "box-3", "box-5", "gaussian", "sharpen", "laplacian-4", "laplacian-8",
          "sobel-x", "sobel-y", "sobel", "prewitt-x", "prewitt-y", "prewitt", "emboss", "oblique",
          "line-horizontal", "line-vertical", "line-45", "line-135"]


def gaussian_kernel(sigma: float, radius: int | None = None, truncate: float = 4.0,
                    dtype=np.float32) -> np.ndarray:
    """A normalised 2-D Gaussian, (2r + 1, 2r + 1).

        k[i, j] ∝ exp(−(i² + j²) / (2σ²)),  i, j = −r ... r,  Σ k = 1

    The radius is ``radius`` if given, else ``int(truncate·σ + 0.5)``, the rule
    ``scipy.ndimage.gaussian_filter`` uses, so that ``apply(img, gaussian_kernel(σ,
    truncate=t), border=...)`` equals ``gaussian_filter(img, σ, truncate=t, mode=...)``.
    """
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)) \
            or not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"gaussian_kernel: sigma must be a positive number, got {sigma!r}")
    if radius is None:
        if not truncate > 0:
            raise ValueError(f"gaussian_kernel: truncate must be positive, got {truncate!r}")
        radius = int(truncate * float(sigma) + 0.5)
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"gaussian_kernel: radius must be a non-negative int, got {radius!r}")
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * offsets ** 2 / float(sigma) ** 2)
    g /= g.sum()                                  # normalised per axis, as scipy does
    return np.outer(g, g).astype(dtype)




def names() -> list[str]:
    """Every filter name :func:`apply` accepts (kernels and the two gradient magnitudes)."""
    return list(_ORDER)


def get_kernel(name: str, dtype=np.float32) -> np.ndarray:
    """The kernel called ``name``, as a new (kh, kw) array of ``dtype``.

    Names are those of :data:`KERNELS`, case-insensitive, ``_`` or ``-``; also
    ``"gaussian:σ"`` (e.g. ``"gaussian:2.5"``) for a Gaussian of any σ, cut at
    4σ as in scipy. The two magnitudes ("sobel", "prewitt") combine two kernels
    and have none of their own: :func:`apply` accepts them, this raises.
    """
    if not isinstance(name, str):
        raise TypeError(f"get_kernel expects a kernel name (str), got {type(name).__name__}")
    key = normalize_name(name)
    if key.startswith("gaussian:"):
        try:
            sigma = float(key.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"kernel {name!r}: write a Gaussian as 'gaussian:SIGMA', "
                             f"e.g. 'gaussian:2.5'") from None
        return gaussian_kernel(sigma, dtype=dtype)
    if key == "gaussian":
        return gaussian_kernel(_GAUSSIAN_SIGMA, radius=_GAUSSIAN_RADIUS, dtype=dtype)
    if key in _INTEGER_KERNELS:
        values, divisor = _INTEGER_KERNELS[key]
        return (np.array(values, dtype=np.float64) / divisor).astype(dtype)
    if key in MAGNITUDES:
        x, y = MAGNITUDES[key]
        raise ValueError(f"{key!r} is the magnitude √({x}² + {y}²) of two kernels, not one kernel; "
                         f"use filters.apply(image, {key!r}), or the kernels {x!r} and {y!r}")
    raise ValueError(f"unknown kernel {name!r}; choose one of: {', '.join(names())} "
                     f"(or 'gaussian:SIGMA', or your own numbers)")


#: name → (kh, kw) float32 kernel: every single kernel of the bank (a copy; editing it changes nothing).
KERNELS: dict[str, np.ndarray] = {name: get_kernel(name) for name in _ORDER if name not in MAGNITUDES}


def describe(name: str) -> str:
    """One line on what the filter ``name`` does."""
    key = normalize_name(name)
    if key.startswith("gaussian:"):
        k = get_kernel(key)
        return f"Gaussian blur, σ = {key.split(':', 1)[1]}, {k.shape[0]}×{k.shape[1]} (cut at 4σ)"
    if key not in DESCRIPTIONS:
        get_kernel(name)                        # raises the helpful error
    return DESCRIPTIONS[key]


def parse_kernel(text: str, dtype=np.float32, what: str = "kernel") -> np.ndarray:
    """A kernel written as rows separated by ``;`` or new lines: ``"1 0 -1; 2 0 -2; 1 0 -1"``.

    Numbers within a row are separated by spaces or commas; fractions such as
    ``1/9`` are accepted. Every row must have the same length. ``what`` names the
    matrix in error messages.
    """
    rows = [r for r in text.replace("\n", ";").split(";") if r.strip()]
    values = []
    for r in rows:
        row = []
        for item in r.replace(",", " ").split():
            try:
                if "/" in item:
                    top, bottom = item.split("/")
                    row.append(float(top) / float(bottom))
                else:
                    row.append(float(item))
            except (ValueError, ZeroDivisionError):
                raise ValueError(f"{what} {text!r}: {item!r} is not a number") from None
        values.append(row)
    if not values or any(len(r) != len(values[0]) for r in values) or not values[0]:
        lengths = [len(r) for r in values]
        raise ValueError(f"{what} {text!r}: expected rows of equal length separated by ';', "
                         f"got row lengths {lengths}")
    return np.array(values, dtype=np.float64).astype(dtype)


def flip(kernel: np.ndarray) -> np.ndarray:
    """The kernel turned by 180° (``k[::-1, ::-1]``): correlating with it is convolving with ``kernel``."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise ValueError(f"flip expects a 2-D kernel (kh, kw), got shape {kernel.shape}")
    return kernel[::-1, ::-1].copy()


def is_flip_symmetric(kernel: np.ndarray) -> bool:
    """True when turning the kernel by 180° leaves it unchanged (correlation = convolution)."""
    kernel = np.asarray(kernel)
    return bool(np.array_equal(kernel, flip(kernel)))


def flip_relation(kernel: np.ndarray) -> str:
    """``"same"``, ``"negated"`` or ``"different"``: how the 180°-turned kernel relates to it."""
    turned = flip(kernel)
    if np.array_equal(turned, kernel):
        return "same"
    if np.array_equal(turned, -np.asarray(kernel)):
        return "negated"
    return "different"


# ---------------------------------------------------------------------------
# applying


def _as_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0 \
            or (image.ndim == 3 and image.shape[2] == 0):
        raise ValueError(f"filters.apply expects an image (H, W) or (H, W, C) such as (H, W, 3), "
                         f"got shape {image.shape}")
    if image.dtype.kind == "f":
        return image
    if image.dtype.kind in "uib":
        return image.astype(np.float32)             # values kept as they are (no /255)
    raise TypeError(f"filters.apply expects an image of numbers, got dtype {image.dtype}")


def _as_kernel(kernel, dtype) -> np.ndarray:
    if isinstance(kernel, str):
        return get_kernel(kernel, dtype=dtype)
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(f"filters.apply expects a 2-D kernel (kh, kw) or a kernel name, "
                         f"got shape {kernel.shape}")
    if kernel.dtype.kind not in "fiub" or not np.all(np.isfinite(kernel)):
        raise ValueError("filters.apply: the kernel must hold finite numbers")
    return kernel.astype(dtype)


_NUMPY_MODES: dict[str, Literal["constant", "reflect", "edge"]] = {"zeros": "constant", "reflect": "reflect",
                                                                  "replicate": "edge"}

# The most values one conv2d call may copy into its window matrix (C·kh·kw × positions):
# larger images are filtered in horizontal strips, so a big kernel on a big photo
# needs tens of megabytes, not gigabytes.
_MAX_WINDOW_VALUES = 1 << 22


def _correlate(image: np.ndarray, kernel: np.ndarray, stride: tuple[int, int], pads, border: str,
               max_window_values: int = _MAX_WINDOW_VALUES) -> np.ndarray:
    """image (H, W) or (H, W, C) correlated with kernel (kh, kw), each channel on its own."""
    planes = image[None] if image.ndim == 2 else np.moveaxis(image, 2, 0)     # (C, H, W)
    C = planes.shape[0]
    top, bottom, left, right = pads
    mode = _NUMPY_MODES[border]
    if mode != "constant" and (max(top, bottom) >= planes.shape[1] or max(left, right) >= planes.shape[2]):
        raise ValueError(f"filters.apply: border={border!r} cannot pad {max(top, bottom, left, right)} "
                         f"pixels on an image of {planes.shape[1]}×{planes.shape[2]}; use border='zeros'")
    padded = np.pad(planes, ((0, 0), (top, bottom), (left, right)), mode=mode)
    kh, kw = kernel.shape
    Hp, Wp = padded.shape[1:]
    if kh > Hp or kw > Wp:
        raise ValueError(f"filters.apply: the {kh}×{kw} kernel is larger than the padded image {Hp}×{Wp} "
                         f"(image {image.shape[0]}×{image.shape[1]}); pad more or use a smaller kernel")
    sh, sw = stride
    OH, OW = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    weight = kernel[None, None]                                               # (1, 1, kh, kw)
    # The channels go in as a batch of one-channel images: every channel sees the same kernel.
    rows_per_call = max(1, max_window_values // (C * kh * kw * OW))
    out = np.empty((C, OH, OW), dtype=image.dtype)
    with no_grad():
        for r0 in range(0, OH, rows_per_call):
            r1 = min(OH, r0 + rows_per_call)
            strip = padded[:, r0 * sh:(r1 - 1) * sh + kh]                    # input rows of outputs r0..r1-1
            out[:, r0:r1] = conv2d(strip[:, None], weight, stride=stride).data[:, 0]
    return out[0] if image.ndim == 2 else np.moveaxis(out, 0, 2)


def apply(image, kernel: KernelLike, stride=1, padding="same", border: Border = "zeros") -> np.ndarray:
    """Slide ``kernel`` over ``image`` and return the map of weighted sums (a cross-correlation).

        out[y, x] = Σ_{i, j} kernel[i, j] · padded[y·sh + i, x·sw + j]

    computed by :func:`striate.functional.conv2d`, every colour channel on its own
    with the same kernel (as OpenCV's ``filter2D`` does).

    Args:
        image: (H, W) grayscale or (H, W, C) colour (C = 3, or any other count);
            float32 or float64 (kept), integers become float32 with their values
            unchanged (no scaling to [0, 1]).
        kernel: a name from :func:`names` (including "sobel" and "prewitt", the
            gradient magnitudes √(gx² + gy²), and "gaussian:σ"), or a 2-D array.
        stride: int or (sh, sw): the step between kernel positions.
        padding: "same" (output as large as the input; stride 1), "valid" (none),
            an int or (ph, pw) on each side.
        border: what the padding holds: "zeros", "reflect" or "replicate" (see the
            module docstring for the scipy and OpenCV names).

    Shape:
        image (H, W) → (OH, OW); (H, W, C) → (OH, OW, C), with
        OH = ⌊(H + pad_top + pad_bottom − kh) / sh⌋ + 1, and the same for OW.
    """
    image = _as_image(image)
    stride = positive_pair(stride, "stride", "filters.apply")
    if border not in _NUMPY_MODES:
        raise ValueError(f"filters.apply: border must be 'zeros', 'reflect' or 'replicate', got {border!r}")
    if isinstance(kernel, str) and normalize_name(kernel) in MAGNITUDES:
        gx, gy = (apply(image, k, stride, padding, border) for k in MAGNITUDES[normalize_name(kernel)])
        return np.sqrt(gx * gx + gy * gy)
    k = _as_kernel(kernel, image.dtype)
    return _correlate(image, k, stride, padding_sides(padding, k.shape, "filters.apply", stride), border)


def convolve(image, kernel: KernelLike, stride=1, padding="same", border: Border = "zeros") -> np.ndarray:
    """The convolution of signal processing: :func:`apply` with the kernel turned by 180°.

    For kernels that are the same when turned (blur, Laplacian, ...) this equals
    :func:`apply`; for Sobel it gives the negated map. Arguments as :func:`apply`;
    the gradient magnitudes are unchanged by the flip (both parts change sign).
    """
    if isinstance(kernel, str) and normalize_name(kernel) in MAGNITUDES:
        return apply(image, kernel, stride, padding, border)
    image = _as_image(image)
    return apply(image, flip(_as_kernel(kernel, image.dtype)), stride, padding, border)
