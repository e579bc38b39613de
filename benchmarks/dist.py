"""Data-parallel training over MPI: throughput with 1 and 2 ranks, and the Allreduce's share of a step.

    python benchmarks/dist.py [--steps 60] [--torch]

For lenet5-modern (global batch 64) and alexnet-small (global batch 128), on synthetic
32×32 images: the median wall time of a training step (forward, backward, the
gradients' Allreduce, the update) on 1 process and on 2 ranks (``mpiexec -n 2
python -m mpi4py``), the images per second that makes, and the median time of
``allreduce_grad`` (pack, Allreduce, unpack) per step, after a barrier whose wait
for the slower rank is reported apart; and the Allreduce alone, 50 calls back to
back. Each rank: one BLAS thread.
Then synchronised batch norm's cost: a LeNet-5 with batch norm after each convolution
and the first dense layer (``lenet5-bn``, global batch 64) on 1 process, on 2 ranks with
per-rank statistics, and on 2 ranks with ``sync_batchnorm=True`` (``lenet5-bn+sync``:
three more small Allreduces forward and three backward per step).
``--torch`` adds PyTorch's DistributedDataParallel (gloo, 2 processes, one thread
each) on the same LeNet-5 (benchmarks/torch_models.py), against PyTorch alone.

The numbers are only as quiet as the machine: on a 2-core machine shared with other
work, 2 ranks compete with that work for the cores.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import numpy as np
from _common import ROOT, cpu_model

BATCH = {"lenet5-modern": 64, "alexnet-small": 128}
BN_BATCH = 64


def lenet5_bn():
    """LeNet-5 (modern) with batch norm after both convolutions and the first dense layer."""
    from striate import nn
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.BatchNorm1d(120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": str(ROOT)}


def worker(model_name: str, steps: int) -> None:
    """One rank: ``steps`` timed training steps on its share of each global batch; rank 0 prints JSON."""
    import striate as st
    from striate import dist
    from striate import functional as F
    from striate.train import make_optimizer, train_step

    comm = dist.get_communicator()
    st.manual_seed(0)
    model = lenet5_bn() if model_name.startswith("lenet5-bn") else st.models.get(model_name)
    optimizer = make_optimizer("sgd", model.parameters(), 0.01, 0.9, 5e-4)
    parallel = dist.DataParallel(model, optimizer, comm, sync_batchnorm=model_name.endswith("+sync"))
    batch = BATCH.get(model_name, BN_BATCH)
    data = np.random.default_rng(0)
    x = data.standard_normal((batch, 1, 32, 32)).astype(np.float32)
    y = data.integers(0, 10, batch)
    lo, hi = dist.shard_bounds(batch, comm.rank, comm.size)
    reduce_times: list[float] = []
    wait_times: list[float] = []

    def transform(params):
        t = time.perf_counter()
        comm.barrier()                                     # the wait for the slower rank, timed apart
        u = time.perf_counter()
        comm.allreduce_grad(params, weight=comm.size * (hi - lo) / batch)
        wait_times.append(u - t)
        reduce_times.append(time.perf_counter() - u)

    step_times = []
    for i in range(steps + 3):                             # 3 warm-up steps
        comm.barrier()
        t = time.perf_counter()
        train_step(model, F.cross_entropy, optimizer, x[lo:hi], y[lo:hi],
                   transform if parallel.parallel else None)
        if i >= 3:
            step_times.append(time.perf_counter() - t)
    step = statistics.median(step_times)
    reduce = statistics.median(reduce_times[3:]) if reduce_times else 0.0
    wait = statistics.median(wait_times[3:]) if wait_times else 0.0
    # the Allreduce alone, back to back: 50 calls on the parameters' gradients
    alone = []
    params = list(model.parameters())
    for _ in range(50 if parallel.parallel else 0):
        comm.barrier()
        t = time.perf_counter()
        comm.allreduce_grad(params)
        alone.append(time.perf_counter() - t)
    if comm.rank == 0:
        print(json.dumps({"model": model_name, "ranks": comm.size, "batch": batch, "step_ms": 1e3 * step,
                          "images_per_s": batch / step, "allreduce_ms": 1e3 * reduce, "wait_ms": 1e3 * wait,
                          "allreduce_alone_ms": 1e3 * statistics.median(alone) if alone else 0.0,
                          "parameters": model.num_parameters()}), flush=True)


def torch_worker(world: int, steps: int) -> None:
    """One PyTorch process (DDP over gloo when ``world`` > 1) training the same LeNet-5 on its share."""
    import torch
    import torch.distributed as tdist
    from torch_models import TorchLeNet5Modern

    import striate as st
    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", "0"))
    st.manual_seed(0)
    net = TorchLeNet5Modern(st.models.get("lenet5-modern"))
    if world > 1:
        tdist.init_process_group("gloo", rank=rank, world_size=world)
        net = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    batch = BATCH["lenet5-modern"]
    data = np.random.default_rng(0)
    x = torch.from_numpy(data.standard_normal((batch, 1, 32, 32)).astype(np.float32))
    y = torch.from_numpy(data.integers(0, 10, batch))
    lo, hi = batch * rank // world, batch * (rank + 1) // world
    times = []
    for i in range(steps + 3):
        if world > 1:
            tdist.barrier()
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x[lo:hi]), y[lo:hi])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t)
    step = statistics.median(times)
    if rank == 0:
        print(json.dumps({"model": "lenet5-modern (PyTorch" + (" DDP gloo)" if world > 1 else ")"), "ranks": world,
                          "batch": batch, "step_ms": 1e3 * step, "images_per_s": batch / step}), flush=True)
    if world > 1:
        tdist.destroy_process_group()


def _json_line(text: str) -> dict:
    return json.loads(next(line for line in text.splitlines() if line.startswith("{")))


def run_striate(model: str, ranks: int, steps: int) -> dict:
    here = [sys.executable, __file__, "--worker", model, "--steps", str(steps)]
    if ranks > 1:
        from striate.dist import find_mpiexec
        here = [find_mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py", *here[1:]]
    done = subprocess.run(here, capture_output=True, text=True, env=ENV, timeout=900, check=True)
    return _json_line(done.stdout)


def run_torch(world: int, steps: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(world):
        env = {**ENV, "RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, __file__, "--torch-worker", str(world), "--steps", str(steps)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outs = [p.communicate(timeout=900) for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError("\n".join(err for _, err in outs))
    return _json_line(outs[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--torch", action="store_true", help="also PyTorch DDP (gloo) on LeNet-5")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--torch-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.steps)
    if args.torch_worker:
        return torch_worker(args.torch_worker, args.steps)
    print(f"{cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start")
    rows = []
    for model in BATCH:
        steps = args.steps if model == "lenet5-modern" else max(args.steps // 4, 5)
        for ranks in (1, 2):
            rows.append(run_striate(model, ranks, steps))
    for model, ranks in (("lenet5-bn", 1), ("lenet5-bn", 2), ("lenet5-bn+sync", 2)):
        rows.append(run_striate(model, ranks, args.steps))
    if args.torch:
        for world in (1, 2):
            rows.append(run_torch(world, args.steps))
    print(f"{'model':<32} {'ranks':>5} {'batch':>5} {'step ms':>8} {'img/s':>7} {'wait ms':>8} "
          f"{'allreduce ms':>12} {'alone ms':>9}")
    for r in rows:
        cells = [f"{r[k]:.3f}" if r.get("ranks", 1) > 1 and k in r else "—"
                 for k in ("wait_ms", "allreduce_ms", "allreduce_alone_ms")]
        print(f"{r['model']:<32} {r['ranks']:>5} {r['batch']:>5} {r['step_ms']:>8.2f} {r['images_per_s']:>7.0f} "
              f"{cells[0]:>8} {cells[1]:>12} {cells[2]:>9}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
