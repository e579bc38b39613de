"""conv2d by im2col, by Winograd's F(2×2, 3×3), and PyTorch's, side by side in one process.

For each shape: forward, and forward + backward (dx, dW, db; no dx for first layers with
C ≤ 3, as in a network), timed in interleaved rounds. This is the measurement behind the
rule ``conv2d(algorithm="auto")`` follows (``winograd.suits``): Winograd for 3×3 layers at
stride 1 without groups and with at least 32 input and output channels. The last rows are AlexNet's
11×11/4 first layer, which Winograd can run on its 4×4 phases (as a 3×3 over 48 channels).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/winograd.py [--threads 1] [--clock cpu]

Ratios are speeds (their time / ours; higher is better): the median over rounds, with the
25th–75th percentile range.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as tF
from _common import compare, fmt_ratio, machine_header, pick_clock, ratio, set_threads

import striate as st
import striate.functional as F

SHAPES = [  # (N, C, H, W), (K, kh, kw), stride, padding, groups
    ((64, 8, 28, 28), (8, 3, 3), 1, 1, 1),
    ((64, 16, 32, 32), (16, 3, 3), 1, 1, 1),
    ((64, 32, 32, 32), (32, 3, 3), 1, 1, 1),
    ((32, 64, 16, 16), (128, 3, 3), 1, 1, 1),
    ((8, 256, 13, 13), (384, 3, 3), 1, 1, 1),          # AlexNet conv3
    ((8, 384, 13, 13), (384, 3, 3), 1, 1, 2),          # AlexNet conv4 (two groups)
    ((8, 3, 227, 227), (96, 11, 11), 4, 0, 1),         # AlexNet conv1, on phases
]


def runs(shape, backward: bool) -> dict:
    (N, C, H, W), (K, kh, kw), s, p, g = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // g, kh, kw), dtype=np.float32) * 0.1
    b = rng.standard_normal(K, dtype=np.float32)
    input_grad = C > 3
    kw_ = dict(stride=s, padding=p, groups=g)
    out = {}
    for algorithm in ("im2col", "winograd"):
        X, Wt, B = st.Tensor(x, requires_grad=backward and input_grad), st.Tensor(w, requires_grad=backward), \
            st.Tensor(b, requires_grad=backward)
        if backward:
            grad = np.random.default_rng(1).standard_normal(F.conv2d(X, Wt, B, **kw_).shape, dtype=np.float32)

            def run(X=X, Wt=Wt, B=B, algorithm=algorithm, grad=grad):
                X.grad = Wt.grad = B.grad = None
                F.conv2d(X, Wt, B, **kw_, algorithm=algorithm).backward(grad)
        else:
            def run(X=X, Wt=Wt, B=B, algorithm=algorithm):
                with st.no_grad():
                    F.conv2d(X, Wt, B, **kw_, algorithm=algorithm)
        out[algorithm] = run
    tx, tw, tb = (torch.tensor(a, requires_grad=backward and r) for a, r in ((x, input_grad), (w, True), (b, True)))
    if backward:
        tgrad = torch.from_numpy(grad.copy())

        def theirs():
            tx.grad = tw.grad = tb.grad = None
            tF.conv2d(tx, tw, tb, **kw_).backward(tgrad)
    else:
        def theirs():
            with torch.no_grad():
                tF.conv2d(tx, tw, tb, **kw_)
    out["torch"] = theirs
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = p.parse_args(argv)
    clock = pick_clock(args.clock, args.threads)
    set_threads(args.threads)
    print(machine_header(args.threads, args.clock) + "\n")
    print(f"{'conv':38} {'pass':8} {'im2col ms':>9} {'winograd ms':>11} {'torch ms':>8}  "
          f"{'winograd/im2col':22} {'winograd/torch':22} {'im2col/torch':22}")
    for shape in SHAPES:
        (N, C, H, W), (K, kh, kw), s, pad, g = shape
        name = (f"{N}×{C}×{H}×{W}→{K} {kh}×{kw}" + (f"/{s}" if s > 1 else "") + (f" pad {pad}" if pad else "")
                + (f" g{g}" if g > 1 else ""))
        for backward in (False, True):
            t = compare(runs(shape, backward), rounds=args.rounds, clock=clock)
            print(f"{name:38} {'fwd+bwd' if backward else 'fwd':8} {t['im2col'] * 1e3:9.2f} "
                  f"{t['winograd'] * 1e3:11.2f} {t['torch'] * 1e3:8.2f}  "
                  f"{fmt_ratio(ratio(t, 'winograd', 'im2col')):22} {fmt_ratio(ratio(t, 'winograd', 'torch')):22} "
                  f"{fmt_ratio(ratio(t, 'im2col', 'torch')):22}", flush=True)


if __name__ == "__main__":
    main()
