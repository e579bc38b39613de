"""The one place that imports onnx, with the error that says how to get it."""
try:
    import onnx
    import onnx.checker
    import onnx.defs
    import onnx.helper
    import onnx.numpy_helper
except ImportError as exc:          # pragma: no cover - depends on the environment
    raise ImportError("striate.onnx needs the onnx package: pip install striate[onnx]") from exc

__all__ = ["onnx"]
