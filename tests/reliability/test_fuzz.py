"""Fuzzing the readers of files a user may get from anywhere: nothing but the documented exceptions escape.

* the IDX reader (``read_idx``): random bytes, and valid files (raw and gzip) with bytes flipped,
  inserted, deleted or cut off: an array, or IDXError;
* the checkpoint loader: ``st.load`` on random bytes and on mutated valid files (CheckpointError), and
  ``load_checkpoint`` on training checkpoints whose metadata has been rewritten at random (ValueError);
* image preprocessing: random bytes and mutated images in every accepted format through
  ``mnist_style(path)`` (ImageError), and random small arrays through ``mnist_style(array)``
  (a 28×28 float32 digit in [0, 1], or ValueError — ImageError is one).

Every case also runs with warnings turned into errors: a damaged file must not print NumPy or Pillow
warnings on its way to the error. The examples are derandomised, so a failure reproduces.
"""
import copy
import gzip
import io
import json
import struct
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from PIL import Image

import striate as st
from striate import nn, optim
from striate.data.idx import IDXError, read_idx
from striate.data.images import ImageError, mnist_style
from striate.serialization import CheckpointError
from striate.train import load_checkpoint, save_checkpoint

FUZZ = settings(max_examples=250, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def strict():
    """Warnings are errors inside the block (a user sees a clear error, not warnings on the way)."""
    catcher = warnings.catch_warnings()
    catcher.__enter__()
    warnings.simplefilter("error")
    return catcher


def mutations(seed_files):
    """Strategy: one of ``seed_files`` with a few bytes changed, inserted, deleted, or the end cut off."""
    edit = hs.tuples(hs.sampled_from(["flip", "insert", "delete", "cut"]), hs.integers(0, 1 << 30),
                     hs.binary(min_size=1, max_size=8))

    def apply(seed_and_edits):
        index, edits = seed_and_edits
        data = bytearray(seed_files[index % len(seed_files)])
        for kind, where, payload in edits:
            at = where % (len(data) + 1)
            if kind == "flip" and data:
                data[at % len(data)] ^= payload[0] or 1
            elif kind == "insert":
                data[at:at] = payload
            elif kind == "delete":
                del data[at:at + len(payload)]
            elif kind == "cut":
                del data[at:]
        return bytes(data)
    return hs.tuples(hs.integers(0, 1000), hs.lists(edit, min_size=1, max_size=4)).map(apply)


# ---------------------------------------------------------------------------
# IDX


def _idx_seeds():
    g = np.random.default_rng(0)
    seeds = []
    for dtype, shape in ((np.uint8, (6, 5, 4)), (np.uint8, (9,)), (np.int16, (3, 2)), (np.float64, (2, 2, 2))):
        array = (g.random(shape) * 100).astype(dtype)
        for compress in (False, True):
            buffer = io.BytesIO()
            header = bytes([0, 0, {np.uint8: 8, np.int16: 0x0B, np.float64: 0x0E}[dtype], len(shape)])
            raw = header + np.asarray(shape, ">u4").tobytes() + array.astype(array.dtype.newbyteorder(">")).tobytes()
            seeds.append(gzip.compress(raw, mtime=0) if compress else raw)
            del buffer
    return seeds


IDX_SEEDS = _idx_seeds()


def _read_idx_or_error(path, data, **expect):
    path.write_bytes(data)
    catcher = strict()
    try:
        array = read_idx(path, **expect)
    except IDXError:
        return None
    finally:
        catcher.__exit__(None, None, None)
    assert isinstance(array, np.ndarray) and not array.flags.writeable
    return array


def test_the_idx_seeds_are_valid(scratch):
    for i, data in enumerate(IDX_SEEDS):
        assert _read_idx_or_error(scratch / f"seed{i}", data) is not None


@FUZZ
@given(data=hs.binary(max_size=64), expect=hs.sampled_from([{}, {"expect_ndim": 3}, {"expect_dtype": np.uint8}]))
def test_idx_random_bytes(scratch, data, expect):
    _read_idx_or_error(scratch / "random.idx", data, **expect)
    _read_idx_or_error(scratch / "random.idx.gz", gzip.compress(data), **expect)


@FUZZ
@given(data=mutations(IDX_SEEDS))
def test_idx_mutated_files(scratch, data):
    _read_idx_or_error(scratch / "mutated.idx", data)


# ---------------------------------------------------------------------------
# checkpoints


def _model():
    st.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 3))
    opt = optim.Adam(model.parameters(), lr=0.01)
    return model, opt, optim.lr_scheduler.StepLR(opt, 1)


@pytest.fixture(scope="module")
def checkpoint_bytes(scratch):
    model, opt, sched = _model()
    model(np.ones((2, 1, 4, 4), np.float32)).sum().backward()
    opt.step()
    path = scratch / "seed.safetensors"
    save_checkpoint(path, model, opt, sched, {"epoch": 1, "batch": 2, "partial": {"loss_sum": 1.5, "correct": 1,
                                                                                  "seen": 4, "seconds": 0.5}},
                    [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": None, "test_acc": None,
                      "seconds": 1.0, "lr": 0.01}], {"seed": 1})
    st.save({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, scratch / "plain.safetensors")
    return [path.read_bytes(), (scratch / "plain.safetensors").read_bytes()]


def _load_or_error(path, data):
    path.write_bytes(data)
    catcher = strict()
    try:
        st.load(path, with_metadata=True)
    except CheckpointError:
        pass
    finally:
        catcher.__exit__(None, None, None)


@FUZZ
@given(data=hs.binary(max_size=200))
def test_st_load_random_bytes(scratch, data):
    _load_or_error(scratch / "random.safetensors", data)
    _load_or_error(scratch / "random.safetensors", struct.pack("<Q", len(data)) + data)   # plausible framing


@FUZZ
@given(choice=hs.data())
def test_st_load_mutated_files(scratch, checkpoint_bytes, choice):
    data = choice.draw(mutations(checkpoint_bytes))
    _load_or_error(scratch / "mutated.safetensors", data)


JSON = hs.recursive(hs.none() | hs.booleans() | hs.integers(-3, 3) | hs.floats(allow_nan=False) | hs.text(max_size=3),
                    lambda inner: hs.lists(inner, max_size=3) | hs.dictionaries(hs.text(max_size=5), inner, max_size=3),
                    max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@FUZZ
@given(choice=hs.data())
def test_load_checkpoint_with_rewritten_metadata(scratch, checkpoint_bytes, choice):
    """Replace or delete one node anywhere in the checkpoint's metadata or its tree of state."""
    raw = checkpoint_bytes[0]
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    key = choice.draw(hs.sampled_from(["striate.metadata", "striate.tree"]))
    tree = json.loads(header["__metadata__"][key])
    paths = list(_paths(tree))[1:]
    where = choice.draw(hs.sampled_from(paths))
    node = tree
    for k in where[:-1]:
        node = node[k]
    if choice.draw(hs.booleans()):
        del node[where[-1]]
    else:
        node[where[-1]] = choice.draw(JSON)
    header = copy.deepcopy(header)
    header["__metadata__"][key] = json.dumps(tree)
    body = json.dumps(header).encode()
    path = scratch / "rewritten.safetensors"
    path.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n:])
    model, opt, sched = _model()
    catcher = strict()
    try:
        load_checkpoint(path, model, opt, sched)
    except ValueError:                       # CheckpointError is one
        pass
    finally:
        catcher.__exit__(None, None, None)


# ---------------------------------------------------------------------------
# images


def _image_seeds():
    digit = np.zeros((20, 16), np.uint8)
    digit[3:17, 6:10] = 255
    seeds = []
    for fmt, make in (("PNG", lambda: Image.fromarray(digit)), ("PNG", lambda: Image.fromarray(digit).convert("RGBA")),
                      ("PNG", lambda: Image.fromarray(digit).convert("P")), ("JPEG", lambda: Image.fromarray(digit)),
                      ("BMP", lambda: Image.fromarray(digit)), ("GIF", lambda: Image.fromarray(digit)),
                      ("TIFF", lambda: Image.fromarray(digit.astype(np.uint16) * 257)),
                      ("WEBP", lambda: Image.fromarray(digit).convert("RGB")), ("PPM", lambda: Image.fromarray(digit)),
                      ("TGA", lambda: Image.fromarray(digit)), ("ICO", lambda: Image.fromarray(digit))):
        buffer = io.BytesIO()
        make().save(buffer, format=fmt)
        seeds.append(buffer.getvalue())
    return seeds


IMAGE_SEEDS = _image_seeds()


def _digit_or_image_error(path, data):
    path.write_bytes(data)
    catcher = strict()
    try:
        digit = mnist_style(path)
    except ImageError as exc:
        assert str(exc).startswith(str(path))          # the message names the file
        return
    finally:
        catcher.__exit__(None, None, None)
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert np.isfinite(digit).all() and 0 <= digit.min() and digit.max() <= 1


def test_the_image_seeds_give_digits(scratch):
    for i, data in enumerate(IMAGE_SEEDS):
        path = scratch / f"seed{i}.img"
        path.write_bytes(data)
        assert mnist_style(path).shape == (28, 28)


@FUZZ
@given(data=hs.binary(min_size=1, max_size=200))
def test_images_random_bytes(scratch, data):
    _digit_or_image_error(scratch / "random.png", data)


@FUZZ
@given(data=mutations(IMAGE_SEEDS))
def test_images_mutated_files(scratch, data):
    _digit_or_image_error(scratch / "mutated.png", data)


VALUES = hs.sampled_from([0.0, 1.0, 0.5, -1.0, 255.0, 1e-45, 1e30, -1e30, 3e38, np.nan, np.inf, -np.inf])


@FUZZ
@given(h=hs.integers(0, 9), w=hs.integers(0, 9), channels=hs.sampled_from([None, 1, 2, 3, 4]),
       dtype=hs.sampled_from([np.float32, np.float64, np.float16, np.uint8]), seed=hs.integers(0, 2 ** 16),
       specials=hs.lists(hs.tuples(hs.integers(0, 1000), VALUES), max_size=3))
def test_mnist_style_on_random_small_arrays(h, w, channels, dtype, seed, specials):
    g = np.random.default_rng(seed)
    shape = (h, w) if channels is None else (h, w, channels)
    a = g.random(shape) * (255 if dtype == np.uint8 else 1)
    for where, value in specials:
        if a.size:
            a.flat[where % a.size] = value
    with np.errstate(all="ignore"):
        a = a.astype(dtype)
    catcher = strict()
    try:
        digit = mnist_style(a)
    except ValueError:                                  # ImageError (blank, NaN, empty) or a wrong shape
        return
    finally:
        catcher.__exit__(None, None, None)
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert np.isfinite(digit).all() and 0 <= digit.min() and digit.max() <= 1
