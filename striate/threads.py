"""How many threads striate's ops use, and the pool that runs their tiles.

``st.set_num_threads(n)`` and ``st.get_num_threads()``, as in PyTorch. The default is
the number of cores this process may use: its CPU affinity, capped by its cgroup's CPU
quota where it has one (a container limited to 2 CPUs on a 64-core host gets 2), or the
``STRIATE_NUM_THREADS`` environment variable when it is set.

How an op uses them. A heavy op (a convolution, a pooling, an activation, a dense
layer) cuts its work into **tiles**: slices of the batch, or of the output features,
each written to its own part of the output. How many tiles, and where they are cut,
depends on the op's shapes only, never on the number of threads. The threads only
share out the tiles: every thread takes the next tile not yet taken, until none is
left. A tile is computed the same way whichever thread computes it, and sums over tiles
(a weight gradient over the batch) are added in tile order after all of them are done,
so the results are bit-for-bit the same at any number of threads. Ops too small to
gain (a measured number of values) are one tile, computed by the calling thread.

The threads gain because NumPy lets go of Python's global interpreter lock (GIL)
inside its loops and matrix products; only the few lines of Python around each call
hold it. The BLAS under NumPy runs one thread inside each tile: striate sets it to one
thread, process-wide through threadpoolctl, at ``import striate`` and at each
``set_num_threads`` call (two levels of threads on the same cores only get in each other's way, and a
product split by the BLAS's threads could round differently from one that is not).

A thread that calls an op while the pool is busy (another thread's op, or an op
inside a tile) computes that op's tiles itself: same results, no waiting.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["set_num_threads", "get_num_threads", "using", "available_cores", "cgroup_cpus", "run_tiles", "tile_bounds",
           "split", "for_tiles", "OrderedSum", "single_threaded_blas"]


def _quota_v2(folder: Path) -> float | None:
    text = (folder / "cpu.max").read_text().split()
    return int(text[0]) / int(text[1]) if text and text[0] != "max" else None


def _quota_v1(folder: Path) -> float | None:
    quota = int((folder / "cpu.cfs_quota_us").read_text())
    period = int((folder / "cpu.cfs_period_us").read_text())
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpus(root: Path = Path("/sys/fs/cgroup"), membership: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroups, in CPUs; None if unlimited.

    The cgroups are read from ``membership`` (v2's ``0::/path``, v1's ``N:cpu,...:/path``);
    the quota is the smallest one set on the process's cgroup or any cgroup above it, in
    v2's ``cpu.max`` or v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``.
    """
    places: list[tuple[Path, Callable[[Path], float | None]]] = []
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines + ["0::/"]:                   # the root too, when the process's own path is unknown
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        relative = Path(path.lstrip("/"))
        mounts: list[tuple[Path, Callable[[Path], float | None]]]
        if controllers == "":
            mounts = [(root, _quota_v2)]
        elif "cpu" in controllers.split(","):
            mounts = [(root / name, _quota_v1) for name in (controllers, "cpu", "cpu,cpuacct")]
        else:
            continue
        for mount, read in mounts:
            folder = mount / relative
            while True:
                places.append((folder, read))
                if folder == mount:
                    break
                folder = folder.parent
    quotas = []
    for place, reader in dict.fromkeys(places):
        try:
            quota = reader(place)
        except (OSError, ValueError, IndexError, ZeroDivisionError):
            continue
        if quota is not None:
            quotas.append(quota)
    return min(quotas) if quotas else None


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by its cgroup's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):          # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpus()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _default_threads() -> int:
    text = os.environ.get("STRIATE_NUM_THREADS", "").strip()
    if text:
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"STRIATE_NUM_THREADS must be a positive integer, got {text!r}")
        return n
    return available_cores()


_threads: int | None = None      # None: not decided yet (the default, read at the first use)


def get_num_threads() -> int:
    """The number of threads striate's ops use (see the module docstring for the default)."""
    global _threads
    if _threads is None:
        _threads = _default_threads()
    return _threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in striate's ops from now on (``n`` ≥ 1); the results do not change."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads expects a positive int, got {n!r}")
    _threads = n
    single_threaded_blas()


@contextlib.contextmanager
def using(n: int | None) -> Iterator[None]:
    """``with threads.using(n):`` striate's ops use ``n`` threads inside, as before after (None: unchanged)."""
    if n is None:
        yield
        return
    global _threads
    before = _threads                          # None stays None: the default is read when needed
    set_num_threads(n)
    try:
        yield
    finally:
        _threads = before


# ---------------------------------------------------------------------------
# tiles


def tile_bounds(n: int, tiles: int) -> list[tuple[int, int]]:
    """``tiles`` contiguous (start, stop) slices of range(n), their sizes differing by at most one.

    >>> tile_bounds(10, 3)
    [(0, 3), (3, 6), (6, 10)]
    """
    tiles = max(1, min(tiles, n))
    return [(n * t // tiles, n * (t + 1) // tiles) for t in range(tiles)]


def split(n: int, work_per_item: float, tile_work: float, min_work: float) -> list[tuple[int, int]]:
    """Tiles of range(n) for an op whose item ``i`` costs ``work_per_item`` (values, or multiply-adds).

    One tile when the whole costs less than ``min_work`` (too small to gain from threads);
    else about ``tile_work`` per tile, their number rounded up to a multiple of 4 (so that
    2 or 4 threads share them evenly), at most ``n``. Shapes alone decide, never threads.

    >>> split(1000, 10, tile_work=3000, min_work=5000)
    [(0, 250), (250, 500), (500, 750), (750, 1000)]
    >>> split(100, 10, tile_work=3000, min_work=5000)
    [(0, 100)]
    """
    total = n * work_per_item
    if n <= 1 or total < min_work:
        return [(0, n)]
    count = -(-int(math.ceil(total / tile_work)) // 4) * 4
    return tile_bounds(n, count)


def for_tiles(bounds: list[tuple[int, int]], fn: Callable[[int, int], object]) -> None:
    """``fn(start, stop)`` for each of ``bounds``, shared out over the threads (``run_tiles``)."""
    if len(bounds) == 1:                      # the common case of a small op: straight through
        fn(*bounds[0])
        return
    run_tiles(lambda t: fn(*bounds[t]), len(bounds))


class OrderedSum:
    """Adds each tile's part into ``total`` in tile order, as soon as the parts before it are in.

    ``add(t, part)`` from any thread: parts that arrive early wait (only those), so the
    sum is added in the same order at any thread count, and at one thread each part is
    added as it comes, as a plain loop would.
    """

    def __init__(self, total: Any, count: int):
        self.total, self.parts, self.next = total, [None] * count, 0
        self.lock = threading.Lock()

    def add(self, t: int, part: Any) -> None:
        with self.lock:
            self.parts[t] = part
            while self.next < len(self.parts) and self.parts[self.next] is not None:
                self.total += self.parts[self.next]
                self.parts[self.next] = None
                self.next += 1


class _Job:
    """One op's tiles, taken one by one by every thread that joins in."""

    def __init__(self, fn: Callable[[int], object], count: int):
        self.fn, self.count = fn, count
        self.next = itertools.count()            # next() is atomic under the GIL
        self.lock = threading.Lock()
        self.finished = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def work(self) -> None:
        while True:
            i = next(self.next)
            if i >= self.count:
                return
            try:
                if self.error is None:
                    self.fn(i)
            except BaseException as exc:         # noqa: BLE001 (raised again in the caller)
                self.error = exc
            with self.lock:
                self.finished += 1
                if self.finished == self.count:
                    self.done.set()


class _Pool:
    """``size − 1`` daemon threads; the caller of ``run`` is the size-th."""

    def __init__(self, size: int):
        self.size = size
        self.busy = threading.Lock()
        self.inbox: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._serve, name=f"striate-{i + 1}", daemon=True)
                        for i in range(size - 1)]
        for t in self.threads:
            t.start()

    def _serve(self) -> None:
        while True:
            job = self.inbox.get()
            if job is None:
                return
            job.work()

    def run(self, fn: Callable[[int], object], count: int) -> None:
        job = _Job(fn, count)
        for _ in range(min(self.size - 1, count - 1)):
            self.inbox.put(job)
        try:
            job.work()
            job.done.wait()
        except BaseException as exc:                # Ctrl-C while another thread runs a tile
            if job.error is None:
                job.error = exc
            job.work()                              # takes the tiles not started, running none of them
            while True:                             # and waits for those running: nothing writes after we return
                try:
                    job.done.wait()
                    break
                except BaseException:               # noqa: BLE001 (a second Ctrl-C: still wait)
                    continue
            raise
        if job.error is not None:
            raise job.error

    def close(self) -> None:
        for _ in self.threads:
            self.inbox.put(None)


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def single_threaded_blas() -> None:
    """Set the BLAS under NumPy to one thread (striate's threads share out the work instead).

    Done at ``import striate``, so that every product (tiled or not: ``Tensor.matmul``
    too) rounds the same way at any thread count, and again at ``set_num_threads``.
    """
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=1, user_api="blas")


def _forget_pool_after_fork() -> None:
    """In a forked child the pool's threads do not exist: the next op starts new ones."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _get_pool(size: int) -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.size != size:
            if _pool is not None:
                _pool.close()
            _pool = _Pool(size)
        return _pool


def run_tiles(fn: Callable[[int], object], count: int) -> None:
    """Call ``fn(0)``, …, ``fn(count − 1)``, shared out over ``get_num_threads()`` threads.

    Each call must write only its own part of the output. Returns when all are done;
    an exception in any of them is raised here (the remaining tiles are skipped). With
    one tile, one thread, or the pool busy (a call from inside a tile, or from another
    thread while an op runs), the calling thread does them all, in order.
    """
    size = get_num_threads()
    if count <= 1 or size <= 1:
        for i in range(count):
            fn(i)
        return
    pool = _get_pool(size)
    if not pool.busy.acquire(blocking=False):
        for i in range(count):
            fn(i)
        return
    try:
        pool.run(fn, count)
    finally:
        pool.busy.release()
