"""One process, every core: striate and PyTorch at 1 and 2 threads, interleaved.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/threads.py [--rounds 7] [--quick]

Workloads: modern LeNet-5 training step and inference at batch 64 and 256 (the
lenet.py work), the AlexNet training step at batch 8 (alexnet.py), and the two large
convolutions, forward and forward+backward: 8×3×227²→96 11×11 stride 4 and
32×64×16²→128 3×3 (ops.py). For each workload four contenders, striate and PyTorch
each at 1 and at 2 threads (``st.set_num_threads`` and ``torch.set_num_threads``; the
thread count is set once per block of calls, not timed), run in alternation, one block
each per round, in an order that turns round by round. Printed: the median time of
each, the spread over rounds (25th–75th percentile of the per-round times, as a
percentage of the median), each library's 2-thread speed-up over its 1-thread speed, and
striate against PyTorch at 1 thread, at 2 threads, and each at its best setting
(per-round ratios: the median and the 25th–75th percentiles).

Then Amdahl's law: a speed-up S₂ on two threads means a parallel fraction
p = 2·(1 − 1/S₂) of the one-thread time, and on n threads at most
S(n) = 1 / ((1 − p) + p / n); printed for 4, 8 and 16 threads.

``--parts`` prints instead where the time goes: each LeNet-5 op at batch 64 and 256,
forward and backward, at 1 and 2 threads (medians of 200 calls, the two settings
alternating in blocks); a training step and an inference at batch 1 and 2 (the time
that holds the interpreter lock whatever the batch); the cost of handing empty tiles
to the pool; and a 64 MB copy on one thread and cut in two tiles on two (the memory
bandwidth that the copies, ReLU and pooling share).

``--step`` prints only the median LeNet-5 training step at batch 64 and 256, at 1 and 2
threads: run it in fresh processes with ``STRIATE_KEEP_FREED_MEMORY=1`` and ``=0`` in
turn to see what keeping freed memory (``striate/heap.py``) is worth.
"""
from __future__ import annotations

import argparse
import statistics
import time

import alexnet
import lenet
import numpy as np
import torch
from _common import machine_header, median_time

import striate as st
import striate.functional as F


def conv_pair(shape, weight, stride, padding, backward):
    """{"striate": step, "torch": step} for one convolution with bias, forward or forward+backward.

    As in ops.py, a first layer (3 input channels or fewer) computes no input gradient.
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal(weight, dtype=np.float32) * 0.05
    b = rng.standard_normal(weight[0], dtype=np.float32)
    dx = backward and shape[1] > 3
    xs = st.Tensor(x, requires_grad=dx)
    ws, bs = st.Tensor(w, requires_grad=backward), st.Tensor(b, requires_grad=backward)
    xt = torch.from_numpy(x.copy()).requires_grad_(dx)
    wt, bt = (torch.from_numpy(a.copy()).requires_grad_(backward) for a in (w, b))
    with st.no_grad():
        g = rng.standard_normal(F.conv2d(xs, ws, bs, stride=stride, padding=padding).shape, dtype=np.float32)
    gt = torch.from_numpy(g.copy())

    def ours():
        out = F.conv2d(xs, ws, bs, stride=stride, padding=padding)
        if backward:
            xs.grad = ws.grad = bs.grad = None
            out.backward(g)

    def theirs():
        out = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)
        if backward:
            xt.grad = wt.grad = bt.grad = None
            out.backward(gt)
    if not backward:
        def ours_ng():
            with st.no_grad():
                ours()

        def theirs_ng():
            with torch.no_grad():
                theirs()
        return {"striate": ours_ng, "torch": theirs_ng}
    return {"striate": ours, "torch": theirs}


def workloads(quick: bool) -> dict:
    out = {}
    for mode in ("train", "infer"):
        for batch in (64, 256):
            out[f"LeNet-5 {mode} bs{batch}"] = lambda m=mode, b=batch: lenet.contenders("lenet5-modern", b, m)
    if not quick:
        out["AlexNet train bs8"] = lambda: alexnet.contenders(8, "train")
    conv11 = ((8, 3, 227, 227), (96, 3, 11, 11), 4, 0)
    conv3 = ((32, 64, 16, 16), (128, 64, 3, 3), 1, 1)
    out["conv 11×11/4 fwd"] = lambda: conv_pair(*conv11, backward=False)
    out["conv 11×11/4 fwd+bwd"] = lambda: conv_pair(*conv11, backward=True)
    out["conv 3×3 64→128 fwd"] = lambda: conv_pair(*conv3, backward=False)
    out["conv 3×3 64→128 fwd+bwd"] = lambda: conv_pair(*conv3, backward=True)
    return out


def set_both(n: int) -> None:
    st.set_num_threads(n)
    torch.set_num_threads(n)


def measure(pair: dict, rounds: int, min_block: float = 0.15) -> dict:
    """{(library, threads): [seconds per call, one per round]}, the four run in alternation."""
    keys = [(lib, n) for n in (1, 2) for lib in ("striate", "torch")]
    reps = {}
    for lib, n in keys:
        set_both(n)
        for _ in range(3):
            pair[lib]()                                    # warm-up
        t0 = time.perf_counter()
        pair[lib]()
        reps[(lib, n)] = max(1, int(min_block / max(time.perf_counter() - t0, 1e-6)))
    times: dict = {k: [] for k in keys}
    for r in range(rounds):
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        if r % 2:
            order = order[::-1]
        for lib, n in order:
            set_both(n)
            fn, k = pair[lib], reps[(lib, n)]
            fn()                                           # the first call after a change of threads
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            times[(lib, n)].append((time.perf_counter() - t0) / k)
    return times


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def per_round(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """b's time over a's, round by round (a's speed relative to b's): 25th, 50th, 75th percentile."""
    return quartiles([y / x for x, y in zip(a, b)])


def fmt(q: tuple[float, float, float]) -> str:
    return f"{q[1]:.2f}× [{q[0]:.2f}–{q[2]:.2f}]"


def _median_us(fn, calls: int = 200) -> float:
    return 1e6 * median_time(fn, calls)


def step_only() -> None:
    """The median LeNet-5 training step (ms) at batch 64 and 256, at 1 and 2 threads."""
    from striate import heap
    cells = []
    for n in (1, 2):
        st.set_num_threads(n)
        for batch in (64, 256):
            train = lenet.contenders("lenet5-modern", batch, "train")["striate"]
            for _ in range(5):
                train()
            cells.append(f"{n}t bs{batch} {_median_us(train, 60 if batch == 64 else 20) / 1e3:.2f}")
    print(f"freed memory kept: {heap.keep_freed_memory()}; LeNet-5 train step, ms: " + ", ".join(cells))


def parts() -> None:
    """Where the time goes: ops one at a time, the per-step floor, the pool's overhead, bandwidth."""
    from striate import threads
    rng = np.random.default_rng(0)
    print(f"{'op (µs)':28} {'fwd 1t':>8} {'fwd 2t':>8} {'×':>5}   {'bwd 1t':>8} {'bwd 2t':>8} {'×':>5}")
    for batch in (64, 256):
        a = {k: rng.standard_normal(shape, dtype=np.float32) for k, shape in {
            "x": (batch, 1, 32, 32), "w1": (6, 1, 5, 5), "a1": (batch, 6, 28, 28), "p1": (batch, 6, 14, 14),
            "w2": (16, 6, 5, 5), "a2": (batch, 16, 10, 10), "f": (batch, 400), "w5": (120, 400)}.items()}
        ops = {"conv1 1→6 5×5": (F.conv2d, "x", "w1"), "relu 6×28×28": (F.relu, "a1"),
               "max_pool 6×28×28": (lambda t: F.max_pool2d(t, 2), "a1"),
               "conv2 6→16 5×5": (F.conv2d, "p1", "w2"), "relu 16×10×10": (F.relu, "a2"),
               "max_pool 16×10×10": (lambda t: F.max_pool2d(t, 2), "a2"), "linear 400→120": (F.linear, "f", "w5")}
        for name, (fn, *keys) in ops.items():
            ins = [st.Tensor(a[k], requires_grad=k != "x") for k in keys]
            out = fn(*ins)
            g = np.ones(out.shape, np.float32)

            def forward(fn=fn, ins=ins):
                with st.no_grad():
                    fn(*ins)
            cells = []
            for step in (forward, lambda out=out, g=g: out.backward(g, retain_graph=True)):
                one, two = [], []
                for _ in range(3):
                    for n, into in ((1, one), (2, two)):
                        st.set_num_threads(n)
                        into.append(_median_us(step, 70))
                cells.append((statistics.median(one), statistics.median(two)))
            (f1, f2), (b1, b2) = cells
            label = f"{name}, batch {batch}"
            print(f"{label:28} {f1:8.0f} {f2:8.0f} {f1 / f2:5.2f}   {b1:8.0f} {b2:8.0f} {b1 / b2:5.2f}")
    st.set_num_threads(1)
    for batch in (1, 2):
        train = lenet.contenders("lenet5-modern", batch, "train")["striate"]
        infer = lenet.contenders("lenet5-modern", batch, "infer")["striate"]
        print(f"LeNet-5 at batch {batch}, one thread: train step {_median_us(train) / 1e3:.2f} ms, "
              f"inference {_median_us(infer) / 1e3:.2f} ms")
    st.set_num_threads(2)
    for count in (2, 8):
        cost = _median_us(lambda c=count: threads.run_tiles(id, c), 2000)
        print(f"the pool, {count} empty tiles on 2 threads: {cost:.1f} µs")
    src = np.ones(16 << 20, np.float32)
    dst = np.empty_like(src)
    halves = threads.tile_bounds(src.size, 2)
    for n in (1, 2):
        st.set_num_threads(n)
        t = _median_us(lambda: threads.for_tiles(halves, lambda s, e: np.copyto(dst[s:e], src[s:e])), 20)
        print(f"64 MB copy, {n} thread{'s' if n > 1 else ''}: {2 * src.nbytes / t / 1e3:.1f} GB/s (read + write)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="without the AlexNet step")
    p.add_argument("--only", nargs="+", help="workloads whose name contains one of these words")
    p.add_argument("--parts", action="store_true", help="where the time goes, op by op (see above)")
    p.add_argument("--step", action="store_true", help="only LeNet-5's training step (see above)")
    args = p.parse_args(argv)
    if args.step:
        return step_only()
    print(machine_header(2))
    if args.parts:
        return parts()
    print(f"striate threads by default: {st.get_num_threads()} (threads.available_cores()); inside them the BLAS "
          f"runs one thread (st.set_num_threads sets it), PyTorch runs its own intra-op threads\n")
    print(f"{'workload':26} {'striate 1t':>11} {'striate 2t':>11} {'torch 1t':>11} {'torch 2t':>11}   "
          f"{'st 2t/1t':>17} {'torch 2t/1t':>17} {'st/torch 1t':>17} {'st/torch 2t':>17} {'best/best':>17}")
    amdahl = []
    for name, make in workloads(args.quick).items():
        if args.only and not any(w in name for w in args.only):
            continue
        t = measure(make(), args.rounds)
        med = {k: statistics.median(v) for k, v in t.items()}

        def cell(k):
            q = quartiles(t[k])
            return f"{1e3 * q[1]:7.2f} ±{50 * (q[2] - q[0]) / q[1]:2.0f}%"
        best_st = min((1, 2), key=lambda n: med[("striate", n)])
        best_pt = min((1, 2), key=lambda n: med[("torch", n)])
        s2 = per_round(t[("striate", 2)], t[("striate", 1)])
        print(f"{name:26} {cell(('striate', 1)):>11} {cell(('striate', 2)):>11} {cell(('torch', 1)):>11} "
              f"{cell(('torch', 2)):>11}   {fmt(s2):>17} "
              f"{fmt(per_round(t[('torch', 2)], t[('torch', 1)])):>17} "
              f"{fmt(per_round(t[('striate', 1)], t[('torch', 1)])):>17} "
              f"{fmt(per_round(t[('striate', 2)], t[('torch', 2)])):>17} "
              f"{fmt(per_round(t[('striate', best_st)], t[('torch', best_pt)])):>17}  "
              f"(best: striate {best_st}t, torch {best_pt}t)", flush=True)
        amdahl.append((name, s2[1]))
    print("\ntimes in ms (median over rounds, ± half the 25th–75th percentile range); ratios: median [25th–75th "
          "percentile] of per-round ratios, above 1 when the first named is faster")
    print("\nAmdahl: p = 2·(1 − 1/S₂), S(n) = 1 / ((1 − p) + p/n)")
    print(f"{'workload':26} {'S₂':>6} {'p':>6} {'S(4)':>6} {'S(8)':>6} {'S(16)':>6}")
    for name, s2 in amdahl:
        par = min(max(2 * (1 - 1 / s2), 0.0), 1.0)
        s = [1 / ((1 - par) + par / n) for n in (4, 8, 16)]
        print(f"{name:26} {s2:6.2f} {par:6.2f} {s[0]:6.2f} {s[1]:6.2f} {s[2]:6.2f}")


if __name__ == "__main__":
    main()
