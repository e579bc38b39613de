"""No lost work: a run killed with SIGKILL at any moment leaves a loadable checkpoint, and resuming
from it ends with exactly the weights of a run that was never interrupted.

Twenty trials, each a real process (tests/reliability/killable_run.py) training a tiny network with a
checkpoint after every step: eight are killed by this process after a random delay (mostly during a
step, sometimes during a write), twelve kill themselves at a chosen call inside a checkpoint write (half
way through the data, before fsync, before the rename, after it). Each is then checked and resumed
here, in-process, and compared bit for bit with the uninterrupted run.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import striate as st
from striate.train import CHECKPOINT, FINAL_WEIGHTS, load_checkpoint

from . import killable_run
from .killable_run import STAGES, build, train

REPO = Path(__file__).resolve().parents[2]
TIMED_TRIALS = 8
TRIALS_PER_STAGE = 3

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")]


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"              # the suite's products run on one thread: same sums, same bits
    return env


def start(out: Path, *stage):
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.killable_run", str(out), *stage],
                            cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def weights(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its final weights and how often each step of an atomic write happens."""
    counts = dict.fromkeys(STAGES, 0)
    real = {"fdopen": os.fdopen, "fsync": os.fsync, "replace": os.replace}

    def counting(name, stage):
        def call(*args, **kwargs):
            counts[stage] += 1
            return real[name](*args, **kwargs)
        return call

    os.fdopen, os.fsync, os.replace = (counting("fdopen", "write"), counting("fsync", "fsync"),
                                       counting("replace", "replace"))
    t0 = time.perf_counter()
    try:
        model = train(tmp_path_factory.mktemp("uninterrupted"))
    finally:
        os.fdopen, os.fsync, os.replace = real["fdopen"], real["fsync"], real["replace"]
    counts["renamed"] = counts["replace"]
    counts["seconds"] = time.perf_counter() - t0
    assert counts["replace"] >= 20                  # a checkpoint after every step, at least
    return weights(model), counts


def trials(counts):
    """(how, argument) of each trial: a delay in seconds, or a stage and the call to die at.

    The delays are fractions of the uninterrupted run's duration, so that they fall inside
    the run whatever the speed of the machine.
    """
    g = np.random.default_rng(7)
    timed = [("timed", float(g.uniform(0.0, 0.7)) * counts["seconds"]) for _ in range(TIMED_TRIALS)]
    staged = [(stage, int(g.integers(1, counts[stage] + 1))) for stage in STAGES for _ in range(TRIALS_PER_STAGE)]
    return timed + staged


def kill_after(proc, checkpoint: Path, delay: float) -> None:
    """Wait for the first checkpoint, then SIGKILL the run ``delay`` seconds later (if it still runs)."""
    deadline = time.monotonic() + 60
    while not checkpoint.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run ended or stalled before its first checkpoint: {proc.communicate()}")
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)


def test_sigkill_at_random_moments_then_resume_gives_identical_weights(reference, tmp_path):
    expected, counts = reference
    killed = 0
    for i, (how, arg) in enumerate(trials(counts)):
        out = tmp_path / f"trial{i}-{how}"
        if how == "timed":
            proc = start(out)
            kill_after(proc, out / CHECKPOINT, arg)
        else:
            proc = start(out, f"{how}:{arg}")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), err
        assert "Traceback" not in err, err
        killed += proc.returncode == -signal.SIGKILL
        where = f"trial {i} ({how} {arg})"

        if (out / CHECKPOINT).exists():
            # whatever the moment, the last checkpoint is a complete one
            model, opt, sched, train_loader, _ = build()
            position, _ = load_checkpoint(out / CHECKPOINT, model, opt, sched, train_loader)
            assert 1 <= position["epoch"] <= killable_run.EPOCHS + 1, where
            resumed = train(out, resume=True)
        else:
            # killed while writing the very first checkpoint: nothing to resume, nothing half-made
            assert how != "timed" and not (out / FINAL_WEIGHTS).exists(), where
            resumed = train(out)
        for name, value in weights(resumed).items():
            assert np.array_equal(value, expected[name]), f"{where}: {name} differs after resuming"
        leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
        assert leftovers == [], f"{where}: temporary files left behind: {leftovers}"
        assert np.array_equal(st.load(out / FINAL_WEIGHTS)["6.weight"], expected["6.weight"]), where
    # every staged trial kills itself; a timed one may outlive its delay on a busy machine
    assert killed >= len(trials(counts)) - TIMED_TRIALS // 2
