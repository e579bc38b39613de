"""Before/after of single optimisations, each measured in one run on the same data.

Sections (pick with --only):
  relu       ReLU's forward: maximum(x, 0) against maximum with a broadcast row of zeros
  chunks     conv2d time against the chunk size of its im2col columns (``_CHUNK_BYTES``)
  columns    AlexNet's 13×13 convolutions with and without the batch-last minimum of columns
  faults     minor page faults per LeNet-5 train step, striate before/after and PyTorch
  sgd        one SGD step (momentum, weight decay) on a 9216×4096 weight: before/after
  adopt      backward of a 9216→4096 linear layer, batch 8: .grad copied (before) or adopted

"before" is striate at the given commit (default 37fc718, the last commit before this
work), loaded side by side with the working tree. Times are CPU time of one thread, the
median of repeated calls; run with one BLAS thread.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/micro.py [--only relu chunks ...]
"""
from __future__ import annotations

import argparse
import importlib
import resource
import time

import lenet
import numpy as np
from _common import load_baseline, machine_header, median_time, set_threads

import striate
import striate.functional as F
from striate.functional import conv as conv_module


def cpu_ms(fn, repeat: int = 20) -> float:
    return 1e3 * median_time(fn, repeat, time.process_time)


def relu_section(before):
    from striate.functional.activation import _clamp_at_zero
    rng = np.random.default_rng(0)
    print("\nReLU forward kernel (ms): maximum(x, 0) | maximum against a zero row")
    for shape in [(64, 6, 28, 28), (256, 6, 28, 28), (256, 16, 10, 10)]:
        x = rng.standard_normal(shape, dtype=np.float32)
        print(f"  {str(shape):18} {cpu_ms(lambda: np.maximum(x, 0)):7.3f} | {cpu_ms(lambda: _clamp_at_zero(x)):7.3f}")


def chunks_section(before):
    rng = np.random.default_rng(0)
    shapes = [((64, 1, 32, 32), (6, 1, 5, 5), 0), ((64, 6, 14, 14), (16, 6, 5, 5), 0),
              ((256, 6, 14, 14), (16, 6, 5, 5), 0), ((32, 64, 16, 16), (128, 64, 3, 3), 1)]
    sizes = [1 << 17, 1 << 19, 1 << 21, 1 << 23, 1 << 30]
    saved = conv_module._CHUNK_BYTES
    print("\nconv2d forward + backward (ms) against the chunk size of the columns "
          f"({', '.join(f'{s >> 10} KiB' for s in sizes[:-1])}, whole batch)")
    try:
        for xs, ws, p in shapes:
            x = striate.Tensor(rng.standard_normal(xs, dtype=np.float32), requires_grad=xs[1] > 1)
            w = striate.Tensor(rng.standard_normal(ws, dtype=np.float32), requires_grad=True)
            g = None
            row = []
            for size in sizes:
                conv_module._CHUNK_BYTES = size

                def step():
                    out = F.conv2d(x, w, padding=p)
                    out.backward(np.ones(out.shape, np.float32) if g is None else g)
                row.append(cpu_ms(step, 7))
            print(f"  x {str(xs):18} w {str(ws):16} " + " ".join(f"{t:7.2f}" for t in row))
    finally:
        conv_module._CHUNK_BYTES = saved


def columns_section(before):
    rng = np.random.default_rng(0)
    saved = conv_module._MIN_COLUMNS
    print("\nconv2d forward + backward (ms), batch last, chunks sized by the cache only "
          "(_MIN_COLUMNS 1) | grown to 2048 columns")
    try:
        for xs, ws, groups in [((8, 256, 13, 13), (384, 256, 3, 3), 1), ((8, 384, 13, 13), (256, 192, 3, 3), 2)]:
            x = striate.Tensor(rng.standard_normal(xs, dtype=np.float32), requires_grad=True)
            w = striate.Tensor(rng.standard_normal(ws, dtype=np.float32), requires_grad=True)
            g = np.ones((xs[0], ws[0], 13, 13), np.float32)
            row = []
            for columns in (1, 2048):
                conv_module._MIN_COLUMNS = columns
                row.append(cpu_ms(lambda: F.conv2d(x, w, padding=1, groups=groups).backward(g), 7))
            print(f"  x {str(xs):18} w {str(ws):18} groups {groups}: {row[0]:7.1f} | {row[1]:7.1f}")
    finally:
        conv_module._MIN_COLUMNS = saved


def faults_section(before):
    print("\nminor page faults per modern LeNet-5 train step (mean of 20 steps after 5 warm-up steps)")
    for batch in (64, 256):
        runs = lenet.contenders("lenet5-modern", batch, "train")
        runs["before"] = lenet.contenders("lenet5-modern", batch, "train", lib=before)["striate"]
        counts = {}
        for name in ("before", "striate", "torch"):
            for _ in range(5):
                runs[name]()
            r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(20):
                runs[name]()
            counts[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 20
        print(f"  batch {batch:3d}: " + ", ".join(f"{k} {v:,.0f}" for k, v in counts.items()))


def sgd_section(before):
    print("\none SGD step (lr 0.01, momentum 0.9, weight decay 5e-4) on a 4096×9216 weight (ms)")
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4096, 9216), dtype=np.float32)
    grad = rng.standard_normal(w0.shape, dtype=np.float32) * 0.01
    for name, lib in (("before", before), ("after", striate)):
        optim = importlib.import_module(f"{lib.__name__}.optim")
        p = lib.Tensor(w0.copy(), requires_grad=True)
        p.grad = grad
        opt = optim.SGD([p], lr=0.01, momentum=0.9, weight_decay=5e-4)
        print(f"  {name:7} {cpu_ms(opt.step, 10):8.1f}")


def adopt_section(before):
    print("\nbackward of linear 9216→4096 at batch 8, weight gradient set to None before each (ms)")
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((8, 9216), dtype=np.float32)
    w0 = rng.standard_normal((4096, 9216), dtype=np.float32) * 0.01
    g = rng.standard_normal((8, 4096), dtype=np.float32)
    for name, lib in (("before", before), ("after", striate)):
        F_lib = importlib.import_module(f"{lib.__name__}.functional")
        w = lib.Tensor(w0, requires_grad=True)
        x = lib.Tensor(x0)

        def step():
            w.grad = None
            F_lib.linear(x, w).backward(g)
        print(f"  {name:7} {cpu_ms(step, 10):8.1f}")


SECTIONS = {"relu": relu_section, "chunks": chunks_section, "columns": columns_section,
            "faults": faults_section,
            "sgd": sgd_section, "adopt": adopt_section}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    p.add_argument("--baseline", default="37fc718", metavar="COMMIT")
    args = p.parse_args(argv)
    set_threads(1)
    print(machine_header(1, "cpu"))
    before = load_baseline(args.baseline)
    print(f"before: striate at commit {args.baseline}")
    for name in args.only:
        SECTIONS[name](before)


if __name__ == "__main__":
    main()
