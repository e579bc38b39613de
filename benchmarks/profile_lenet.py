"""Where a train step spends its time, op by op (forward and backward apart); LeNet-5 by default.

Wraps every public op in ``striate.functional`` and every backward closure the ops record,
runs train steps, and prints each op's share of the step in CPU time of the calling
thread (``time.thread_time``: less disturbed by other processes than wall time), or with
``--threads`` above 1 in wall-clock time (the calling thread's CPU time would miss the
other threads' share).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_lenet.py \\
        [--batch 64] [--model lenet5-modern|lenet5|alexnet] [--threads 2] [--clock cpu|wall]
"""
from __future__ import annotations

import argparse
import collections
import functools
import importlib
import time

import numpy as np
from _common import machine_header, set_threads

import striate as st
import striate.functional as F
from striate import models, optim

tensor_module = importlib.import_module("striate.tensor")

_clock = time.thread_time
_spent: dict[str, float] = collections.defaultdict(float)
_calls: dict[str, int] = collections.defaultdict(int)
_depth = [0]


def _timed(name, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _depth[0]:                      # an op called inside another op counts as the outer one
            return fn(*args, **kwargs)
        _depth[0] += 1
        t0 = _clock()
        try:
            return fn(*args, **kwargs)
        finally:
            _spent[name] += _clock() - t0
            _calls[name] += 1
            _depth[0] -= 1
    return wrapper


def instrument():
    """Time every functional op's forward, and every recorded backward closure by op name."""
    for name in F.__all__ if hasattr(F, "__all__") else dir(F):
        fn = getattr(F, name, None)
        if callable(fn) and not name.startswith("_") and not isinstance(fn, type):
            setattr(F, name, _timed(name, fn))
    original = tensor_module.Tensor.from_op.__func__

    def from_op(cls, data, parents, backward, op=""):
        if backward is not None:
            backward = _timed(f"{op} backward", backward)
        return original(cls, data, parents, backward, op)
    tensor_module.Tensor.from_op = classmethod(from_op)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--model", default="lenet5-modern")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("cpu", "wall"), help="default: cpu at one thread, wall at more")
    args = p.parse_args(argv)
    global _clock
    wall = args.clock == "wall" or (args.clock is None and args.threads > 1)
    _clock = time.perf_counter if wall else time.thread_time
    set_threads(args.threads)
    print(machine_header(args.threads))
    instrument()
    rng = np.random.default_rng(0)
    model = models.get(args.model, rng=0)
    x = rng.standard_normal((args.batch,) + tuple(model.input_shape), dtype=np.float32)
    with st.no_grad():
        classes = model(st.Tensor(x[:1])).shape[1]
    y = rng.integers(0, classes, args.batch)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    phases = collections.defaultdict(float)

    def step():
        t0 = _clock()
        logits = model(st.Tensor(x))
        loss = F.cross_entropy(logits, y)
        t1 = _clock()
        opt.zero_grad()
        loss.backward()
        t2 = _clock()
        opt.step()
        t3 = _clock()
        return t1 - t0, t2 - t1, t3 - t2

    for _ in range(5):
        step()
    _spent.clear()
    _calls.clear()
    for _ in range(args.steps):
        for phase, t in zip(("forward", "backward", "optimizer"), step()):
            phases[phase] += t
    total = sum(phases.values())
    clock = "wall clock" if wall else "CPU time"
    print(f"\n{args.model}, batch {args.batch}: {total / args.steps * 1e3:.2f} ms per step ({clock}), "
          + ", ".join(f"{k} {v / total:.0%}" for k, v in phases.items()))
    print(f"{'op':32} {'ms/step':>8} {'share':>6} {'calls/step':>10}")
    for name, t in sorted(_spent.items(), key=lambda kv: -kv[1]):
        print(f"{name:32} {t / args.steps * 1e3:8.3f} {t / total:6.1%} {_calls[name] / args.steps:10.1f}")
    rest = total - sum(_spent.values())
    print(f"{'(outside ops: engine, layers, optimizer)':32} {rest / args.steps * 1e3:8.3f} {rest / total:6.1%}")


if __name__ == "__main__":
    main()
