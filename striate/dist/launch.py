"""The ``mpiexec`` command behind ``striate train MODEL --workers N``.

``striate train MODEL --workers N ARGS`` runs, on this machine::

    mpiexec -n N PYTHON -m mpi4py -m striate train MODEL ARGS

with the same interpreter, ``mpiexec`` found beside it (a virtual environment with
``striate[dist]`` has MPICH's there) or else on ``PATH``, and one BLAS thread per
rank unless ``--threads`` says otherwise (N ranks on N cores: more threads would
only compete).

This module is the one place in the package that starts a process: :func:`launch`
runs that fixed argument list (no shell; nothing in it comes from a file, only from
the user's own command line).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["DistUnavailable", "find_mpiexec", "mpiexec_command", "worker_environment", "launch"]

INSTALL = "pip install 'striate[dist]' (mpi4py and MPICH)"


class DistUnavailable(RuntimeError):
    """Training over several processes needs mpi4py and an ``mpiexec``, and one of them is missing."""


def find_mpiexec() -> str:
    """The ``mpiexec`` beside this interpreter, else the one on ``PATH``; DistUnavailable if none."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise DistUnavailable(f"--workers needs mpiexec, found neither beside {sys.executable} nor on PATH: {INSTALL}")
    return found


def mpiexec_command(workers: int, args: list[str]) -> list[str]:
    """``[mpiexec, -n, N, python, -m, mpi4py, -m, striate, *args]``; DistUnavailable without striate[dist]."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    try:
        found = importlib.util.find_spec("mpi4py") is not None
    except (ImportError, ValueError):         # a module set to None in sys.modules, or a finder refusing it
        found = False
    if not found:
        raise DistUnavailable(f"--workers needs mpi4py, which is not installed: {INSTALL}")
    return [find_mpiexec(), "-n", str(workers), sys.executable, "-m", "mpi4py", "-m", "striate", *args]


def worker_environment(threads: int | None = 1) -> dict[str, str]:
    """This process's environment with ``threads`` threads per rank, striate's and the BLAS's (None: as it is)."""
    env = dict(os.environ)
    if threads is not None:
        for name in ("STRIATE_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    return env


def launch(workers: int, args: list[str], threads: int | None = 1) -> int:
    """Run ``striate ARGS`` on ``workers`` processes under mpiexec; wait for the job and return its exit code."""
    command = mpiexec_command(workers, args)
    print(f"starting {workers} processes: {' '.join(command)}", flush=True)
    return subprocess.call(command, env=worker_environment(threads))
