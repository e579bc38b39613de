"""LeNet-5 train step and inference, striate against PyTorch in the same process.

One train step is what a training loop does per batch: zero_grad, forward,
cross-entropy, backward, SGD step (momentum 0.9, weight decay 5e-4, the CLI's
lenet5-modern recipe). Inference is a forward pass under no_grad in eval mode.
Both libraries get the same weights, the same batch and the same thread count.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lenet.py [--batch 64 256] [--threads 2]

Prints images per second for each library and the ratio striate / PyTorch (higher is
better) as the median over interleaved rounds, with the 25th–75th percentile range.
"""
from __future__ import annotations

import argparse
import importlib

import numpy as np
from _common import compare, fmt_ratio, load_baseline, machine_header, pick_clock, ratio, set_threads, step_pair
from torch_models import TorchLeNet5, TorchLeNet5Modern

import striate


def contenders(name: str, batch: int, mode: str, seed: int = 0, lib=striate) -> dict:
    """{"striate": step(), "torch": step()} for one model, batch size and mode ("train"/"infer").

    ``lib`` is the striate package to time (another version of it for before/after runs).
    """
    models = importlib.import_module(lib.__name__ + ".models")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 1, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    model = models.lenet5_modern(rng=seed) if name == "lenet5-modern" else models.lenet5(rng=seed)
    twin = TorchLeNet5Modern(model) if name == "lenet5-modern" else TorchLeNet5(model)
    return step_pair(model, twin, x, y, mode, sgd=dict(lr=0.01, momentum=0.9, weight_decay=5e-4), lib=lib)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    p.add_argument("--models", nargs="+", default=["lenet5-modern", "lenet5"])
    p.add_argument("--modes", nargs="+", default=["train", "infer"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--baseline", metavar="COMMIT",
                   help="also time striate as it was at this git commit ('before' column)")
    args = p.parse_args(argv)
    clock = pick_clock(args.clock, args.threads)
    set_threads(args.threads)
    print(machine_header(args.threads, args.clock))
    before = load_baseline(args.baseline) if args.baseline else None
    if before is not None:
        print(f"before: striate at commit {args.baseline}")
    print()
    print(f"{'model':14} {'mode':6} {'batch':>5} {'striate img/s':>14} {'torch img/s':>12}  "
          f"{'striate/torch [p25–p75]':24}" + ("  before/torch [p25–p75]   after/before" if before else ""))
    for name in args.models:
        for mode in args.modes:
            for batch in args.batch:
                runs = contenders(name, batch, mode)
                if before is not None:
                    runs["before"] = contenders(name, batch, mode, lib=before)["striate"]
                timing = compare(runs, rounds=args.rounds, inner=3, clock=clock)
                line = (f"{name:14} {mode:6} {batch:5d} {batch / timing['striate']:14,.0f} "
                        f"{batch / timing['torch']:12,.0f}  {fmt_ratio(ratio(timing, 'striate', 'torch')):24}")
                if before is not None:
                    line += (f"  {fmt_ratio(ratio(timing, 'before', 'torch')):24}"
                             f"  {fmt_ratio(ratio(timing, 'striate', 'before'))}")
                print(line, flush=True)

if __name__ == "__main__":
    main()
