"""AlexNet train step (batch 8, 3×227×227), striate against PyTorch in the same process.

striate's ``models.alexnet()`` (the paper's network: LRN, overlapping pooling, grouped
conv2/4/5, dropout 0.5, 60,965,224 parameters) against the same network written in
PyTorch with a copy of its weights. One train step: zero_grad, forward, cross-entropy,
backward, SGD (momentum 0.9, weight decay 5e-4, the paper's). Also inference (eval mode,
no graph). The dropout masks differ between the libraries; the work does not.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/alexnet.py [--threads 1] [--batch 8]
"""
from __future__ import annotations

import argparse
import importlib

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as tF
from _common import compare, fmt_ratio, load_baseline, machine_header, pick_clock, ratio, set_threads, step_pair

import striate


class TorchAlexNet(tnn.Module):
    def __init__(self, model):
        super().__init__()
        convs = []
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
            ours = getattr(model, name)
            conv = tnn.Conv2d(ours.in_channels, ours.out_channels, ours.kernel_size, stride=ours.stride,
                              padding=ours.padding, groups=ours.groups)
            convs.append((name, conv))
        self.convs = tnn.ModuleDict(convs)
        self.fcs = tnn.ModuleDict((name, tnn.Linear(*getattr(model, name).weight.shape[::-1]))
                                  for name in ("fc6", "fc7", "fc8"))
        lrn = model.norm1
        self.lrn = dict(size=lrn.size, alpha=lrn.alpha, beta=lrn.beta, k=lrn.k)
        self.p = model.drop6.p
        with torch.no_grad():
            for name, layer in list(self.convs.items()) + list(self.fcs.items()):
                layer.weight.copy_(torch.from_numpy(getattr(model, name).weight.data))
                layer.bias.copy_(torch.from_numpy(getattr(model, name).bias.data))

    def forward(self, x):
        c, f = self.convs, self.fcs
        x = tF.max_pool2d(tF.local_response_norm(tF.relu(c["conv1"](x)), **self.lrn), 3, 2)
        x = tF.max_pool2d(tF.local_response_norm(tF.relu(c["conv2"](x)), **self.lrn), 3, 2)
        x = tF.relu(c["conv3"](x))
        x = tF.relu(c["conv4"](x))
        x = tF.max_pool2d(tF.relu(c["conv5"](x)), 3, 2)
        x = tF.dropout(tF.relu(f["fc6"](x.flatten(1))), self.p, self.training)
        x = tF.dropout(tF.relu(f["fc7"](x)), self.p, self.training)
        return f["fc8"](x)


def contenders(batch: int, mode: str, lib=striate) -> dict:
    """{"striate": step(), "torch": step()}; ``lib`` is the striate package to time."""
    alexnet = importlib.import_module(f"{lib.__name__}.models.alexnet")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 227, 227), dtype=np.float32)
    y = rng.integers(0, 1000, batch)
    model = alexnet.alexnet(rng=0)
    return step_pair(model, TorchAlexNet(model), x, y, mode,
                     sgd=dict(lr=0.01, momentum=0.9, weight_decay=5e-4), lib=lib)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--modes", nargs="+", default=["train", "infer"])
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--baseline", metavar="COMMIT",
                   help="also time the same network on striate's ops as they were at this commit")
    args = p.parse_args(argv)
    clock = pick_clock(args.clock, args.threads)
    set_threads(args.threads)
    print(machine_header(args.threads, args.clock))
    before = load_baseline(args.baseline, extra_files=["models/alexnet.py"]) if args.baseline else None
    print(f"\n{'AlexNet':8} {'batch':>5} {'striate ms':>11} {'torch ms':>9}  {'striate/torch [p25–p75]':24}"
          + (f" {'before ms':>10}  after/before" if before else ""))
    for mode in args.modes:
        runs = contenders(args.batch, mode)
        if before is not None:
            runs["before"] = contenders(args.batch, mode, lib=before)["striate"]
        t = compare(runs, rounds=args.rounds, inner=1, warmup=2, clock=clock)
        line = (f"{mode:8} {args.batch:5d} {t['striate'] * 1e3:11.1f} {t['torch'] * 1e3:9.1f}  "
                f"{fmt_ratio(ratio(t, 'striate', 'torch')):24}")
        if before is not None:
            line += f" {t['before'] * 1e3:10.1f}  {fmt_ratio(ratio(t, 'striate', 'before'))}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
