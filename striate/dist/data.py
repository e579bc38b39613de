"""Each rank's share of every global batch.

The global batch is the one a single process would train on: the same loader, the
same seed, so the same shuffled order and the same augmented images. Rank ``r`` of
``N`` takes the contiguous slice ``[n·r // N, n·(r + 1) // N)`` of each global batch
of ``n`` samples: equal shares when ``N`` divides ``n``, and otherwise shares that
differ by at most one sample (the last, smaller batch of an epoch included). Every
rank takes as many steps per epoch as one process would.

The images are exactly one process's because each rank makes the whole global
batch (read, convert, augment with the batch's own generator) and keeps its slice:
the augmentation's random numbers are drawn per sample in one draw per batch, so
slicing them is the only way to give a sample the same shift whatever ``N`` is,
without changing what one process does. Dropout, drawn during the step, works the
other way round (``random.set_batch_share``): while a rank trains on its share, it
draws the whole global batch's masks from a generator in the same state on every
rank and keeps its rows. The price is that the preparation of a
batch (not its forward and backward) is done on every rank; for MNIST-sized
images it is a small part of a step.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import random as st_random
from .communicator import Communicator

__all__ = ["shard_bounds", "ShardedLoader"]


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``(lo, hi)``: rank ``rank`` of ``size`` takes samples ``lo:hi`` of a batch of ``n``.

    >>> [shard_bounds(5, r, 2) for r in range(2)]
    [(0, 2), (2, 5)]
    """
    return n * rank // size, n * (rank + 1) // size


class ShardedLoader:
    """A ``data.DataLoader`` seen by one rank: the rank's share of each of its global batches.

    ``len``, ``state_dict`` and ``load_state_dict`` are the global loader's, so a
    checkpoint names the same position whatever the number of ranks, and a run
    resumes with another ``N`` and the same global batch. ``last_share`` is
    ``(samples of this rank, samples of the global batch)`` of the batch last
    yielded: what weights this rank's gradient (see ``DataParallel``).
    """

    def __init__(self, loader, comm: Communicator):
        self.loader, self.comm = loader, comm
        self.last_share = (0, 0)

    def _share(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = shard_bounds(len(y), self.comm.rank, self.comm.size)
        self.last_share = (hi - lo, len(y))
        st_random.set_batch_share((lo, hi, len(y)))       # dropout draws the global batch's masks, keeps lo:hi
        return x[lo:hi], y[lo:hi]

    def _shares(self, batches) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        try:
            for x, y in batches:
                yield self._share(x, y)
        finally:
            st_random.set_batch_share(None)

    def iter_epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self._shares(self.loader.iter_epoch(epoch, start_batch))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self._shares(iter(self.loader))

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def batch_size(self) -> int:
        """The largest share of a global batch: what one rank's step holds in memory."""
        return -(-self.loader.batch_size // self.comm.size)

    @property
    def global_batch_size(self) -> int:
        return self.loader.batch_size

    @property
    def num_samples(self) -> int:
        return self.loader.num_samples

    def sample_shape(self) -> tuple[int, ...]:
        return self.loader.sample_shape()

    def state_dict(self) -> dict:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.loader.load_state_dict(state)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.loader.set_epoch(epoch, start_batch)

    def __repr__(self) -> str:
        return f"ShardedLoader({self.loader!r}, rank {self.comm.rank} of {self.comm.size})"
