"""Per-op table, striate against PyTorch in the same process: forward, and forward + backward.

Convolutions report GFLOP/s (2 multiply-add FLOPs per kernel tap per output value) and
that as a share of the float32 GEMM peak NumPy's BLAS reaches in the same run (a square
1024 product, best of a second). Forward + backward computes dW, db, and dx except for
first layers (C ≤ 3 input channels), as in a network whose input needs no gradient;
its FLOPs count 2× (first layers) or 3× the forward's.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ops.py [--threads 1] [--only conv]

Ratios are striate / PyTorch speed (their time / ours; higher is better), the median
over interleaved rounds with the 25th–75th percentile range.
"""
from __future__ import annotations

import argparse
import importlib

import numpy as np
import torch
import torch.nn.functional as tF
from _common import compare, fmt_ratio, gemm_peak, load_baseline, machine_header, pick_clock, ratio, set_threads

import striate

CONVS = [  # (N, C, H, W), (K, kh, kw), stride, padding
    ((128, 1, 32, 32), (6, 5, 5), 1, 0),
    ((128, 6, 14, 14), (16, 5, 5), 1, 0),
    ((64, 3, 32, 32), (64, 3, 3), 1, 1),
    ((32, 64, 16, 16), (128, 3, 3), 1, 1),
    ((8, 3, 227, 227), (96, 11, 11), 4, 0),
]

POOLS = [  # name, input shape, kernel, stride
    ("max_pool2d", (64, 32, 32, 32), 2, 2),
    ("max_pool2d", (8, 96, 55, 55), 3, 2),
    ("avg_pool2d", (64, 32, 32, 32), 2, 2),
    ("avg_pool2d", (8, 96, 55, 55), 3, 2),
]


def _runs(ours_op, theirs_fn, arrays, grad_mask, backward: bool, libs: dict) -> dict:
    """Callables running one op forward (or forward + backward with a fixed upstream gradient).

    ``ours_op(F)`` gives the op written with a striate functional module ``F``; ``libs`` maps
    names ("striate", "before") to striate packages. Returns {name: callable} with "torch".
    """
    g = None
    runs = {}
    for name, lib in libs.items():
        F_lib = importlib.import_module(f"{lib.__name__}.functional")
        fn = ours_op(F_lib)
        inputs = [lib.Tensor(a, requires_grad=backward and m) for a, m in zip(arrays, grad_mask)]
        if not backward:
            def run(fn=fn, inputs=inputs, lib=lib):
                with lib.no_grad():
                    fn(*inputs)
        else:
            if g is None:
                out = fn(*inputs)
                g = np.random.default_rng(1).standard_normal(out.shape, dtype=np.float32)

            def run(fn=fn, inputs=inputs):
                for t in inputs:
                    t.grad = None
                fn(*inputs).backward(g)
        runs[name] = run
    theirs_in = [torch.tensor(a, requires_grad=backward and m) for a, m in zip(arrays, grad_mask)]
    if not backward:
        def theirs():
            with torch.no_grad():
                theirs_fn(*theirs_in)
    else:
        gt = torch.from_numpy(g.copy())

        def theirs():
            for t in theirs_in:
                t.grad = None
            theirs_fn(*theirs_in).backward(gt)
    runs["torch"] = theirs
    return runs


def conv_rows(rounds: int, peak: float, clock, libs):
    rng = np.random.default_rng(0)
    for (N, C, H, W), (K, kh, kw), s, p in CONVS:
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        w = rng.standard_normal((K, C, kh, kw), dtype=np.float32) * 0.1
        b = rng.standard_normal(K, dtype=np.float32)
        OH, OW = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
        flops = 2 * N * K * OH * OW * C * kh * kw
        first_layer = C <= 3
        for backward in (False, True):
            runs = _runs(lambda F: lambda x, w, b: F.conv2d(x, w, b, stride=s, padding=p),
                         lambda x, w, b: tF.conv2d(x, w, b, stride=s, padding=p),
                         [x, w, b], [not first_layer, True, True], backward, libs)
            t = compare(runs, rounds=rounds, clock=clock)
            total = flops * ((2 if first_layer else 3) if backward else 1)
            gf = total / t["striate"] / 1e9
            gf_t = total / t["torch"] / 1e9
            name = f"conv {N}×{C}×{H}×{W}→{K} {kh}×{kw}" + (f"/{s}" if s > 1 else "") + (f" pad {p}" if p else "")
            yield (name, "fwd+bwd" if backward else "fwd", t,
                   f"{gf:6.1f} ({gf / peak:4.0%})  torch {gf_t:6.1f} ({gf_t / peak:4.0%})")


def other_rows(rounds: int, clock, libs):
    rng = np.random.default_rng(0)
    for name, shape, k, s in POOLS:
        x = rng.standard_normal(shape, dtype=np.float32)
        for backward in (False, True):
            runs = _runs(lambda F: lambda x: getattr(F, name)(x, k, s), lambda x: getattr(tF, name)(x, k, s),
                         [x], [True], backward, libs)
            yield (f"{name} {'×'.join(map(str, shape))} {k}×{k}/{s}", "fwd+bwd" if backward else "fwd",
                   compare(runs, rounds=rounds, clock=clock), "")
    x = rng.standard_normal((64, 64, 32, 32), dtype=np.float32)
    wb = [np.ones(64, np.float32), np.zeros(64, np.float32)]
    for backward in (False, True):
        runs = _runs(lambda F: lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                     lambda x, w, b: tF.batch_norm(x, None, None, w, b, training=True),
                     [x, *wb], [True, True, True], backward, libs)
        yield ("batch_norm 64×64×32×32 (training)", "fwd+bwd" if backward else "fwd",
               compare(runs, rounds=rounds, clock=clock), "")
    x = rng.standard_normal((8, 96, 55, 55), dtype=np.float32)
    for backward in (False, True):
        runs = _runs(lambda F: lambda x: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0),
                     lambda x: tF.local_response_norm(x, 5, 1e-4, 0.75, 2.0), [x], [True], backward, libs)
        yield ("local_response_norm 8×96×55×55 size 5", "fwd+bwd" if backward else "fwd",
               compare(runs, rounds=rounds, clock=clock), "")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--only", choices=["conv", "other"])
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--baseline", metavar="COMMIT", help="also time striate as it was at this commit")
    args = p.parse_args(argv)
    clock = pick_clock(args.clock, args.threads)
    set_threads(args.threads)
    print(machine_header(args.threads, args.clock))
    libs = {"striate": striate}
    if args.baseline:
        libs["before"] = load_baseline(args.baseline)
        print(f"before: striate at commit {args.baseline}")
    peak = gemm_peak(args.threads, clock=clock)
    print(f"float32 GEMM peak (NumPy, 1024², best of 1 s): {peak:.0f} GFLOP/s\n")
    print(f"{'op':44} {'pass':8} {'striate ms':>10} {'torch ms':>9}  {'striate/torch [p25–p75]':24}"
          + (f" {'before ms':>9} {'after/before':>12} " if args.baseline else " ")
          + "GFLOP/s (share of the GEMM peak)")
    rows = []
    if args.only != "other":
        rows.append(conv_rows(args.rounds, peak, clock, libs))
    if args.only != "conv":
        rows.append(other_rows(args.rounds, clock, libs))
    for gen in rows:
        for name, kind, t, extra in gen:
            line = (f"{name:44} {kind:8} {t['striate'] * 1e3:10.3f} {t['torch'] * 1e3:9.3f}  "
                    f"{fmt_ratio(ratio(t, 'striate', 'torch')):24}")
            if args.baseline:
                line += f" {t['before'] * 1e3:9.3f} {ratio(t, 'striate', 'before')[0]:11.2f}×"
            print(line + " " + extra, flush=True)

if __name__ == "__main__":
    main()
