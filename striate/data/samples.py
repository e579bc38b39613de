"""Real photographs to try filters and models on, without downloading anything.

The pictures come from packages that ship them in their own installation:

* matplotlib (always there: it is one of striate's dependencies); sizes are width×height

  ``grace-hopper``  portrait of Grace Hopper, colour, 512×600
  ``mri``           a brain MRI slice, grayscale, 256×256 (16-bit data)

* scikit-image, when it is installed (optional; its ``data`` folder holds
  these files, read here with Pillow, so nothing else of scikit-image is used)

  ``camera``     the cameraman, grayscale, 512×512
  ``astronaut``  Eileen Collins, colour, 512×512
  ``coffee``     a cup of coffee, colour, 600×400
  ``chelsea``    Chelsea the cat, colour, 451×300
  ``coins``      Greek coins, grayscale, 384×303
  ``moon``       the lunar surface, grayscale, 512×512
  ``brick``      a brick wall, grayscale, 512×512
  ``text``       hand-written and printed text, grayscale, 448×172

>>> from striate.data.samples import load_sample, sample_names
>>> "grace-hopper" in sample_names()
True
>>> load_sample("grace-hopper").shape                 # (H, W, 3), float32 in [0, 1]
(600, 512, 3)
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from ..checks import normalize_name
from .images import ImageError, load_image

__all__ = ["SAMPLES", "sample_names", "sample_path", "load_sample", "resize"]

#: name → (package, file inside the package's sample folder, what it shows)
SAMPLES: dict[str, tuple[str, str, str]] = {
    "grace-hopper": ("matplotlib", "grace_hopper.jpg", "portrait of Grace Hopper (colour)"),
    "mri": ("matplotlib", "s1045.ima.gz", "brain MRI slice (grayscale)"),
    "camera": ("skimage", "camera.png", "the cameraman (grayscale)"),
    "astronaut": ("skimage", "astronaut.png", "astronaut Eileen Collins (colour)"),
    "coffee": ("skimage", "coffee.png", "a cup of coffee (colour)"),
    "chelsea": ("skimage", "chelsea.png", "Chelsea the cat (colour)"),
    "coins": ("skimage", "coins.png", "Greek coins (grayscale)"),
    "moon": ("skimage", "moon.png", "the surface of the moon (grayscale)"),
    "brick": ("skimage", "brick.png", "a brick wall (grayscale)"),
    "text": ("skimage", "text.png", "hand-written and printed text (grayscale)"),
}


def _package_folder(package: str) -> Path | None:
    """Where a package's sample images lie, found without importing the package."""
    if package == "matplotlib":
        import matplotlib
        return Path(matplotlib.get_data_path()) / "sample_data"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def sample_path(name: str) -> Path:
    """The file of sample ``name``; raises ImageError naming the choices if it is not available."""
    key = normalize_name(name, "sample")
    if key not in SAMPLES:
        raise ImageError(f"unknown sample image {name!r}; available here: {', '.join(sample_names())}")
    package, filename, _ = SAMPLES[key]
    folder = _package_folder(package)
    path = folder / filename if folder is not None else None
    if path is None or not path.is_file():
        raise ImageError(f"sample image {key!r} comes with the {package} package, which is not installed "
                         f"here (pip install scikit-image); available: {', '.join(sample_names())}")
    return path


def sample_names() -> list[str]:
    """The samples whose files are present in this installation, in the order of SAMPLES."""
    names = []
    for key, (package, filename, _) in SAMPLES.items():
        folder = _package_folder(package)
        if folder is not None and (folder / filename).is_file():
            names.append(key)
    return names


def load_sample(name: str, mode: str = "RGB") -> np.ndarray:
    """A sample photograph as float32 in [0, 1].

    Args:
        name: one of :func:`sample_names` (``_`` and ``-`` are interchangeable).
        mode: "RGB" for (H, W, 3) (grayscale pictures are repeated over the three
            channels) or "L" for grayscale (H, W).
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"load_sample: mode must be 'L' or 'RGB', got {mode!r}")
    path = sample_path(name)
    if path.name == "s1045.ima.gz":
        # Raw 16-bit values, 256×256, no header (matplotlib's own examples read it this way).
        with gzip.open(path, "rb") as f:
            raw = np.frombuffer(f.read(), dtype="<u2").reshape(256, 256)
        gray = (raw / max(int(raw.max()), 1)).astype(np.float32)
        return gray if mode == "L" else np.repeat(gray[..., None], 3, axis=2)
    return load_image(path, mode=mode)


def resize(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink ``image`` (H, W) or (H, W, 3) so that its longer side is at most ``max_side``.

    Keeps the aspect ratio; images already small enough are returned unchanged.
    Uses Pillow's area-averaging filter, so fine detail is averaged, not aliased.
    """
    from PIL import Image

    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (2, 3):
        raise ValueError(f"resize expects an image (H, W) or (H, W, 3), got shape {image.shape}")
    if not isinstance(max_side, (int, np.integer)) or max_side < 1:
        raise ValueError(f"resize: max_side must be a positive int, got {max_side!r}")
    H, W = image.shape[:2]
    if max(H, W) <= max_side:
        return image
    scale = max_side / max(H, W)
    size = (max(1, round(W * scale)), max(1, round(H * scale)))        # Pillow wants (width, height)
    planes = [image] if image.ndim == 2 else [image[..., c] for c in range(image.shape[2])]
    out = [np.asarray(Image.fromarray(p, mode="F").resize(size, Image.Resampling.BOX), dtype=np.float32)
           for p in planes]
    return out[0] if image.ndim == 2 else np.stack(out, axis=2)

