"""The IDX file format: how MNIST and its relatives store arrays.

An IDX file is a header followed by the array's items, row-major::

    magic   4 bytes   0x00 0x00 <type code> <number of dimensions D>
    dims    D × 4     each a big-endian uint32 (e.g. 60000, 28, 28)
    items   prod(dims) × itemsize, big-endian

    type code   0x08 ubyte   0x09 byte   0x0B short (int16)
                0x0C int (int32)   0x0D float (float32)   0x0E double (float64)

So MNIST's image files start with magic 2051 (0x00000803: ubyte, 3-d) and its
label files with 2049 (0x00000801: ubyte, 1-d). Files are often gzip-compressed;
:func:`read_idx` recognises gzip by its magic bytes (not by the file name) and
reads the items with ``np.frombuffer``: a 47 MB image file costs one
decompression and no per-item Python work, and the array is a view of the
decompressed bytes.

Every problem with a file is an :class:`IDXError` (a ``ValueError``) whose message
names the file, what was expected and what was found.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Union

import numpy as np

__all__ = ["IDXError", "ChecksumError", "read_idx", "write_idx", "file_md5", "check_md5"]

PathLike = Union[str, "os.PathLike[str]"]

# type code -> (name used in the IDX documentation, big-endian dtype)
_TYPES: dict[int, tuple[str, np.dtype]] = {
    0x08: ("ubyte", np.dtype(">u1")),
    0x09: ("byte", np.dtype(">i1")),
    0x0B: ("short", np.dtype(">i2")),
    0x0C: ("int", np.dtype(">i4")),
    0x0D: ("float", np.dtype(">f4")),
    0x0E: ("double", np.dtype(">f8")),
}
_CODE_OF = {dtype.newbyteorder("="): code for code, (_, dtype) in _TYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_SLACK = 1 << 20       # bytes of gzip content read beyond the declared length


class IDXError(ValueError):
    """A file that is not a valid IDX file, or not the one that was expected."""


class ChecksumError(IDXError):
    """A file whose MD5 digest is not one of the expected digests."""


# ---------------------------------------------------------------------------
# reading


def read_idx(path: PathLike, expect_ndim: int | None = None, expect_dtype=None,
             expect_shape: tuple | None = None, md5: str | Iterable[str] | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a read-only, native-endian array.

    Args:
        path: the file. Gzip is detected from the first two bytes, so a
            compressed file without ``.gz`` (or a raw one with it) reads fine.
        expect_ndim: the number of dimensions the caller wants (3 for images
            (N, H, W), 1 for labels (N,)); a mismatch is an :class:`IDXError`.
        expect_dtype: the item type the caller wants (``np.uint8`` for MNIST).
        expect_shape: the shape the caller wants, ``None`` for any size on an
            axis, e.g. ``(None, 28, 28)``. Implies ``expect_ndim``.
        md5: accepted hex MD5 digest(s). The file passes if its own digest is
            one of them or, for a gzip file, if the digest of its decompressed
            content is (so a recompressed copy of the right data passes too).
            A failure is a :class:`ChecksumError`; a success is remembered for
            the rest of the process while the file's size and mtime stay put.

    Returns:
        An array of shape ``dims``. It is read-only: for byte-sized items it is
        a view of the file's (decompressed) bytes, with no copy, and in every
        case it protects a data set from being edited in place by accident.
        Call ``.copy()`` for a writable one.

    Raises:
        IDXError: empty or short file, bad magic number, unknown type code,
            length not equal to header + prod(dims) · itemsize, a truncated or
            corrupt gzip stream, or a mismatch with ``expect_*``.
        ChecksumError: the digest is not one of ``md5``.
        OSError: the file cannot be opened (e.g. ``FileNotFoundError``).
    """
    path = Path(path)
    if expect_shape is not None:
        expect_shape = tuple(expect_shape)
        if expect_ndim is not None and expect_ndim != len(expect_shape):
            raise ValueError(f"read_idx: expect_ndim={expect_ndim} disagrees with "
                             f"expect_shape={expect_shape}")
        expect_ndim = len(expect_shape)
    expect_dtype = None if expect_dtype is None else np.dtype(expect_dtype)
    accepted = _digest_set(md5)

    data = path.read_bytes()
    compressed = data[:2] == _GZIP_MAGIC
    content = _gunzip(data, path) if compressed else data
    what = "decompressed content" if compressed else "file"

    header = _parse_header(content, path, what, expect_ndim, expect_dtype, expect_shape)
    dims = _dims(header)
    dtype = _TYPES[header[2]][1]
    expected_len = len(header) + math.prod(dims) * dtype.itemsize
    if compressed and len(content) > expected_len + _SLACK:
        raise IDXError(f"{path}: the decompressed content is longer than its header declares: expected "
                       f"{expected_len} bytes, got more than {expected_len + _SLACK} (decompression stopped "
                       f"there; not an IDX file, or one that inflates without end)")
    if len(content) != expected_len:
        raise IDXError(_length_message(path, what, header, dims, dtype, len(content)))
    if accepted:
        _verify(path, accepted, data, content if compressed else None)

    items = np.frombuffer(content, dtype=dtype, offset=len(header))
    if not items.dtype.isnative:  # big-endian file on a little-endian machine
        items = items.byteswap().view(items.dtype.newbyteorder())
        items.flags.writeable = False
    return items.reshape(dims)


def _gunzip(data: bytes, path: Path) -> bytes:
    """The decompressed content, inflating no further than the IDX header inside declares.

    A small file can inflate to gigabytes (a "decompression bomb"); reading only
    the declared length plus ``_SLACK`` bytes (then the caller's length check
    fails) keeps memory bounded by what the header promises. A stream of the
    right length is read to its end, so its CRC is checked as usual.
    """
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            content = gz.read(4)
            limit = _SLACK                            # not an IDX header: no need to read much
            if len(content) == 4 and content[:2] == b"\0\0" and content[2] in _TYPES:
                content += gz.read(4 * content[3])
                if len(content) == 4 + 4 * content[3]:
                    limit = len(content) + math.prod(_dims(content)) * _TYPES[content[2]][1].itemsize + _SLACK
            # deflate inflates at most about 1032:1, so a header declaring more is cut to that
            limit = min(limit, 1032 * len(data) + _SLACK)
            return content + gz.read(max(limit - len(content), 0) + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise IDXError(f"{path}: truncated or corrupt gzip stream ({exc})") from None


def _parse_header(content: bytes, path: Path, what: str, expect_ndim, expect_dtype, expect_shape) -> bytes:
    """Check the magic number and dims against the format and the caller's expectations."""
    if len(content) == 0:
        raise IDXError(f"{path}: empty {what}, expected an IDX header (a 4-byte magic number)")
    if len(content) < 4:
        raise IDXError(f"{path}: {what} is {len(content)} bytes, too short for an IDX magic number (4 bytes)")
    magic = content[:4]
    if magic[0] != 0 or magic[1] != 0:
        raise IDXError(f"{path}: not an IDX file: expected a magic number starting with two zero bytes, "
                       f"got {magic.hex(' ')} (first 4 bytes)")
    code, ndim = magic[2], magic[3]
    if code not in _TYPES:
        known = ", ".join(f"0x{c:02X} ({name})" for c, (name, _) in _TYPES.items())
        raise IDXError(f"{path}: unknown IDX type code 0x{code:02X} in magic number "
                       f"0x{int.from_bytes(magic, 'big'):08X}; expected one of {known}")
    if ndim == 0:
        raise IDXError(f"{path}: magic number 0x{int.from_bytes(magic, 'big'):08X} declares 0 dimensions, "
                       f"expected at least 1")
    _check_expected_magic(path, code, ndim, expect_ndim, expect_dtype)

    header = content[:4 + 4 * ndim]
    if len(header) < 4 + 4 * ndim:
        raise IDXError(f"{path}: {what} ends inside the header: expected {4 + 4 * ndim} header bytes "
                       f"for {ndim} dimensions, got {len(header)}")
    dims = _dims(header)
    if expect_shape is not None and any(e is not None and e != d for e, d in zip(expect_shape, dims)):
        shown = "(" + ", ".join("*" if e is None else str(e) for e in expect_shape) + ")"
        raise IDXError(f"{path}: expected shape {shown}, got {dims}")
    return header


def _dims(header: bytes) -> tuple[int, ...]:
    return tuple(int(d) for d in np.frombuffer(header, dtype=">u4", offset=4))


def _length_message(path, what, header, dims, dtype, actual) -> str:
    expected = len(header) + math.prod(dims) * dtype.itemsize
    hint = "truncated?" if actual < expected else "trailing data, or dims too small?"
    shape = "×".join(map(str, dims))
    return (f"{path}: {what} length does not match its header: expected {expected} bytes "
            f"({len(header)}-byte header + {shape} items × {dtype.itemsize} byte"
            f"{'s' if dtype.itemsize > 1 else ''}), got {actual} ({hint})")


def _describe(code: int, ndim: int) -> str:
    """'3-d ubyte: images' — with MNIST's meaning of the layout when it has one."""
    text = f"{ndim}-d {_TYPES[code][0]}"
    if code == 0x08 and ndim in (1, 3):
        text += ": labels" if ndim == 1 else ": images"
    return text


def _check_expected_magic(path, code, ndim, expect_ndim, expect_dtype) -> None:
    wrong_ndim = expect_ndim is not None and ndim != expect_ndim
    wrong_type = expect_dtype is not None and _TYPES[code][1].newbyteorder("=") != expect_dtype
    if not (wrong_ndim or wrong_type):
        return
    magic = (code << 8) | ndim
    got = f"got {magic} ({_describe(code, ndim)}?)"
    if expect_ndim is not None and expect_dtype is not None and expect_dtype in _CODE_OF:
        want_code = _CODE_OF[expect_dtype]
        want = (want_code << 8) | expect_ndim
        raise IDXError(f"{path}: expected magic {want} ({_describe(want_code, expect_ndim)}), {got}")
    if wrong_ndim:
        raise IDXError(f"{path}: expected a {expect_ndim}-d IDX file, {got.replace('got', 'got magic', 1)}")
    raise IDXError(f"{path}: expected items of type {expect_dtype}, "
                   f"{got.replace('got', 'got magic', 1)} with items of type {_TYPES[code][1].newbyteorder('=')}")


# ---------------------------------------------------------------------------
# checksums


_verified: set[tuple] = set()


def file_md5(path: PathLike) -> str:
    """Hex MD5 digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path: PathLike, expected: str | Iterable[str]) -> str:
    """Raise :class:`ChecksumError` unless the file's MD5 is one of ``expected``; return it."""
    accepted = _digest_set(expected)
    actual = file_md5(path)
    if actual not in accepted:
        raise ChecksumError(f"{path}: MD5 checksum mismatch: expected {_either(accepted)}, got {actual}")
    return actual


def _digest_set(md5) -> frozenset[str]:
    if md5 is None:
        return frozenset()
    if isinstance(md5, str):
        md5 = (md5,)
    return frozenset(d.lower() for d in md5)


def _either(digests) -> str:
    return " or ".join(sorted(digests))


def _verify(path: Path, accepted: frozenset, data: bytes, content: bytes | None) -> None:
    """Check the digest of the file's bytes ``data`` or, for gzip, of its decompressed ``content``."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, accepted)
    if key in _verified:
        return
    actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if actual not in accepted:
        if content is None:
            raise ChecksumError(f"{path}: MD5 checksum mismatch: expected {_either(accepted)}, got {actual}")
        # The same data compressed differently (another gzip header, another level)
        # is still the right data: check the decompressed content as well.
        inner = hashlib.md5(content, usedforsecurity=False).hexdigest()
        if inner not in accepted:
            raise ChecksumError(f"{path}: MD5 checksum mismatch: expected {_either(accepted)}, "
                                f"got {actual} (gzip file) and {inner} (decompressed content)")
    _verified.add(key)


# ---------------------------------------------------------------------------
# writing


def write_idx(path: PathLike, array, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed if ``compress`` (default: name ends in .gz).

    The dtype must be one IDX can hold: uint8, int8, int16, int32, float32 or
    float64. The file is written to a temporary name and renamed into place, so
    a reader never sees half a file. Returns the path.
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODE_OF:
        names = ", ".join(str(d) for d in _CODE_OF)
        raise TypeError(f"write_idx: IDX holds {names}; got an array of dtype {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: IDX holds arrays of 1 to 255 dimensions, got shape {array.shape}")
    if any(d >= 2 ** 32 for d in array.shape):
        raise ValueError(f"write_idx: IDX dimensions are 32-bit, got shape {array.shape}")
    if compress is None:
        compress = path.name.endswith(".gz")
    code = _CODE_OF[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=_TYPES[code][1]).tobytes()

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if compress:
                # mtime=0 keeps the output byte-identical for identical arrays
                with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
                    gz.write(header)
                    gz.write(body)
            else:
                f.write(header)
                f.write(body)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
