"""Inference speed of ``st.compile`` against eager striate, onnxruntime, PyTorch and torch.compile.

    python benchmarks/compile.py                         # LeNet-5 modern (batch 64, 256) and AlexNet (batch 8)
    python benchmarks/compile.py --threads 1 --rounds 5 --skip-alexnet
    python benchmarks/compile.py --profile               # also where the time goes, step by step and in onnxruntime
    python benchmarks/compile.py --memory                # only peak memory of one call, compiled against eager

LeNet-5 (modern, random weights) at batch 64 and 256, at 1 and 2 threads: eager striate
(``model(x)`` under ``no_grad``), compiled striate (``st.compile(model)``), onnxruntime
(the same model exported with ``striate.onnx.export``, all graph optimisations, intra-op
threads = the benchmark's), PyTorch eager (the same weights, ``torch.no_grad``) and
``torch.compile`` (inductor, ``dynamic=True``: one compilation serves both batch sizes).
Threads are striate's (``st.set_num_threads``; the BLAS runs one thread inside them),
PyTorch's and onnxruntime's intra-op threads, all set to the same number; at 2 threads
``st.compile`` measures each convolution with its blocks shared by two threads too.
AlexNet as published, forward at batch 8: compiled striate against PyTorch eager and
onnxruntime.

All contenders of one setting run in one process, in alternation, round after round
(``_common.compare``); images/second is the batch over the median time per call, and each
ratio is the median over rounds of the per-round ratio with its 25th–75th percentiles.
The header names the CPU, the BLAS and its kernel, and the load average.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import compare, fmt_ratio, machine_header, ratio, set_threads

TARGETS = {"lenet": [("compiled", "onnxruntime", 1.0), ("compiled", "torch.compile", 1.5)],
           "alexnet": [("compiled", "torch eager", 1.0), ("compiled", "onnxruntime", 0.7)]}


def ort_session(path: Path, threads: int, profile: str | None = None):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, session.get_inputs()[0].name


def images_per_second(timing: dict, name: str, batch: int) -> str:
    ts = timing["_rounds"][name]
    q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
    return f"{batch / statistics.median(ts):>8.0f} [{batch / q[2]:.0f}–{batch / q[0]:.0f}]"


def report(title: str, timing: dict, batch: int, targets) -> list[str]:
    names = [n for n in timing if n != "_rounds"]
    print(f"\n{title}")
    print(f"  {'contender':<15} {'images/s [25–75%]':>26} {'ms/call':>9}")
    for name in names:
        print(f"  {name:<15} {images_per_second(timing, name, batch):>26} {timing[name] * 1e3:>9.2f}")
    lines = []
    for ours, theirs, goal in targets:
        if theirs not in timing:
            continue
        r = ratio(timing, ours, theirs)
        verdict = "met" if r[0] >= goal else "NOT met"
        line = f"  {ours}/{theirs} speed: {fmt_ratio(r)} (target ≥ {goal}×: {verdict})"
        print(line)
        lines.append(title + ":" + line)
    for name in names:
        if not name.startswith("compiled") and all(name != t for _, t, _ in targets):
            print(f"  compiled/{name} speed: {fmt_ratio(ratio(timing, 'compiled', name))}")
    return lines


def ort_profile_summary(session, feed: dict, runs: int = 5) -> str:
    """onnxruntime's own profile: time by operator type over ``runs`` runs."""
    import json
    for _ in range(runs):
        session.run(None, feed)
    path = session.end_profiling()
    by_op: dict[str, float] = {}
    for event in json.loads(Path(path).read_text()):
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + event["dur"] / runs / 1e3
    Path(path).unlink(missing_ok=True)
    return ", ".join(f"{op} {ms:.2f} ms" for op, ms in sorted(by_op.items(), key=lambda kv: -kv[1]))


def memory() -> None:
    """Peak memory (tracemalloc: NumPy's arrays and Python's objects) of one steady-state call."""
    import gc
    import tracemalloc

    import striate as st

    def peak(fn) -> tuple[int, int]:
        """(memory held between calls: plans, buffers, workspaces; the peak of one more call above it)."""
        gc.collect()
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            fn()                                  # plans, workspaces and caches are made here
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del out
        return held, top - base
    print("MiB (tracemalloc): held between calls (plans, buffers, workspaces), and the peak of a call above it")
    print(f"{'model':<16} {'batch':>5}  {'eager held':>10} {'eager peak':>10}  "
          f"{'compiled held':>13} {'compiled peak':>13}")
    for name, batch in (("lenet5-modern", 64), ("lenet5-modern", 256), ("alexnet", 8)):
        model = st.models.get(name, rng=0).eval()
        shape = (batch,) + tuple(model.input_shape)
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        fast = st.compile(model, measure=False)

        def eager(model=model, x=x):
            with st.no_grad():
                return model(x)
        (eh, ep), (ch, cp) = peak(eager), peak(lambda fast=fast, x=x: fast(x))
        mib = 2 ** 20
        print(f"{name:<16} {batch:>5}  {eh / mib:>10.2f} {ep / mib:>10.2f}  {ch / mib:>13.2f} {cp / mib:>13.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--alexnet-batch", type=int, default=8)
    parser.add_argument("--alexnet-rounds", type=int, default=3)
    parser.add_argument("--skip-alexnet", action="store_true")
    parser.add_argument("--no-torch-compile", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="also print the compiled plan's per-step times and onnxruntime's profile by op")
    parser.add_argument("--memory", action="store_true",
                        help="only the peak memory of one steady-state call (tracemalloc), compiled against eager")
    args = parser.parse_args()
    if args.memory:
        return memory()
    started = time.perf_counter()

    import onnxruntime as ort
    import torch
    from torch_models import TorchLeNet5Modern, torch_alexnet

    import striate as st
    import striate.onnx

    set_threads(args.threads[0])
    print(machine_header(args.threads[0]))
    print(f"onnxruntime {ort.__version__} (CPU provider, all graph optimisations); the machine may be "
          "shared: compare ratios taken in one run only")
    verdicts = []
    tmp = Path(tempfile.mkdtemp())

    # -- LeNet-5 ------------------------------------------------------------------
    model = st.models.get("lenet5-modern", rng=0).eval()
    lenet_path = tmp / "lenet.onnx"
    striate.onnx.export(model, np.zeros((1, 1, 32, 32), np.float32), lenet_path)
    twin = TorchLeNet5Modern(model).eval()
    compiled_torch, why = None, ""
    if not args.no_torch_compile:
        try:
            compiled_torch = torch.compile(twin, dynamic=True)
            t0 = time.perf_counter()
            with torch.no_grad():
                for batch in args.batches:
                    compiled_torch(torch.zeros(batch, 1, 32, 32))
            print(f"torch.compile (inductor, dynamic shapes): compiled in {time.perf_counter() - t0:.1f} s")
        except Exception as exc:       # noqa: BLE001 - report why, keep benchmarking the others
            compiled_torch, why = None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            print(f"torch.compile failed on this machine: {why}")
    for threads in args.threads:
        set_threads(threads)
        session, input_name = ort_session(lenet_path, threads)
        fast = st.compile(model)          # compiled afresh: its plans are measured at this thread count
        for batch in args.batches:
            x = np.random.default_rng(batch).standard_normal((batch, 1, 32, 32)).astype(np.float32)
            xt = torch.from_numpy(x)
            t0 = time.perf_counter()
            fast(x)                                              # plans (and measures) for this shape
            planned = f"planned in {(time.perf_counter() - t0) * 1e3:.0f} ms"

            def eager(x=x):
                with st.no_grad():
                    model(x)

            def torch_eager(xt=xt):
                with torch.no_grad():
                    twin(xt)
            contenders = {"compiled": lambda x=x, f=fast: f(x), "eager striate": eager,
                          "onnxruntime": lambda x=x, s=session, name=input_name: s.run(None, {name: x}),
                          "torch eager": torch_eager}
            if compiled_torch is not None:
                def torch_compiled(xt=xt):
                    with torch.no_grad():
                        compiled_torch(xt)
                contenders["torch.compile"] = torch_compiled
            timing = compare(contenders, rounds=args.rounds)
            verdicts += report(f"LeNet-5 modern, batch {batch}, {threads} thread{'s' if threads > 1 else ''} "
                               f"({planned})", timing, batch, TARGETS["lenet"])
            if args.profile:
                print("  compiled, per step: " + ", ".join(
                    f"{label.split(' + ')[0]} {t * 1e3:.2f} ms" for label, t in fast.profile(x)))
                prof, name = ort_session(lenet_path, threads, str(tmp / "ort"))
                print("  onnxruntime, by op: " + ort_profile_summary(prof, {name: x}))
    print(f"\nthe compiled plans at {args.threads[-1]} thread{'s' if args.threads[-1] > 1 else ''}")
    print(fast)

    # -- AlexNet ------------------------------------------------------------------
    if not args.skip_alexnet:
        threads = args.threads[0]
        set_threads(threads)
        batch = args.alexnet_batch
        alex = st.models.get("alexnet", rng=0).eval()
        alex_path = tmp / "alexnet.onnx"
        striate.onnx.export(alex, np.zeros((1, 3, 227, 227), np.float32), alex_path)
        session, input_name = ort_session(alex_path, threads)
        torch_alex = torch_alexnet().eval()
        fast_alex = st.compile(alex)
        x = np.random.default_rng(0).standard_normal((batch, 3, 227, 227)).astype(np.float32)
        xt = torch.from_numpy(x)
        t0 = time.perf_counter()
        fast_alex(x)
        plan_s = time.perf_counter() - t0

        def torch_eager_alex():
            with torch.no_grad():
                torch_alex(xt)
        timing = compare({"compiled": lambda: fast_alex(x), "torch eager": torch_eager_alex,
                          "onnxruntime": lambda: session.run(None, {input_name: x})},
                         rounds=args.alexnet_rounds, inner=1, warmup=1, min_block=0.0)
        verdicts += report(f"AlexNet, batch {batch}, {threads} thread{'s' if threads > 1 else ''} "
                           f"(planned in {plan_s:.1f} s)", timing, batch, TARGETS["alexnet"])
        if args.profile:
            print("  compiled, per step: " + ", ".join(
                f"{label.split(' + ')[0]} {t * 1e3:.1f} ms" for label, t in fast_alex.profile(x, 3)))
            prof, name = ort_session(alex_path, threads, str(tmp / "ort_alex"))
            print("  onnxruntime, by op: " + ort_profile_summary(prof, {name: x}, runs=3))
        print("\nthe compiled AlexNet plan")
        print(fast_alex)

    print("\ntargets:")
    for line in verdicts:
        print(" ", line.strip())
    if why:
        print(f"  torch.compile: not measured ({why})")
    import os
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
