"""Bad input, wherever it enters, gives one clear error naming what was expected and what was received.

* every layer and the main ops: wrong rank, wrong channels, integer/bool/complex/object data, None, a
  string (one table, one row per layer or op);
* images: empty, huge, unusual modes (LA, CMYK, 16-bit TIFF, float TIFF with NaN, animated GIF),
  formats that are not raster images;
* IDX files: a decompression bomb, dimensions far beyond the file;
* checkpoints: tampered training checkpoints (refused, the model left untouched), malformed metadata;
* the command line: each of these as one line on stderr, exit code 2, no traceback.

The simpler cases (truncated or garbage files, wrong magic numbers, checkpoints of another model,
the CLI's argument errors) are in tests/data/, tests/test_serialization.py, tests/train/test_loop.py and
tests/test_cli.py.
"""
import gzip
import json
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import striate as st
import striate.functional as F
from striate import nn
from striate.cli import main
from striate.data import write_idx
from striate.data.idx import IDXError, read_idx
from striate.data.images import MAX_PIXELS, ImageError, load_image, mnist_style
from striate.serialization import CheckpointError
from striate.train import load_checkpoint, save_checkpoint

# ---------------------------------------------------------------------------
# layers and ops: one table
#
# name, a function of the input, a good input shape, whether the data must be float,
# and inputs of a wrong shape with the message each must give (it names the expected
# layout and the shape received).

CONV = r"expects input \(N, C, H, W\) with C=3"
POOL = r"expects input \(N, C, H, W\), got shape "

TABLE = [
    ("Conv2d", nn.Conv2d(3, 4, 3, rng=0), (2, 3, 8, 8), True,
     [((3, 8, 8), CONV + r".*got \(3, 8, 8\)"), ((2, 4, 8, 8), CONV + r".*got \(2, 4, 8, 8\)"),
      ((2, 3, 2, 2), r"kernel reaches 3×3 .* larger than the padded input 2×2")]),
    ("ConvTranspose2d", nn.ConvTranspose2d(3, 4, 3, rng=0), (2, 3, 8, 8), True,
     [((2, 3, 8), CONV + r".*got \(2, 3, 8\)"), ((2, 5, 8, 8), CONV + r".*got \(2, 5, 8, 8\)")]),
    ("FusedConv2d", nn.FusedConv2d(3, 2, 3, fusion="product", rng=0), (2, 3, 8, 8), True,
     [((1, 2, 3, 8, 8), CONV + r".*got \(1, 2, 3, 8, 8\)"), ((2, 1, 8, 8), CONV + r".*got \(2, 1, 8, 8\)")]),
    ("MaxPool2d", nn.MaxPool2d(2), (2, 3, 8, 8), True,
     [((3, 8, 8), POOL + r"\(3, 8, 8\)"), ((2, 3, 1, 1), r"window .* is larger than the padded input")]),
    ("AvgPool2d", nn.AvgPool2d(3, stride=2, padding=1), (2, 3, 8, 8), True, [((8, 8), POOL + r"\(8, 8\)")]),
    ("SumPool2d", nn.SumPool2d(2), (2, 3, 8, 8), True, [((2, 3, 8, 8, 1), POOL + r"\(2, 3, 8, 8, 1\)")]),
    ("MinPool2d", nn.MinPool2d(2), (2, 3, 8, 8), True, [((3, 8, 8), POOL + r"\(3, 8, 8\)")]),
    ("LPPool2d", nn.LPPool2d(3, 2), (2, 3, 8, 8), True, [((3, 8, 8), POOL + r"\(3, 8, 8\)")]),
    ("L2Pool2d", nn.L2Pool2d(2), (2, 3, 8, 8), True, [((3, 8, 8), POOL + r"\(3, 8, 8\)")]),
    ("AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d(2), (2, 3, 8, 8), True, [((3, 8, 8), POOL + r"\(3, 8, 8\)")]),
    ("AdaptiveMaxPool2d", nn.AdaptiveMaxPool2d(2), (2, 3, 8, 8), True, [((3, 8), POOL + r"\(3, 8\)")]),
    ("GlobalAvgPool2d", nn.GlobalAvgPool2d(), (2, 3, 8, 8), True, [((3, 8, 8), POOL + r"\(3, 8, 8\)")]),
    ("GlobalMaxPool2d", nn.GlobalMaxPool2d(), (2, 3, 8, 8), True, [((3, 8, 8), POOL + r"\(3, 8, 8\)")]),
    ("Linear", nn.Linear(5, 3, rng=0), (2, 5), True,
     [((2, 6), r"expects input \(\.\.\., 5\) to match weight \(3, 5\).*got \(2, 6\)"),
      ((), r"expects input \(\.\.\., 5\).*got \(\)")]),
    ("BatchNorm1d", nn.BatchNorm1d(3), (4, 3), True,
     [((4, 4), r"BatchNorm1d\(3\) expects input \(N, C\) or \(N, C, L\) with C=3, got \(4, 4\)"),
      ((3,), r"BatchNorm1d\(3\) expects .* got \(3,\)")]),
    ("BatchNorm2d", nn.BatchNorm2d(3), (4, 3, 2, 2), True,
     [((4, 3, 2), r"BatchNorm2d\(3\) expects input \(N, C, H, W\) with C=3, got \(4, 3, 2\)"),
      ((1, 3, 1, 1), r"needs more than one value per channel when training, got input \(1, 3, 1, 1\)")]),
    ("LayerNorm", nn.LayerNorm(3), (4, 3), True,
     [((4, 5), r"expects input \(\.\.\., 3\) ending in normalized_shape \(3,\), got \(4, 5\)")]),
    ("LocalResponseNorm", nn.LocalResponseNorm(3), (2, 4, 4, 4), True,
     [((4,), r"expects input \(N, C, L\) or \(N, C, H, W\), got shape \(4,\)")]),
    ("Dropout2d", nn.Dropout2d(0.5), (2, 3, 4, 4), True,
     [((2, 3), r"expects input \(N, C, H, W\), got shape \(2, 3\)")]),
    ("Dropout", nn.Dropout(0.5), (2, 3), True, []),
    ("ReLU", nn.ReLU(), (2, 3), True, []),
    ("LeakyReLU", nn.LeakyReLU(), (2, 3), True, []),
    ("Tanh", nn.Tanh(), (2, 3), True, []),
    ("ScaledTanh", nn.ScaledTanh(), (2, 3), True, []),
    ("Sigmoid", nn.Sigmoid(), (2, 3), True, []),
    ("Softmax", nn.Softmax(1), (2, 3), True, [((3,), r"dim=1 is out of range for a tensor with 1 dimension")]),
    ("LogSoftmax", nn.LogSoftmax(1), (2, 3), True, [((), r"dim=1 is out of range for a tensor with 0 dimension")]),
    ("Flatten", nn.Flatten(), (2, 3, 4), False, [((3,), r"start_dim=1 is out of range for a tensor with 1")]),
    ("Unflatten", nn.Unflatten(1, (2, 3)), (2, 6), False,
     [((2, 7), r"axis 1 of input \(2, 7\) has 7 elements, which cannot be split into \(2, 3\)"),
      ((6,), r"dim=1 is out of range for input \(6,\)")]),
    ("ZeroPad2d", nn.ZeroPad2d(1), (2, 3, 4, 4), False, [((), r"padding needs .* for a 0-D input")]),
    ("Residual", nn.Residual(nn.Conv2d(3, 3, 3, padding=1, rng=0)), (2, 3, 5, 5), True,
     [((2, 4, 5, 5), CONV + r".*got \(2, 4, 5, 5\)")]),
    ("Concat", nn.Concat(nn.Conv2d(3, 2, 1, rng=0), nn.Conv2d(3, 2, 3, padding=1, rng=0)), (2, 3, 5, 5), True,
     [((2, 3, 5), CONV + r".*got \(2, 3, 5\)")]),
    ("Sequential", nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.Flatten(), nn.Linear(18, 2, rng=0)), (2, 1, 5, 5), True,
     [((2, 1, 6, 6), r"linear expects input \(\.\.\., 18\) .* got \(2, 32\)")]),
    # the functional ops, called directly
    ("conv2d", lambda x: F.conv2d(x, np.ones((4, 3, 3, 3), np.float32)), (1, 3, 5, 5), True,
     [((1, 5, 5), CONV + r".*got \(1, 5, 5\)")]),
    ("max_pool2d", lambda x: F.max_pool2d(x, 2), (1, 3, 4, 4), True, [((4, 4), POOL + r"\(4, 4\)")]),
    ("l2_pool2d", lambda x: F.l2_pool2d(x, 2), (1, 3, 4, 4), True, [((4, 4), POOL + r"\(4, 4\)")]),
    ("softmax", lambda x: F.softmax(x, dim=-1), (2, 3), True, [((), r"out of range for a tensor with 0 dim")]),
    ("cross_entropy", lambda x: F.cross_entropy(x, np.array([0, 2])), (2, 3), True,
     [((3, 3), r"expects target of shape \(3,\) for input \(3, 3\).*got \(2,\)"), ((), r"got a scalar")]),
    ("mse_loss", lambda x: F.mse_loss(x, np.zeros((2, 3), np.float32)), (2, 3), True,
     [((2, 4), r"expects input and target of the same shape, got \(2, 4\) and \(2, 3\)")]),
    ("batch_norm", lambda x: F.batch_norm(x, None, None, training=True), (4, 3, 2, 2), True,
     [((4,), r"expects input \(N, C\), \(N, C, L\) or \(N, C, H, W\), got shape \(4,\)")]),
    ("local_response_norm", lambda x: F.local_response_norm(x, 3), (1, 4, 3, 3), True,
     [((), r"expects input \(N, C, L\) or \(N, C, H, W\), got shape \(\)")]),
    ("linear", lambda x: F.linear(x, np.ones((2, 3), np.float32)), (4, 3), True,
     [((4, 2), r"expects input \(\.\.\., 3\) to match weight \(2, 3\)")]),
    ("flatten", lambda x: F.flatten(x), (2, 3, 4), False, []),
    ("pad", lambda x: F.pad(x, 1), (1, 1, 3, 3), False, []),
]
IDS = [row[0] for row in TABLE]

# Data that no op takes, with the words the error must contain (what was received).
NOT_NUMBERS = [
    (None, r"expects \w+ as a Tensor or array, got None"),
    ("a picture", r"expects \w+ as a Tensor or array, got str"),
    (np.zeros((2, 2), np.complex64), r"got (an array of )?dtype complex64"),
    (np.array([[object(), object()]]), r"got (an array of )?dtype object"),
]


@pytest.mark.parametrize("name, layer, shape, float_only, bad_shapes", TABLE, ids=IDS)
def test_wrong_shapes_name_expected_and_received(name, layer, shape, float_only, bad_shapes):
    out = layer(np.ones(shape, np.float32))                       # the good input works
    assert isinstance(out, st.Tensor) and np.isfinite(out.data).all()
    for bad, message in bad_shapes:
        with pytest.raises(ValueError, match=message):
            layer(np.ones(bad, np.float32))


@pytest.mark.parametrize("name, layer, shape, float_only, bad_shapes", TABLE, ids=IDS)
@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_])
def test_integer_and_bool_data_is_refused_not_converted(name, layer, shape, float_only, bad_shapes, dtype):
    x = np.ones(shape, dtype)
    if float_only:
        with pytest.raises(TypeError, match=rf"expects a float32 or float64 .*got dtype {np.dtype(dtype)}"):
            layer(x)
        with pytest.raises(TypeError, match=rf"got dtype {np.dtype(dtype)}"):
            layer(st.Tensor(x, dtype=dtype))
    else:                                                         # moving data around: the dtype is kept
        assert layer(x).dtype == dtype


@pytest.mark.parametrize("name, layer, shape, float_only, bad_shapes", TABLE, ids=IDS)
def test_things_that_are_not_numbers_are_refused(name, layer, shape, float_only, bad_shapes):
    for value, message in NOT_NUMBERS:
        with pytest.raises(TypeError, match=message):
            layer(value)


def test_every_public_layer_is_in_the_table():
    """A new layer must be added to the table above (or here, with the reason it is left out)."""
    left_out = {"Module", "ModuleList", "Parameter", "Identity", "init",   # containers, passes anything
                "ConstantPad2d"}                                          # ZeroPad2d stands for it
    assert set(nn.__all__) - left_out - set(IDS) == set()


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.conv2d(np.ones((1, 3, 5, 5), np.float32), np.ones((2, 3, 3), np.float32)), ValueError,
     r"expects weight \(K, C/groups, kh, kw\), got shape \(2, 3, 3\)"),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5), np.float32), np.ones((2, 3, 3, 3))), TypeError,
     r"expects all arrays of one dtype, got input float32, weight float64"),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5), np.float32), np.ones((2, 3, 3, 3), np.int32)), TypeError,
     r"expects a float32 or float64 weight, got dtype int32"),
    (lambda: F.linear(np.ones((1, 3), np.float32), np.ones((2, 3), np.int64)), TypeError,
     r"linear expects all arrays of one dtype, got input float32, weight int64"),
    (lambda: F.cross_entropy(np.zeros((4, 3), np.float32), np.zeros(4, np.float32)), TypeError,
     r"expects integer class indices as target, got dtype float32"),
    (lambda: F.cross_entropy(np.zeros((4, 3), np.float32), np.full(4, 3)), ValueError,
     r"target 3 is out of range for C=3 classes"),
    (lambda: F.batch_norm(np.zeros((4, 3), np.float32), np.zeros(4, np.float32), np.ones(4, np.float32)),
     ValueError, r"running_mean as floats of shape \(3,\) \(one per channel\), got float32 \(4,\)"),
    (lambda: F.concat([np.zeros((2, 3)), None]), TypeError, r"concat expects tensor 1 as a Tensor or array, got None"),
    (lambda: F.dropout(np.zeros((2, 2), np.float32), p=1.5), ValueError, r"must be a number between 0 and 1, got 1.5"),
])
def test_bad_second_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------------------
# images


def _png_claiming(path, width, height):
    """A PNG whose header claims width × height pixels, with (almost) no pixel data: a decompression bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (2 ** 31 - 1, 1), (10_000, 6_401)])
def test_huge_images_are_refused_before_decoding(tmp_path, width, height):
    """Beyond Pillow's own limit, and beyond ours (MAX_PIXELS) below it: no gigabytes are allocated."""
    assert width * height > MAX_PIXELS
    path = _png_claiming(tmp_path / "huge.png", width, height)
    with pytest.raises(ImageError, match=r"huge\.png: (the )?image is (too large|\d+×\d+ = [\d,]+ pixels)"
                                         r".*at most 64,000,000"):
        load_image(path)


def _digit(h=40, w=30):
    a = np.zeros((h, w), np.uint8)
    a[5:35, 12:18] = 255
    return a


@pytest.mark.parametrize("name, write", [
    ("la.png", lambda p: Image.fromarray(np.stack([_digit(), _digit()], 2), "LA").save(p)),
    ("cmyk.jpg", lambda p: Image.fromarray(_digit()).convert("CMYK").save(p)),
    ("gray16.tif", lambda p: Image.fromarray(_digit().astype(np.uint16) * 257).save(p)),
    ("float.tif", lambda p: Image.fromarray(_digit().astype(np.float32) / 255, "F").save(p)),
    ("int32.tif", lambda p: Image.fromarray(_digit().astype(np.int32) * 257, "I").save(p)),
    ("animated.gif", lambda p: Image.fromarray(_digit()).save(p, save_all=True,
                                                             append_images=[Image.fromarray(255 - _digit())])),
    ("palette-transparent.png", lambda p: Image.fromarray(_digit()).convert("P").save(p, transparency=0)),
    ("tall.png", lambda p: Image.fromarray(np.tile(np.array([[0], [255]], np.uint8), (20, 1))).save(p)),
    ("one-row.png", lambda p: Image.fromarray(np.tile(np.array([[0, 255]], np.uint8), (1, 20))).save(p)),
    ("icon.ico", lambda p: Image.fromarray(_digit()).resize((32, 32)).save(p)),
])
def test_unusual_image_modes_still_give_a_digit(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    with _no_warnings():
        digit = mnist_style(path)
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert 0 <= digit.min() and digit.max() == pytest.approx(1.0)


class _no_warnings:
    """Fail if the block warns: a user must see one clear result or one clear error, not warnings."""

    def __enter__(self):
        import warnings
        self.catcher = warnings.catch_warnings(record=True)
        self.caught = self.catcher.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self.catcher.__exit__(*exc)
        assert not self.caught, [str(w.message) for w in self.caught]


@pytest.mark.parametrize("name, write, message", [
    ("nan.tif", lambda p: Image.fromarray(np.full((10, 10), np.nan, np.float32), "F").save(p),
     r"holds NaN or infinite values"),
    ("inf.tif", lambda p: Image.fromarray(np.where(_digit() > 0, np.inf, 0).astype(np.float32), "F").save(p),
     r"holds NaN or infinite values"),
    ("transparent.png", lambda p: Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(p), r"no digit found"),
    ("dot.png", lambda p: Image.new("L", (1, 1), 255).save(p), r"no digit found"),
    ("page.pdf", lambda p: Image.fromarray(_digit()).save(p), r"not a readable image"),
    ("drawing.svg", lambda p: p.write_text("<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'/>"),
     r"not a readable image"),
    ("page.html", lambda p: p.write_text("<html><body><img src='7.png'></body></html>"), r"not a readable image"),
    ("array.npy", lambda p: np.save(p, _digit()), r"not a readable image"),
    ("zero.png", lambda p: _png_claiming(p, 0, 0), r"not a readable image"),
    ("labels.gz", lambda p: p.write_bytes(gzip.compress(bytes(100))), r"not a readable image"),
])
def test_what_is_not_a_usable_image_is_one_image_error(tmp_path, name, write, message):
    path = tmp_path / name
    write(path)
    with _no_warnings(), pytest.raises(ImageError, match=re.escape(str(path)) + ": .*" + message):
        mnist_style(path)


# ---------------------------------------------------------------------------
# IDX files


def test_a_gzip_bomb_is_not_inflated(tmp_path):
    """A 0.5 MB file that inflates to 512 MB behind a header declaring 10 bytes: refused after ~1 MB."""
    import tracemalloc
    bomb = tmp_path / "train-labels-idx1-ubyte.gz"
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)                 # wbits 31: the gzip format
    zeros = bytes(1 << 20)
    parts = [packer.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 10))]
    parts += [packer.compress(zeros) for _ in range(512)]
    bomb.write_bytes(b"".join(parts) + packer.flush())
    assert bomb.stat().st_size < 4 << 20
    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match=r"longer than its header declares: expected 18 bytes, got more than"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2 ** 20


def test_dimensions_far_beyond_the_file(tmp_path):
    path = tmp_path / "claims.idx"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1) + bytes(10))
    with pytest.raises(IDXError,
                       match=r"length does not match its header: expected \d+ bytes .* got 26 \(truncated\?\)"):
        read_idx(path)
    path.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(IDXError, match=r"decompressed content length does not match its header"):
        read_idx(path)


# ---------------------------------------------------------------------------
# checkpoints


def _tiny():
    st.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 3))
    opt = st.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = st.optim.lr_scheduler.StepLR(opt, 1)
    return model, opt, sched


@pytest.fixture
def checkpoint(tmp_path):
    model, opt, sched = _tiny()
    model(np.ones((2, 1, 4, 4), np.float32)).sum().backward()
    opt.step()
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, model, opt, sched, {"epoch": 2, "batch": 3, "partial": None}, [], {"seed": 1})
    return path


def _rewrite_meta(path, change):
    """Rewrite the file with ``change(meta)`` applied to its striate_checkpoint metadata."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    user = json.loads(header["__metadata__"]["striate.metadata"])
    change(user["striate_checkpoint"])
    header["__metadata__"]["striate.metadata"] = json.dumps(user)
    body = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n:])


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(position={"epoch": "two", "batch": 0}), r"its position is epoch 'two', batch 0"),
    (lambda m: m.update(position={"epoch": 0, "batch": -1}), r"epoch >= 1, batch >= 0"),
    (lambda m: m.update(position=None), r"its position is None"),
    (lambda m: m["position"].update(partial={"loss_sum": "x"}), r"running sums of the epoch in progress"),
    (lambda m: m.update(history=[{"epoch": 1}]), r"history of finished epochs"),
    (lambda m: m.update(rng=[1, 2]), r"rng is \[1, 2\], expected a dict"),
    (lambda m: m["rng"].update(state={"state": -1, "inc": "x"}), r"random generator's state is damaged"),
    (lambda m: m.pop("rng"), r"no state of the random generator"),
])
def test_a_tampered_checkpoint_is_refused_and_changes_nothing(checkpoint, change, message):
    _rewrite_meta(checkpoint, change)
    model, opt, sched = _tiny()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    rng_before = st.random.get_state()
    with pytest.raises(ValueError, match=re.escape(str(checkpoint)) + ": .*" + message):
        load_checkpoint(checkpoint, model, opt, sched)
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k]), k
    assert opt.state == {} and st.random.get_state() == rng_before


def test_a_checkpoint_for_another_optimizer_state_is_refused_and_rolled_back(checkpoint):
    """The model loads, the optimizer's state does not fit: the model is put back as it was."""
    st.manual_seed(0)
    model, _, _ = _tiny()
    other = st.optim.SGD(list(model.parameters())[:2], lr=0.1)       # fewer parameters than saved
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"does not fit this optimizer \(SGD\): .*group 0 has 6 parameter"):
        load_checkpoint(checkpoint, model, other, st.optim.lr_scheduler.StepLR(other, 1))
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k]), k


@pytest.mark.parametrize("tree, message", [
    ({"$dict": 5}, r"a \$dict marker is not a list of \[key, value\] pairs"),
    ({"$dict": [[1]]}, r"a \$dict marker"),
    ({"$dict": [[[1, 2], 3]]}, r"a \$dict marker"),
    ({"$tuple": 5}, r"a \$tuple marker holds a int, not a list"),
    ({"$array": [1]}, r"refers to an array \[1\] that the file does not contain"),
    ("deep", r"(nested too deeply|not valid JSON)"),
])
def test_malformed_checkpoint_metadata_is_a_checkpoint_error(tmp_path, tree, message):
    path = tmp_path / "ckpt.safetensors"
    st.save({"w": np.ones(2, np.float32)}, path)
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header["__metadata__"]["striate.tree"] = ("[" * 100_000 + "]" * 100_000) if tree == "deep" else json.dumps(tree)
    body = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n:])
    with pytest.raises(CheckpointError, match=message):
        st.load(path)


# ---------------------------------------------------------------------------
# the command line


def assert_one_line_error(code, err, pattern):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("striate: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A finished run of the MLP on a tiny data set (one epoch), and that data set."""
    data = tmp_path_factory.mktemp("toy")
    g = np.random.default_rng(0)
    for split, n in (("train", 64), ("t10k", 100)):
        write_idx(data / f"{split}-images-idx3-ubyte", g.integers(0, 255, (n, 28, 28)).astype(np.uint8))
        write_idx(data / f"{split}-labels-idx1-ubyte", g.integers(0, 10, n).astype(np.uint8))
    out = tmp_path_factory.mktemp("runs") / "mlp"
    assert main(["train", "mlp", "--data-dir", str(data), "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    return out, data


def test_cli_bad_files_are_one_line(run_folder, tmp_path, capsys):
    import shutil
    out, data = run_folder
    capsys.readouterr()
    digit = tmp_path / "digit.png"
    Image.fromarray(_digit()).save(digit)

    def check(argv, pattern):
        code = main([str(a) for a in argv])
        assert_one_line_error(code, capsys.readouterr().err, pattern)

    cut = tmp_path / "cut.safetensors"                            # a truncated weights file
    cut.write_bytes((out / "model.safetensors").read_bytes()[:300])
    shutil.copy(out / "config.json", tmp_path / "config.json")
    check(["predict", cut, digit], r"cut\.safetensors: .*(truncated|bytes)")
    check(["evaluate", cut, "--data-dir", data], r"cut\.safetensors: ")

    broken = tmp_path / "broken-config"                           # config.json is not JSON
    shutil.copytree(out, broken)
    (broken / "config.json").write_text("{ not json")
    check(["predict", broken, digit], r"config\.json: not valid JSON")
    (broken / "config.json").write_text(json.dumps({"model": {"name": "resnet152"}}))
    check(["predict", broken, digit], r"cannot rebuild the model: unknown model 'resnet152'")
    (broken / "config.json").write_text(json.dumps({"model": {"name": "mlp", "kwargs": {"hidden": "wide"}}}))
    check(["predict", broken, digit], r"cannot rebuild the model: ")
    (broken / "config.json").write_text(json.dumps([1, 2]))
    check(["predict", broken, digit], r"config\.json: expected a JSON object, got list")

    weights_only = tmp_path / "weights.safetensors"               # a file whose metadata describes no model
    st.save({"w": np.ones(2, np.float32)}, weights_only, metadata={"config": [1, 2]})
    check(["predict", weights_only, digit], r"model description in the file's metadata is a list")

    bad_data = tmp_path / "bad-data"                               # IDX files cut short
    shutil.copytree(data, bad_data)
    labels = bad_data / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:50])
    check(["evaluate", out, "--data-dir", bad_data], r"t10k-labels-idx1-ubyte: file length does not match "
                                                     r"its header: expected 108 bytes .* got 50 \(truncated\?\)")
    swapped = bad_data / "t10k-images-idx3-ubyte"
    swapped.write_bytes((data / "t10k-labels-idx1-ubyte").read_bytes())
    check(["evaluate", out, "--data-dir", bad_data], r"t10k-images-idx3-ubyte: expected magic 2051 .* got 2049")

    big = _png_claiming(tmp_path / "huge.png", 100_000, 100_000)
    check(["predict", out, big], r"huge\.png: the image is too large")
    eps = tmp_path / "seven.eps"
    eps.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n")
    check(["predict", out, eps], r"seven\.eps: not a readable image")
