"""Saving and loading: ``st.save(obj, path)`` and ``st.load(path)``, in the safetensors format.

A safetensors file is an 8-byte little-endian header length, a JSON header
(each array's dtype, shape and byte range, plus a string→string
``__metadata__``), then the raw array bytes. It holds numbers only, so loading
one can never run code — unlike a pickle (``torch.save``'s format), which
``st.load`` refuses outright.

What can be saved:

* a Module (its ``state_dict()``), or a state dict ``{name: array}``: the
  arrays are stored under their names, so other safetensors readers see the
  usual ``"c1.weight"``, ``"c1.bias"``, ...;
* nested state, e.g. a whole training checkpoint::

      st.save({"model": model, "optimizer": opt.state_dict(),
               "scheduler": sched.state_dict(), "rng": st.random.get_state(),
               "epoch": 7}, "run/last.safetensors")

  Arrays anywhere in the tree are stored under their dotted path
  (``"model.c1.weight"``, ``"optimizer.state.3.momentum_buffer"``); everything
  else (numbers, strings, booleans, None, lists, tuples, dicts with str or int
  keys) goes, with the shape of the tree, into JSON in the metadata under
  ``"striate.tree"``. ``st.load`` rebuilds the same tree (tuples stay tuples,
  int keys stay ints, Tensors come back as arrays).

Files are written atomically: to a temporary file in the same folder, flushed
and fsync'ed, then renamed over the target with ``os.replace``, so a crash
mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import secrets
import struct
from collections import OrderedDict

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError", "atomic_write_bytes"]

FORMAT = "striate"
FORMAT_VERSION = "1"
_TREE_KEY = "striate.tree"
_USER_KEY = "striate.metadata"
_MAX_HEADER = 100 * 1024 * 1024          # safetensors' own limit on the JSON header


class CheckpointError(ValueError):
    """A file that is not a valid striate/safetensors checkpoint (pickle, truncated, garbage)."""


# ---------------------------------------------------------------------------
# flattening a tree of state into {name: array} + JSON


def _encode(value, path: str, arrays: dict):
    """The JSON form of ``value``; arrays are moved to ``arrays[path]`` and replaced by a marker."""
    from .nn.module import Module  # here, not at import time: nn imports functional, which is heavy

    where = path or "the top level"
    if isinstance(value, Module):
        value = value.state_dict()
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"st.save: the array at {where} has dtype {value.dtype}; "
                            "only bool, integer and float arrays can be saved")
        if not path:
            raise TypeError("st.save: a single array needs a name; save {'name': array}")
        if path in arrays:
            raise ValueError(f"st.save: two arrays would be stored under the name {path!r}; "
                             "rename one of the keys")
        arrays[path] = value if value.flags.c_contiguous else value.copy(order="C")   # keeps 0-d arrays 0-d
        return {"$array": path}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):               # np.float32(0.5), np.int64(3): as Python numbers
        if value.dtype.kind not in "biuf":
            raise TypeError(f"st.save: cannot save the {value.dtype} scalar at {where}")
        return value.item()
    if isinstance(value, dict):
        keys = list(value)
        for k in keys:
            if isinstance(k, bool) or not isinstance(k, (str, int, np.integer)):
                raise TypeError(f"st.save: dict keys must be str or int, got {k!r} at {where}")
        children = [(k, _encode(value[k], f"{path}.{k}" if path else str(k), arrays)) for k in keys]
        if all(isinstance(k, str) and not k.startswith("$") for k in keys):
            return {k: v for k, v in children}
        # int keys (an optimizer's state) or keys that look like our markers: keep them exactly
        return {"$dict": [[int(k) if isinstance(k, np.integer) else k, v] for k, v in children]}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f"{path}.{i}" if path else str(i), arrays) for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"$tuple": items}
    raise TypeError(f"st.save: cannot save a {type(value).__name__} at {where}; checkpoints hold "
                    "arrays, Modules, numbers, strings, booleans, None, lists, tuples and dicts "
                    "(no pickled objects)")


def _decode(node, arrays: dict, source: str):
    """Rebuild the tree from its JSON form; a marker that does not have its documented
    form is a CheckpointError (a crafted file must not fail with a TypeError deep inside)."""
    if isinstance(node, list):
        return [_decode(v, arrays, source) for v in node]
    if not isinstance(node, dict):
        return node
    if "$array" in node:
        name = node["$array"]
        if not isinstance(name, str) or name not in arrays:
            raise CheckpointError(f"{source}: the metadata refers to an array {name!r} that the file "
                                  "does not contain")
        return arrays[name]
    if "$tuple" in node:
        items = node["$tuple"]
        if not isinstance(items, list):
            raise _malformed(source, f"a $tuple marker holds a {type(items).__name__}, not a list")
        return tuple(_decode(v, arrays, source) for v in items)
    if "$dict" in node:
        pairs = node["$dict"]
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 and isinstance(p[0], (str, int)) and not isinstance(p[0], bool)
                for p in pairs):
            raise _malformed(source, "a $dict marker is not a list of [key, value] pairs with str or int keys")
        return {k: _decode(v, arrays, source) for k, v in pairs}
    return {k: _decode(v, arrays, source) for k, v in node.items()}


def _malformed(source: str, problem: str) -> CheckpointError:
    return CheckpointError(f"{source}: the metadata entry {_TREE_KEY!r} is malformed ({problem}); "
                           "the file was not written by st.save or was altered")


# ---------------------------------------------------------------------------
# save


def save(obj, path, metadata: dict | None = None) -> None:
    """Write ``obj`` to ``path`` in the safetensors format, atomically.

    Args:
        obj: a Module, a state dict (name → array), or a nested dict/list of
            arrays, Modules and JSON-friendly values (see the module docstring).
        path: the file to write (``.safetensors`` by convention); its folder must exist.
        metadata: optional JSON-friendly dict (e.g. a run's config) stored
            beside the tree; read it back with ``load(path, with_metadata=True)``.

    Raises:
        TypeError: for a value that cannot be saved (named by its path in the tree).
    """
    from safetensors.numpy import save as _safetensors_bytes

    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, "", arrays)
    header = {"format": FORMAT, "striate.version": FORMAT_VERSION,
              _TREE_KEY: json.dumps(tree, separators=(",", ":"))}
    if metadata is not None:
        try:
            header[_USER_KEY] = json.dumps(metadata, separators=(",", ":"))
        except TypeError as exc:
            raise TypeError(f"st.save: metadata must be JSON-friendly: {exc}") from None
    blob = _safetensors_bytes(arrays, metadata=header)
    atomic_write_bytes(path, blob)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, flush, fsync,
    then ``os.replace`` over ``path``. A failure at any point leaves an existing
    ``path`` untouched and removes the temporary file. (Also used for the JSON
    files of a training run.)

    Raises:
        OSError: the folder is missing, read-only or full (the errno is kept, so
            e.g. a PermissionError stays one); the message names ``path``.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as for any new file
    # (tempfile.mkstemp would make every checkpoint readable by its owner only)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise _write_error(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _write_error(exc, path) from exc
        raise
    try:                                 # make the rename itself durable (POSIX)
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _write_error(exc: OSError, path: str) -> OSError:
    """``exc`` restated with the file it was about (not the temporary name) and what survived."""
    message = (f"cannot write {path}: {exc.strerror or exc}; "
               f"{'the file there is left as it was' if os.path.exists(path) else 'nothing was written'}")
    return OSError(exc.errno, message) if exc.errno is not None else OSError(message)


# ---------------------------------------------------------------------------
# load


def _describe_foreign(head: bytes) -> str | None:
    """A guess at what a non-safetensors file is, from its first bytes."""
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return ("a Python pickle (e.g. written by torch.save, pickle.dump or np.save with objects); "
                "st.load never unpickles, because unpickling can run arbitrary code")
    if head[:4] == b"PK\x03\x04":
        return "a zip archive (torch.save's format, or .npz); st.load never unpickles its contents"
    if head[:6] == b"\x93NUMPY":
        return "a NumPy .npy file"
    return None


def _fail(source: str, problem: str) -> CheckpointError:
    return CheckpointError(f"{source}: {problem}; expected a safetensors checkpoint written by "
                           "st.save (8-byte header length, JSON header, array data)")


def _read_header(raw: bytes, source: str) -> dict:
    """Check the framing and the JSON header before the safetensors library sees the bytes."""
    n = struct.unpack("<Q", raw[:8])[0] if len(raw) >= 8 else None
    framed = n is not None and 0 < n <= min(_MAX_HEADER, len(raw) - 8) and raw[8:9] == b"{"
    if not framed or n is None:
        # Only now guess what else it is: a valid header length can begin like a pickle (0x80 0x02 ...).
        foreign = _describe_foreign(raw[:8])
        if foreign:
            raise _fail(source, f"this is {foreign}")
        if n is None:
            raise _fail(source, f"the file has {len(raw)} bytes, fewer than the 8-byte header length")
        if n == 0 or n > _MAX_HEADER:
            raise _fail(source, f"the first 8 bytes give a header length of {n}, which is not plausible")
        if 8 + n > len(raw):
            raise _fail(source, f"the header should be {n} bytes but only {len(raw) - 8} follow "
                                "(the file is truncated or not a checkpoint)")
        raise _fail(source, "the header does not start with '{' (not a JSON header)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _fail(source, "the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _fail(source, "the header is not a JSON object")
    data_size = len(raw) - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise _fail(source, "the header's __metadata__ is not a string-to-string map")
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)):
            raise _fail(source, f"the header entry for {name!r} has no valid data_offsets")
        if offsets[1] > data_size or offsets[0] > offsets[1]:
            raise _fail(source, f"array {name!r} ends at byte {offsets[1]} of the data, but the file "
                                f"holds only {data_size} data bytes (truncated?)")
    return header


def _json_entry(meta: dict, key: str, source: str):
    """The JSON value of a metadata entry; invalid or absurdly nested JSON is a CheckpointError."""
    try:
        return json.loads(meta[key])
    except (ValueError, RecursionError):
        raise _fail(source, f"the metadata entry {key!r} is not valid JSON (or is nested too deeply)") from None


def load(path, with_metadata: bool = False):
    """Read a file written by :func:`save` (or any safetensors file).

    Returns what was saved: a state dict ``{name: array}`` for a Module, the
    same nested structure for nested state. A safetensors file from elsewhere
    (no striate metadata) gives ``{name: array}``. With ``with_metadata``,
    returns ``(obj, metadata)``.

    Raises:
        OSError: the file cannot be read (FileNotFoundError, IsADirectoryError,
            PermissionError).
        CheckpointError: (a ValueError) the file is a pickle, a zip, truncated,
            or otherwise not a valid checkpoint; nothing in it is executed.
            These two are the only exceptions a file's content can cause.
    """
    from safetensors.numpy import load as _safetensors_load

    source = os.fspath(path)
    with open(source, "rb") as f:
        raw = f.read()
    header = _read_header(raw, source)
    try:
        arrays = _safetensors_load(raw)
    except Exception as exc:  # the library's own errors, re-raised as ours with the file's name
        raise _fail(source, f"the safetensors reader rejected it ({exc})") from None
    arrays = {k: (v if v.flags.writeable else v.copy()) for k, v in arrays.items()}
    meta = header.get("__metadata__", {}) or {}
    user = _json_entry(meta, _USER_KEY, source) if _USER_KEY in meta else None
    if _TREE_KEY in meta:
        tree = _json_entry(meta, _TREE_KEY, source)
        try:
            obj = _decode(tree, arrays, source)
        except RecursionError:
            raise _malformed(source, "nested too deeply") from None
    else:
        # a plain safetensors file: its arrays in the order of their offsets in the file
        order = sorted((k for k in header if k != "__metadata__"),
                       key=lambda k: header[k]["data_offsets"][0])
        obj = OrderedDict((k, arrays[k]) for k in order)
    return (obj, user) if with_metadata else obj
