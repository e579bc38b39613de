"""MNIST and Fashion-MNIST: finding, verifying, (if need be) downloading and loading them.

Both come as four gzip-compressed IDX files (see :mod:`striate.data.idx`)::

    train-images-idx3-ubyte.gz   (60000, 28, 28) uint8     train-labels-idx1-ubyte.gz   (60000,)
    t10k-images-idx3-ubyte.gz    (10000, 28, 28) uint8     t10k-labels-idx1-ubyte.gz    (10000,)

The files of a data set called ``<name>`` ("mnist" or "fashion-mnist") are looked
for, in this order, in:

1. the ``root`` argument (the folder itself, then ``root/<name>``);
2. ``$STRIATE_DATA/<name>``;
3. ``./data/<name>`` (relative to the current directory);
4. ``shared/data/<name>`` beside the source checkout (the checkout's parent
   folder), and ``../shared/data/<name>`` relative to the current directory;
5. the download cache, ``~/.cache/striate/<name>`` (``$XDG_CACHE_HOME`` is honoured).

Each file may be compressed (``.gz``) or not. The first folder holding both
files of the split wins. Their MD5 checksums are checked against the published
ones, either of the ``.gz`` file or of the decompressed content; a success is
remembered for the rest of the process. Only when no folder has the files are
they downloaded, into the cache, from public mirrors.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import ClassVar, Union

import numpy as np

from ..checks import normalize_name
from .idx import ChecksumError, read_idx
from .transforms import FASHION_MNIST_MEAN, FASHION_MNIST_STD, MNIST_MEAN, MNIST_STD

__all__ = ["MNIST", "FashionMNIST", "get_dataset", "search_paths", "cache_dir", "DatasetNotFoundError",
           "DATASETS"]

PathLike = Union[str, "os.PathLike[str]"]

# The checkout is <parent>/<repo>/striate/data/datasets.py; data shared between
# checkouts lives in <parent>/shared/data.
_CHECKOUT_PARENT = Path(__file__).resolve().parents[3]
_DOWNLOAD_TIMEOUT_S = 30.0


class DatasetNotFoundError(FileNotFoundError):
    """No folder holds the data set's files and they could not be downloaded."""


def cache_dir(name: str) -> Path:
    """Where downloads go: ``$XDG_CACHE_HOME/striate/<name>``, by default ``~/.cache/striate/<name>``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "striate" / name


def _places(name: str, root: PathLike | None) -> list[tuple[Path | None, str]]:
    """The folders to search, in order, each with where it comes from (path None: not configured)."""
    places: list[tuple[Path | None, str]] = []
    if root is not None:
        places += [(Path(root), "root argument"), (Path(root) / name, "root argument")]
    env = os.environ.get("STRIATE_DATA")
    places.append((Path(env) / name if env else None,
                   "$STRIATE_DATA" if env else f"$STRIATE_DATA/{name}: STRIATE_DATA is not set"))
    places.append((Path("data") / name, "./data/<name>"))
    places.append((_CHECKOUT_PARENT / "shared" / "data" / name, "shared data beside the checkout"))
    places.append((Path("..") / "shared" / "data" / name, "../shared/data/<name>"))
    places.append((cache_dir(name), "download cache"))

    unique, seen = [], set()
    for path, origin in places:
        key = None if path is None else os.path.abspath(path)
        if key is not None and key in seen:
            continue
        seen.add(key)
        unique.append((path, origin))
    return unique


def search_paths(name: str, root: PathLike | None = None) -> list[Path]:
    """The folders searched for data set ``name`` ("mnist", "fashion-mnist"), first to last."""
    return [path for path, _ in _places(name, root) if path is not None]


def _open_url(url: str, timeout: float):
    """Open ``url`` for reading (the one place that touches the network; tests replace it)."""
    request = urllib.request.Request(url, headers={"User-Agent": "striate"})
    return urllib.request.urlopen(request, timeout=timeout)


def _fetch_file(url: str, dest: Path, accepted_md5: tuple[str, ...]) -> None:
    """Fetch ``url`` into ``dest``, checking its MD5; written to a temporary file, then renamed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, _open_url(url, _DOWNLOAD_TIMEOUT_S) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() not in accepted_md5:
            raise ChecksumError(f"downloaded data has MD5 {digest.hexdigest()}, expected "
                                f"{' or '.join(accepted_md5)}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _MNISTFamily:
    """A data set in MNIST's layout: two pairs of IDX files, 28×28 uint8 images, 10 classes.

    Attributes:
        images: (N, 28, 28) uint8, read-only (``.copy()`` for a writable one).
        labels: (N,) int64 class indices.
        classes: the class names; ``classes[label]``.
        train: True for the training split, False for the test split.
        root: the folder the files were loaded from.
        files: the image and label files that were loaded.

    ``len(ds)`` is N; ``ds[i]`` is ``(image (28, 28) uint8, label)`` and works
    with slices and index arrays too.
    """

    name: ClassVar[str]
    classes: ClassVar[tuple[str, ...]]
    mean: ClassVar[float]           # of the training pixels scaled to [0, 1]
    std: ClassVar[float]
    mirrors: ClassVar[tuple[str, ...]]
    # file name (without .gz) -> accepted MD5s: (.gz file, decompressed content)
    md5: ClassVar[dict[str, tuple[str, str]]]

    _splits = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

    def __init__(self, root: PathLike | None = None, train: bool = True, download: bool = True,
                 verify: bool = True):
        self.train = bool(train)
        wanted = self._splits[self.train]
        found, notes = self._find(wanted, root)
        if found is None:
            if not download:
                raise DatasetNotFoundError(self._not_found_message(wanted, notes, None))
            failures = self._download_split(wanted)
            found = self._find_in(cache_dir(self.name), wanted)
            if failures or found is None:
                raise DatasetNotFoundError(self._not_found_message(wanted, notes, failures))
        self.files = found
        self.root = found[0].parent
        self.images, self.labels = self._load(found, verify)

    # -- finding ---------------------------------------------------------------

    @staticmethod
    def _candidates(folder: Path, stem: str) -> list[Path]:
        # Raw first: it loads without decompressing. The dotted spelling
        # ("train-images.idx3-ubyte") is how the originals name themselves inside gzip.
        dotted = stem.replace("-idx", ".idx")
        return [folder / stem, folder / (stem + ".gz"), folder / dotted, folder / (dotted + ".gz")]

    def _find_in(self, folder: Path, wanted) -> tuple[Path, ...] | None:
        found = []
        for stem in wanted:
            hit = next((p for p in self._candidates(folder, stem) if p.is_file()), None)
            if hit is None:
                return None
            found.append(hit)
        return tuple(found)

    def _find(self, wanted, root) -> tuple[tuple[Path, ...] | None, list[str]]:
        notes = []
        for folder, origin in _places(self.name, root):
            if folder is None:
                notes.append(origin)
                continue
            found = self._find_in(folder, wanted)
            if found is not None:
                return found, notes
            if not folder.is_dir():
                state = "no such folder"
            else:
                missing = [s for s in wanted if not any(p.is_file() for p in self._candidates(folder, s))]
                state = "missing " + ", ".join(f"{m}[.gz]" for m in missing)
            notes.append(f"{os.path.abspath(folder)} ({origin}): {state}")
        return None, notes

    # -- downloading -----------------------------------------------------------

    def _download_split(self, wanted) -> list[str]:
        """Download the split's files into the cache; returns the failures (empty: success)."""
        folder = cache_dir(self.name)
        failures = []
        for stem in wanted:
            if self._find_in(folder, (stem,)) is not None:
                continue
            dest = folder / (stem + ".gz")
            errors = []
            for mirror in self.mirrors:
                url = mirror + stem + ".gz"
                print(f"striate: downloading {url} -> {dest}", file=sys.stderr)
                try:
                    _fetch_file(url, dest, self.md5[stem])
                    break
                except (OSError, ValueError, HTTPException) as exc:
                    errors.append(f"{url}: {exc}")
            else:
                failures += errors
                break           # offline or blocked: the other file would fail the same way, slowly
        return failures

    def _not_found_message(self, wanted, notes, failures: list[str] | None) -> str:
        """The error for missing files; ``failures`` None means downloading was disabled."""
        split = "training" if self.train else "test"
        files = ", ".join(f"{s}[.gz]" for s in wanted)
        lines = [f"{type(self).__name__} {split} files ({files}) not found. Looked in:"]
        lines += [f"  {i}. {note}" for i, note in enumerate(notes, 1)]
        if failures is None:
            lines.append(f"Downloading is disabled (download=False); with download=True they would be "
                         f"fetched into {cache_dir(self.name)}.")
        else:
            lines.append(f"Downloading into {cache_dir(self.name)} failed:")
            lines += [f"  {f}" for f in failures]
        lines.append(f"To provide the files, put them (compressed or not) in a folder <dir>/{self.name} and "
                     f"set STRIATE_DATA=<dir>, or pass root=<folder holding them>; or download them "
                     f"from {self.mirrors[0]}.")
        return "\n".join(lines)

    # -- loading ---------------------------------------------------------------

    def _load(self, files, verify: bool) -> tuple[np.ndarray, np.ndarray]:
        image_file, label_file = files
        try:
            images = read_idx(image_file, expect_ndim=3, expect_dtype=np.uint8,
                              md5=self.md5[self._splits[self.train][0]] if verify else None)
            labels = read_idx(label_file, expect_ndim=1, expect_dtype=np.uint8,
                              md5=self.md5[self._splits[self.train][1]] if verify else None)
        except ChecksumError as exc:
            raise ChecksumError(f"{exc}. The file is damaged or not the original {type(self).__name__} "
                                f"file: delete it (it is downloaded again when nothing else is found) "
                                f"or pass verify=False to load it anyway.") from None
        if len(images) != len(labels):
            raise ValueError(f"{type(self).__name__}: {image_file} holds {len(images)} images but "
                             f"{label_file} holds {len(labels)} labels")
        if len(labels) and labels.max() >= len(self.classes):
            raise ValueError(f"{type(self).__name__}: {label_file} has label {labels.max()}, expected "
                             f"0..{len(self.classes) - 1}")
        return images, labels.astype(np.int64)

    # -- the data set ----------------------------------------------------------

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        shape = "×".join(map(str, self.images.shape[1:]))
        return f"{type(self).__name__}({split}: {len(self)} images {shape}, from {self.root})"


class MNIST(_MNISTFamily):
    """MNIST handwritten digits (LeCun, Cortes and Burges): 60000 training and
    10000 test images, 28×28 grayscale, classes "0" to "9".

    Args:
        root: a folder holding the files (searched first, see the module docs).
        train: the training split (True) or the test split (False).
        download: fetch the files into the cache when no folder has them.
        verify: check the files' MD5 checksums.

    >>> ds = MNIST(train=False)                   # needs the MNIST files  # doctest: +SKIP
    >>> ds.images.shape, ds.labels[:3]                          # doctest: +SKIP
    ((10000, 28, 28), array([7, 2, 1]))
    """

    name = "mnist"
    classes = tuple(str(d) for d in range(10))
    mean, std = MNIST_MEAN, MNIST_STD
    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "https://storage.googleapis.com/cvdf-datasets/mnist/")
    md5 = {
        "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
        "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
        "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
        "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
    }


class FashionMNIST(_MNISTFamily):
    """Fashion-MNIST (Xiao, Rasul and Vollgraf, Zalando Research, 2017): Zalando
    article images in MNIST's layout, 60000 training and 10000 test, 10 classes.

    Arguments as for :class:`MNIST`.
    """

    name = "fashion-mnist"
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    mean, std = FASHION_MNIST_MEAN, FASHION_MNIST_STD
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/")
    md5 = {
        "train-images-idx3-ubyte": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        "train-labels-idx1-ubyte": ("25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"),
        "t10k-images-idx3-ubyte": ("bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
        "t10k-labels-idx1-ubyte": ("bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
    }


DATASETS: dict[str, type[_MNISTFamily]] = {"mnist": MNIST, "fashion-mnist": FashionMNIST}


def get_dataset(name: str, train: bool = True, root: PathLike | None = None, **kwargs) -> _MNISTFamily:
    """The data set called ``name`` ("mnist" or "fashion-mnist"; case, "_" and "-" do not matter).

    Extra keyword arguments (``download``, ``verify``) go to the class.
    """
    key = normalize_name(name, "data set")
    key = {"fashionmnist": "fashion-mnist", "fashion": "fashion-mnist"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"get_dataset: unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[key](root=root, train=train, **kwargs)
