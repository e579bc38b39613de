"""Batch transforms: shapes, dtypes, exact pixel moves, and the affine sampler against scipy."""
import numpy as np
import pytest
from scipy import ndimage

from striate.data.transforms import (
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


def test_to_float(rng):
    images = rng.integers(0, 256, size=(5, 7, 9), dtype=np.uint8)
    x = to_float(images)
    assert x.shape == (5, 1, 7, 9) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], images.astype(np.float32) / np.float32(255))
    assert to_float(np.array([[[0, 255]]], np.uint8)).ravel().tolist() == [0.0, 1.0]
    assert to_float(rng.integers(0, 256, (2, 3, 4, 4), dtype=np.uint8)).shape == (2, 3, 4, 4)
    assert to_float(np.zeros((2, 4, 4), np.float64)).dtype == np.float32
    with pytest.raises(TypeError, match="uint8 or float images, got dtype int32"):
        to_float(np.zeros((2, 4, 4), np.int32))
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, C, H, W\), got shape \(4, 4\)"):
        to_float(np.zeros((4, 4), np.uint8))


def test_to_float_matches_torchvision_scaling(rng):
    torch = pytest.importorskip("torch")
    images = rng.integers(0, 256, size=(3, 5, 6), dtype=np.uint8)
    expected = torch.from_numpy(images).float().div(255).numpy()
    np.testing.assert_array_equal(to_float(images)[:, 0], expected)


def test_normalize(rng):
    x = rng.random((4, 3, 5, 6), dtype=np.float32)
    out = normalize(x, 0.5, 0.25)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, (x - 0.5) / 0.25, rtol=1e-6)
    mean, std = [0.1, 0.2, 0.3], [1.0, 2.0, 4.0]
    out = normalize(x, mean, std)
    for c in range(3):
        np.testing.assert_allclose(out[:, c], (x[:, c] - mean[c]) / std[c], rtol=1e-6)
    assert normalize(x[:, 0], 0.1307, 0.3081).shape == (4, 5, 6)
    assert normalize(x.astype(np.float64), 0.5, 0.5).dtype == np.float64
    with pytest.raises(ValueError, match=r"mean has 2 values, expected one per channel"):
        normalize(x, [0.1, 0.2], 1.0)
    with pytest.raises(ValueError, match=r"std > 0, got \[1.0, 0.0, 1.0\]"):
        normalize(x, 0.0, [1.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="convert with to_float first"):
        normalize(np.zeros((2, 1, 3, 3), np.uint8), 0.0, 1.0)


def test_pad(rng):
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    y = pad(x, 2)
    assert y.shape == (2, 1, 32, 32) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:, :, 2:30, 2:30], x)
    assert y[:, :, :2].sum() == 0 and y[:, :, :, 30:].sum() == 0
    y = pad(x[:, 0], (1, 2, 3, 4), value=-1.0)            # (left, right, top, bottom)
    assert y.shape == (2, 35, 31)
    np.testing.assert_array_equal(y[:, 3:31, 1:29], x[:, 0])
    assert (y[:, :3] == -1).all() and (y[:, :, 29:] == -1).all()
    assert pad_to(x, 32).shape == (2, 1, 32, 32)
    np.testing.assert_array_equal(pad_to(x, 32), pad(x, 2))
    assert pad_to(x, (29, 31)).shape == (2, 1, 29, 31)
    with pytest.raises(ValueError, match=r"target size \(20, 20\) is smaller than the images \(28, 28\)"):
        pad_to(x, 20)
    with pytest.raises(TypeError, match=r"an int or \(left, right, top, bottom\), got \(1, 2\)"):
        pad(x, (1, 2))


def test_translate_moves_pixels_exactly(rng):
    x = rng.random((4, 2, 7, 9), dtype=np.float32)
    shifts = np.array([[0, 0], [2, -3], [-1, 4], [6, 8]])
    y = translate(x, shifts)
    assert y.shape == x.shape and y.dtype == x.dtype
    for n, (dy, dx) in enumerate(shifts):
        expected = np.zeros_like(x[n])
        src = x[n, :, max(0, -dy):7 - max(0, dy), max(0, -dx):9 - max(0, dx)]
        expected[:, max(0, dy):max(0, dy) + src.shape[1], max(0, dx):max(0, dx) + src.shape[2]] = src
        np.testing.assert_array_equal(y[n], expected)
    # one bright pixel lands exactly where the shift says
    dot = np.zeros((1, 5, 5), np.float32)
    dot[0, 2, 2] = 1
    moved = translate(dot, [[1, -2]])
    assert moved[0, 3, 0] == 1 and moved.sum() == 1
    assert translate(dot, [[9, 0]]).sum() == 0               # shifted out entirely
    with pytest.raises(ValueError, match=r"shifts \(N, 2\) = \(1, 2\) integers"):
        translate(dot, [[0.5, 1.0]])


def test_random_translate(rng):
    x = rng.random((64, 1, 8, 8), dtype=np.float32) + 1          # no zeros inside the images
    seed = int(rng.integers(1 << 30))
    y = random_translate(x, 2, np.random.default_rng(seed))
    draw = np.random.default_rng(seed)
    shifts = np.stack([draw.integers(-2, 3, size=64), draw.integers(-2, 3, size=64)], axis=1)
    np.testing.assert_array_equal(y, translate(x, shifts))
    assert len({tuple(s) for s in shifts}) > 10                   # per-image shifts
    assert np.array_equal(random_translate(x, 2, np.random.default_rng(seed)), y)   # same rng, same result
    # vertical only: every image keeps all its columns
    y = random_translate(x[:, 0], (3, 0), rng)
    assert y.shape == (64, 8, 8) and (y != 0).any(axis=1).all()


def _scipy_affine(image, angle, t, s):
    """The same map, from scipy's order-1 sampler with zeros beyond the edges."""
    H, W = image.shape
    c = np.array([(H - 1) / 2, (W - 1) / 2])
    th = np.deg2rad(angle)
    # input (y, x) = M @ (output (y, x) − c − t) + c
    M = np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]]) / s
    offset = c - M @ (c + np.asarray(t))
    return ndimage.affine_transform(image.astype(np.float64), M, offset, order=1, mode="grid-constant", cval=0.0)


def test_affine_identity_returns_input(rng):
    x = rng.standard_normal((3, 2, 7, 9)).astype(np.float32)
    y = affine(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(random_affine(x[:, 0], degrees=0.0, rng=rng), x[:, 0])


def test_affine_special_cases(rng):
    x = rng.random((3, 2, 8, 8), dtype=np.float32)
    # integer shifts: the same as translate
    shifts = np.array([[1, -2], [0, 3], [-4, 0]])
    np.testing.assert_allclose(affine(x, translate=shifts), translate(x, shifts), atol=1e-6)
    # 90 degrees counter-clockwise: np.rot90
    np.testing.assert_allclose(affine(x, angle=90.0), np.rot90(x, axes=(2, 3)), atol=1e-5)
    np.testing.assert_allclose(affine(x, angle=-90.0), np.rot90(x, k=-1, axes=(2, 3)), atol=1e-5)
    # half a pixel to the right: the mean of neighbours (and half of the first column)
    y = affine(x, translate=(0.0, 0.5))
    np.testing.assert_allclose(y[..., 1:], (x[..., 1:] + x[..., :-1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(y[..., 0], x[..., 0] / 2, rtol=1e-6)


def test_affine_matches_scipy_per_image(rng):
    N, H, W = 6, 11, 13
    x = rng.random((N, 1, H, W)).astype(np.float64)
    angle = rng.uniform(-30, 30, N)
    t = rng.uniform(-2, 2, (N, 2))
    s = rng.uniform(0.8, 1.25, N)
    y = affine(x, angle, t, s)
    assert y.dtype == np.float64
    for n in range(N):
        np.testing.assert_allclose(y[n, 0], _scipy_affine(x[n, 0], angle[n], t[n], s[n]), atol=1e-9)


def test_random_affine(rng):
    x = rng.random((32, 1, 12, 12), dtype=np.float32)
    seed = int(rng.integers(1 << 30))
    y = random_affine(x, 15.0, (0.1, 0.2), (0.9, 1.1), np.random.default_rng(seed))
    assert y.shape == x.shape and y.dtype == np.float32
    draw = np.random.default_rng(seed)
    angle = draw.uniform(-15, 15, 32)
    t = np.stack([draw.uniform(-1.2, 1.2, 32), draw.uniform(-2.4, 2.4, 32)], axis=1)
    s = draw.uniform(0.9, 1.1, 32)
    np.testing.assert_allclose(y, affine(x, angle, t, s), atol=1e-6)
    assert not np.allclose(y[0], y[1])
    with pytest.raises(ValueError, match=r"scale must be a \(low, high\) pair, got 0.9"):
        random_affine(x, 0.0, scale=0.9, rng=rng)
    with pytest.raises(ValueError, match=r"translate fractions must be in \[0, 1\]"):
        random_affine(x, 0.0, translate=2.0, rng=rng)
    with pytest.raises(TypeError, match="float images"):
        affine(np.zeros((1, 4, 4), np.uint8), 10.0)


def test_compose_and_steps(rng):
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    x = to_float(images)
    chain = Compose(RandomTranslate(2), PadTo(32), Normalize(0.1307, 0.3081), lambda z: z * 2)
    y = chain(x, np.random.default_rng(3))
    expected = normalize(pad_to(random_translate(x, 2, np.random.default_rng(3)), 32), 0.1307, 0.3081) * 2
    np.testing.assert_array_equal(y, expected)
    assert y.shape == (5, 1, 32, 32) and y.dtype == np.float32
    assert "RandomTranslate(2)" in repr(chain) and "PadTo(32" in repr(chain)
    np.testing.assert_array_equal(Compose([Pad(2)])(x), pad(x, 2))
    np.testing.assert_allclose(RandomAffine(0.0)(x, rng), x)
    assert Lambda(np.sqrt)(x, rng).shape == x.shape
    assert isinstance(as_step(np.sqrt), Lambda)                  # its second parameter is out=None
    assert isinstance(as_step(lambda z, scale=2: z * scale), Lambda)
    takes_generator = lambda z, g: z + g.random()                 # noqa: E731
    assert as_step(takes_generator) is takes_generator
    with pytest.raises(TypeError, match="must accept"):
        as_step(lambda: None)
