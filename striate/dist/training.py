"""Training one model on several ranks, through ``fit``'s seams.

:class:`DataParallel` is what ``fit`` needs on each rank::

    comm = dist.get_communicator()                 # one process: the size-1 communicator
    dp = dist.DataParallel(model, optimizer, comm) # rank 0's weights and optimizer state, everywhere
    fit(model, loss_fn, optimizer, dp.loader(train_loader), dp.loader(test_loader), ...,
        **dp.fit_arguments())                      # transform_grads, reduce, writer

What happens at each step, on every rank: forward and backward on the rank's share
of the global batch (``ShardedLoader``); then ``transform_grads`` weights the
gradient of the share's mean loss by ``N × share / global batch`` and averages it
over the ranks in one Allreduce, which gives exactly the gradient of the mean loss
over the whole global batch (a sum of per-sample gradients divided by the global
count), also when the shares differ by a sample. The optimizer then takes the same
step on every rank. ``reduce`` sums the step's loss, correct predictions and
samples over the ranks, so the numbers shown and saved are the global batch's, and
sums the evaluation's counts, so each rank evaluates a share of the test set.

Batch norm keeps statistics per rank during a step (each normalises its own share,
as PyTorch's DistributedDataParallel does); the running statistics are then
rank 0's, copied to every rank after each step (DDP's ``broadcast_buffers``), so
the model evaluated and saved is the same everywhere. With
``sync_batchnorm=True`` (PyTorch's ``SyncBatchNorm``) every batch norm layer
normalises with the statistics of the whole global batch instead: one more
Allreduce of 2C+1 numbers per layer in forward and of 2C in backward (see
``F.batch_norm``'s ``reduce``). Training is then the one-process training, step
for step, for networks with batch norm too; it costs those small collectives, and
matters when a rank's share is small (a few images per rank).

Dropout gives every sample the mask one process would give it: every rank's
generators are in the same state (the same seed, or the same checkpoint), and while
a rank trains on samples ``lo:hi`` of a global batch it draws the whole batch's mask
and keeps rows ``lo:hi`` (``random.set_batch_share``, set by ``ShardedLoader``).
(Not when a global batch has fewer samples than there are ranks: a rank with no
sample draws nothing, and its generator falls behind the others'.)
"""
from __future__ import annotations

import numpy as np

from ..nn import BatchNorm1d, BatchNorm2d
from .communicator import Communicator, get_communicator
from .data import ShardedLoader

__all__ = ["DataParallel"]


class DataParallel:
    """Data-parallel training of ``model`` with ``optimizer`` over ``comm``'s ranks.

    On construction, rank 0's parameters, buffers and optimizer state are copied to
    every rank (``bcast_data``). With one process every method leaves training as
    it is: ``loader`` returns its argument and ``fit_arguments`` adds nothing.

    ``sync_batchnorm=True`` makes every batch norm layer of ``model`` synchronised
    over the ranks (statistics of the global batch); with one process it changes
    nothing.
    """

    def __init__(self, model, optimizer, comm: Communicator | None = None, sync_batchnorm: bool = False):
        self.model, self.optimizer = model, optimizer
        self.comm = comm if comm is not None else get_communicator()
        self.train_loader: ShardedLoader | None = None
        self.sync_batchnorm = bool(sync_batchnorm)
        if self.comm.size > 1:
            self.broadcast()
            if self.sync_batchnorm:
                for m in model.modules():
                    if isinstance(m, (BatchNorm1d, BatchNorm2d)):
                        m.reduce = self.reduce

    @property
    def parallel(self) -> bool:
        return self.comm.size > 1

    def broadcast(self) -> None:
        """Copy rank 0's parameters, buffers and optimizer state into every rank's, in place."""
        arrays = [p.data for p in self.model.parameters()] + list(self.model.buffers())
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                state = self.optimizer.state.get(p, {})
                arrays += [state[k] for k in sorted(state) if isinstance(state[k], np.ndarray)]
        self.comm.bcast_data(arrays)

    def loader(self, loader):
        """The rank's view of ``loader`` (the first one asked for is the training loader)."""
        if not self.parallel:
            return loader
        sharded = ShardedLoader(loader, self.comm)
        if self.train_loader is None:
            self.train_loader = sharded
        return sharded

    def transform_grads(self, params: list) -> None:
        """``fit``'s seam: the gradient of the global batch's mean loss, on every rank."""
        assert self.train_loader is not None, "DataParallel.loader(train_loader) must come first"
        local, total = self.train_loader.last_share
        self.comm.allreduce_grad(params, weight=self.comm.size * local / total)
        buffers = list(self.model.buffers())
        if buffers:
            self.comm.bcast_data(buffers)

    def reduce(self, array) -> np.ndarray:
        """``fit``'s seam: sums over the ranks (the step's loss and counts, the evaluation's)."""
        return self.comm.allreduce_sum(np.asarray(array, dtype=np.float64))

    def fit_arguments(self) -> dict:
        """``transform_grads``, ``reduce`` and ``writer`` for ``fit`` (nothing with one process)."""
        if not self.parallel:
            return {}
        return {"transform_grads": self.transform_grads, "reduce": self.reduce, "writer": self.comm.rank == 0}
