"""ImageFolder: class folders of images in any common format and size, decoded lazily, cached within a budget."""
import warnings

import numpy as np
import pytest
from PIL import Image

from striate.data import DataLoader, FolderError, ImageFolder, channel_stats, prepare_image, resize_image, split_indices
from striate.data.images import ImageError

FORMATS = (("png", "PNG"), ("jpg", "JPEG"), ("bmp", "BMP"), ("gif", "GIF"), ("webp", "WEBP"))


def write_image(path, array, fmt):
    image = Image.fromarray(array)
    if fmt == "GIF" and image.mode == "RGB":
        image = image.quantize(64)
    image.save(path, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    if fmt == "WEBP":
        Image.open(path).close()


def make_folder(root, classes=("cat", "hot dog", "zebra"), per_class=5, colour=True, seed=0):
    """Class folders with images of mixed formats and sizes; class k is bright in its third of the image."""
    g = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            h, w = g.integers(12, 40, 2)
            image = g.integers(0, 60, (h, w, 3) if colour and i % 2 == 0 else (h, w)).astype(np.uint8)
            image[:, k * w // 3:(k + 1) * w // 3] = 230
            if image.ndim == 3:
                image[..., k] = 30 + 60 * k                    # the channels differ: colour
            ext, fmt = FORMATS[(i + k) % len(FORMATS)]
            write_image(root / name / f"{i:02d}.{ext}", image, fmt)
    return root


def test_classes_samples_and_indexing(tmp_path):
    folder = make_folder(tmp_path / "d")
    (tmp_path / "d" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "d" / ".hidden").mkdir()
    ds = ImageFolder(folder, size=(16, 20))
    assert ds.classes == ["cat", "hot dog", "zebra"]                 # sorted, a space allowed
    assert ds.class_to_idx == {"cat": 0, "hot dog": 1, "zebra": 2}
    assert len(ds) == 15 and ds.samples[0] == (str(folder / "cat" / "00.png"), 0)
    assert ds.labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert ds.channels == 3 and ds.size == (16, 20)
    image, label = ds[7]
    assert image.shape == (3, 16, 20) and image.dtype == np.uint8 and label == 1
    x, y = ds.get_batch([14, 0, 7])
    assert x.shape == (3, 3, 16, 20) and y.tolist() == [2, 0, 1]
    assert np.array_equal(x[2], image)
    xs, ys = ds[2:4]
    assert xs.shape == (2, 3, 16, 20) and ys.tolist() == [0, 0]
    with pytest.raises(IndexError):
        ds.get_batch([15])


def test_every_format_and_mode_decodes_to_the_same_picture(tmp_path):
    g = np.random.default_rng(1)
    gray = np.kron(g.integers(0, 256, (6, 6)), np.ones((4, 4))).astype(np.uint8)      # 24×24 blocks
    for ext, fmt in FORMATS:
        (tmp_path / "d" / fmt).mkdir(parents=True, exist_ok=True)
        write_image(tmp_path / "d" / fmt / f"x.{ext}", gray, fmt)
    ds = ImageFolder(tmp_path / "d", size=24)
    assert ds.channels == 1                   # WebP is stored as RGB, but its channels are equal
    x, _ = ds.get_batch(np.arange(len(ds)))
    for k, name in enumerate(ds.classes):
        tolerance = 0 if name in ("PNG", "BMP", "GIF") else 12    # lossy JPEG and WebP
        assert np.abs(x[k, 0].astype(int) - gray).max() <= tolerance, name


def test_channels_gray_folder_and_forced(tmp_path):
    gray = make_folder(tmp_path / "gray", colour=False)
    assert ImageFolder(gray).channels == 1
    mixed = make_folder(tmp_path / "mixed")
    ds = ImageFolder(mixed, size=8)
    assert ds.channels == 3
    one = ImageFolder(mixed, size=8, channels=1)
    assert one.get_batch([0])[0].shape == (1, 1, 8, 8)


def test_resize_stretch_and_pad():
    image = np.zeros((10, 40), np.uint8)
    image[:, :20] = 200
    stretched = resize_image(image, (8, 8), "stretch")
    assert stretched.shape == (8, 8) and stretched[:, :3].min() == 200 and stretched[:, 5:].max() == 0
    padded = resize_image(image, (8, 8), "pad")            # 40 wide → 8 wide, 10 high → 2 high, centred
    assert padded.shape == (8, 8)
    assert padded[:3].max() == 0 and padded[5:].max() == 0 and padded[3:5, :3].min() == 200
    big = np.full((600, 300, 3), 255, np.uint8)
    big[::2] = 0                                           # stripes average to gray, not aliased to black/white
    assert abs(int(resize_image(big, 10).mean()) - 128) < 3
    with pytest.raises(ValueError, match="method"):
        resize_image(image, 8, "crop")


def test_prepare_image_is_what_the_folder_does(tmp_path):
    folder = make_folder(tmp_path / "d")
    ds = ImageFolder(folder, size=12, resize="pad")
    path, _ = ds.samples[3]
    assert np.array_equal(prepare_image(path, 12, 3, "pad"), ds[3][0])
    array = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(prepare_image(array, 12, 3, "pad"), ds[3][0])
    assert np.array_equal(prepare_image(array / 255.0, 12, 3, "pad"), ds[3][0])


def test_errors_for_unusable_folders(tmp_path):
    with pytest.raises(FolderError, match="no such folder"):
        ImageFolder(tmp_path / "missing")
    (tmp_path / "loose").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "loose" / "a.png")
    with pytest.raises(FolderError, match="no class folders.*1 images lie directly"):
        ImageFolder(tmp_path / "loose")
    folder = make_folder(tmp_path / "d")
    (folder / "empty one").mkdir()
    with pytest.raises(FolderError, match="'empty one' holds no images"):
        ImageFolder(folder)
    (tmp_path / "texts" / "a").mkdir(parents=True)
    (tmp_path / "texts" / "a" / "x.txt").write_text("hi")
    with pytest.raises(FolderError, match="'a' holds no images"):
        ImageFolder(tmp_path / "texts")


def test_classes_given_for_a_test_set(tmp_path):
    folder = make_folder(tmp_path / "d", classes=("cat", "zebra"))
    ds = ImageFolder(folder, classes=["cat", "hot dog", "zebra"])       # a class without a folder is fine
    assert ds.labels.tolist() == [0] * 5 + [2] * 5
    with pytest.raises(FolderError, match="'zebra' not among the 2 classes"):
        ImageFolder(folder, classes=["cat", "dog"])


def test_corrupt_files_named_or_skipped(tmp_path):
    folder = make_folder(tmp_path / "d")
    (folder / "cat" / "99-garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    good = folder / "zebra" / "03.png"
    truncated = folder / "zebra" / "99-truncated.png"
    truncated.write_bytes(good.read_bytes()[:-30])             # the header reads, the pixels do not
    with pytest.raises(ImageError, match="99-garbage.png"):
        ImageFolder(folder)
    (folder / "cat" / "99-garbage.png").unlink()
    ds = ImageFolder(folder, size=8)                           # the header of the truncated file is fine ...
    with pytest.raises(ImageError, match="99-truncated.png.*damaged or truncated"):
        ds.get_batch(np.arange(len(ds)))                       # ... its pixels are not
    (folder / "cat" / "99-garbage.png").write_bytes(b"not an image at all")
    messages = []
    ds = ImageFolder(folder, size=8, skip_bad=True, on_skip=messages.append)
    assert len(ds) == 15 and len(ds.skipped) == 2
    assert [p.rsplit("/", 1)[1] for p, _ in ds.skipped] == ["99-garbage.png", "99-truncated.png"]
    assert len(messages) == 2 and messages[0].startswith("skipped ") and "99-garbage.png" in messages[0]
    assert ds.decodes >= 15 and ds.cached == 15
    before = ds.decodes
    x, y = ds.get_batch(np.arange(len(ds)))                    # all cached: nothing decoded again
    assert ds.decodes == before and y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ImageFolder(folder, size=8, skip_bad=True)
    assert len(caught) == 2 and "99-truncated.png" in str(caught[1].message)


def test_a_class_of_only_bad_files(tmp_path):
    folder = make_folder(tmp_path / "d", classes=("a", "b"))
    (folder / "c").mkdir()
    (folder / "c" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(FolderError, match="every image of class 'c' is unreadable"):
        ImageFolder(folder, skip_bad=True, on_skip=lambda m: None)


def test_second_epoch_decodes_nothing_when_the_cache_fits(tmp_path):
    ds = ImageFolder(make_folder(tmp_path / "d", per_class=10), size=8)
    start = ds.decodes                                          # header checks may decode a file or two
    loader = DataLoader(ds, batch_size=7, shuffle=True, seed=3)
    first = [x for x, _ in loader]
    assert ds.decodes - start == 30 and ds.cached == 30
    second = [x for x, _ in loader]
    assert ds.decodes - start == 30                             # the second epoch decoded nothing
    assert all(a.shape == b.shape for a, b in zip(first, second))


def test_a_tiny_budget_decodes_again(tmp_path):
    ds = ImageFolder(make_folder(tmp_path / "d", per_class=10), size=8, cache_bytes=3 * 8 * 8 * 4)
    assert ds.capacity == 4
    start = ds.decodes
    loader = DataLoader(ds, batch_size=7, shuffle=True, seed=3)
    for _ in range(2):
        for _ in loader:
            pass
    assert ds.cached == 4 and ds.decodes - start == 30 + 26     # only the 4 cached images are not decoded again
    nothing = ImageFolder(tmp_path / "d", size=8, cache_bytes=0)
    nothing.get_batch([0, 0, 1])
    assert nothing.capacity == 0 and nothing.cached == 0


def test_loader_batches_match_the_array_loader_and_resume(tmp_path):
    ds = ImageFolder(make_folder(tmp_path / "d", per_class=8), size=10)
    images, labels = ds.get_batch(np.arange(len(ds)))
    lazy = DataLoader(ds, batch_size=5, shuffle=True, seed=11)
    eager = DataLoader((images, labels), batch_size=5, shuffle=True, seed=11)
    for _epoch in range(2):
        for (a, ya), (b, yb) in zip(lazy, eager):
            assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert lazy.sample_shape() == (3, 10, 10) and lazy.num_samples == 24
    resumed = DataLoader(ds, batch_size=5, shuffle=True, seed=11)
    it = iter(lazy)
    next(it)
    state = lazy.state_dict()
    rest = [x for x, _ in it]
    resumed.load_state_dict(state)
    assert all(np.array_equal(a, b) for a, b in zip(rest, [x for x, _ in resumed]))


def test_subset_split_and_statistics(tmp_path):
    ds = ImageFolder(make_folder(tmp_path / "d", per_class=10), size=8)
    train, held = split_indices(ds.labels, 0.2, seed=0)
    assert len(held) == 6 and np.bincount(ds.labels[held]).tolist() == [2, 2, 2]        # stratified
    assert set(train) | set(held) == set(range(30)) and not set(train) & set(held)
    again, _ = split_indices(ds.labels, 0.2, seed=0)
    other, _ = split_indices(ds.labels, 0.2, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    part = ds.subset(held)
    x, y = part.get_batch([0, 1])
    assert np.array_equal(x, ds.get_batch(held[:2])[0]) and np.array_equal(y, ds.labels[held[:2]])
    assert len(DataLoader(part, batch_size=4)) == 2
    mean, std = channel_stats(ds)
    all_pixels = ds.get_batch(np.arange(30))[0] / 255.0
    assert np.allclose(mean, all_pixels.mean(axis=(0, 2, 3))) and np.allclose(std, all_pixels.std(axis=(0, 2, 3)))


def test_bad_arguments(tmp_path):
    folder = make_folder(tmp_path / "d", per_class=1)
    for kwargs, pattern in (({"channels": 2}, "channels"), ({"resize": "crop"}, "resize"),
                            ({"cache_bytes": -1}, "cache_bytes"), ({"size": 0}, "size")):
        with pytest.raises(ValueError, match=pattern):
            ImageFolder(folder, **kwargs)
    with pytest.raises(ValueError, match="1-D array of indices"):
        ImageFolder(folder).get_batch([[0]])
