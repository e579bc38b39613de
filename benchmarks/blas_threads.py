"""1 against 2 BLAS threads for the matrix products a LeNet-5 step makes, and for the whole step.

On a 2-core machine that other processes also use, a 2-thread GEMM waits for its second
thread whenever the scheduler has lent that core to someone else, and OpenBLAS's threads
spin while they wait; small products can then be many times slower than on one thread.
This measures it: every product of a modern LeNet-5 train step (batch 64 and 256, the
shapes striate's conv2d and linear pass to BLAS), timed alternately with 1 and 2 threads,
wall clock, median and 90th percentile over many calls; then whole train steps of both
libraries with 1 and 2 threads each.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/blas_threads.py
"""
from __future__ import annotations

import argparse
import statistics
import time

import lenet
import numpy as np
import threadpoolctl
from _common import compare, machine_header, set_threads

# (label, A shape, B shape): out = A @ B, float32; batch-first convolutions are stacks of
# per-image products (a leading batch axis), as conv2d runs them
SHAPES = {
    64: [
        ("conv1 fwd, 26 images of 6×25 @ 25×784", (6, 25), (26, 25, 784)),
        ("conv1 dW, 26 images of 25×784 @ 784×6", (26, 25, 784), (26, 784, 6)),
        ("conv2 fwd 16×150 @ 150×6400", (16, 150), (150, 6400)),
        ("conv2 dW 150×6400 @ 6400×16", (150, 6400), (6400, 16)),
        ("conv2 dcols 150×16 @ 16×6400", (150, 16), (16, 6400)),
        ("f5 fwd 64×400 @ 400×120", (64, 400), (400, 120)),
        ("f5 dW 120×64 @ 64×400", (120, 64), (64, 400)),
        ("f6 fwd 64×120 @ 120×84", (64, 120), (120, 84)),
    ],
    256: [
        ("conv2 fwd 16×150 @ 150×8700 (chunk)", (16, 150), (150, 8700)),
        ("conv2 dW 150×8700 @ 8700×16 (chunk)", (150, 8700), (8700, 16)),
        ("f5 fwd 256×400 @ 400×120", (256, 400), (400, 120)),
    ],
}


def time_calls(fn, seconds: float) -> list[float]:
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=0.3, help="per shape, thread count and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--step-rounds", type=int, default=9)
    args = p.parse_args(argv)
    controller = threadpoolctl.ThreadpoolController()
    print(machine_header(2))
    rng = np.random.default_rng(0)
    print(f"\n{'product':42} {'1 thread µs':>16} {'2 threads µs':>16}  2-thread speed-up (median)")
    print(f"{'':42} {'median  p90':>16} {'median  p90':>16}")
    for shapes in SHAPES.values():
        for label, sa, sb in shapes:
            a = rng.standard_normal(sa, dtype=np.float32)
            b = rng.standard_normal(sb, dtype=np.float32)
            times = {1: [], 2: []}
            for _ in range(args.rounds):
                for n in (1, 2):
                    with controller.limit(limits=n, user_api="blas"):
                        np.matmul(a, b)
                        times[n] += time_calls(lambda: np.matmul(a, b), args.seconds)
            q = {n: (statistics.median(t) * 1e6, np.percentile(t, 90) * 1e6) for n, t in times.items()}
            print(f"{label:42} {q[1][0]:8.0f} {q[1][1]:7.0f} {q[2][0]:8.0f} {q[2][1]:7.0f}  "
                  f"{q[1][0] / q[2][0]:.2f}×", flush=True)
    print("\nwhole modern LeNet-5 train step, ms (median over interleaved rounds)")
    print(f"{'batch':>5} {'striate 1':>10} {'striate 2':>10} {'torch 1':>10} {'torch 2':>10}")
    for batch in (64, 256):
        steps = lenet.contenders("lenet5-modern", batch, "train")
        result = {}
        for n in (1, 2):
            set_threads(n)
            t = compare(steps, rounds=args.step_rounds, inner=3)
            result[n] = (t["striate"], t["torch"])
        print(f"{batch:5d} {result[1][0] * 1e3:10.2f} {result[2][0] * 1e3:10.2f} "
              f"{result[1][1] * 1e3:10.2f} {result[2][1] * 1e3:10.2f}", flush=True)


if __name__ == "__main__":
    main()
