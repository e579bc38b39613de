"""Reading a user's own pictures, and preparing a digit the way MNIST's were made.

MNIST's digits were size-normalised to fit a 20×20 box (keeping their aspect
ratio), then centred by their centre of mass in a 28×28 field, white ink on a
black background. ``mnist_style`` does the same to any photo or drawing of a
single digit, dark-on-light or light-on-dark, of any size: a thin pen stroke on
a big canvas is thickened to MNIST's stroke width (about 2.5 pixels of 28)
instead of fading away when the picture is shrunk.

>>> digit = mnist_style("my_seven.png")          # a photo of your own  # doctest: +SKIP
>>> digit.shape, digit.dtype, digit.max()         # doctest: +SKIP
((28, 28), dtype('float32'), 1.0)
"""
from __future__ import annotations

import contextlib
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["ImageError", "load_image", "decode_image", "image_header", "to_grayscale", "mnist_style", "MAX_PIXELS",
           "FORMATS"]

MAX_PIXELS = 64_000_000   # larger images are refused before they are decoded
# The formats load_image opens: common raster formats whose decoders are built into
# Pillow. Others are refused, EPS above all (Pillow renders it by running Ghostscript
# on the file's PostScript, a program from the file).
FORMATS = ("PNG", "JPEG", "BMP", "DIB", "GIF", "TIFF", "WEBP", "PPM", "TGA", "ICO")
_MNIST_STROKE = 2.5       # typical stroke width of an MNIST digit, in pixels of the 28×28 field
_WORK_SIZE = 4            # a crop is max-pooled down to about this many times the box before thickening


class ImageError(ValueError):
    """An image file could not be read or holds nothing usable (the message names the file)."""


def load_image(path: str | os.PathLike, mode: str = "L") -> np.ndarray:
    """Read an image file as float32 in [0, 1].

    Args:
        path: a PNG, JPEG, BMP, GIF, TIFF, WebP, PPM/PGM, TGA or ICO file
            (``FORMATS``); other formats are refused, whatever the file is called.
        mode: "L" for grayscale (H, W), "RGB" for colour (H, W, 3).

    Grayscale, RGB, RGBA, palette, 1-bit and 16-bit images are all accepted:
    16-bit and 32-bit images are scaled by their bit depth; transparency is
    composited onto white (onto black when the ink is white, so that it stays
    visible); a camera's EXIF orientation is applied. Raises ImageError, with the
    file name, for a missing, empty, huge, unreadable or damaged file.
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"load_image: mode must be 'L' or 'RGB', got {mode!r}")
    path = _existing_file(path)
    return _read(path, mode, str(path), MAX_PIXELS)


def decode_image(data: bytes, mode: str = "L", name: str = "the image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file's bytes (already in memory) as float32 in [0, 1], read as :func:`load_image` reads a file.

    ``name`` stands for the file in error messages; ``max_pixels`` (at most
    ``MAX_PIXELS``) refuses larger images from their header, before any pixel is
    decoded. Raises ImageError for empty, huge, unreadable or damaged data.
    """
    import io

    if mode not in ("L", "RGB"):
        raise ValueError(f"decode_image: mode must be 'L' or 'RGB', got {mode!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_image expects the bytes of an image file, got {type(data).__name__}")
    if len(data) == 0:
        raise ImageError(f"{name}: the data is empty (expected a PNG, JPEG or other image)")
    return _read(io.BytesIO(bytes(data)), mode, name, min(int(max_pixels), MAX_PIXELS))


def image_header(path: str | os.PathLike) -> tuple[int, int, str, bool]:
    """``(width, height, mode, colour)`` of an image file, read from its header alone.

    Nothing is decoded, so this is cheap enough to run over a whole folder of
    images: it finds files that are not images, in a refused format, or too large
    (``MAX_PIXELS``). ``colour`` is False for grayscale modes and for palette images
    whose palette is gray; True otherwise (an RGB file whose three channels happen
    to be equal included: only decoding can tell). Raises ImageError naming the file.
    """
    path = _existing_file(path)
    with _image_errors(str(path), MAX_PIXELS):
        with _opened(path, str(path), MAX_PIXELS) as img:
            w, h = img.size
            return w, h, img.mode, _colour_mode(img)


def _read(source, mode: str, label: str, max_pixels: int) -> np.ndarray:
    """Open ``source`` (a path or a file object), check its size from the header, decode it."""
    from PIL import ImageOps

    with _image_errors(label, max_pixels):
        with _opened(source, label, max_pixels) as img:
            img.load()
            img = ImageOps.exif_transpose(img) or img
            return _decode(img, mode, label)


def _colour_mode(img) -> bool:
    if img.mode in ("1", "L", "LA", "La", "I", "F") or img.mode.startswith("I;16"):
        return False
    if img.mode in ("P", "PA"):
        palette = img.getpalette() or []
        rgb = np.asarray(palette[:len(palette) // 3 * 3]).reshape(-1, 3)
        return not bool((rgb == rgb[:, :1]).all())
    return True


def _existing_file(path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty (expected a PNG, JPEG or other image)")
    return path


@contextlib.contextmanager
def _opened(source, label: str, max_pixels: int):
    """The image opened (header read, pixels not decoded), its size checked against ``max_pixels``."""
    from PIL import Image

    with warnings.catch_warnings():
        # Pillow warns about (and above twice its limit refuses) very large images
        # while opening them: max_pixels below is the limit that applies here. Its
        # other warnings (a damaged EXIF block, a TIFF tag past the end) concern
        # damage that either decodes fine or fails below with a clear error.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        with Image.open(source, formats=FORMATS) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(f"{label}: image is {w}×{h} = {w * h:,} pixels; "
                                 f"at most {max_pixels:,} are accepted")
            if w == 0 or h == 0:
                raise ImageError(f"{label}: image has no pixels ({w}×{h})")
            yield img


@contextlib.contextmanager
def _image_errors(label: str, max_pixels: int):
    """Turn whatever Pillow raises for a bad file into one ImageError that names it."""
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except ImageError:
        raise
    except PermissionError as exc:
        raise ImageError(f"{label}: cannot read the file ({exc.strerror or exc})") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label}: the image is too large ({exc}); at most {max_pixels:,} pixels "
                         f"are accepted") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not a readable image (expected PNG, JPEG, BMP, GIF, TIFF, WebP, PPM, "
                         f"TGA or ICO)") from None
    except MemoryError:
        raise ImageError(f"{label}: not enough memory to decode this image") from None
    except _DECODE_ERRORS as exc:
        raise ImageError(f"{label}: the image data is damaged or truncated ({exc})") from None


# What Pillow can raise for damaged data: mostly OSError, but its header parsers can let
# an unpacking or indexing error through on a mangled file; each is a damaged image here.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError,
                  struct.error, ZeroDivisionError, OverflowError, AttributeError)


def _decode(img, mode: str, path: Path | str) -> np.ndarray:
    """Pillow image → float32 array in [0, 1], transparency flattened."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        raw = np.asarray(img, dtype=np.float64)
        if not np.isfinite(raw).all():
            raise ImageError(f"{path}: the image holds NaN or infinite values")
        if img.mode.startswith("I;16"):
            top = 65535.0
        elif img.mode == "I":       # 32-bit integers: a 16-bit PNG read by an older Pillow lands here
            top = 65535.0 if raw.max() <= 65535 else float(raw.max())
        else:
            top = max(float(raw.max()), 1.0)
        gray = np.clip(raw / top, 0.0, 1.0).astype(np.float32)
        return gray if mode == "L" else np.repeat(gray[..., None], 3, axis=2)
    if img.mode in ("P", "PA") or (img.mode in ("L", "RGB") and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        on_white = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), rgba)
        flat = np.asarray(on_white.convert(mode), dtype=np.float32) / 255.0
        alpha = np.asarray(rgba.getchannel("A"))
        if np.ptp(flat) < 0.05 and np.ptp(alpha) > 0:
            # light ink on a transparent background disappears on white: use black instead
            on_black = Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 255)), rgba)
            flat = np.asarray(on_black.convert(mode), dtype=np.float32) / 255.0
        return flat
    img = img.convert(mode)
    return np.asarray(img, dtype=np.float32) / 255.0


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W, 4) → (H, W) with the ITU-R 601 luma weights; (H, W) passes through."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    raise ValueError(f"to_grayscale expects an image (H, W) or (H, W, 3), got shape {image.shape}")


def _stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width of a binary mask (H, W), as 2 × area / boundary pixels."""
    p = np.pad(ink, 1)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    boundary = int((ink & ~inner).sum())
    return 2.0 * int(ink.sum()) / max(boundary, 1)


def _max_filter(image: np.ndarray, k: int) -> np.ndarray:
    """Grey dilation with a k×k square (k odd), as two 1-D sliding maxima."""
    r = k // 2
    padded = np.pad(image, r)
    rows = sliding_window_view(padded, k, axis=0).max(axis=-1)       # (H, W + 2r)
    return sliding_window_view(rows, k, axis=1).max(axis=-1)          # (H, W)


def mnist_style(image, size: int = 28, box: int = 20, threshold: float = 0.2) -> np.ndarray:
    """A single-digit picture → (size, size) float32 in [0, 1], white digit on black.

    Args:
        image: an array (H, W) or (H, W, 3) in [0, 1] (e.g. from :func:`load_image`),
            or the path of an image file.
        size: the side of the output field (MNIST: 28).
        box: the side of the box the digit is fitted into (MNIST: 20).
        threshold: the fraction of the peak ink that counts as ink when cropping.

    Steps: grayscale; invert when the background (the border's median) is light;
    subtract the background and stretch to [0, 1]; crop to the ink's bounding box;
    thicken strokes that would end up much thinner than MNIST's; resize so the
    longer side is ``box`` pixels (antialiased); paste into a ``size``×``size``
    field with the ink's centre of mass in the middle.

    Raises:
        ImageError: the picture is blank (no contrast), or the file cannot be read;
            the message names the file when a path was given.
    """
    if isinstance(image, (str, os.PathLike)):
        try:
            return _mnist_style(load_image(image), size, box, threshold)
        except ImageError as exc:
            message = str(exc)
            raise ImageError(message if message.startswith(str(image)) else f"{image}: {message}") from None
    return _mnist_style(image, size, box, threshold)


def _mnist_style(image, size: int, box: int, threshold: float) -> np.ndarray:
    from PIL import Image

    if not (isinstance(size, int) and isinstance(box, int) and 1 <= box <= size):
        raise ValueError(f"mnist_style: expected ints 1 <= box <= size, got box={box!r}, size={size!r}")
    with np.errstate(over="ignore", invalid="ignore"):      # non-finite values are refused just below
        gray = to_grayscale(image)
    if gray.size == 0:
        raise ImageError("the image is empty (no pixels)")
    if not np.isfinite(gray).all():
        raise ImageError("the image holds NaN or infinite values")
    extent = float(np.abs(gray).max())
    if extent > 1e30:                  # differences of such values would overflow float32
        gray = gray / np.float32(extent)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:                 # dark ink on light paper: make it light on dark
        gray = 1.0 - gray
        border = 1.0 - border
    gray = np.clip(gray - np.median(border), 0.0, None)
    peak = float(gray.max())
    if peak < 0.02:
        raise ImageError("no digit found: the image is blank or has almost no contrast")
    gray = gray / peak
    rows = np.flatnonzero((gray > threshold).any(axis=1))
    cols = np.flatnonzero((gray > threshold).any(axis=0))
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]      # (h, w)

    # A big picture is first max-pooled to a few times the box: cheap, and a thin
    # line keeps its full brightness instead of being averaged away.
    factor = max(crop.shape) // (_WORK_SIZE * box)
    if factor > 1:
        h, w = -(-crop.shape[0] // factor) * factor, -(-crop.shape[1] // factor) * factor
        crop = np.pad(crop, ((0, h - crop.shape[0]), (0, w - crop.shape[1])))
        crop = crop.reshape(h // factor, factor, w // factor, factor).max(axis=(1, 3))
    h, w = crop.shape
    scale = box / max(h, w)
    width = _stroke_width(crop > 0.5) * scale            # in pixels of the output
    if scale < 1 and width < 0.6 * _MNIST_STROKE:
        k = 1 + 2 * int(round((_MNIST_STROKE - width) / scale / 2))   # odd, adds k - 1 pixels of width
        if k > 1:
            crop = _max_filter(crop, k)[:h, :w]

    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32)).resize((new_w, new_h),
                                                                          Image.Resampling.LANCZOS)
    digit = np.clip(np.asarray(resized, dtype=np.float32), 0.0, None)
    digit = np.clip(digit / max(float(digit.max()), 1e-6), 0.0, 1.0)     # full-strength ink, as in MNIST

    # centre of mass → pixel (size/2, size/2), (14, 14) as measured on MNIST's digits
    # (clamped so the digit stays inside the field)
    mass = digit.sum()
    cy = float((digit.sum(axis=1) * np.arange(new_h)).sum() / mass)
    cx = float((digit.sum(axis=0) * np.arange(new_w)).sum() / mass)
    top = int(np.clip(round(size / 2 - cy), 0, size - new_h))
    left = int(np.clip(round(size / 2 - cx), 0, size - new_w))
    field = np.zeros((size, size), dtype=np.float32)
    field[top:top + new_h, left:left + new_w] = digit
    return field
