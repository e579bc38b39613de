"""How the cost of a train step grows: against batch size, and against image size.

Batch sweep: the modern LeNet-5 (32×32 inputs), batch 1 to 1024. Image sweep: the same
body (conv 6@5×5, ReLU, max pool 2, conv 16@5×5, ReLU, max pool 2) on square images of
28 to 224 pixels, batch 16, with the linear head 16·s·s → 10 sized to the maps (s the
final map size). One train step is zero_grad, forward, cross-entropy, backward, SGD step;
both libraries run side by side with the same weights and threads, interleaved.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/scaling.py \\
        [--threads 1] [--png benchmarks/scaling.png]
"""
from __future__ import annotations

import argparse
import json

import lenet
import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as tF
from _common import compare, machine_header, pick_clock, ratio, set_threads, step_pair

import striate.functional as F
from striate import nn

BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
SIZES = [28, 32, 48, 64, 96, 128, 160, 192, 224]


class Body(nn.Module):
    """LeNet-5's convolutional body and a linear head sized for ``size``×``size`` images."""

    def __init__(self, size: int):
        super().__init__()
        s = ((size - 4) // 2 - 4) // 2
        self.c1 = nn.Conv2d(1, 6, 5, rng=0)
        self.c3 = nn.Conv2d(6, 16, 5, rng=1)
        self.head = nn.Linear(16 * s * s, 10, rng=2)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c3(x)), 2)
        return self.head(F.flatten(x))


class TorchBody(tnn.Module):
    def __init__(self, body: Body):
        super().__init__()
        self.c1, self.c3 = tnn.Conv2d(1, 6, 5), tnn.Conv2d(6, 16, 5)
        self.head = tnn.Linear(*body.head.weight.shape[::-1])
        with torch.no_grad():
            for name in ("c1", "c3", "head"):
                getattr(self, name).weight.copy_(torch.from_numpy(getattr(body, name).weight.data))
                getattr(self, name).bias.copy_(torch.from_numpy(getattr(body, name).bias.data))

    def forward(self, x):
        x = tF.max_pool2d(tF.relu(self.c1(x)), 2)
        x = tF.max_pool2d(tF.relu(self.c3(x)), 2)
        return self.head(x.flatten(1))


def body_steps(size: int, batch: int) -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, size, size), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    model = Body(size)
    return step_pair(model, TorchBody(model), x, y, "train", sgd=dict(lr=0.01, momentum=0.9))


def sweep(label, values, make, rounds, clock):
    rows = []
    print(f"\n{label:>6} {'striate ms':>11} {'torch ms':>9}  striate/torch [p25–p75]")
    for v in values:
        t = compare(make(v), rounds=rounds, inner=2, clock=clock)
        r = ratio(t, "striate", "torch")
        rows.append({label: v, "striate_ms": t["striate"] * 1e3, "torch_ms": t["torch"] * 1e3,
                     "ratio": r[0], "p25": r[1], "p75": r[2]})
        print(f"{v:6d} {t['striate'] * 1e3:11.3f} {t['torch'] * 1e3:9.3f}  {r[0]:.2f}× [{r[1]:.2f}–{r[2]:.2f}]",
              flush=True)
    return rows


def plot(batch_rows, size_rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, rows, key, xlabel in ((axes[0], batch_rows, "batch", "batch size (modern LeNet-5, 32×32)"),
                                  (axes[1], size_rows, "size", "image size, pixels (LeNet body, batch 16)")):
        xs = [r[key] for r in rows]
        for lib, style in (("striate", "o-"), ("torch", "s--")):
            ax.plot(xs, [r[f"{lib}_ms"] for r in rows], style, label=lib)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ms per train step")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs], fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--png", default=None, help="write the plot here")
    p.add_argument("--json", default=None, help="write the numbers here")
    args = p.parse_args(argv)
    clock = pick_clock(args.clock, args.threads)
    set_threads(args.threads)
    header = machine_header(args.threads, args.clock)
    print(header)
    batch_rows = sweep("batch", BATCHES, lambda b: lenet.contenders("lenet5-modern", b, "train"),
                       args.rounds, clock)
    size_rows = sweep("size", SIZES, lambda s: body_steps(s, 16), args.rounds, clock)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "batch": batch_rows, "size": size_rows}, f, indent=1)
    if args.png:
        plot(batch_rows, size_rows, args.png,
             f"train step time, {args.threads} thread(s), {args.clock} clock — " + header.splitlines()[0])
        print(f"\nwrote {args.png}")


if __name__ == "__main__":
    main()
