"""MNIST and Fashion-MNIST: the real files, the search order, checksums, and the error when nothing is found.

Nothing here touches the network: every test replaces the one function that
opens URLs, either with one that fails or with one serving local bytes.
"""
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

from striate.data import datasets
from striate.data.datasets import MNIST, DatasetNotFoundError, FashionMNIST, get_dataset, search_paths
from striate.data.idx import ChecksumError, write_idx
from striate.data.transforms import FASHION_MNIST_MEAN, FASHION_MNIST_STD, MNIST_MEAN, MNIST_STD


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every URL fails, as offline; a test that wants a download installs its own fake."""
    def offline(url, timeout):
        raise OSError(f"network disabled in tests: {url}")
    monkeypatch.setattr(datasets, "_open_url", offline)


# -- the real files ------------------------------------------------------------------------


def _real(cls, train):
    try:
        return cls(train=train, download=False)
    except DatasetNotFoundError as exc:
        pytest.skip(f"{cls.__name__} files not available here: {str(exc).splitlines()[0]}")


@pytest.fixture(scope="module")
def mnist_train():
    return _real(MNIST, True)


@pytest.fixture(scope="module")
def fashion_train():
    return _real(FashionMNIST, True)


def _mean_std(images):
    """Mean and std of all pixels scaled to [0, 1], exactly, from the histogram of byte values."""
    counts = np.bincount(images.ravel(), minlength=256)
    values = np.arange(256) / 255
    mean = counts @ values / counts.sum()
    return mean, np.sqrt(counts @ (values - mean) ** 2 / counts.sum())


def test_mnist_real(mnist_train):
    ds = mnist_train
    assert ds.images.shape == (60000, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (60000,) and ds.labels.dtype == np.int64
    assert ds.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.bincount(ds.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert ds.classes == tuple("0123456789") and len(ds) == 60000
    image, label = ds[0]
    assert image.shape == (28, 28) and label == 5
    assert ds.images.max() == 255 and ds.images.min() == 0
    # the normalisation constants are the training set's statistics
    assert _mean_std(ds.images) == pytest.approx((MNIST_MEAN, MNIST_STD), abs=1e-4)

    test = _real(MNIST, False)
    assert test.images.shape == (10000, 28, 28) and test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert "MNIST(test: 10000 images 28×28" in repr(test)


def test_fashion_mnist_real(fashion_train):
    ds = fashion_train
    assert ds.images.shape == (60000, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels[:5].tolist() == [9, 0, 0, 3, 0]
    assert np.bincount(ds.labels).tolist() == [6000] * 10
    assert ds.classes[ds.labels[0]] == "Ankle boot"
    assert ds.classes == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert _mean_std(ds.images) == pytest.approx((FASHION_MNIST_MEAN, FASHION_MNIST_STD), abs=1e-4)
    test = _real(FashionMNIST, False)
    assert test.images.shape == (10000, 28, 28) and test.labels[:5].tolist() == [9, 2, 1, 1, 6]


def test_real_files_pass_their_checksums(mnist_train):
    from striate.data.idx import file_md5
    for path in mnist_train.files:
        stem = path.name.removesuffix(".gz")
        assert file_md5(path) in MNIST.md5[stem]


# -- a fake world: every place of the search order under tmp_path --------------------------


# where the real files are, before any test rearranges the world
REAL_MNIST_PLACES = [p.resolve() for p in search_paths("mnist")]

SPLITS = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def make_split(folder, value, n=6, train=True, compress=True, dotted=False):
    """Two tiny files in MNIST's layout whose labels are all ``value``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = np.full((n, 28, 28), value, np.uint8)
    labels = np.full(n, value, np.uint8)
    for stem, array in zip(SPLITS[train], (images, labels)):
        if dotted:
            stem = stem.replace("-idx", ".idx")
        write_idx(folder / (stem + (".gz" if compress else "")), array)
    return folder


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Isolated places: STRIATE_DATA, a working directory, a checkout's parent, a home for the cache."""
    places = {
        "root": tmp_path / "root",
        "env": tmp_path / "env" / "mnist",
        "cwd": tmp_path / "work" / "cwd" / "data" / "mnist",
        "checkout": tmp_path / "checkout-parent" / "shared" / "data" / "mnist",
        "cwd-shared": tmp_path / "work" / "shared" / "data" / "mnist",
        "cache": tmp_path / "home" / ".cache" / "striate" / "mnist",
    }
    (tmp_path / "work" / "cwd").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work" / "cwd")
    monkeypatch.setenv("STRIATE_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(datasets, "_CHECKOUT_PARENT", tmp_path / "checkout-parent")
    return places


def test_search_paths_order(world):
    expected = [world["root"], world["root"] / "mnist", world["env"], Path("data/mnist"), world["checkout"],
                Path("../shared/data/mnist"), world["cache"]]
    assert search_paths("mnist", root=world["root"]) == expected
    assert search_paths("mnist") == expected[2:]


def test_search_order(world):
    order = ["root", "env", "cwd", "checkout", "cwd-shared", "cache"]
    for value, key in enumerate(order):
        make_split(world[key], value, compress=value % 2 == 0)
    for value, key in enumerate(order):
        ds = MNIST(root=world["root"], verify=False)
        assert ds.labels.tolist() == [value] * 6, key
        assert ds.root.resolve() == world[key].resolve()
        for f in ds.files:
            f.unlink()


def test_root_may_be_the_parent_of_the_named_folder(world, tmp_path):
    make_split(tmp_path / "mine" / "mnist", 3)
    assert MNIST(root=tmp_path / "mine", verify=False).labels[0] == 3


def test_raw_and_dotted_names_and_a_half_filled_folder(world):
    make_split(world["env"], 1, compress=False)
    (world["env"] / "train-labels-idx1-ubyte").unlink()         # images without labels: not this folder
    make_split(world["cwd"], 2, compress=True, dotted=True)
    ds = MNIST(verify=False)
    assert ds.labels[0] == 2 and ds.files[0].name == "train-images.idx3-ubyte.gz"

    make_split(world["checkout"], 4, compress=False, train=False)
    ds = MNIST(train=False, verify=False)
    assert ds.labels[0] == 4 and ds.files[1].name == "t10k-labels-idx1-ubyte"
    assert len(ds) == 6 and ds[2][0].shape == (28, 28) and ds[1:3][1].tolist() == [4, 4]


def test_checksum_mismatch(world):
    folder = make_split(world["env"], 7)
    with pytest.raises(ChecksumError) as info:
        MNIST()
    message = str(info.value)
    actual = datasets.hashlib.md5((folder / "train-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    assert str(folder / "train-images-idx3-ubyte.gz") in message
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message and "6bbc9ace898e44ae57da46a324031adb" in message
    assert actual in message
    assert "verify=False" in message
    assert MNIST(verify=False).labels[0] == 7


def test_not_found_offline_lists_every_place(world, tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(root=world["root"])
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert message.startswith("MNIST training files (train-images-idx3-ubyte[.gz], "
                              "train-labels-idx1-ubyte[.gz]) not found. Looked in:")
    for key in ("root", "env", "cwd", "checkout", "cwd-shared", "cache"):
        assert os.path.abspath(world[key]) in message, key
    assert os.path.abspath(world["root"] / "mnist") in message
    assert "no such folder" in message
    for url in MNIST.mirrors:
        assert f"{url}train-images-idx3-ubyte.gz: network disabled in tests" in message
    assert "STRIATE_DATA=<dir>" in message and "root=" in message


def test_download_disabled_and_unset_env(world, monkeypatch):
    monkeypatch.delenv("STRIATE_DATA")
    monkeypatch.setattr(datasets, "_open_url", lambda url, timeout: pytest.fail(f"fetched {url}"))
    with pytest.raises(DatasetNotFoundError, match=r"(?s)STRIATE_DATA is not set.*Downloading is disabled"):
        FashionMNIST(train=False, download=False)


def _serve(files):
    """A fake _open_url serving {file name: bytes}."""
    def open_url(url, timeout):
        name = url.rsplit("/", 1)[1]
        if name not in files:
            raise OSError(f"404 for {url}")
        return io.BytesIO(files[name])
    return open_url


def test_download_into_the_cache(world, monkeypatch):
    stems = SPLITS[False]
    real = next((f for f in REAL_MNIST_PLACES if all((f / (s + ".gz")).is_file() for s in stems)), None)
    if real is None:
        pytest.skip("the real MNIST test files (.gz) are not available to serve")
    served = {s + ".gz": (real / (s + ".gz")).read_bytes() for s in stems}
    monkeypatch.setattr(datasets, "_open_url", _serve(served))
    ds = MNIST(train=False)
    assert ds.root == world["cache"] and ds.labels[:3].tolist() == [7, 2, 1]
    assert sorted(p.name for p in world["cache"].iterdir()) == sorted(served)   # no temporary files left


def test_corrupt_download_is_rejected(world, monkeypatch):
    monkeypatch.setattr(datasets, "_open_url", _serve({s + ".gz": b"not the file" for s in SPLITS[False]}))
    with pytest.raises(DatasetNotFoundError, match=r"downloaded data has MD5 [0-9a-f]{32}, expected 9fb629c4"):
        MNIST(train=False)
    assert not world["cache"].exists() or list(world["cache"].iterdir()) == []


def test_inconsistent_files(world):
    folder = make_split(world["env"], 1)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match=r"holds 6 images but .*train-labels-idx1-ubyte.gz holds 4 labels"):
        MNIST(verify=False)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(6, 12, np.uint8))
    with pytest.raises(ValueError, match=r"has label 12, expected 0\.\.9"):
        MNIST(verify=False)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros((6, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=re.escape("expected magic 2049 (1-d ubyte: labels), got 2051")):
        MNIST(verify=False)


def test_get_dataset(world, tmp_path):
    make_split(tmp_path / "fm" / "fashion-mnist", 5, train=False)
    for name in ("fashion-mnist", "Fashion_MNIST", "fashionmnist"):
        ds = get_dataset(name, train=False, root=tmp_path / "fm", verify=False)
        assert isinstance(ds, FashionMNIST) and ds.labels[0] == 5
    make_split(world["env"], 2)
    assert isinstance(get_dataset("MNIST", verify=False), MNIST)
    with pytest.raises(ValueError, match="unknown data set 'cifar'; expected one of mnist, fashion-mnist"):
        get_dataset("cifar")
