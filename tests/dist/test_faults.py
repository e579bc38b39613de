"""Faults on one rank end the whole job within seconds; a killed job resumes exactly, with the same N or another."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from striate.data import MNIST, DatasetNotFoundError
from striate.serialization import load

from .helpers import WORKERS, environment, mpi_command, mpiexec, run

ENDS_WITHIN = 30          # seconds: "within seconds" on a loaded 2-core machine, far below a hang


@pytest.mark.parametrize("launch", ["python -m mpi4py", "abort hook"])
def test_an_exception_on_one_rank_ends_the_job(launch):
    if launch == "python -m mpi4py":
        command = mpi_command(2, str(WORKERS), "fail_on_one_rank")
    else:                             # a plain script: the hook install_abort_hook sets is what ends the job
        command = [mpiexec(), "-n", "2", sys.executable, str(WORKERS), "fail_on_one_rank", "hook"]
    t0 = time.monotonic()
    done = run(command, timeout=ENDS_WITHIN)
    assert done.returncode != 0
    assert "rank 1 failed on purpose" in done.stderr
    assert time.monotonic() - t0 < ENDS_WITHIN


def _ranks_of(out: Path) -> list[int]:
    """The pids of the training processes writing ``out`` (not mpiexec's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(out).encode() in argv and b"mpi4py" in argv and not any(b"mpiexec" in a or b"hydra" in a
                                                                         for a in argv[:1]):
            pids.append(int(entry.name))
    return sorted(pids)


@pytest.mark.slow
def test_a_killed_rank_ends_the_job_and_the_run_resumes(tmp_path):
    try:
        MNIST(train=True, download=False)
    except DatasetNotFoundError as exc:
        pytest.skip(f"MNIST is not on disk: {str(exc).splitlines()[0]}")
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("finds the ranks' processes through /proc")
    args = ["-m", "striate", "train", "lenet5-modern", "--limit", "1600", "--epochs", "3", "--batch-size", "50",
            "--quiet", "--checkpoint-every", "0"]
    reference = run(mpi_command(2, *args, "--out", str(tmp_path / "reference")), timeout=600)
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "killed"
    job = subprocess.Popen(mpi_command(2, *args, "--out", str(out)), env=environment(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoint.safetensors").exists() and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.02)
        time.sleep(0.3)                                   # a few more steps, each ending with a checkpoint
        assert job.poll() is None, "the run ended before it could be killed; give it more work"
        ranks = _ranks_of(out)
        assert len(ranks) == 2, ranks
        os.kill(ranks[-1], signal.SIGKILL)
        t0 = time.monotonic()
        job.wait(timeout=ENDS_WITHIN)
        assert time.monotonic() - t0 < ENDS_WITHIN
    finally:
        if job.poll() is None:
            job.kill()
        job.communicate()
    assert job.returncode != 0
    assert not (out / "model.safetensors").exists()       # killed before the end

    other_n = tmp_path / "killed-then-one-process"
    shutil.copytree(out, other_n)
    same = run(mpi_command(2, *args, "--out", str(out), "--resume"), timeout=600)
    assert same.returncode == 0, same.stderr
    expected, got = load(tmp_path / "reference" / "model.safetensors"), load(out / "model.safetensors")
    assert expected.keys() == got.keys()
    for name in expected:
        assert np.array_equal(expected[name], got[name]), name          # bit for bit

    one = run([sys.executable, *args, "--out", str(other_n), "--resume"], timeout=600)
    assert one.returncode == 0, one.stderr
    metrics = json.loads((other_n / "metrics.json").read_text())
    config = json.loads((other_n / "config.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3] and config["workers"] == 1
    assert config["recipe"]["batch_size"] == 50                         # the global batch, unchanged
    reference_metrics = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    assert abs(metrics["final_test_acc"] - reference_metrics["final_test_acc"]) < 0.02
