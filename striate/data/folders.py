"""Your own images in class folders: ``root/<class name>/<image files>``, torchvision's layout.

>>> train = ImageFolder("pets/train", size=32)        # pets/train/cat/*.jpg, pets/train/dog/*.png  # doctest: +SKIP
>>> train.classes, len(train), train.channels          # doctest: +SKIP
(['cat', 'dog'], 1200, 3)
>>> x, y = train.get_batch([0, 5, 7])                  # x uint8 (3, 3, 32, 32), y int64 (3,)  # doctest: +SKIP
>>> loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)   # doctest: +SKIP

**The classes** are the sub-folders of ``root``, sorted by name (as torchvision
sorts them); label k is ``classes[k]``. A class folder is searched recursively;
its PNG, JPEG, BMP, GIF and WebP files (by extension, any case) are its samples,
in sorted order. Hidden files and folders (".name") and other files are ignored.

**Safety.** Every file goes through :func:`striate.data.images.load_image`: a
closed list of Pillow decoders, and a limit of ``MAX_PIXELS`` checked from the
header before anything is decoded (an "image bomb" is refused, not unpacked).
Building an ImageFolder reads every file's header (not its pixels): a file that
is not an image, or too large, is found then; a file whose pixel data is damaged
is found when it is first decoded. Either error is one ImageError naming the
file, unless ``skip_bad=True``: then every image is decoded once while the
folder is built (filling the cache, so no work is lost when the set fits it) and
the bad ones are left out, each with a warning; ``.skipped`` lists them.

**Channels.** 3 (RGB) if any image is in colour, else 1 (L): the headers say
which files are grayscale; a file stored as colour (WebP always is, and a gray
photo saved as an RGB JPEG) is decoded to see whether its channels differ, until
the first true colour image settles it. ``channels=1`` or ``3`` skips this.
Grayscale images in a colour set are repeated into three channels; colour images
in a gray set (only when ``channels=1`` is forced) are converted with ITU-R 601
luma weights, Pillow's "L".

**Resizing** (:func:`resize_image`) to ``size`` = (H, W), with Pillow's
``Image.resize`` and its bilinear filter (antialiased when shrinking: the filter
widens with the scale, so a large photo is averaged, not sampled). ``"stretch"``
(the default) maps the whole image onto H×W and does not keep its aspect ratio,
as torchvision's ``Resize((H, W))`` does; ``"pad"`` keeps the aspect ratio,
fits the image inside H×W and pads the rest with black, centred. Stretching
keeps every pixel of the object at the largest scale and gives the model no
black bars to learn from, and the images a classifier meets are mostly near
square; padding is the choice when shapes matter (tall against wide objects).
:func:`prepare_image` is the whole path from a file to the model's uint8 image,
and ``Run.preprocess`` calls it for a user's file at predict time, so a picture
is prepared exactly as the training images were.

**Memory.** Nothing is read until a batch asks for it. Decoded, resized images
are kept in a cache of at most ``cache_bytes`` (default 512 MiB: 170,000 colour
images of 32×32), filled until full: the first images decoded stay, the rest
are decoded each time they are needed. Under a shuffled order every image has
the same chance to be in the cache, so evicting (LRU) would gain nothing and
cost bookkeeping. When the whole set fits, the second epoch decodes nothing;
``.decodes`` counts the files decoded so far. The cache is one uint8 array
(capacity, C, H, W) whose pages the system provides only as they are filled.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .images import ImageError, image_header, load_image

__all__ = ["ImageFolder", "FolderSubset", "FolderError", "prepare_image", "resize_image", "channel_stats",
           "split_indices", "IMAGE_EXTENSIONS", "RESIZE_METHODS", "DEFAULT_CACHE_BYTES"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
RESIZE_METHODS = ("stretch", "pad")
DEFAULT_CACHE_BYTES = 512 * 2 ** 20
_GRAY_TOLERANCE = 3          # channel differences (of 255) a gray image stored as colour may show (JPEG)


class FolderError(ValueError):
    """A folder of class folders that cannot be used as a data set; the message names the folder."""


# ---------------------------------------------------------------------------
# one image, from its file to what the model takes


def _size_pair(size) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if (len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                                  for s in pair)):
        raise ValueError(f"size must be a positive int or a pair (H, W) of them, got {size!r}")
    return int(pair[0]), int(pair[1])


def resize_image(image: np.ndarray, size, method: str = "stretch") -> np.ndarray:
    """uint8 (h, w) or (h, w, 3) → uint8 (H, W) or (H, W, 3), with Pillow's bilinear filter.

    ``method`` "stretch": the whole image onto H×W, aspect ratio not kept. "pad":
    scaled to fit inside H×W with its aspect ratio, centred on black.
    """
    from PIL import Image

    H, W = _size_pair(size)
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize_image: method must be one of {', '.join(RESIZE_METHODS)}, got {method!r}")
    image = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = image.shape[:2]
    if method == "stretch":
        target = (H, W)
    else:
        scale = min(H / h, W / w)
        target = (min(H, max(1, round(h * scale))), min(W, max(1, round(w * scale))))
    out = image if (h, w) == target else np.asarray(
        Image.fromarray(image).resize((target[1], target[0]), Image.Resampling.BILINEAR))
    if target == (H, W):
        return out
    field = np.zeros((H, W) + image.shape[2:], np.uint8)
    top, left = (H - target[0]) // 2, (W - target[1]) // 2
    field[top:top + target[0], left:left + target[1]] = out
    return field


def prepare_image(image, size, channels: int, method: str = "stretch") -> np.ndarray:
    """An image file (or an array (h, w[, 3]), uint8 or float in [0, 1]) → uint8 (C, H, W).

    Decoded with :func:`load_image` in "L" (``channels`` 1) or "RGB" (3), then
    :func:`resize_image`: what :class:`ImageFolder` does to each of its files.
    """
    if channels not in (1, 3):
        raise ValueError(f"prepare_image: channels must be 1 or 3, got {channels!r}")
    mode = "L" if channels == 1 else "RGB"
    if isinstance(image, (str, os.PathLike)):
        pixels = np.rint(load_image(image, mode) * 255).astype(np.uint8)       # exact for 8-bit images
    else:
        pixels = _array_in_mode(np.asarray(image), mode)
    out = resize_image(pixels, size, method)
    return out[None] if out.ndim == 2 else np.ascontiguousarray(out.transpose(2, 0, 1))


def _array_in_mode(image: np.ndarray, mode: str) -> np.ndarray:
    """An array (h, w), (h, w, 1) or (h, w, 3), uint8 or float in [0, 1], as uint8 in ``mode``."""
    from PIL import Image

    if image.dtype != np.uint8:
        if image.dtype.kind != "f" or not (np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1):
            raise ValueError(f"expected an image as uint8 (0-255) or float in [0, 1], got dtype {image.dtype}")
        image = np.rint(image * 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or 0 in image.shape:
        raise ValueError(f"expected an image (H, W), (H, W, 1) or (H, W, 3), got shape {image.shape}")
    if mode == "RGB" and image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if mode == "L" and image.ndim == 3:
        return np.asarray(Image.fromarray(image).convert("L"))
    return image


# ---------------------------------------------------------------------------
# the folder


def _scan(root: Path, classes: Sequence[str] | None) -> tuple[list[str], list[tuple[str, int]]]:
    """The class names and the (path, label) samples under ``root``; FolderError for what cannot be used."""
    if not root.is_dir():
        raise FolderError(f"{root}: no such folder (expected {root}/<class name>/<image files>)")
    found = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not found:
        loose = [e.name for e in os.scandir(root) if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]
        hint = f" ({len(loose)} images lie directly in it: put each in a folder named after its class)" \
            if loose else ""
        raise FolderError(f"{root}: no class folders{hint}; expected {root}/<class name>/<image files>")
    if classes is None:
        names = found
    else:
        names = list(classes)
        unknown = [c for c in found if c not in names]
        if unknown:
            raise FolderError(f"{root}: class folder{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(repr(c) for c in unknown)} not among the {len(names)} classes "
                              f"the model was trained on ({', '.join(names)})")
    samples, empty = [], []
    for label, name in enumerate(names):
        folder = root / name
        if classes is not None and not folder.is_dir():
            continue                    # a test set may lack a class the training set had
        files = []
        for here, dirs, names_here in os.walk(folder, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files += [os.path.join(here, f) for f in sorted(names_here)
                      if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
        if not files:
            empty.append(name)
        samples += [(f, label) for f in files]
    if empty:
        raise FolderError(f"{root}: class folder{'s' if len(empty) > 1 else ''} "
                          f"{', '.join(repr(c) for c in empty)} hold{'s' if len(empty) == 1 else ''} no images "
                          f"({', '.join(IMAGE_EXTENSIONS)}); remove {'it' if len(empty) == 1 else 'them'} "
                          f"or add images")
    return names, samples


class ImageFolder:
    """Images in class folders, ``root/<class name>/<image files>``, decoded lazily and cached.

    Args:
        root: the folder holding one folder per class.
        size: the side, or (H, W), every image is resized to (the model's input size).
        channels: 1 (grayscale) or 3 (RGB); None: 3 if any image is in colour, else 1.
        resize: "stretch" (whole image onto H×W, aspect ratio not kept) or "pad"
            (fitted inside with its aspect ratio, black around); see the module docs.
        cache_bytes: the most memory the decoded, resized images may keep (0: no cache).
        skip_bad: decode every image now and leave out those that fail, with a warning
            each (``on_skip``), instead of raising ImageError when a batch meets one.
        classes: the class names the labels refer to, e.g. a trained run's, for a
            test set: a folder not among them is an error, and a class may lack a folder.
        on_skip: called with a one-line message per skipped file (default: ``warnings.warn``).

    Attributes:
        classes: the class names, sorted; ``classes[label]``.
        class_to_idx: name → label.
        samples: ``(path, label)`` per image, in order; ``labels`` (N,) int64 the same labels.
        channels, size (H, W), resize: what every image is made into.
        skipped: ``(path, reason)`` of the files left out.
        decodes: how many files have been decoded so far.

    ``len(ds)`` is N. ``ds[i]`` is ``(image uint8 (C, H, W), label)``;
    :meth:`get_batch` gives many at once, as :class:`~striate.data.DataLoader` asks.
    """

    def __init__(self, root, size=32, channels: int | None = None, resize: str = "stretch",
                 cache_bytes: int = DEFAULT_CACHE_BYTES, skip_bad: bool = False,
                 classes: Sequence[str] | None = None, on_skip: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.size = _size_pair(size)
        if channels not in (None, 1, 3):
            raise ValueError(f"ImageFolder: channels must be 1, 3 or None, got {channels!r}")
        if resize not in RESIZE_METHODS:
            raise ValueError(f"ImageFolder: resize must be one of {', '.join(RESIZE_METHODS)}, got {resize!r}")
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, (int, np.integer)) or cache_bytes < 0:
            raise ValueError(f"ImageFolder: cache_bytes must be an int >= 0, got {cache_bytes!r}")
        self.resize = resize
        self.cache_bytes = int(cache_bytes)
        self.skipped: list[tuple[str, str]] = []
        self.decodes = 0
        self._on_skip = on_skip or (lambda message: warnings.warn(message, stacklevel=3))
        self.classes, samples = _scan(self.root, classes)
        self.class_to_idx = {name: k for k, name in enumerate(self.classes)}

        # every header: finds non-images and oversized files now, and which files are in colour
        kept, colour_files = [], []
        for path, label in samples:
            try:
                colour = image_header(path)[3]
            except ImageError as exc:
                if not skip_bad:
                    raise
                self._skip(path, exc)
                continue
            kept.append((path, label))
            if colour:
                colour_files.append(path)
        self.channels = channels if channels is not None else self._detect_channels(colour_files, skip_bad)
        self._set_samples(kept)
        if skip_bad:
            self._decode_all()
        self._check_not_empty({label for _, label in samples})

    # -- the samples -----------------------------------------------------------------

    def _set_samples(self, samples: list[tuple[str, int]]) -> None:
        self.samples = samples
        self.labels = np.array([label for _, label in samples], dtype=np.int64)
        self.targets = self.labels                          # torchvision's name
        H, W = self.size
        self.item_bytes = self.channels * H * W
        self.capacity = min(len(samples), self.cache_bytes // self.item_bytes)
        self._store = np.empty((self.capacity, self.channels, H, W), np.uint8)   # pages come as they are filled
        self._slot = np.full(len(samples), -1, np.int64)    # sample -> row of the store, -1: not cached
        self._used = 0

    def _skip(self, path: str, exc: Exception) -> None:
        reason = str(exc)
        reason = reason[len(path) + 2:] if reason.startswith(f"{path}: ") else reason
        self.skipped.append((path, reason))
        self._on_skip(f"skipped {path}: {reason}")

    def _detect_channels(self, colour_files: list[str], skip_bad: bool) -> int:
        """3 if one of the files the headers call colour really is (its channels differ), else 1."""
        for path in colour_files:
            try:
                rgb = np.rint(load_image(path, "RGB") * 255).astype(np.int16)
            except ImageError:
                if skip_bad:
                    continue            # found and reported by the decoding pass
                raise
            self.decodes += 1
            if np.abs(rgb - rgb[..., :1]).max() > _GRAY_TOLERANCE:
                return 3
        return 1

    def _decode_all(self) -> None:
        """Decode every image once (into the cache while it has room); leave out the bad ones."""
        keep = np.ones(len(self.samples), bool)
        for i, (path, _) in enumerate(self.samples):
            try:
                image = self._load(i)
            except ImageError as exc:
                self._skip(path, exc)
                keep[i] = False
                continue
            self._remember(i, image)
        if not keep.all():
            self.samples = [s for s, k in zip(self.samples, keep) if k]
            self.labels = self.targets = self.labels[keep]
            self._slot = self._slot[keep]                   # the store's rows stay where they are

    def _check_not_empty(self, scanned: set) -> None:
        if not self.samples:
            raise FolderError(f"{self.root}: no readable images in {len(self.classes)} class folders"
                              + (f" ({len(self.skipped)} skipped as unreadable)" if self.skipped else ""))
        lost = [self.classes[k] for k in sorted(scanned - set(self.labels.tolist()))]
        if lost:
            raise FolderError(f"{self.root}: every image of class {', '.join(map(repr, lost))} is unreadable "
                              f"({len(self.skipped)} files skipped)")

    # -- decoding and the cache --------------------------------------------------------

    def _load(self, i: int) -> np.ndarray:
        """Sample i decoded and resized: uint8 (C, H, W)."""
        image = prepare_image(self.samples[i][0], self.size, self.channels, self.resize)
        self.decodes += 1
        return image

    def _remember(self, i: int, image: np.ndarray) -> None:
        if self._slot[i] < 0 and self._used < self.capacity:
            self._store[self._used] = image
            self._slot[i] = self._used
            self._used += 1

    @property
    def cached(self) -> int:
        """How many images the cache holds."""
        return self._used

    def get_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``indices`` at once: images uint8 (B, C, H, W) and labels int64 (B,).

        Cached images are copied in one indexing step; the others are decoded file
        by file (ImageError naming the file if one is damaged) and cached while
        there is room.
        """
        index = np.asarray(indices)
        if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
            raise ValueError(f"ImageFolder.get_batch expects a 1-D array of indices, got {index!r}")
        index = index.astype(np.int64, copy=False)
        n = len(self.samples)
        if index.size and (index.min() < -n or index.max() >= n):
            raise IndexError(f"ImageFolder.get_batch: index out of range for {n} images")
        index = index % max(n, 1)
        x = np.empty((len(index), self.channels) + self.size, np.uint8)          # (B, C, H, W)
        slots = self._slot[index]
        hit = slots >= 0
        x[hit] = self._store[slots[hit]]
        for j in np.flatnonzero(~hit):
            i = int(index[j])
            if self._slot[i] >= 0:              # the same sample twice in one batch
                x[j] = self._store[self._slot[i]]
                continue
            x[j] = self._load(i)
            self._remember(i, x[j])
        return x, self.labels[index]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):
        """``(image uint8 (C, H, W), label)``; a slice or an index array gives a batch."""
        if isinstance(index, (int, np.integer)):
            x, y = self.get_batch(np.array([index]))
            return x[0], int(y[0])
        return self.get_batch(np.arange(len(self))[index])

    def subset(self, indices) -> FolderSubset:
        """The samples ``indices`` as a data set of their own, sharing this folder's cache."""
        return FolderSubset(self, indices)

    def describe(self) -> dict:
        """What the images are made into, JSON-friendly (a run records it)."""
        return {"size": list(self.size), "channels": self.channels, "resize": self.resize,
                "resize_filter": "bilinear", "mode": "L" if self.channels == 1 else "RGB"}

    def __repr__(self) -> str:
        H, W = self.size
        return (f"ImageFolder({str(self.root)!r}: {len(self)} images, {len(self.classes)} classes, "
                f"{self.channels}×{H}×{W}, resize={self.resize!r}, cached {self.cached}/{self.capacity})")


class FolderSubset:
    """Some samples of an :class:`ImageFolder` (e.g. a validation split), sharing its cache.

    Has what the DataLoader uses (``len``, ``get_batch``, ``labels``) and the
    folder's ``classes``, ``channels``, ``size`` and ``samples`` (those of the subset).
    """

    def __init__(self, folder: ImageFolder, indices):
        self.folder = folder
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = folder.labels[self.indices]
        self.classes, self.class_to_idx = folder.classes, folder.class_to_idx
        self.channels, self.size, self.resize = folder.channels, folder.size, folder.resize
        self.samples = [folder.samples[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def get_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        return self.folder.get_batch(self.indices[np.asarray(indices, dtype=np.int64)])

    def describe(self) -> dict:
        return self.folder.describe()

    def __repr__(self) -> str:
        return f"FolderSubset({len(self)} of {self.folder!r})"


# ---------------------------------------------------------------------------
# splitting and statistics


def split_indices(labels, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: ``fraction`` of each class (rounded, at least one when the class has two
    or more images) goes to the second part; returns (train, held-out) indices, each sorted.

    The draw is a permutation per class from a generator seeded with ``seed``, so the
    same labels, fraction and seed give the same split.
    """
    labels = np.asarray(labels)
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ValueError(f"split_indices: fraction must be in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    held = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        n = int(round(fraction * len(members)))
        n = min(max(n, 1 if len(members) >= 2 else 0), len(members) - 1)
        held.append(rng.permutation(members)[:n])
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    train = np.setdiff1d(np.arange(len(labels)), held_out)
    return train, held_out


def channel_stats(dataset, max_images: int = 2000, seed: int = 0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the pixels in [0, 1], over up to ``max_images`` images drawn with ``seed``.

    ``dataset``: anything with ``len`` and ``get_batch`` (an ImageFolder, a FolderSubset).
    The images come through the data set, so they land in its cache.
    """
    n = len(dataset)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3,)))
    pick = np.sort(rng.permutation(n)[:max_images]) if n > max_images else np.arange(n)
    sums, squares, count = [], [], 0
    for lo in range(0, len(pick), 256):
        x, _ = dataset.get_batch(pick[lo:lo + 256])
        x = x.astype(np.float64) / 255.0                              # (B, C, H, W)
        sums.append(x.sum(axis=(0, 2, 3)))
        squares.append((x * x).sum(axis=(0, 2, 3)))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = np.sum(sums, axis=0) / count                                # (C,)
    std = np.sqrt(np.maximum(np.sum(squares, axis=0) / count - mean * mean, 0.0))
    std = np.where(std < 1e-3, 1.0, std)                              # a constant channel is left unscaled
    return [float(m) for m in mean], [float(s) for s in std]
