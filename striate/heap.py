"""Keep the memory NumPy frees, for the next step to reuse.

A training step makes the same large arrays at every step (a layer's output, its
gradient) and frees them by the end of it. glibc's malloc, which NumPy's arrays come
from on Linux, gives a large freed block back to the operating system (``munmap``, or
trimming the top of the heap), and the next step's array of the same size is then
faulted in again page by page, the kernel zeroing each one: measured on LeNet-5 at batch
256, 666 page faults for one ReLU output of 4.8 MB, which made the ReLU 2–4 times slower
than on memory already mapped, and the whole step 1.3 times slower.

So at ``import striate`` the allocator is told to keep what it is given back:
``mallopt`` raises the size from which a block gets its own mapping to glibc's largest
(32 MiB) and the amount of free memory at the top of the heap that it keeps to 1 GiB.
The process then holds on to its largest working set instead of returning it between
steps (as PyTorch's and JAX's allocators do). Blocks above 32 MiB are still mapped and
unmapped each time.

Set ``STRIATE_KEEP_FREED_MEMORY=0`` (or ``false``, ``no``, ``off``) to leave malloc as it is. Other C libraries
(macOS, musl) are left alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3      # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20                          # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX, 64-bit)
TRIM_THRESHOLD = 1 << 30

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse (once); whether it was done."""
    global _done
    if _done is not None:
        return _done
    _done = False
    off = os.environ.get("STRIATE_KEEP_FREED_MEMORY", "1").strip().lower() in ("0", "false", "no", "off")
    if off or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):              # not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
