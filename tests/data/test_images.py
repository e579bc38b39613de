"""load_image and mnist_style: a user's own picture of a digit, in any common format, becomes an MNIST-like 28×28."""
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from striate.data.images import ImageError, load_image, mnist_style, to_grayscale

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def draw_seven(width=240, height=180, ink=0, paper=255, stroke=18) -> np.ndarray:
    """A '7' with a crossbar, dark on light by default, off-centre on purpose: (H, W) uint8."""
    canvas = Image.new("L", (width, height), paper)
    pen = ImageDraw.Draw(canvas)
    s = width / 240                                   # the drawing scales with the canvas, the pen does not
    pen.line([(60 * s, 30 * s), (170 * s, 30 * s), (100 * s, 160 * s)], fill=ink, width=stroke)
    pen.line([(95 * s, 95 * s), (150 * s, 95 * s)], fill=ink, width=stroke)
    return np.asarray(canvas)


@pytest.fixture(scope="module")
def seven():
    return draw_seven()


@pytest.fixture(scope="module")
def reference(seven):
    return mnist_style(seven.astype(np.float32) / 255)


def test_reference_is_a_centred_white_digit_on_black(reference):
    assert reference.shape == (28, 28) and reference.dtype == np.float32
    assert reference.min() == 0.0 and reference.max() == pytest.approx(1.0)
    # background black: the border is empty
    assert reference[0].max() == reference[-1].max() == reference[:, 0].max() == reference[:, -1].max() == 0
    ink = np.argwhere(reference > 0.2)
    height, width = ink.max(axis=0) - ink.min(axis=0) + 1
    assert max(height, width) in (19, 20, 21)                   # fitted to the 20×20 box
    mass = reference.sum()
    cy = (reference.sum(axis=1) * np.arange(28)).sum() / mass
    cx = (reference.sum(axis=0) * np.arange(28)).sum() / mass
    assert abs(cy - 14) <= 0.6 and abs(cx - 14) <= 0.6         # centred by mass, as MNIST


def _writers(seven):
    rgb = np.stack([seven] * 3, axis=2)
    tinted = np.stack([seven, (seven * 0.9).astype(np.uint8), seven], axis=2)   # slightly coloured ink
    rgba = np.zeros(seven.shape + (4,), np.uint8)                # black ink, transparent paper
    rgba[..., 3] = 255 - seven
    white_ink = rgba.copy()                                      # white ink, transparent paper
    white_ink[..., :3] = 255
    sixteen = (seven.astype(np.uint16) * 257)
    return {
        "gray.png": lambda p: Image.fromarray(seven).save(p),
        "rgb.png": lambda p: Image.fromarray(rgb).save(p),
        "tinted.png": lambda p: Image.fromarray(tinted).save(p),
        "rgba.png": lambda p: Image.fromarray(rgba, "RGBA").save(p),
        "white-ink-rgba.png": lambda p: Image.fromarray(white_ink, "RGBA").save(p),
        "palette.png": lambda p: Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(p),
        "bilevel.png": lambda p: Image.fromarray(seven).point(lambda v: 255 if v > 127 else 0).convert("1").save(p),
        "gray16.png": lambda p: Image.fromarray(sixteen).save(p),
        "light-on-dark.png": lambda p: Image.fromarray(255 - seven).save(p),
        "light-on-dark-rgb.png": lambda p: Image.fromarray(255 - rgb).save(p),
        "photo.jpg": lambda p: Image.fromarray(rgb).save(p, quality=85),
        "gray.bmp": lambda p: Image.fromarray(seven).save(p),
        "gray.gif": lambda p: Image.fromarray(seven).save(p),
    }


@pytest.mark.parametrize("name", sorted(_writers(np.zeros((2, 2), np.uint8))))
def test_every_format_gives_the_same_digit(tmp_path, seven, reference, name):
    path = tmp_path / name
    _writers(seven)[name](path)
    gray = load_image(path)
    assert gray.dtype == np.float32 and gray.shape == seven.shape
    assert 0.0 <= gray.min() and gray.max() <= 1.0
    digit = mnist_style(path)
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    lossy = name.endswith(".jpg") or name.startswith("bilevel")
    assert np.abs(digit - reference).mean() < (0.03 if lossy else 0.01), name
    assert np.corrcoef(digit.ravel(), reference.ravel())[0, 1] > (0.97 if lossy else 0.995), name


def test_sixteen_bit_values_are_scaled_by_the_bit_depth(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    np.testing.assert_allclose(load_image(tmp_path / "ramp.png"), ramp / 65535, atol=1e-6)


def test_rgb_mode_and_grayscale(tmp_path, seven):
    rgb = np.stack([seven, seven // 2, 255 - seven], axis=2)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    colour = load_image(tmp_path / "c.png", mode="RGB")
    assert colour.shape == seven.shape + (3,)
    np.testing.assert_allclose(colour, rgb / 255, atol=1e-6)
    np.testing.assert_allclose(to_grayscale(colour), load_image(tmp_path / "c.png"), atol=2 / 255)
    with pytest.raises(ValueError, match="mode must be 'L' or 'RGB'"):
        load_image(tmp_path / "c.png", mode="CMYK")
    with pytest.raises(ValueError, match=r"to_grayscale expects .* got shape \(2, 2, 2\)"):
        to_grayscale(np.zeros((2, 2, 2)))


def test_exif_orientation_is_applied(tmp_path, seven):
    upright = mnist_style(seven.astype(np.float32) / 255)
    rotated = Image.fromarray(np.rot90(seven, k=1).copy())   # stored turned, with a tag that turns it back
    exif = Image.Exif()
    exif[0x0112] = 6                                          # "rotate 90° clockwise to display"
    rotated.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "turned.jpg")
    assert loaded.shape == seven.shape
    assert np.corrcoef(mnist_style(loaded).ravel(), upright.ravel())[0, 1] > 0.97


def test_size_and_position_do_not_matter(seven, reference):
    small = Image.fromarray(seven).resize((60, 45), Image.LANCZOS)
    big = np.full((1500, 2000), 255, np.uint8)
    big[700:700 + 720, 100:100 + 960] = np.asarray(Image.fromarray(seven).resize((960, 720), Image.LANCZOS))
    for variant in (np.asarray(small), big):
        digit = mnist_style(variant.astype(np.float32) / 255)
        assert np.corrcoef(digit.ravel(), reference.ravel())[0, 1] > 0.95


@pytest.mark.parametrize("stroke", [1, 4])
def test_a_thin_pen_stroke_is_thickened_to_mnist_width(stroke):
    from striate.data.images import _stroke_width
    thin = draw_seven(1200, 900, stroke=stroke)              # a fine pen on a big canvas
    digit = mnist_style(thin.astype(np.float32) / 255)
    # Shrunk 25 times without thickening, this would be a faint hairline. MNIST's digits
    # hold 46 to 150 units of ink with strokes 2 to 4 pixels wide (5th to 95th percentile).
    assert 46 < digit.sum() < 150
    assert 2.0 <= _stroke_width(digit > 0.5) <= 4.1


def test_mnist_digit_survives_a_round_trip_through_a_large_dark_on_light_png(tmp_path):
    files = SHARED_MNIST / "t10k-images-idx3-ubyte.gz"
    if not files.exists():
        pytest.skip(f"MNIST test images not found in {SHARED_MNIST}")
    from striate.data import read_idx
    images = read_idx(files)[:24]
    correlations = []
    for i, image in enumerate(images):
        path = tmp_path / f"{i}.png"
        Image.fromarray(255 - image).resize((336, 336), Image.BICUBIC).save(path)   # 12× larger, inverted
        digit = mnist_style(path)
        correlations.append(np.corrcoef(digit.ravel(), image.ravel() / 255)[0, 1])
    assert np.median(correlations) > 0.95
    assert min(correlations) > 0.5


# -- what cannot be read: ImageError naming the file ------------------------------------------------


def test_missing_empty_and_folder(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png: no such image file"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.png: the file is empty"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(ImageError, match=r"is a folder"):
        load_image(tmp_path)


def test_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("these are my notes, not a picture\n")
    with pytest.raises(ImageError, match=r"notes\.png: not a readable image"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(ImageError, match=r"notes\.png: not a readable image"):
        mnist_style(tmp_path / "notes.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file(tmp_path, seven, suffix):
    noisy = (np.random.default_rng(0).random(seven.shape) * 255).astype(np.uint8)   # compresses poorly
    whole = tmp_path / f"whole{suffix}"
    Image.fromarray(noisy).save(whole)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ImageError, match=rf"cut\{suffix}: the image data is damaged or truncated"):
        load_image(cut)


def test_gzip_is_not_an_image(tmp_path):
    path = tmp_path / "digits.png"
    path.write_bytes(gzip.compress(b"\x00" * 100))
    with pytest.raises(ImageError, match="digits.png"):
        load_image(path)


@pytest.mark.parametrize("value", [0, 128, 255])
def test_blank_image(tmp_path, value):
    path = tmp_path / "blank.png"
    Image.new("L", (50, 40), value).save(path)
    with pytest.raises(ImageError, match=r"blank\.png: no digit found"):
        mnist_style(path)
    with pytest.raises(ImageError, match="no digit found"):
        mnist_style(np.full((10, 10), value / 255, np.float32))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions (not root)")
def test_unreadable_file(tmp_path, seven):
    path = tmp_path / "locked.png"
    Image.fromarray(seven).save(path)
    path.chmod(0)
    try:
        with pytest.raises(ImageError, match=r"locked\.png: cannot read"):
            load_image(path)
    finally:
        path.chmod(0o644)


def test_bad_arrays_and_arguments():
    with pytest.raises(ImageError, match="empty"):
        mnist_style(np.zeros((0, 5), np.float32))
    with pytest.raises(ImageError, match="NaN"):
        mnist_style(np.full((5, 5), np.nan, np.float32))
    with pytest.raises(ValueError, match="box <= size"):
        mnist_style(np.eye(5, dtype=np.float32), size=10, box=12)


def test_huge_image_is_refused_before_decoding(tmp_path, monkeypatch):
    import striate.data.images as images
    path = tmp_path / "big.png"
    Image.new("L", (300, 200), 255).save(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 300 * 200 - 1)
    with pytest.raises(ImageError, match=r"big\.png: image is 300×200"):
        load_image(path)
