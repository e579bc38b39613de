"""What the ranks run in tests/dist (``mpiexec -n N python -m mpi4py workers.py CASE ARGS``).

Each case prints one JSON line from rank 0 with what the test checks.
"""
from __future__ import annotations

import json
import sys

import numpy as np

import striate as st
from striate import dist


def report(comm, result: dict) -> None:
    if comm.rank == 0:
        print(json.dumps(result), flush=True)


def mean_of_gradients() -> None:
    """Each rank's gradients are rank-dependent; after allreduce_grad every rank holds their mean. Twice."""
    comm = dist.get_communicator()
    params = [st.nn.Parameter(np.zeros((3, 4), np.float32)), st.nn.Parameter(np.zeros(5, np.float64)),
              st.nn.Parameter(np.zeros(2, np.float32))]
    results = []
    for repeat in range(2):
        params[0].grad = np.full((3, 4), comm.rank + 1 + repeat, np.float32)
        params[1].grad = np.arange(5, dtype=np.float64) * (comm.rank + 1)
        params[2].grad = None if comm.rank == 0 else np.ones(2, np.float32)      # no gradient on rank 0
        comm.allreduce_grad(params)
        gathered = comm.allreduce_sum(np.concatenate([p.grad.ravel() for p in params]).astype(np.float64))
        same_everywhere = bool(np.allclose(gathered / comm.size, np.concatenate([p.grad.ravel() for p in params])))
        results.append({"g0": params[0].grad.tolist(), "g1": params[1].grad.tolist(), "g2": params[2].grad.tolist(),
                        "dtype0": str(params[0].grad.dtype), "same_everywhere": same_everywhere})
    # the weighted form: weight_r = size × local_r / total gives the global mean of per-sample means
    local = comm.rank + 1                                     # rank r holds r + 1 samples, each with gradient r
    total = comm.size * (comm.size + 1) // 2
    params[0].grad = np.full((3, 4), comm.rank, np.float32)
    comm.allreduce_grad(params[:1], weight=comm.size * local / total)
    results.append({"weighted": float(params[0].grad[0, 0])})
    report(comm, {"size": comm.size, "results": results})


def broadcast() -> None:
    """After bcast_data every rank holds rank 0's arrays. Twice."""
    comm = dist.get_communicator()
    out = []
    for repeat in range(2):
        a = np.full((2, 3), 10 * comm.rank + repeat, np.float32)
        b = np.arange(4, dtype=np.int64) + comm.rank
        comm.bcast_data([a, b])
        total = comm.allreduce_sum(np.concatenate([a.ravel(), b.ravel()]).astype(np.float64))
        out.append({"a": a.tolist(), "b": b.tolist(), "sum": total.tolist()})
    comm.barrier()
    report(comm, {"size": comm.size, "results": out})


def training(limit: str, batch: str, lr: str = "0.05", epochs: str = "1") -> None:
    """LeNet-5 modern on the first ``limit`` MNIST images: the global loss of every step, then the test figures."""
    from striate import functional as F
    from striate.data import MNIST, DataLoader, mnist_preprocess
    from striate.data.transforms import RandomTranslate
    from striate.train import evaluate, make_optimizer, train_epoch

    comm = dist.get_communicator()
    st.manual_seed(0)
    model = st.models.get("lenet5-modern")
    train, test = MNIST(train=True, download=False), MNIST(train=False, download=False)
    n = int(limit)
    train_loader = DataLoader((train.images[:n], train.labels[:n]), batch_size=int(batch), shuffle=True, seed=0,
                              transform=mnist_preprocess(32, augment=RandomTranslate(2)))
    test_loader = DataLoader((test.images[:2000], test.labels[:2000]), batch_size=500, seed=0,
                             transform=mnist_preprocess(32))
    optimizer = make_optimizer("sgd", model.parameters(), float(lr), 0.9, 5e-4)
    parallel = dist.DataParallel(model, optimizer, comm)
    train_loader, test_loader = parallel.loader(train_loader), parallel.loader(test_loader)
    extra = parallel.fit_arguments()
    losses = []
    for epoch in range(1, int(epochs) + 1):
        for _, loss in train_epoch(model, F.cross_entropy, optimizer, train_loader, epoch,
                                   transform_grads=extra.get("transform_grads"), reduce=extra.get("reduce")):
            losses.append(loss)
    result = evaluate(model, test_loader, num_classes=10, reduce=extra.get("reduce"))
    weights = np.concatenate([p.data.ravel() for p in model.parameters()])
    spread = comm.allreduce_sum(weights.astype(np.float64)) / comm.size - weights     # 0: the same weights everywhere
    report(comm, {"size": comm.size, "losses": losses, "acc": result["acc"], "n": result["n"],
                  "test_loss": result["loss"], "weights_differ": float(np.abs(spread).max())})


def dropout(batch: str = "25") -> None:
    """A dense net with dropout on random data: the global loss of each step."""
    from striate import functional as F
    from striate import nn
    from striate.data import DataLoader
    from striate.train import train_epoch

    comm = dist.get_communicator()
    st.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(32, 10))
    data = np.random.default_rng(1)
    x, y = data.random((230, 8, 8), dtype=np.float32), data.integers(0, 10, 230)
    optimizer = st.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    parallel = dist.DataParallel(model, optimizer, comm)
    loader = parallel.loader(DataLoader((x, y), batch_size=int(batch), shuffle=True, seed=0))
    extra = parallel.fit_arguments()
    losses = [loss for _, loss in train_epoch(model, F.cross_entropy, optimizer, loader, 1,
                                              transform_grads=extra.get("transform_grads"),
                                              reduce=extra.get("reduce"))]
    report(comm, {"size": comm.size, "losses": losses})


def batchnorm(sync: str = "0", samples: str = "205") -> None:
    """A net with batch norm: the loss of each step, the weights, rank 0's running statistics (``sync``: synchronised)."""
    from striate import functional as F
    from striate import nn
    from striate.data import DataLoader
    from striate.train import train_epoch

    comm = dist.get_communicator()
    st.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 32),
                          nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    data = np.random.default_rng(1)
    n = int(samples)
    x, y = data.random((n, 1, 8, 8), dtype=np.float32), data.integers(0, 10, n)
    optimizer = st.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    parallel = dist.DataParallel(model, optimizer, comm, sync_batchnorm=sync == "1")
    loader = parallel.loader(DataLoader((x, y), batch_size=25, shuffle=True, seed=0))   # shares 12/13, last 2/3
    extra = parallel.fit_arguments()
    losses = [loss for _, loss in train_epoch(model, F.cross_entropy, optimizer, loader, 1,
                                              transform_grads=extra.get("transform_grads"),
                                              reduce=extra.get("reduce"))]
    state = np.concatenate([np.ravel(v) for v in model.state_dict().values()]).astype(np.float64)
    spread = comm.allreduce_sum(state) / comm.size - state
    running = [v.tolist() for k, v in model.state_dict().items() if k.endswith(("running_mean", "running_var"))]
    report(comm, {"size": comm.size, "differ": float(np.abs(spread).max()), "running": running, "losses": losses,
                  "weights": [float(v) for v in np.concatenate([p.data.ravel() for p in model.parameters()])]})


def fail_on_one_rank(where: str = "collective") -> None:
    """Rank 1 raises while rank 0 waits for it in a collective: the job must end, not hang."""
    comm = dist.get_communicator()
    if where == "hook":                       # started without -m mpi4py: the abort hook is what ends it
        dist.install_abort_hook(comm)
    comm.barrier()
    if comm.rank == 1:
        raise RuntimeError("rank 1 failed on purpose")
    comm.allreduce_sum(np.ones(3))            # rank 0 waits here for ever, unless the job is aborted


if __name__ == "__main__":
    case, *args = sys.argv[1:]
    {"mean_of_gradients": mean_of_gradients, "broadcast": broadcast, "training": training, "dropout": dropout, "batchnorm": batchnorm,
     "fail_on_one_rank": fail_on_one_rank}[case](*args)
