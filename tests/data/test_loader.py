"""DataLoader: batch shapes and dtypes, determinism, drop_last, and exact resumption from a state."""
import json

import numpy as np
import pytest

from striate.data.loader import DataLoader, fashion_mnist_preprocess, mnist_preprocess
from striate.data.transforms import FASHION_MNIST_MEAN, MNIST_MEAN, MNIST_STD, RandomTranslate, normalize, pad


class Tiny:
    """A stand-in data set: 103 images (8×8, uint8), each image's pixels equal to its index mod 256."""

    def __init__(self, n=103):
        self.images = np.broadcast_to((np.arange(n) % 256).astype(np.uint8)[:, None, None], (n, 8, 8)).copy()
        self.images.flags.writeable = False
        self.labels = np.arange(n) % 10


def ids(x):
    """Recover each sample's index from its first pixel (as to_float scaled it)."""
    return np.rint(x[:, 0, 0, 0] * 255).astype(int)


def test_batches_shapes_and_dtypes():
    loader = DataLoader(Tiny(), batch_size=16)
    assert len(loader) == 7
    batches = list(loader)
    assert len(batches) == 7
    for x, y in batches[:-1]:
        assert x.shape == (16, 1, 8, 8) and x.dtype == np.float32
        assert y.shape == (16,) and y.dtype == np.int64
    x, y = batches[-1]
    assert x.shape == (7, 1, 8, 8) and y.shape == (7,)
    # without shuffling: the data's order, values scaled to [0, 1], labels matching
    order = np.concatenate([ids(x) for x, _ in batches])
    np.testing.assert_array_equal(order, np.arange(103))
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), np.arange(103) % 10)
    assert batches[0][0].max() <= 1.0


def test_drop_last_and_tuples():
    images = np.random.default_rng(0).random((50, 3, 4, 4)).astype(np.float64)
    loader = DataLoader((images, np.zeros(50, np.int32)), batch_size=16, drop_last=True)
    assert len(loader) == 3
    batches = list(loader)
    assert [x.shape for x, _ in batches] == [(16, 3, 4, 4)] * 3
    assert all(x.dtype == np.float32 and y.dtype == np.int64 for x, y in batches)
    batches[0][0][:] = -1                       # batches are copies, never views of the data
    assert images.min() >= 0
    with pytest.raises(ValueError, match="make no batch"):
        DataLoader((images[:10], np.zeros(10, int)), batch_size=16, drop_last=True)
    with pytest.raises(ValueError, match=r"50 images but 49 labels"):
        DataLoader((images, np.zeros(49, int)))
    with pytest.raises(TypeError, match=r"\.images and \.labels or a tuple"):
        DataLoader(images)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader((images, np.zeros(50, int)), batch_size=0)


def test_shuffle_is_deterministic_per_seed_and_epoch():
    data = Tiny()
    a = DataLoader(data, batch_size=10, shuffle=True, seed=7)
    b = DataLoader(data, batch_size=10, shuffle=True, seed=7)
    c = DataLoader(data, batch_size=10, shuffle=True, seed=8)
    ea0 = np.concatenate([ids(x) for x, _ in a])
    ea1 = np.concatenate([ids(x) for x, _ in a])
    eb0 = np.concatenate([ids(x) for x, _ in b])
    assert sorted(ea0) == list(range(103)) and not np.array_equal(ea0, np.arange(103))
    np.testing.assert_array_equal(ea0, eb0)                       # same seed, same order
    assert not np.array_equal(ea0, ea1)                           # a new order each epoch
    assert not np.array_equal(ea0, np.concatenate([ids(x) for x, _ in c]))
    np.testing.assert_array_equal(ea1, np.concatenate([ids(x) for x, _ in b.iter_epoch(1)]))
    assert a.epoch == 2 and b.epoch == 1                          # iter_epoch leaves the position alone
    for x, y in a.iter_epoch(5):
        np.testing.assert_array_equal(ids(x) % 10, y)             # labels travel with their images


def test_seed_none_follows_striate_manual_seed(monkeypatch):
    import striate.random as st_random
    monkeypatch.setattr(st_random, "_default", st_random._default)   # put the default generator back after
    st_random.manual_seed(123)
    first = DataLoader(Tiny(), shuffle=True).seed
    st_random.manual_seed(123)
    assert DataLoader(Tiny(), shuffle=True).seed == first


def augmenting_loader(**kw):
    return DataLoader(Tiny(), batch_size=8, shuffle=True, seed=11,
                      transform=mnist_preprocess(pad_to=12, augment=RandomTranslate(2)), **kw)


def test_resume_mid_epoch_sees_identical_batches():
    reference = augmenting_loader()
    expected = [batch for _ in range(3) for batch in reference]   # three epochs straight through

    interrupted = augmenting_loader()
    seen = []
    for x, y in interrupted:                                      # epoch 0 in full
        seen.append((x, y))
    for i, (x, y) in enumerate(interrupted):                      # epoch 1, stopped after 5 batches
        seen.append((x, y))
        if i == 4:
            state = json.loads(json.dumps(interrupted.state_dict()))   # a checkpoint survives JSON
            break
    assert state["epoch"] == 1 and state["batch"] == 5

    resumed = DataLoader(Tiny(), batch_size=8, shuffle=True, seed=None,
                         transform=mnist_preprocess(pad_to=12, augment=RandomTranslate(2)))
    resumed.load_state_dict(state)
    for _ in range(2):                                            # the rest of epoch 1, then epoch 2
        seen.extend(resumed)
    assert len(seen) == len(expected) == 3 * 13
    for (x1, y1), (x2, y2) in zip(seen, expected):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert resumed.state_dict()["epoch"] == 3


def test_each_pass_is_an_epoch_and_a_left_pass_resumes_from_its_state():
    loader = DataLoader(Tiny(), batch_size=30, shuffle=True, seed=3)    # 4 batches
    epochs = [[ids(x) for x, _ in loader.iter_epoch(e)] for e in range(3)]
    for i, _ in enumerate(loader):                               # epoch 0, left after 2 batches
        if i == 1:
            break
    state = loader.state_dict()
    assert (state["epoch"], state["batch"]) == (0, 2)
    second = [ids(x) for x, _ in loader]                          # a new pass: all of epoch 1
    assert len(second) == 4
    for a, b in zip(second, epochs[1]):
        np.testing.assert_array_equal(a, b)
    restored = DataLoader(Tiny(), batch_size=30, shuffle=True)
    restored.load_state_dict(state)                               # finishes epoch 0 from batch 2
    rest = [ids(x) for x, _ in restored]
    assert len(rest) == 2
    np.testing.assert_array_equal(rest[1], epochs[0][3])
    for i, _ in enumerate(loader):                                # epoch 2, left right after its last batch
        if i == 3:
            break
    assert loader.state_dict()["epoch"] == 3 and loader.state_dict()["batch"] == 0
    assert len(list(loader)) == 4 and loader.epoch == 4


def test_start_batch_and_state_checks():
    loader = augmenting_loader()
    full = list(loader.iter_epoch(4))
    part = list(loader.iter_epoch(4, start_batch=9))
    assert len(part) == 4
    for (x1, _), (x2, _) in zip(full[9:], part):
        np.testing.assert_array_equal(x1, x2)
    loader.set_epoch(4, start_batch=12)
    assert len(list(loader)) == 1 and loader.epoch == 5
    with pytest.raises(ValueError, match=r"start_batch must be in \[0, 13\], got 14"):
        list(loader.iter_epoch(0, start_batch=14))
    other = DataLoader(Tiny(), batch_size=16, shuffle=True)
    with pytest.raises(ValueError, match=r"different loader: batch_size=8 \(this loader: 16\)"):
        other.load_state_dict(loader.state_dict())
    with pytest.raises(KeyError, match="lacks epoch"):
        other.load_state_dict({"seed": 1, "batch": 0})


def test_preprocess_presets():
    x, _ = next(iter(DataLoader(Tiny(), batch_size=4, transform=mnist_preprocess(pad_to=12))))
    raw = np.arange(4, dtype=np.float32)[:, None, None, None] / np.float32(255) * np.ones((1, 1, 8, 8), np.float32)
    np.testing.assert_allclose(x, normalize(pad(raw, 2), MNIST_MEAN, MNIST_STD), rtol=1e-6)
    assert x[0, 0, 0, 0] == pytest.approx(-MNIST_MEAN / MNIST_STD)        # padding is background, normalised
    x, _ = next(iter(DataLoader(Tiny(), batch_size=4, transform=mnist_preprocess(pad_to=None, normalize=False))))
    np.testing.assert_array_equal(x, raw)
    x, _ = next(iter(DataLoader(Tiny(), batch_size=4, transform=fashion_mnist_preprocess(pad_to=None))))
    assert x[0, 0, 0, 0] == pytest.approx(-FASHION_MNIST_MEAN / 0.3530)
    bad = DataLoader(Tiny(), batch_size=4, transform=lambda z: z[:, 0])
    with pytest.raises(ValueError, match=r"transform must return a batch \(B, C, H, W\), got shape \(4, 8, 8\)"):
        next(iter(bad))


def test_real_mnist_epoch_is_fast():
    from striate.data.datasets import MNIST, DatasetNotFoundError
    try:
        data = MNIST(train=False, download=False)
    except DatasetNotFoundError:
        pytest.skip("MNIST files not available here")
    loader = DataLoader(data, batch_size=128, shuffle=True, seed=0, transform=mnist_preprocess(pad_to=32))
    count = 0
    for x, y in loader:
        count += len(y)
        assert x.shape[1:] == (1, 32, 32) and x.dtype == np.float32
    assert count == 10000
