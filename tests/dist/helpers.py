"""Running a script on several MPI processes from pytest, as ChainerMN's tests are run.

Each test starts ``mpiexec -n N python -m mpi4py SCRIPT ...`` in a subprocess with a
timeout, so a test that would hang fails instead. Where mpi4py or mpiexec is
missing the tests are skipped, saying so; with the environment variable CI set
they fail instead, so that a CI machine without ``striate[dist]`` cannot pass them
unnoticed.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "workers.py"


def mpiexec() -> str:
    """The mpiexec to use, or skip (fail under CI) when striate[dist] is not installed."""
    from striate.dist import DistUnavailable, find_mpiexec
    try:
        if importlib.util.find_spec("mpi4py") is None:
            raise DistUnavailable("mpi4py is not installed")
        return find_mpiexec()
    except DistUnavailable as exc:
        reason = f"MPI tests need striate[dist] (mpi4py and mpiexec): {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set: install .[test] or .[dist])")
        pytest.skip(reason)


def environment(**extra) -> dict[str, str]:
    """This environment with the repository importable, one BLAS thread per rank and MNIST's folder."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    data = ROOT.parent / "shared" / "data"
    if "STRIATE_DATA" not in env and data.is_dir():
        env["STRIATE_DATA"] = str(data)
    env.update(extra)
    return env


def mpi_command(n: int, *args: str) -> list[str]:
    return [mpiexec(), "-n", str(n), sys.executable, "-m", "mpi4py", *args]


def run(command: list[str], timeout: float, cwd=None) -> subprocess.CompletedProcess:
    """Run ``command``; a test failure naming the command if it is still running after ``timeout`` s."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment(),
                              cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(command)} did not end within {timeout} s (a hang); "
                    f"stdout: {exc.stdout!r} stderr: {exc.stderr!r}")


def run_workers(n: int, case: str, *args: str, timeout: float = 120, mpi: bool = True) -> dict:
    """``workers.py CASE ARGS`` on ``n`` ranks (``mpi=False``: one plain process); rank 0's JSON result."""
    command = mpi_command(n, str(WORKERS), case, *args) if mpi else [sys.executable, str(WORKERS), case, *args]
    done = run(command, timeout)
    assert done.returncode == 0, f"{case} failed with code {done.returncode}:\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"{case}: expected one JSON line from rank 0, got:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[0])
