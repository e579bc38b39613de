"""The IDX reader and writer: round trips, and a clear error for every kind of broken file."""
import gzip
import re
import struct

import numpy as np
import pytest

from striate.data import idx
from striate.data.idx import ChecksumError, IDXError, check_md5, file_md5, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def _random(rng, dtype, shape):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(tmp_path, rng, dtype, compress):
    for shape in [(7,), (3, 5), (4, 7, 9), (2, 1, 3, 5), (1,)]:
        a = _random(rng, dtype, shape)
        path = write_idx(tmp_path / f"a{len(shape)}.idx", a, compress=compress)
        b = read_idx(path)
        assert b.dtype == np.dtype(dtype) and b.dtype.isnative
        assert b.shape == shape
        np.testing.assert_array_equal(a, b)
        assert not b.flags.writeable            # data sets must not be edited in place by accident
    swapped = a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "swapped.idx", swapped, compress=compress)), a)


def test_gzip_detected_by_content_not_name(tmp_path, rng):
    a = _random(rng, np.int16, (3, 4))
    compressed_no_suffix = write_idx(tmp_path / "plain-name", a, compress=True)
    raw_with_suffix = write_idx(tmp_path / "looks-compressed.gz", a, compress=False)
    assert compressed_no_suffix.read_bytes()[:2] == b"\x1f\x8b"
    assert raw_with_suffix.read_bytes()[:4] == bytes([0, 0, 0x0B, 2])
    np.testing.assert_array_equal(read_idx(compressed_no_suffix), a)
    np.testing.assert_array_equal(read_idx(raw_with_suffix), a)


def test_suffix_chooses_compression_and_layout_is_big_endian(tmp_path):
    a = np.array([[1, 2, 3], [4, 5, 258]], dtype=np.int32)
    write_idx(tmp_path / "x.idx.gz", a)
    content = gzip.decompress((tmp_path / "x.idx.gz").read_bytes())
    assert content == struct.pack(">4B2I6i", 0, 0, 0x0C, 2, 2, 3, 1, 2, 3, 4, 5, 258)
    assert (tmp_path / "x.idx.gz").read_bytes() == write_idx(tmp_path / "y.gz", a).read_bytes()  # reproducible
    assert not list(tmp_path.glob("*.tmp"))


def test_write_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="IDX holds.*got an array of dtype int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"1 to 255 dimensions, got shape \(\)"):
        write_idx(tmp_path / "x", np.uint8(3))


def test_expectations(tmp_path):
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(10, dtype=np.uint8))
    images = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    msg = "train-labels-idx1-ubyte.gz: expected magic 2051 (3-d ubyte: images), got 2049 (1-d ubyte: labels?)"
    with pytest.raises(IDXError, match=re.escape(msg)):
        read_idx(labels, expect_ndim=3, expect_dtype=np.uint8)
    with pytest.raises(IDXError, match=r"expected magic 2049 \(1-d ubyte: labels\), got 2051 \(3-d ubyte: images\?\)"):
        read_idx(images, expect_ndim=1, expect_dtype=np.uint8)
    with pytest.raises(IDXError, match=r"expected a 3-d IDX file, got magic 2049"):
        read_idx(labels, expect_ndim=3)
    with pytest.raises(IDXError, match=r"expected items of type float32, got magic 2051 .* items of type uint8"):
        read_idx(images, expect_dtype=np.float32)
    with pytest.raises(IDXError, match=r"expected shape \(\*, 32, 32\), got \(4, 28, 28\)"):
        read_idx(images, expect_shape=(None, 32, 32))
    assert read_idx(images, expect_shape=(None, 28, 28), expect_dtype=np.uint8).shape == (4, 28, 28)


# -- broken files: each problem has its own message naming the file ------------------------


def _header(code, dims):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


BROKEN = [
    ("empty", b"", r"empty {what}, expected an IDX header"),
    ("short", b"\x00\x00", r"{what} is 2 bytes, too short for an IDX magic number"),
    ("garbage", b"hello, world: not IDX at all",
     r"not an IDX file: expected a magic number starting with two zero bytes, got 68 65 6c 6c"),
    ("wrong-type", _header(0x07, (3,)) + b"abc",
     r"unknown IDX type code 0x07 in magic number 0x00000701; expected one of 0x08 \(ubyte\)"),
    ("zero-dims", b"\x00\x00\x08\x00", r"magic number 0x00000800 declares 0 dimensions, expected at least 1"),
    ("header-cut", _header(0x08, (60000, 28, 28))[:10],
     r"{what} ends inside the header: expected 16 header bytes for 3 dimensions, got 10"),
    ("truncated", _header(0x08, (10, 28, 28)) + bytes(10 * 784 - 5),
     r"{what} length does not match its header: expected 7856 bytes \(16-byte header \+ 10×28×28 items × 1 byte\), "
     r"got 7851 \(truncated\?\)"),
    ("dims-too-small", _header(0x0B, (4, 2)) + bytes(2 * 9),
     r"{what} length does not match its header: expected 28 bytes \(12-byte header \+ 4×2 items × 2 bytes\), "
     r"got 30 \(trailing data, or dims too small\?\)"),
]


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("name,content,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_files(tmp_path, name, content, message, compress):
    path = tmp_path / f"{name}.idx"
    path.write_bytes(gzip.compress(content) if compress else content)
    message = message.replace("{what}", "decompressed content" if compress else "file")
    with pytest.raises(IDXError, match=re.escape(str(path)) + ": " + message):
        read_idx(path)


def test_truncated_and_corrupt_gzip(tmp_path, rng):
    good = write_idx(tmp_path / "good.gz", _random(rng, np.uint8, (50, 28, 28))).read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXError, match=r"cut\.gz: truncated or corrupt gzip stream \(Compressed file ended"):
        read_idx(cut)
    flipped = bytearray(good)
    flipped[-6] ^= 0xFF                                          # inside the CRC/size trailer
    bad_crc = tmp_path / "crc.gz"
    bad_crc.write_bytes(bytes(flipped))
    with pytest.raises(IDXError, match=r"crc\.gz: truncated or corrupt gzip stream"):
        read_idx(bad_crc)
    mangled = bytearray(good)
    mangled[20:40] = b"\xff" * 20                                # inside the deflate data
    bad_data = tmp_path / "data.gz"
    bad_data.write_bytes(bytes(mangled))
    with pytest.raises(IDXError, match=r"data\.gz: truncated or corrupt gzip stream"):
        read_idx(bad_data)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nothing-here.idx")


# -- checksums ------------------------------------------------------------------------------


def test_md5(tmp_path, rng, monkeypatch):
    a = _random(rng, np.uint8, (5, 4, 4))
    raw = write_idx(tmp_path / "a.idx", a)
    gz = write_idx(tmp_path / "a.idx.gz", a)
    raw_md5, gz_md5 = file_md5(raw), file_md5(gz)
    assert raw_md5 != gz_md5 and len(raw_md5) == 32
    assert check_md5(raw, [raw_md5.upper()]) == raw_md5
    with pytest.raises(ChecksumError, match=rf"a\.idx: MD5 checksum mismatch: expected {'0' * 32}, got {raw_md5}"):
        check_md5(raw, "0" * 32)

    np.testing.assert_array_equal(read_idx(raw, md5=raw_md5), a)
    np.testing.assert_array_equal(read_idx(gz, md5=gz_md5), a)
    # A gzip file passes on the digest of its decompressed content too (same data, other compression).
    np.testing.assert_array_equal(read_idx(gz, md5=[raw_md5]), a)
    with pytest.raises(ChecksumError, match=rf"expected {'1' * 32}, got {gz_md5} \(gzip file\) and {raw_md5} "
                                            r"\(decompressed content\)"):
        read_idx(gz, md5="1" * 32)

    # Successes are remembered: a second read does not hash again.
    calls = []
    monkeypatch.setattr(idx.hashlib, "md5", lambda *args, **kw: calls.append(1) or pytest.fail("hashed again"))
    read_idx(raw, md5=raw_md5)
    assert calls == []
