"""Data-parallel training over MPI (extra ``striate[dist]``: mpi4py and MPICH).

    communicator.py  Communicator (one process) and MPICommunicator: bcast_data, allreduce_grad,
                     allreduce_sum, barrier, abort; get_communicator; install_abort_hook
    data.py          ShardedLoader: each rank's share of every global batch
    training.py      DataParallel: fit's seams (transform_grads, reduce, writer) for N ranks
    launch.py        the mpiexec command behind ``striate train MODEL --workers N``

Launch (each rank one BLAS thread)::

    striate train lenet5-modern --workers 2
    mpiexec -n 2 python -m mpi4py -m striate train lenet5-modern     # the same; on one host or many

One process never imports mpi4py: ``get_communicator()`` then gives the size-1
communicator, and ``DataParallel`` changes nothing.
"""
from .communicator import Communicator, MPICommunicator, get_communicator, install_abort_hook, launched_by_mpi
from .data import ShardedLoader, shard_bounds
from .launch import DistUnavailable, find_mpiexec, launch, mpiexec_command, worker_environment
from .training import DataParallel

__all__ = ["Communicator", "MPICommunicator", "get_communicator", "install_abort_hook", "launched_by_mpi",
           "ShardedLoader", "shard_bounds", "DataParallel", "DistUnavailable", "find_mpiexec", "mpiexec_command",
           "worker_environment", "launch"]
