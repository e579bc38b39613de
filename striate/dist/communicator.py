"""Communicators: what the processes of one training job say to each other.

Two of them, with the same methods, named after the MPI calls they make:

* :class:`Communicator` is the job of one process (``rank`` 0, ``size`` 1): every
  method is the identity or nothing. Single-process code uses it and never
  imports mpi4py.
* :class:`MPICommunicator` is the job of ``size`` processes started by
  ``mpiexec -n N``; it wraps mpi4py's ``COMM_WORLD``.

    bcast_data(arrays)     rank 0's arrays, copied in place into every rank's
    allreduce_grad(params) every parameter's gradient replaced by its mean over the
                           ranks: one flat buffer, one buffer-based Allreduce per step
    allreduce_sum(array)   the elementwise sum over the ranks (evaluation counts, losses)
    barrier()              wait until every rank is here
    abort(code)            end the whole job now (MPI_Abort), from any rank

:func:`get_communicator` picks one: the MPI one when this process was started by
``mpiexec`` with more than one rank, else the one-process one.

A rank that raises while the others wait in a collective would leave them waiting
for ever. ``python -m mpi4py`` (the standard launch: ``mpiexec -n N python -m mpi4py
-m striate train MODEL ...``) aborts the job when a rank's exception is not
caught; :func:`install_abort_hook` does the same for a script started without it.
"""
from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["Communicator", "MPICommunicator", "get_communicator", "launched_by_mpi", "install_abort_hook"]

# Variables that MPICH's and Open MPI's launchers set in each process they start.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


class Communicator:
    """The job of one process: rank 0 of size 1. Every collective is trivial.

    The base of :class:`MPICommunicator`; code written against it runs unchanged
    with one process or many.
    """

    rank = 0
    size = 1

    def bcast_data(self, arrays: Iterable[np.ndarray]) -> None:
        """Copy rank 0's ``arrays`` into every rank's, in place (one process: nothing to do)."""

    def allreduce_grad(self, params: Sequence, weight: float = 1.0) -> None:
        """Replace each parameter's ``.grad`` by the mean over ranks of ``weight × grad``.

        ``weight`` lets ranks with unequal shares of a batch count in proportion:
        with ``weight = size × local / total`` the result is the gradient of the
        mean loss over all ``total`` samples (see ``dist.DataParallel``). One
        process: the gradient times ``weight``.
        """
        if weight != 1.0:
            for p in params:
                if p.grad is not None:
                    p.grad *= weight

    def allreduce_sum(self, array) -> np.ndarray:
        """The elementwise sum of ``array`` over the ranks (a new array)."""
        return np.array(array, copy=True)

    def barrier(self) -> None:
        """Wait until every rank has called it."""

    def abort(self, code: int = 1) -> None:
        """End the job with exit code ``code``."""
        raise SystemExit(code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class MPICommunicator(Communicator):
    """``size`` processes started by ``mpiexec``, over mpi4py (``comm``: default ``MPI.COMM_WORLD``).

    Every method is collective: all ranks call it, in the same order, with arrays of
    the same shapes and dtypes. Arrays travel as buffers (``Bcast``, ``Allreduce``),
    never pickled.
    """

    def __init__(self, comm=None) -> None:
        from mpi4py import MPI          # only here: one process never needs mpi4py
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self._flat: np.ndarray | None = None     # the gradient buffer, made on first use and kept

    def bcast_data(self, arrays: Iterable[np.ndarray]) -> None:
        for a in arrays:
            if not (isinstance(a, np.ndarray) and a.flags.c_contiguous and a.flags.writeable):
                raise ValueError(f"bcast_data: expected writeable C-contiguous arrays, got "
                                 f"{type(a).__name__} {getattr(a, 'shape', '')}")
            self.comm.Bcast(a, root=0)

    def allreduce_grad(self, params: Sequence, weight: float = 1.0) -> None:
        params = list(params)
        sizes = [p.data.size for p in params]
        dtype = np.result_type(*[p.data.dtype for p in params]) if params else np.dtype(np.float32)
        total = sum(sizes)
        if self._flat is None or self._flat.size != total or self._flat.dtype != dtype:
            self._flat = np.empty(total, dtype)
        flat = self._flat
        # pack: a parameter without a gradient contributes zeros (every rank sends the same layout)
        offset = 0
        for p, n in zip(params, sizes):
            part = flat[offset:offset + n]
            if p.grad is None:
                part[...] = 0
            elif weight == 1.0:
                part[...] = p.grad.ravel()
            else:
                np.multiply(p.grad.ravel(), weight, out=part, casting="unsafe")
            offset += n
        self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)
        flat /= self.size
        offset = 0
        for p, n in zip(params, sizes):
            mean = flat[offset:offset + n].reshape(p.data.shape)
            if p.grad is None or p.grad.shape != p.data.shape:
                p.grad = mean.astype(p.data.dtype, copy=True)
            else:
                p.grad[...] = mean
            offset += n

    def allreduce_sum(self, array) -> np.ndarray:
        send = np.ascontiguousarray(array)
        out = np.empty_like(send)
        self.comm.Allreduce(send, out, op=self.MPI.SUM)
        return out

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)


def launched_by_mpi() -> bool:
    """Whether this process is one of several that ``mpiexec`` started (read from its environment)."""
    if "mpi4py.MPI" in sys.modules:          # python -m mpi4py, or a script that imported it
        return sys.modules["mpi4py.MPI"].COMM_WORLD.Get_size() > 1
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


def get_communicator() -> Communicator:
    """The MPI communicator when started by ``mpiexec`` with several ranks, else the one-process one.

    Raises ImportError, saying what to install, when ``mpiexec`` started several
    ranks but mpi4py is missing.
    """
    if not launched_by_mpi():
        return Communicator()
    try:
        return MPICommunicator()
    except ImportError:
        raise ImportError("this process was started by mpiexec with several ranks, but mpi4py is not installed: "
                          "pip install 'striate[dist]'") from None


def install_abort_hook(comm: Communicator) -> None:
    """Make an uncaught exception on any rank end the whole job (``comm.abort``) instead of hanging it.

    The rank prints its traceback with its rank first, then aborts: the others,
    perhaps waiting for it in a collective, are ended by the launcher within
    seconds. Nothing to do with one process.
    """
    if comm.size == 1:
        return
    previous = sys.excepthook

    def hook(kind, value, tb):
        try:
            sys.stderr.write(f"rank {comm.rank} of {comm.size}: ")
            traceback.print_exception(kind, value, tb)
        finally:
            comm.abort(1)
        previous(kind, value, tb)             # reached only if abort returned

    sys.excepthook = hook
