"""The communicators: their collectives under mpiexec -n 2, and one process without MPI at all."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import striate as st
from striate import dist

from .helpers import ROOT, environment, run_workers


def test_mean_of_rank_dependent_gradients():
    result = run_workers(2, "mean_of_gradients")
    assert result["size"] == 2
    for repeat, r in enumerate(result["results"][:2]):       # twice: the buffer made on the first call is reused
        assert r["g0"] == [[1.5 + repeat] * 4] * 3             # mean of rank + 1 + repeat over ranks 0 and 1
        assert r["g1"] == [0.0, 1.5, 3.0, 4.5, 6.0]            # mean of arange(5) × (rank + 1)
        assert r["g2"] == [0.5, 0.5]                           # rank 0 had no gradient: it counts as zeros
        assert r["dtype0"] == "float32"
        assert r["same_everywhere"]
    # ranks holding 1 and 2 samples with gradients 0 and 1, weighted by size × local / total: the mean over 3 samples
    assert result["results"][2]["weighted"] == pytest.approx(2 / 3, rel=1e-6)


def test_broadcast_leaves_rank_0_values_everywhere():
    result = run_workers(2, "broadcast")
    for repeat, r in enumerate(result["results"]):            # twice
        assert r["a"] == [[float(repeat)] * 3] * 2
        assert r["b"] == [0, 1, 2, 3]
        assert r["sum"] == [2.0 * repeat] * 6 + [0.0, 2.0, 4.0, 6.0]   # both ranks hold rank 0's arrays


def test_one_process_communicator_is_the_identity():
    comm = dist.get_communicator()
    assert (comm.rank, comm.size) == (0, 1) and type(comm) is dist.Communicator
    p = st.nn.Parameter(np.ones(3, np.float32))
    p.grad = np.full(3, 2.0, np.float32)
    comm.allreduce_grad([p])
    assert p.grad.tolist() == [2.0, 2.0, 2.0]
    a = np.arange(3.0)
    comm.bcast_data([a])
    assert comm.allreduce_sum(a).tolist() == [0.0, 1.0, 2.0] and a.tolist() == [0.0, 1.0, 2.0]
    comm.barrier()
    model = st.models.get("mlp")
    opt = st.optim.SGD(model.parameters(), lr=0.1)
    parallel = dist.DataParallel(model, opt, comm)
    loader = object()
    assert parallel.loader(loader) is loader and parallel.fit_arguments() == {}


def test_shard_bounds_cover_a_batch_evenly():
    for n in range(0, 20):
        for size in (1, 2, 3, 4):
            bounds = [dist.shard_bounds(n, r, size) for r in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            shares = [hi - lo for lo, hi in bounds]
            assert max(shares) - min(shares) <= 1


def test_one_process_never_imports_mpi4py():
    """With mpi4py impossible to import, striate imports, trains, and --workers says what to install."""
    script = textwrap.dedent("""
        import sys
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "mpi4py":
                    raise ModuleNotFoundError("No module named 'mpi4py' (refused by the test)")
                return None
        sys.meta_path.insert(0, Refuse())
        import numpy as np
        import striate as st, striate.dist, striate.train
        from striate import functional as F
        from striate.cli import main
        model = st.models.get("mlp")
        opt = st.optim.SGD(model.parameters(), lr=0.1)
        parallel = st.dist.DataParallel(model, opt)
        x = np.random.default_rng(0).random((40, 28, 28), dtype=np.float32)
        y = np.arange(40) % 10
        loader = parallel.loader(st.data.DataLoader((x, y), batch_size=8, seed=0))
        result = st.train.fit(model, F.cross_entropy, opt, loader, epochs=1, progress=False, check_memory=False,
                              log=lambda line: None, **parallel.fit_arguments())
        assert len(result["epochs"]) == 1
        code = main(["train", "mlp", "--workers", "2", "--limit", "100", "--epochs", "1"])
        assert code == 2, code
        assert "mpi4py" not in sys.modules
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=environment(), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")
    assert "--workers needs mpi4py, which is not installed: pip install 'striate[dist]'" in done.stderr


def test_python_dash_m_striate_runs_the_command_line():
    done = subprocess.run([sys.executable, "-m", "striate", "train", "--help"], capture_output=True, text=True,
                          timeout=60, env=environment(), cwd=ROOT)
    assert done.returncode == 0 and "--workers N" in done.stdout
