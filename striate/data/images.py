"""Reading a user's own pictures, and preparing a digit the way MNIST's were made.

MNIST's digits were size-normalised to fit a 20×20 box (keeping their aspect
ratio), then centred by their centre of mass in a 28×28 field, white ink on a
black background. ``mnist_style`` does the same to any photo or drawing of a
single digit, dark-on-light or light-on-dark.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["ImageError", "load_image", "to_grayscale", "mnist_style", "MAX_PIXELS"]

MAX_PIXELS = 64_000_000   # larger images are refused before they are decoded


class ImageError(ValueError):
    """An image file could not be read or holds nothing usable."""


def load_image(path: str | os.PathLike, mode: str = "L") -> np.ndarray:
    """Read an image file as float32 in [0, 1].

    Args:
        path: any format Pillow reads (PNG, JPEG, BMP, GIF, TIFF, ...).
        mode: "L" for grayscale (H, W), "RGB" for colour (H, W, 3).

    Transparency is composited onto white; 16-bit and 32-bit images are
    scaled by their own bit depth. Raises ImageError with the file name for a
    missing, empty, huge or unreadable file.
    """
    from PIL import Image, UnidentifiedImageError

    if mode not in ("L", "RGB"):
        raise ValueError(f"load_image: mode must be 'L' or 'RGB', got {mode!r}")
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty (expected a PNG, JPEG or other image)")
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{path}: image is {w}×{h} = {w * h:,} pixels; "
                                 f"at most {MAX_PIXELS:,} are accepted")
            if w == 0 or h == 0:
                raise ImageError(f"{path}: image has no pixels ({w}×{h})")
            img.load()
            array = _decode(img, mode)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: not a readable image (expected PNG, JPEG, BMP, GIF or TIFF): "
                         f"{exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{path}: the image data is damaged or truncated: {exc}") from None
    return array


def _decode(img, mode: str) -> np.ndarray:
    """Pillow image → float32 array in [0, 1], transparency on white."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        raw = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(raw.max()), 1.0)
        gray = np.clip(raw / top, 0.0, 1.0).astype(np.float32)
        return gray if mode == "L" else np.repeat(gray[..., None], 3, axis=2)
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    img = img.convert(mode)
    return np.asarray(img, dtype=np.float32) / 255.0


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) → (H, W) with the ITU-R 601 luma weights; (H, W) passes through."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    raise ValueError(f"to_grayscale expects an image (H, W) or (H, W, 3), got shape {image.shape}")


def mnist_style(image: np.ndarray, size: int = 28, box: int = 20, threshold: float = 0.2) -> np.ndarray:
    """A single-digit picture → (size, size) float32 in [0, 1], white digit on black.

    Steps: grayscale; invert when the background (the border's median) is light;
    subtract the background and stretch to [0, 1]; crop to the ink's bounding box;
    resize so the longer side is ``box`` pixels; paste into a ``size``×``size``
    field with the ink's centre of mass in the middle.
    """
    from PIL import Image

    gray = to_grayscale(image)
    if gray.size == 0:
        raise ImageError("mnist_style: the image is empty")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        gray = 1.0 - gray
        border = 1.0 - border
    gray = np.clip(gray - np.median(border), 0.0, None)
    peak = float(gray.max())
    if peak < 1e-3:
        raise ImageError("mnist_style: no digit found (the image is blank or has no contrast)")
    gray /= peak
    rows = np.flatnonzero((gray > threshold).any(axis=1))
    cols = np.flatnonzero((gray > threshold).any(axis=0))
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]

    h, w = crop.shape
    scale = box / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray(crop.astype(np.float32), mode="F").resize((new_w, new_h), Image.LANCZOS)
    digit = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)

    # centre of mass → the middle of the field (clamped so the digit stays inside)
    mass = digit.sum()
    cy = float((digit.sum(axis=1) * np.arange(new_h)).sum() / mass)
    cx = float((digit.sum(axis=0) * np.arange(new_w)).sum() / mass)
    top = int(np.clip(round((size - 1) / 2 - cy), 0, size - new_h))
    left = int(np.clip(round((size - 1) / 2 - cx), 0, size - new_w))
    field = np.zeros((size, size), dtype=np.float32)
    field[top:top + new_h, left:left + new_w] = digit
    return field
