"""Data: the IDX file format, MNIST and Fashion-MNIST, your own images in class folders, batch transforms
and a resumable loader.

>>> from striate.data import MNIST, DataLoader, mnist_preprocess
>>> train = MNIST(train=True)                                      # doctest: +SKIP
>>> loader = DataLoader(train, batch_size=64, shuffle=True, seed=0,    # doctest: +SKIP
...                     transform=mnist_preprocess(pad_to=32))
>>> for x, y in loader: ...                    # x (64, 1, 32, 32) float32, y (64,) int64   # doctest: +SKIP
"""
# the submodules, re-exported: ``striate.data.folders`` works after ``import striate.data``
from . import datasets as datasets
from . import folders as folders
from . import idx as idx
from . import loader as loader
from . import transforms as transforms
from .datasets import DATASETS, MNIST, DatasetNotFoundError, FashionMNIST, cache_dir, get_dataset, search_paths
from .folders import FolderError, FolderSubset, ImageFolder, channel_stats, prepare_image, resize_image, split_indices
from .idx import ChecksumError, IDXError, check_md5, file_md5, read_idx, write_idx
from .loader import DataLoader, fashion_mnist_preprocess, mnist_preprocess
from .transforms import (
                       FASHION_MNIST_MEAN,
                       FASHION_MNIST_STD,
                       MNIST_MEAN,
                       MNIST_STD,
                       Compose,
                       Lambda,
                       Normalize,
                       Pad,
                       PadTo,
                       RandomAffine,
                       RandomTranslate,
                       affine,
                       as_step,
                       normalize,
                       pad,
                       pad_to,
                       random_affine,
                       random_translate,
                       to_float,
                       translate,
)

__all__ = [
    "IDXError", "ChecksumError", "read_idx", "write_idx", "file_md5", "check_md5",
    "MNIST", "FashionMNIST", "DATASETS", "DatasetNotFoundError", "get_dataset", "search_paths", "cache_dir",
    "MNIST_MEAN", "MNIST_STD", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD",
    "to_float", "normalize", "pad", "pad_to", "translate", "random_translate", "affine", "random_affine",
    "as_step", "Compose", "Lambda", "Normalize", "Pad", "PadTo", "RandomTranslate", "RandomAffine",
    "DataLoader", "mnist_preprocess", "fashion_mnist_preprocess",
    "ImageFolder", "FolderSubset", "FolderError", "prepare_image", "resize_image", "channel_stats", "split_indices",
]
