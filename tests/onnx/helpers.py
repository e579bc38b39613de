"""Shared checks for the ONNX tests: export, validate, run in onnxruntime, compare."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import striate as st
from striate import nn
from striate.onnx.exporter import to_model_proto


def session(proto_or_path):
    """A one-thread onnxruntime session."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    source = proto_or_path.SerializeToString() if hasattr(proto_or_path, "SerializeToString") else str(proto_or_path)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def forward(model, x):
    """The model's eval-mode output, restoring its mode."""
    was = model.training
    model.eval()
    with st.no_grad():
        out = model(st.Tensor(x)).data
    model.train(was)
    return out


def relative_error(got, ref):
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))


def trained_like(model, rng):
    """Non-default weights: every parameter redrawn at its own scale, batch norm statistics non-trivial."""
    for name, p in model.named_parameters():
        scale = float(np.abs(p.data).mean()) or 0.1
        shift = 0.5 if name.endswith("bn.weight") else 0
        p.data[...] = (rng.standard_normal(p.shape) * scale + shift).astype(np.float32)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.running_mean is not None:
            m.running_mean[...] = rng.standard_normal(m.running_mean.shape).astype(np.float32) * 0.3
            m.running_var[...] = rng.uniform(0.5, 2.0, m.running_var.shape).astype(np.float32)
    return model


def check_export(model, shape, rng, batches=(3,), rtol=1e-5, opset=18):
    """Export traced at ``shape``; onnxruntime agrees with striate at other batch sizes. Returns the proto."""
    example = rng.standard_normal(shape).astype(np.float32)
    proto = to_model_proto(model, example, opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    sess = session(proto)
    for n in batches:
        x = rng.standard_normal((n,) + tuple(shape[1:])).astype(np.float32)
        ref = forward(model, x)
        got = sess.run(None, {"input": x})[0]
        assert got.shape == ref.shape
        assert relative_error(got, ref) < rtol, (n, relative_error(got, ref))
    return proto
