"""What every benchmark shares: threads, the machine's description, and interleaved timing.

Timing on a shared machine is noisy, so the benchmarks never compare numbers taken at
different moments. ``compare`` runs the contenders in alternation — a block of striate
calls, then a block of PyTorch calls, round after round — so that a burst of load from
elsewhere lands on both, and reports for each round the ratio of the two block times.
The median over rounds of those ratios is the figure we quote; the spread of the ratios
(25th to 75th percentile) says how noisy the run was.

Two clocks: wall time (``--clock wall``, the default), and CPU time of the process
(``--clock cpu``), which leaves out the time the process waited while other programs held
the cores. With one thread CPU time estimates what a quiet machine would show; with
more threads it counts waiting (spinning) helper threads too, so it is refused there.
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def set_threads(n: int):
    """Give striate, NumPy's BLAS and PyTorch the same number of threads; returns the threadpoolctl limiter.

    The BLAS gets ``n`` threads here; ``st.set_num_threads(n)``, called last, sets it back to
    one thread (striate shares out its ops' tiles over its own ``n`` threads instead).
    """
    import threadpoolctl
    import torch

    import striate as st
    limiter = threadpoolctl.threadpool_limits(n, user_api="blas")
    torch.set_num_threads(n)
    st.set_num_threads(n)
    return limiter


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_info() -> str:
    """The BLAS behind NumPy and the kernel it chose (OpenBLAS's 'architecture')."""
    import threadpoolctl
    parts = []
    for lib in threadpoolctl.threadpool_info():
        if lib.get("user_api") == "blas":
            parts.append(f"{lib.get('internal_api')} {lib.get('version')} kernel={lib.get('architecture')} "
                         f"threads={lib.get('num_threads')}")
    return "; ".join(parts) or "no BLAS found by threadpoolctl"


def machine_header(threads: int, clock: str = "wall") -> str:
    """A few lines that say where and when a result was measured."""
    import torch
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")
           if k in os.environ}
    load = os.getloadavg()
    lines = [
        f"date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"cpu: {cpu_model()} ({os.cpu_count()} logical CPUs), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"numpy {np.__version__}, BLAS: {blas_info()}",
        f"torch {torch.__version__}, threads={torch.get_num_threads()}; benchmark threads={threads}, "
        f"clock={clock}",
        f"environment: {env or 'no OPENBLAS_* / OMP_* overrides'}",
        f"command: {' '.join([Path(sys.executable).name] + sys.argv)}",
    ]
    return "\n".join(lines)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def pick_clock(name: str, threads: int):
    """The timer for ``--clock``; CPU time only with one thread (see the module docstring)."""
    if name == "cpu" and threads != 1:
        raise SystemExit("--clock cpu needs --threads 1: with more threads CPU time counts "
                         "spinning helper threads as work")
    return CLOCKS[name]


def median_time(fn, calls: int = 200, clock=time.perf_counter) -> float:
    """Seconds per call of ``fn``: the median of ``calls`` timed calls after one untimed."""
    fn()
    times = []
    for _ in range(calls):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def compare(contenders: dict, rounds: int = 15, inner: int = 5, warmup: int = 3,
            min_block: float = 0.02, clock=time.perf_counter) -> dict:
    """Time each callable in alternation; returns {name: seconds per call (median over rounds)}.

    Each round runs every contender for a block of ``inner`` calls (more if a block would
    take under ``min_block`` seconds: short blocks measure the timer). Also returns, under
    the key ``"_rounds"``, the per-round block times so callers can form per-round ratios.
    """
    names = list(contenders)
    for name in names:
        for _ in range(warmup):
            contenders[name]()
    # calls per block: enough for min_block seconds
    reps = {}
    for name in names:
        t0 = clock()
        contenders[name]()
        one = max(clock() - t0, 1e-7)
        reps[name] = max(inner, int(min_block / one) + 1)
    per_round = {name: [] for name in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]      # neither side always goes first
        for name in order:
            fn, n = contenders[name], reps[name]
            t0 = clock()
            for _ in range(n):
                fn()
            per_round[name].append((clock() - t0) / n)
    result = {name: statistics.median(ts) for name, ts in per_round.items()}
    result["_rounds"] = per_round
    return result


def ratio(timing: dict, ours: str, theirs: str) -> tuple[float, float, float]:
    """Speed of ``ours`` relative to ``theirs`` (their time / our time; higher is better):
    the median over rounds, and the 25th and 75th percentiles (the noise)."""
    r = [t / o for o, t in zip(timing["_rounds"][ours], timing["_rounds"][theirs])]
    q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0]] * 3
    return statistics.median(r), q[0], q[2]


def gemm_peak(threads: int, n: int = 1024, seconds: float = 1.0, clock=time.perf_counter) -> float:
    """float32 GFLOP/s of NumPy's matmul on n×n matrices (the best of repeated runs)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = clock()
        np.matmul(a, b, out=out)
        best = min(best, clock() - t0)
    return 2 * n ** 3 / best / 1e9


def fmt_ratio(r: tuple[float, float, float]) -> str:
    return f"{r[0]:.2f}× [{r[1]:.2f}–{r[2]:.2f}]"


def load_baseline(commit: str, name: str = "striate_base", extra_files=()):
    """Import striate as it was at ``commit`` (under the package name ``name``), for before/after runs.

    The package is extracted with ``git archive`` into a temporary folder; its modules import
    each other relatively, so it loads side by side with the working tree's striate.
    ``extra_files`` (paths inside the package, e.g. "models/alexnet.py") are copied from the
    working tree into it first: a model that did not exist yet, run on the old ops.
    """
    import importlib
    import io
    import subprocess
    import tarfile
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="striate-baseline-"))
    data = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "striate"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "striate").rename(folder / name)
    for extra in extra_files:
        target = folder / name / extra
        target.write_bytes((ROOT / "striate" / extra).read_bytes())
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def step_pair(model, twin, x: np.ndarray, y: np.ndarray, mode: str, sgd: dict | None = None,
              lib=None) -> dict:
    """{"striate": step(), "torch": step()}: the same work on ``model`` and on ``twin``, its PyTorch copy.

    ``x`` (N, C, H, W) float32 and ``y`` (N,) class indices are one batch; PyTorch gets copies of them.
    ``mode`` "train": one training step (zero_grad, forward, cross-entropy, backward, SGD step
    with the keyword arguments ``sgd`` for both libraries). "infer": both models go to eval mode
    and a step is a forward pass under no_grad. ``lib`` is the striate package ``model`` was built
    with: the working tree's by default, or one returned by ``load_baseline``, whose own Tensor,
    functional and optim are then used so that the old code is timed throughout.
    """
    import importlib

    import torch
    import torch.nn.functional as tF
    if lib is None:
        import striate as lib
    xt, yt = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    if mode == "infer":
        model.eval()
        twin.eval()

        def ours():
            with lib.no_grad():
                model(lib.Tensor(x))

        def theirs():
            with torch.no_grad():
                twin(xt)
    elif mode == "train":
        if sgd is None:
            raise ValueError("step_pair: mode 'train' needs the SGD settings "
                             "(e.g. sgd=dict(lr=0.01)), got sgd=None")
        F = importlib.import_module(f"{lib.__name__}.functional")
        optim = importlib.import_module(f"{lib.__name__}.optim")
        opt = optim.SGD(model.parameters(), **sgd)
        topt = torch.optim.SGD(twin.parameters(), **sgd)

        def ours():
            loss = F.cross_entropy(model(lib.Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def theirs():
            topt.zero_grad()
            tF.cross_entropy(twin(xt), yt).backward()
            topt.step()
    else:
        raise ValueError(f"step_pair: mode must be 'train' or 'infer', got {mode!r}")
    return {"striate": ours, "torch": theirs}
