"""Peak memory of modern LeNet-5 (or AlexNet) training, striate and PyTorch each in its own process.

Each worker imports only its own library, builds the model and one batch of random
images (1×32×32 for LeNet, 3×227×227 for AlexNet), records its resident set size (RSS),
runs train steps (zero_grad, forward, cross-entropy, backward, SGD with momentum), and
reports the peak RSS (``VmHWM``).
What training costs is the peak minus the RSS before the first step; the totals include
each library's import (PyTorch's is far larger) and are shown for completeness.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/memory.py [--batch 256] [--steps 20]
    ... benchmarks/memory.py --model alexnet --batch 8 --steps 3 --threads 1
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

# model name → (input shape of one image, number of classes)
MODELS = {"lenet5-modern": ((1, 32, 32), 10), "alexnet": ((3, 227, 227), 1000)}


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _rss_mib() -> float:
    """Current resident set size in MiB."""
    return _status_mib("VmRSS")


def _peak_mib() -> float:
    """Peak resident set size in MiB. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    ``exec``, so a worker started from a parent that has PyTorch loaded would report the
    parent's size."""
    return _status_mib("VmHWM")


def worker(lib: str, batch: int, steps: int, threads: int, model_name: str = "lenet5-modern") -> dict:
    shape, classes = MODELS[model_name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    y = rng.integers(0, classes, batch)
    if lib == "striate" or lib.startswith("before:"):
        import importlib

        import threadpoolctl
        threadpoolctl.threadpool_limits(threads, user_api="blas")
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        if lib == "striate":
            import striate as st
        else:
            from _common import load_baseline
            # AlexNet's model file is newer than some baselines: run it on the old ops
            extra = ["models/alexnet.py"] if model_name == "alexnet" else []
            st = load_baseline(lib.split(":", 1)[1], extra_files=extra)
        F, models, optim = (importlib.import_module(f"{st.__name__}.{m}")
                            for m in ("functional", "models", "optim"))
        if model_name == "alexnet" and lib == "striate":
            model = models.get("alexnet", rng=0)
        elif model_name == "alexnet":
            # the module, not models.get: a baseline's registry may predate AlexNet
            model = importlib.import_module(f"{st.__name__}.models.alexnet").alexnet(rng=0)
        else:
            model = models.lenet5_modern(rng=0)
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step():
            loss = F.cross_entropy(model(st.Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    else:
        import torch
        import torch.nn as tnn
        import torch.nn.functional as tF
        torch.set_num_threads(threads)
        if model_name == "alexnet":
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from torch_models import torch_alexnet
            model = torch_alexnet()
        else:
            model = tnn.Sequential(tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2),
                                   tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                                   tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
                                   tnn.Linear(84, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            opt.zero_grad()
            tF.cross_entropy(model(xt), yt).backward()
            opt.step()
    before = _rss_mib()
    peak_before = _peak_mib()
    for _ in range(steps):
        step()
    return {"lib": lib, "rss_before_mib": before, "peak_before_mib": peak_before,
            "peak_mib": _peak_mib(), "rss_after_mib": _rss_mib()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="lenet5-modern")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--baseline", metavar="COMMIT", help="also measure striate as it was at this commit")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.batch, args.steps, args.threads, args.model)))
        return
    import threadpoolctl
    import torch
    from _common import machine_header
    threadpoolctl.threadpool_limits(args.threads, user_api="blas")
    torch.set_num_threads(args.threads)
    print(machine_header(args.threads))
    title = {"lenet5-modern": "modern LeNet-5", "alexnet": "AlexNet (3×227×227, 1000 classes)"}[args.model]
    print(f"\n{title}, batch {args.batch}, {args.steps} train steps, each library in its own process")
    results = {}
    libs = ["striate", "torch"] + ([f"before:{args.baseline}"] if args.baseline else [])
    for lib in libs:
        out = subprocess.run([sys.executable, __file__, "--worker", lib, "--model", args.model,
                              "--batch", str(args.batch),
                              "--steps", str(args.steps), "--threads", str(args.threads)],
                             check=True, capture_output=True, text=True).stdout
        results[lib] = json.loads(out.strip().splitlines()[-1])
    print(f"{'':16} {'RSS before MiB':>15} {'peak MiB':>9} {'training adds MiB':>18}")
    for lib, r in results.items():
        r["added"] = r["peak_mib"] - r["rss_before_mib"]
        print(f"{lib:16} {r['rss_before_mib']:15.1f} {r['peak_mib']:9.1f} {r['added']:18.1f}")
    for lib in libs:
        if lib != "torch":
            print(f"{lib} / torch, memory training adds: {results[lib]['added'] / results['torch']['added']:.2f}×")


if __name__ == "__main__":
    main()
