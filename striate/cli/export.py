"""``striate export``: a trained run as an ONNX file (extra: ``pip install striate[onnx]``)."""
from __future__ import annotations

from pathlib import Path

from .common import RAW, CLIError

__all__ = ["add_commands", "cmd_export"]


def cmd_export(args) -> int:
    from ..train import load_run
    try:
        from .. import onnx as st_onnx
        from ..onnx.exporter import MAX_OPSET, MIN_OPSET
        from ..onnx.trace import TraceError
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    import numpy as np

    if not MIN_OPSET <= args.opset <= MAX_OPSET:
        raise CLIError(f"--opset must be from {MIN_OPSET} to {MAX_OPSET}, got {args.opset}")
    out = Path(args.out)
    if out.is_dir():
        raise CLIError(f"--out {out}: is a folder; give a file name such as model.onnx")
    if not out.parent.exists():
        raise CLIError(f"--out {out}: the folder {out.parent} does not exist")
    model = load_run(args.run_path).model
    shape = getattr(model, "input_shape", None)
    if not shape:
        raise CLIError(f"{args.run_path}: the model does not say what input it takes (no input_shape)")
    example = np.zeros((1,) + tuple(shape), dtype=np.float32)
    try:
        st_onnx.export(model, example, out, opset=args.opset)
    except TraceError as exc:
        raise CLIError(f"{args.run_path}: cannot export: {exc}") from None
    n = model.num_parameters()
    print(f"wrote {out}: {type(model).__name__}, {n:,} parameters, input (N, {', '.join(map(str, shape))}), "
          f"opset {args.opset}")
    return 0


def add_commands(sub) -> None:
    """Register ``export`` on the ``striate`` sub-command parser."""
    e = sub.add_parser(
        "export", help="write a trained run as an ONNX file", formatter_class=RAW,
        description="Write a run's model as ONNX (float32 weights, batch axis N), for onnxruntime,\n"
                    "PyTorch (via onnx2torch) or 'striate.onnx.load'. Needs: pip install striate[onnx].",
        epilog="examples:\n  striate export runs/lenet5-mnist --out lenet5.onnx\n"
               "  striate export runs/mlp-mnist/model.safetensors --out mlp.onnx --opset 13")
    e.add_argument("run_path", metavar="RUN", help="a run folder (or its model.safetensors / checkpoint.safetensors)")
    e.add_argument("--out", required=True, metavar="FILE", help="the .onnx file to write")
    e.add_argument("--opset", type=int, default=18, metavar="N", help="ONNX opset, 13 to 18 (default 18)")
    e.set_defaults(run=cmd_export)
