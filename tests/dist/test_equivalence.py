"""Two ranks train as one process does: the same global batches, the same losses, the same accuracy."""
import json
import subprocess
import sys

import numpy as np
import pytest

from striate.data import MNIST, DatasetNotFoundError

from .helpers import environment, mpi_command, run, run_workers


@pytest.fixture(scope="module")
def mnist():
    try:
        MNIST(train=True, download=False)
        MNIST(train=False, download=False)
    except DatasetNotFoundError as exc:
        pytest.skip(f"MNIST is not on disk: {str(exc).splitlines()[0]}")


def test_two_ranks_match_one_process_step_by_step(mnist):
    # 6,305 images in global batches of 63: shares of 31 and 32 at every step (never equal), and a last batch
    # of 5 split 2 and 3; augmented (±2-pixel shifts), so the images themselves must match too.
    # lr 0.02: at the recipe's 0.05 the first steps pass through a loss spike (step 24) that amplifies
    # float32 rounding (1e-7) a thousandfold, which no summation order escapes.
    args = ("6305", "63", "0.02")
    one = run_workers(1, "training", *args, timeout=300, mpi=False)
    two = run_workers(2, "training", *args, timeout=300)
    assert one["size"] == 1 and two["size"] == 2
    a, b = np.array(one["losses"]), np.array(two["losses"])
    assert len(a) == len(b) == 101                          # every rank takes one process's steps
    np.testing.assert_allclose(b[:100], a[:100], rtol=1e-5)
    np.testing.assert_allclose(b, a, rtol=1e-5)             # the uneven last batch included
    assert one["n"] == two["n"] == 2000                      # the sharded evaluation counts every test image once
    assert abs(one["acc"] - two["acc"]) <= 0.001
    assert two["weights_differ"] == 0.0                      # both ranks hold the same weights, bit for bit


def test_striate_train_with_two_workers(mnist, tmp_path):
    """``--workers 2`` against one process: one writer, the run's figures, config's workers, rank 0's lines only."""
    common = ["-m", "striate", "train", "lenet5-modern", "--limit", "1000", "--epochs", "1", "--quiet"]
    one = run([sys.executable, *common, "--out", "one"], timeout=300, cwd=tmp_path)
    two = run([sys.executable, *common, "--out", "two", "--workers", "2"], timeout=300, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert "mpiexec -n 2" in two.stdout and "-m mpi4py -m striate train lenet5-modern" in two.stdout
    assert "--workers" not in two.stdout.split("starting 2 processes:")[1].splitlines()[0]
    assert two.stdout.count("test accuracy:") == 1 and two.stdout.count("epoch 1/1") == 1     # rank 0 alone
    m1, m2 = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    e1, e2 = m1["epochs"][0], m2["epochs"][0]
    assert e2["train_loss"] == pytest.approx(e1["train_loss"], rel=1e-5)
    assert abs(e2["test_acc"] - e1["test_acc"]) <= 0.001
    c1, c2 = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("one", "two"))
    assert (c1["workers"], c2["workers"]) == (1, 2)
    assert {p.name for p in (tmp_path / "two").iterdir()} == {p.name for p in (tmp_path / "one").iterdir()}


def test_launch_form_with_mpiexec(mnist, tmp_path):
    """The documented form, ``mpiexec -n 2 python -m mpi4py -m striate train ...``, trains the same run."""
    done = run([*mpi_command(2, "-m", "striate", "train", "mlp", "--limit", "600", "--epochs", "1", "--quiet",
                             "--out", "run", "--sync-batchnorm")], timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["workers"] == 2 and config["sync_batchnorm"] is True
    assert subprocess.run([sys.executable, "-m", "striate", "evaluate", "run"], cwd=tmp_path, env=environment(),
                          capture_output=True, text=True, timeout=120).returncode == 0


@pytest.mark.parametrize("ranks", [2, 3])
def test_dropout_masks_do_not_depend_on_the_number_of_ranks(ranks):
    # batches of 25 (shares 12/13, or 8/8/9) and a last batch of 5: each sample gets one process's mask
    one = run_workers(1, "dropout", timeout=120, mpi=False)
    many = run_workers(ranks, "dropout", timeout=120)
    assert many["size"] == ranks and len(many["losses"]) == len(one["losses"]) == 10
    np.testing.assert_allclose(many["losses"], one["losses"], rtol=1e-5)


def test_batch_norm_statistics_are_rank_0s_everywhere():
    # each rank normalises its share with the share's statistics (as PyTorch's DDP); the running
    # statistics are then rank 0's on every rank, so all ranks evaluate and save one model
    one = run_workers(1, "batchnorm", timeout=120, mpi=False)
    two = run_workers(2, "batchnorm", timeout=120)
    assert two["differ"] == 0.0
    assert not np.allclose(two["running"][0], one["running"][0], rtol=1e-5)    # per-rank statistics
    assert not np.allclose(two["losses"], one["losses"], rtol=1e-5)


@pytest.mark.parametrize("ranks", [2, 3])
def test_synchronised_batch_norm_trains_as_one_process(ranks):
    # global batches of 25 (shares 12/13 or 8/8/9) and a last one of 5: with --sync-batchnorm every layer
    # normalises with the whole batch's statistics, so the losses, the weights and the running statistics
    # are one process's
    one = run_workers(1, "batchnorm", "1", timeout=120, mpi=False)
    many = run_workers(ranks, "batchnorm", "1", timeout=120)
    assert many["size"] == ranks and many["differ"] == 0.0 and len(many["losses"]) == len(one["losses"]) == 9
    _same_training(many, one)


def test_synchronised_batch_norm_with_an_empty_share():
    # 202 samples in batches of 25: the last batch of 2 gives 3 ranks shares of 0, 1 and 1; the rank
    # with none still joins every layer's exchanges (else the job aborts or hangs)
    one = run_workers(1, "batchnorm", "1", "202", timeout=120, mpi=False)
    many = run_workers(3, "batchnorm", "1", "202", timeout=120)
    assert many["size"] == 3 and many["differ"] == 0.0 and len(many["losses"]) == len(one["losses"]) == 9
    _same_training(many, one)


def _same_training(many, one):
    # weights within float32 round-off amplified by batch norm over a last batch of 2 samples
    np.testing.assert_allclose(many["losses"], one["losses"], rtol=1e-5)
    np.testing.assert_allclose(many["weights"], one["weights"], rtol=1e-4, atol=1e-5)
    for a, b in zip(many["running"], one["running"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
