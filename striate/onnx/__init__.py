"""ONNX in and out (extra: ``pip install striate[onnx]``).

    >>> import os, tempfile, striate.onnx
    >>> path = os.path.join(tempfile.mkdtemp(), "lenet.onnx")
    >>> model = st.models.get("lenet5", rng=0)      # LeNet-5 as published: C3 table, RBF output
    >>> striate.onnx.export(model, np.zeros((1, 1, 32, 32), np.float32), path)
    >>> net = striate.onnx.load(path)               # a striate.nn.Module; weights are Parameters
    >>> net(np.zeros((4, 1, 32, 32), np.float32)).shape
    (4, 10)

``export`` traces the model's forward (:mod:`striate.onnx.trace`, which needs
no onnx) and writes one ONNX node group per recorded op; ``load`` builds a
module whose forward runs each node with striate's ops. ``import striate``
does not import onnx; this package does, on first use of ``export``/``load``.
"""
from __future__ import annotations

__all__ = ["OnnxImportError", "TraceError", "export", "load", "trace"]


def export(model, example_input, path, opset: int = 18) -> None:
    from .exporter import export as _export
    _export(model, example_input, path, opset)


export.__doc__ = "Write ``model`` as ONNX; see :func:`striate.onnx.exporter.export`."


def load(path, **kwargs):
    from .importer import load as _load
    return _load(path, **kwargs)


load.__doc__ = "Read an ONNX file as a striate.nn.Module; see :func:`striate.onnx.importer.load`."


def __getattr__(name):
    if name == "trace":
        from .trace import trace
        return trace
    if name == "TraceError":
        from .trace import TraceError
        return TraceError
    if name == "OnnxImportError":
        from .importer import OnnxImportError
        return OnnxImportError
    raise AttributeError(f"module 'striate.onnx' has no attribute {name!r}")
