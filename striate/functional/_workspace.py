"""Reused scratch arrays for the temporaries of the convolutions.

A convolution makes large temporaries (windows as columns, transformed tiles) at every
call. Fresh arrays of that size are handed back to the operating system when freed and
faulted in again at the next call, which costs as much as the arithmetic on small
networks. Instead each temporary has a named buffer per thread, kept between calls.
"""
from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

SCRATCH_LIMIT = 32 << 20       # a temporary larger than this is allocated afresh, not kept


class _Workspace(threading.local):
    """The arrays of one thread, by (name, dtype, array module)."""

    def __init__(self) -> None:
        self.arrays: dict[tuple[str, np.dtype, str], np.ndarray] = {}


_workspace = _Workspace()


def scratch(name: str, shape: tuple[int, ...], dtype: npt.DTypeLike, xp: Any = np) -> np.ndarray:
    """An uninitialised array of ``shape`` for the temporary ``name``, reused from call to call.

    Each name holds one buffer per thread, grown to the largest size asked for; the caller
    must be done with it before asking for the same name again, and must never return it.
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    if size * dtype.itemsize > SCRATCH_LIMIT:
        return xp.empty(shape, dtype=dtype)
    key = (name, dtype, xp.__name__)
    flat = _workspace.arrays.get(key)
    if flat is None or flat.size < size:
        flat = _workspace.arrays[key] = xp.empty(size, dtype=dtype)
    return flat[:size].reshape(shape)
