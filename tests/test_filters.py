"""Hand-made kernels: exact values, and striate's filtering against scipy.ndimage and OpenCV on real photos."""

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image

from striate import cli, filters
from striate.data.samples import load_sample, resize, sample_names
from striate.viz.images import filter_grid_size

cv2.setNumThreads(1)


def run_cli(argv) -> int:
    """``striate ARGV`` in-process; returns the exit code."""
    return cli.main(argv)


@pytest.fixture(scope="module")
def photo():
    """A real colour photo (matplotlib's Grace Hopper), shrunk to keep the tests fast, float64."""
    return resize(load_sample("grace-hopper"), 96).astype(np.float64)


@pytest.fixture(scope="module")
def gray(photo):
    return photo @ np.array([0.299, 0.587, 0.114])


# ---------------------------------------------------------------------------
# the bank


def test_bank_values_are_the_documented_ones():
    K = filters.KERNELS
    assert np.array_equal(K["sobel-x"], [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    assert np.array_equal(K["sobel-y"], K["sobel-x"].T)
    assert np.array_equal(K["prewitt-y"], K["prewitt-x"].T)
    assert np.array_equal(K["laplacian-4"], [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    assert np.array_equal(K["laplacian-8"], [[1, 1, 1], [1, -8, 1], [1, 1, 1]])
    assert np.array_equal(K["sharpen"], K["identity"] * 2 - K["laplacian-4"] - K["identity"])
    assert np.array_equal(K["line-vertical"], K["line-horizontal"].T)
    assert np.array_equal(K["line-135"], K["line-45"][:, ::-1])
    assert np.array_equal(K["oblique"], np.eye(3)[:, ::-1])
    for name, k in K.items():
        assert k.dtype == np.float32 and k.ndim == 2, name
    for name in ("identity", "box-3", "box-5", "gaussian", "sharpen", "emboss"):
        assert abs(K[name].sum() - 1) < 1e-6, name                 # brightness kept
    for name in ("laplacian-4", "laplacian-8", "sobel-x", "sobel-y", "prewitt-x", "prewitt-y",
                 "line-horizontal", "line-vertical", "line-45", "line-135"):
        assert K[name].sum() == 0, name                             # flat areas give 0
    assert K["gaussian"].shape == (5, 5)
    assert set(filters.names()) == set(K) | set(filters.MAGNITUDES)
    assert all(filters.describe(n) for n in filters.names())


def test_gaussian_kernel_follows_scipy_truncation():
    k = filters.gaussian_kernel(1.5, truncate=3.0, dtype=np.float64)
    assert k.shape == (2 * int(3.0 * 1.5 + 0.5) + 1,) * 2
    assert abs(k.sum() - 1) < 1e-12 and np.array_equal(k, k.T)
    assert filters.get_kernel("gaussian:2").shape == (17, 17)       # radius int(4·2 + 0.5) = 8
    assert filters.gaussian_kernel(1.0, radius=0).tolist() == [[1.0]]


def test_flip_relations():
    assert filters.flip_relation(filters.KERNELS["sobel-x"]) == "negated"
    assert filters.flip_relation(filters.KERNELS["emboss"]) == "different"
    for name in ("gaussian", "sharpen", "laplacian-8", "line-45", "oblique", "box-5"):
        assert filters.flip_relation(filters.KERNELS[name]) == "same", name
        assert filters.is_flip_symmetric(filters.KERNELS[name])
    assert filters.flip(np.arange(6).reshape(2, 3)).tolist() == [[5, 4, 3], [2, 1, 0]]


def test_parse_kernel():
    k = filters.parse_kernel("1 0 -1; 2, 0, -2\n1/2 0 -1/2", dtype=np.float64)
    assert k.tolist() == [[1, 0, -1], [2, 0, -2], [0.5, 0, -0.5]]
    with pytest.raises(ValueError, match="rows of equal length"):
        filters.parse_kernel("1 2; 3")
    with pytest.raises(ValueError, match="'x' is not a number"):
        filters.parse_kernel("1 x")


# ---------------------------------------------------------------------------
# against scipy.ndimage


@pytest.mark.parametrize("trial", range(6))
def test_apply_and_convolve_match_scipy_zero_padding(rng, trial):
    H, W = rng.integers(5, 14, size=2)
    kh, kw = rng.choice([1, 3, 5], size=2)
    image = rng.standard_normal((H, W))
    kernel = rng.standard_normal((kh, kw))
    np.testing.assert_allclose(filters.apply(image, kernel), ndi.correlate(image, kernel, mode="constant"),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(filters.convolve(image, kernel), ndi.convolve(image, kernel, mode="constant"),
                               rtol=1e-12, atol=1e-12)


def test_even_kernels_match_scipy_moved_by_one_pixel(rng):
    image = rng.standard_normal((9, 11))
    kernel = rng.standard_normal((2, 4))
    ours, theirs = filters.apply(image, kernel), ndi.correlate(image, kernel, mode="constant")
    # "same": PyTorch pads the extra row/column at the bottom/right, scipy at the top/left
    np.testing.assert_allclose(ours[:-1, :-1], theirs[1:, 1:], atol=1e-12)
    np.testing.assert_allclose(filters.convolve(image, kernel), ndi.convolve(image, kernel, mode="constant"),
                               atol=1e-12)


@pytest.mark.parametrize("border, mode", [("zeros", "constant"), ("reflect", "mirror"), ("replicate", "nearest")])
def test_named_filters_match_scipy_on_a_photo(gray, border, mode):
    g = gray
    for name, axis in (("sobel-x", 1), ("sobel-y", 0)):
        np.testing.assert_allclose(filters.apply(g, name, border=border), ndi.sobel(g, axis=axis, mode=mode),
                                   atol=1e-12)
    for name, axis in (("prewitt-x", 1), ("prewitt-y", 0)):
        np.testing.assert_allclose(filters.apply(g, name, border=border), ndi.prewitt(g, axis=axis, mode=mode),
                                   atol=1e-12)
    magnitude = np.hypot(ndi.sobel(g, axis=0, mode=mode), ndi.sobel(g, axis=1, mode=mode))
    np.testing.assert_allclose(filters.apply(g, "sobel", border=border), magnitude, atol=1e-12)
    np.testing.assert_allclose(filters.apply(g, "laplacian-4", border=border), ndi.laplace(g, mode=mode), atol=1e-12)
    for sigma, truncate in ((1.0, 4.0), (1.7, 2.5), (0.6, 3.0)):
        k = filters.gaussian_kernel(sigma, truncate=truncate, dtype=np.float64)
        np.testing.assert_allclose(filters.apply(g, k, border=border),
                                   ndi.gaussian_filter(g, sigma, truncate=truncate, mode=mode), atol=1e-12)
    box = filters.get_kernel("box-5", dtype=np.float64)
    np.testing.assert_allclose(filters.apply(g, "box-5", border=border), ndi.uniform_filter(g, 5, mode=mode),
                               atol=1e-12)
    assert np.array_equal(filters.apply(g, box, border=border), filters.apply(g, "box-5", border=border))


# ---------------------------------------------------------------------------
# against OpenCV's filter2D (a correlation, like conv2d) on real colour photos


@pytest.mark.parametrize("name", ["sharpen", "emboss", "sobel-x", "line-45", "gaussian", "laplacian-8"])
def test_filter2d_on_a_colour_photo(photo, name):
    # OpenCV filters in float64 as the reference: striate's float32 result to 2e-5 of the image's
    # scale, striate's float64 result to 1e-12
    img = photo.astype(np.float32)
    img64 = img.astype(np.float64)                    # the same (float32) pixel values
    k = filters.get_kernel(name, dtype=np.float64)     # the exact kernel (KERNELS holds it in float32)
    for border, cv_border in (("zeros", cv2.BORDER_CONSTANT), ("reflect", cv2.BORDER_REFLECT_101),
                              ("replicate", cv2.BORDER_REPLICATE)):
        ours = filters.apply(img, name, border=border)
        theirs = cv2.filter2D(img64, -1, k, borderType=cv_border)
        assert ours.dtype == np.float32 and ours.shape == img.shape
        scale = max(1.0, np.abs(theirs).max())
        np.testing.assert_allclose(ours, theirs, atol=2e-5 * scale)
        np.testing.assert_allclose(filters.apply(img64, name, border=border), theirs, rtol=0, atol=1e-12 * scale)
    # OpenCV's default border differs from zero padding only where the kernel reaches past the edge
    r = k.shape[0] // 2
    default = cv2.filter2D(img64, -1, k)
    np.testing.assert_allclose(filters.apply(img, name)[r:-r, r:-r], default[r:-r, r:-r], atol=2e-5 * 8)


@pytest.mark.skipif("camera" not in sample_names(), reason="scikit-image's sample photos are not installed")
def test_filter2d_on_the_cameraman():
    img = resize(load_sample("camera", "L"), 128)      # float32 in [0, 1]
    for name in ("sobel-y", "line-135", "box-3"):
        theirs = cv2.filter2D(img.astype(np.float64), -1, filters.get_kernel(name, dtype=np.float64),
                              borderType=cv2.BORDER_REFLECT_101)          # the reference: float64
        np.testing.assert_allclose(filters.apply(img, name, border="reflect"), theirs, atol=1e-4)


# ---------------------------------------------------------------------------
# shapes, strides, channels, dtypes, strips


def test_stride_and_padding(rng, gray):
    k = rng.standard_normal((3, 3))
    full = filters.apply(gray, k, padding=1)
    assert np.allclose(filters.apply(gray, k, stride=2, padding=1), full[::2, ::2])
    assert np.allclose(filters.apply(gray, k, stride=(1, 3), padding=(1, 1)), full[:, ::3])
    valid = filters.apply(gray, k, padding="valid")
    assert valid.shape == (gray.shape[0] - 2, gray.shape[1] - 2)
    assert np.allclose(valid, full[1:-1, 1:-1])
    assert filters.apply(gray, k, stride=3, padding=0).shape == ((gray.shape[0] - 3) // 3 + 1,
                                                                  (gray.shape[1] - 3) // 3 + 1)


def test_colour_channels_are_filtered_alone(photo):
    out = filters.apply(photo, "emboss")
    for c in range(3):
        assert np.allclose(out[..., c], filters.apply(photo[..., c], "emboss"))
    four = np.concatenate([photo, photo[..., :1]], axis=2)       # any channel count
    assert filters.apply(four, "box-3").shape == four.shape


def test_dtypes(gray):
    assert filters.apply(gray.astype(np.float32), "sobel-x").dtype == np.float32
    assert filters.apply(gray, "sobel-x").dtype == np.float64
    u8 = (gray * 255).astype(np.uint8)
    out = filters.apply(u8, "identity")
    assert out.dtype == np.float32 and np.array_equal(out, u8)   # values kept, not scaled


def test_large_kernels_run_in_strips(rng):
    image = rng.standard_normal((40, 33, 3))
    k = rng.standard_normal((7, 5))
    whole = filters._correlate(image, k, (1, 2), (3, 3, 2, 2), "zeros")
    strips = filters._correlate(image, k, (1, 2), (3, 3, 2, 2), "zeros", max_window_values=500)
    assert np.allclose(whole, strips, atol=1e-12)
    assert np.allclose(whole, filters.apply(image, k, stride=(1, 2), padding=(3, 2)))


def test_errors(gray):
    with pytest.raises(ValueError, match="unknown kernel 'edgy'; choose one of: identity"):
        filters.apply(gray, "edgy")
    with pytest.raises(ValueError, match="magnitude .* of two kernels"):
        filters.get_kernel("sobel")
    with pytest.raises(ValueError, match=r"image \(H, W\) or \(H, W, C\).*got shape \(2, 3, 4, 5\)"):
        filters.apply(np.zeros((2, 3, 4, 5)), "sobel-x")
    with pytest.raises(ValueError, match=r"2-D kernel \(kh, kw\).*got shape \(3,\)"):
        filters.apply(gray, np.ones(3))
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        filters.apply(gray, "sobel-x", stride=2)
    with pytest.raises(ValueError, match="border must be 'zeros', 'reflect' or 'replicate'"):
        filters.apply(gray, "sobel-x", border="wrap")
    with pytest.raises(ValueError, match=r"the 5×5 kernel is larger than the padded image 3×3"):
        filters.apply(np.ones((3, 3)), "box-5", padding="valid")
    with pytest.raises(ValueError, match="stride must be positive"):
        filters.apply(gray, "sobel-x", stride=0, padding=0)
    with pytest.raises(TypeError, match="image of numbers"):
        filters.apply(np.array([["a"]]), "identity")
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        filters.gaussian_kernel(0)
    with pytest.raises(ValueError, match="write a Gaussian as 'gaussian:SIGMA'"):
        filters.get_kernel("gaussian:wide")


# ---------------------------------------------------------------------------
# striate filters


def test_filters_command_writes_the_grid(tmp_path, capsys):
    assert run_cli(["filters", "--sample", "grace-hopper", "--size", "64", "--kernels", "sobel-x,gaussian",
                    "--columns", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sobel-x: Sobel x" in out and "turned by 180° it is its negative" in out
    assert "cross-correlation" in out or "turned by 180°" in out
    path = tmp_path / "filters-grace-hopper.png"
    shape = resize(load_sample("grace-hopper"), 64).shape
    expected = filter_grid_size(3, shape, [filters.KERNELS["sobel-x"], filters.KERNELS["gaussian"]], 3)
    with Image.open(path) as img:
        assert img.size == expected and img.size[0] > 300 and path.stat().st_size > 10_000


def test_filters_command_flip_custom_and_own_file(tmp_path, capsys, photo):
    own = tmp_path / "mine.png"
    Image.fromarray((photo * 255).astype(np.uint8)).save(own)
    assert run_cli(["filters", str(own), "--kernels", "emboss,sobel", "--custom", "0 1 0; 1 -4 1; 0 1 0",
                    "--flip", "--size", "48", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "custom 1: a kernel of your own" in out
    # original + emboss + emboss turned + sobel + custom (symmetric: no turned panel)
    kernels = [filters.KERNELS["emboss"], filters.flip(filters.KERNELS["emboss"]), filters.KERNELS["sobel-x"],
               filters.KERNELS["sobel-y"], filters.KERNELS["laplacian-4"]]
    shape = resize(photo.astype(np.float32), 48).shape
    with Image.open(tmp_path / "filters-mine.png") as img:
        assert img.size == filter_grid_size(5, shape, kernels, 3)


def test_filters_command_errors(tmp_path, capsys):
    assert run_cli(["filters", "--kernels", "edgy", "--out", str(tmp_path)]) == 2
    assert "striate: error: --kernels: unknown kernel 'edgy'" in capsys.readouterr().err
    assert run_cli(["filters", "--sample", "nothing", "--out", str(tmp_path)]) == 2
    assert "unknown sample image 'nothing'" in capsys.readouterr().err
    assert run_cli(["filters", str(tmp_path / "missing.png"), "--out", str(tmp_path)]) == 2
    assert "no such image file" in capsys.readouterr().err
    assert run_cli(["filters", "--custom", "1 2; 3", "--out", str(tmp_path)]) == 2
    assert "rows of equal length" in capsys.readouterr().err
