"""Forward time of an imported ONNX graph in striate against onnxruntime, both at one thread.

    python benchmarks/onnx_import.py                      # LeNet, AlexNet 227×227, ResNet-50 224×224; batch 1 and 16
    python benchmarks/onnx_import.py --models lenet --batches 1 64 --rounds 9

LeNet-5 (modern) and AlexNet are striate's models exported with ``striate.onnx.export``;
ResNet-50 is the onnx wheel's graph (constant-filled weights; the values do not change the
work). Each graph is loaded with ``striate.onnx.load`` and run under ``no_grad``, and run by
onnxruntime (CPU provider, one intra-op and one inter-op thread, all graph optimisations on).
The two are timed in alternation (``_common.compare``); the figure is onnxruntime's time over
striate's (above 1: striate is faster), the median over rounds, with the 25th–75th percentile.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import compare, fmt_ratio, machine_header, pick_clock, ratio, set_threads


def graphs(names, folder: Path):
    """{name: (path, input shape without N)}, exporting striate's models on the way."""
    import onnx

    import striate.onnx
    from striate import models
    out = {}
    if "lenet" in names:
        path = folder / "lenet.onnx"
        striate.onnx.export(models.get("lenet5-modern", rng=0), np.zeros((1, 1, 32, 32), np.float32), path)
        out["lenet"] = (path, (1, 32, 32))
    if "alexnet" in names:
        path = folder / "alexnet.onnx"
        striate.onnx.export(models.get("alexnet", rng=0), np.zeros((1, 3, 227, 227), np.float32), path)
        out["alexnet"] = (path, (3, 227, 227))
    if "resnet50" in names:
        light = Path(onnx.__file__).parent / "backend/test/data/light/light_resnet50.onnx"
        # the wheel's graph has a fixed batch of 1: make its batch axis symbolic, and its
        # final Reshape's target (1, 2048) read (N, 2048)
        model = onnx.load(str(light))
        for value in list(model.graph.input) + list(model.graph.output):
            dims = value.type.tensor_type.shape.dim
            if dims:
                dims[0].dim_param = "N"
        shapes = {n.input[1] for n in model.graph.node if n.op_type == "Reshape"}
        for i, t in enumerate(model.graph.initializer):
            if t.name in shapes:
                target = onnx.numpy_helper.to_array(t).copy()
                target[0] = 0
                model.graph.initializer[i].CopyFrom(onnx.numpy_helper.from_array(target, t.name))
        path = folder / "resnet50.onnx"
        onnx.save(model, str(path))
        out["resnet50"] = (path, (3, 224, 224))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["lenet", "alexnet", "resnet50"],
                        choices=["lenet", "alexnet", "resnet50"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    set_threads(1)
    clock = pick_clock(args.clock, 1)
    import onnxruntime as ort

    import striate as st
    import striate.onnx
    print(machine_header(1, args.clock))
    print(f"onnxruntime {ort.__version__}, intra_op=1 inter_op=1, sequential execution")
    print()
    print(f"{'graph':<10} {'batch':>5} {'striate ms':>11} {'onnxruntime ms':>15}  ort time / striate time [25–75%]")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, shape) in graphs(args.models, Path(tmp)).items():
            net = striate.onnx.load(path)
            sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = sess.get_inputs()[0].name
            for n in args.batches:
                x = np.random.default_rng(0).standard_normal((n,) + shape).astype(np.float32)

                def ours():
                    with st.no_grad():
                        net(x)

                def theirs():
                    sess.run(None, {feed: x})

                t = compare({"striate": ours, "onnxruntime": theirs}, rounds=args.rounds, inner=1, warmup=1,
                            min_block=0.05, clock=clock)
                print(f"{name:<10} {n:>5} {t['striate'] * 1e3:>11.1f} {t['onnxruntime'] * 1e3:>15.1f}  "
                      f"{fmt_ratio(ratio(t, 'striate', 'onnxruntime'))}", flush=True)


if __name__ == "__main__":
    main()
