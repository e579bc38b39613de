"""One node at a time: each converter against onnxruntime, on the opsets where its schema differs."""
import numpy as np
import pytest

import striate as st
import striate.onnx

from .helpers import onnx, relative_error, session

helper, TensorProto = onnx.helper, onnx.TensorProto


def i64(*v):
    return np.array(v, dtype=np.int64)


def f32(*v):
    return np.array(v, dtype=np.float32)


# (id, op, opset, attributes, float input shapes, constant inputs after them (None: absent))
CASES = [
    ("conv-same-upper", "Conv", 13, dict(auto_pad="SAME_UPPER", strides=[2, 2]), [(2, 3, 7, 8), (4, 3, 3, 2)], []),
    ("conv-same-lower", "Conv", 13, dict(auto_pad="SAME_LOWER"), [(2, 3, 7, 8), (4, 3, 2, 2), (4,)], []),
    ("conv-asymmetric", "Conv", 11, dict(pads=[0, 1, 2, 1], dilations=[2, 1], group=3),
     [(2, 3, 7, 8), (6, 1, 3, 3)], []),
    ("conv-transpose-asym", "ConvTranspose", 13, dict(strides=[2, 2], pads=[1, 0, 0, 1], group=2),
     [(2, 4, 5, 6), (4, 3, 3, 3), (6,)], []),
    ("maxpool-asymmetric", "MaxPool", 9, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]),
     [(2, 3, 8, 9)], []),
    ("maxpool-ceil-dilated", "MaxPool", 13, dict(kernel_shape=[2, 3], strides=[2, 2], dilations=[2, 1], ceil_mode=1),
     [(2, 3, 9, 9)], []),
    ("avgpool-exclude-asym", "AveragePool", 13, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 0, 1]),
     [(2, 3, 8, 9)], []),
    ("avgpool-include", "AveragePool", 13, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
     [(2, 3, 8, 9)], []),
    ("avgpool-same", "AveragePool", 9, dict(kernel_shape=[2, 2], auto_pad="SAME_UPPER"), [(2, 3, 7, 7)], []),
    ("lppool-1", "LpPool", 13, dict(kernel_shape=[2, 2], strides=[2, 2], p=1), [(2, 3, 8, 8)], []),
    ("lppool-3", "LpPool", 18, dict(kernel_shape=[3, 3], strides=[1, 1], p=3), [(2, 3, 8, 8)], []),
    ("lppool-2-pads", "LpPool", 11, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]), [(2, 3, 8, 8)], []),
    ("global-max", "GlobalMaxPool", 13, {}, [(2, 3, 5, 4)], []),
    ("lrn-even", "LRN", 13, dict(size=4, alpha=0.01, beta=0.7, bias=1.5), [(2, 7, 3, 4)], []),
    ("lrn-odd", "LRN", 9, dict(size=3), [(2, 7, 3, 4)], []),
    ("softmax-old-axis", "Softmax", 11, dict(axis=1), [(2, 3, 4, 5)], []),
    ("softmax-new-axis", "Softmax", 13, dict(axis=1), [(2, 3, 4, 5)], []),
    ("logsoftmax-old", "LogSoftmax", 9, dict(axis=2), [(2, 3, 4, 5)], []),
    ("gemm-trans-a", "Gemm", 13, dict(transA=1, alpha=0.5, beta=2.0), [(4, 3), (4, 5), (1, 5)], []),
    ("gemm-plain", "Gemm", 9, {}, [(3, 4), (4, 5), (5,)], []),
    ("sum-3", "Sum", 13, {}, [(2, 3), (2, 3), (3,)], []),
    ("max-3", "Max", 13, {}, [(2, 3), (2, 3), (1, 3)], []),
    ("min", "Min", 13, {}, [(2, 3), (2, 3)], []),
    ("mean", "Mean", 13, {}, [(2, 3), (2, 3)], []),
    ("pow-const", "Pow", 13, {}, [(2, 3)], [f32(3.0)]),
    ("sign", "Sign", 13, {}, [(2, 3)], []),
    ("leaky", "LeakyRelu", 9, dict(alpha=0.3), [(2, 3)], []),
    ("flatten-2", "Flatten", 13, dict(axis=2), [(2, 3, 4, 5)], []),
    ("reshape-zero", "Reshape", 13, {}, [(2, 3, 4)], [i64(0, -1)]),
    ("transpose", "Transpose", 13, dict(perm=[0, 2, 3, 1]), [(2, 3, 4, 5)], []),
    ("squeeze-13", "Squeeze", 13, {}, [(2, 1, 4, 1)], [i64(1, 3)]),
    ("squeeze-11", "Squeeze", 11, dict(axes=[1]), [(2, 1, 4, 1)], []),
    ("unsqueeze-11", "Unsqueeze", 11, dict(axes=[0, 3]), [(2, 4)], []),
    ("pad-2", "Pad", 2, dict(pads=[0, 0, 1, 2, 0, 0, 3, 0], value=0.5), [(2, 3, 4, 5)], []),
    ("pad-18-axes", "Pad", 18, {}, [(2, 3, 4, 5)], [i64(1, -1, 2, 1), f32(-1.0), i64(3, 1)]),
    ("slice-1", "Slice", 9, dict(starts=[1, 0], ends=[3, -1], axes=[1, 3]), [(2, 3, 4, 5)], []),
    ("slice-13-steps", "Slice", 13, {}, [(2, 3, 4, 5)], [i64(-1, 0), i64(-100, 10), i64(2, 3), i64(-1, 2)]),
    ("gather-float", "Gather", 13, dict(axis=1), [(2, 3, 4)], [i64(2, 0, 0)]),
    ("reduce-mean-13", "ReduceMean", 13, dict(axes=[1, 2], keepdims=0), [(2, 3, 4)], []),
    ("reduce-mean-18", "ReduceMean", 18, dict(keepdims=1), [(2, 3, 4)], [i64(-1)]),
    ("reduce-sum-13", "ReduceSum", 13, {}, [(2, 3, 4)], [i64(0, 2)]),
    ("reduce-max-all", "ReduceMax", 18, dict(keepdims=0), [(2, 3, 4)], []),
    ("reduce-prod", "ReduceProd", 13, dict(axes=[1]), [(2, 3, 4)], []),
    ("clip-11", "Clip", 13, {}, [(2, 3)], [f32(-0.5), f32(0.5)]),
    ("clip-6", "Clip", 6, dict(min=-0.2), [(2, 3)], []),
    ("expand", "Expand", 13, {}, [(3, 1)], [i64(2, 3, 4)]),
    ("concat-neg-axis", "Concat", 13, dict(axis=-1), [(2, 3), (2, 4)], []),
    ("split-13", "Split", 13, dict(axis=1), [(2, 6)], [i64(2, 4)]),
    ("dropout-12", "Dropout", 13, {}, [(2, 3)], [np.array(0.5, np.float32)]),
    ("batchnorm-9", "BatchNormalization", 9, dict(epsilon=1e-3), [(2, 3, 4, 5), (3,), (3,), (3,)],
     [f32(0.5, 1.0, 2.0)]),
    ("reciprocal-sqrt", "Sqrt", 13, {}, [(2, 3)], []),
    ("layernorm", "LayerNormalization", 17, dict(axis=-2), [(2, 3, 4, 5), (4, 5), (4, 5)], []),
]


def _single_node(op, opset, attrs, shapes, consts, rng):
    names = [f"in{i}" for i in range(len(shapes))]
    inits = []
    for j, c in enumerate(consts):
        name = f"c{j}"
        names.append(name)
        inits.append(onnx.numpy_helper.from_array(c, name))
    outputs = ["y", "y2"] if op == "Split" else ["y"]
    node = helper.make_node(op, names, outputs, name="the_node", **attrs)
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in zip(names, shapes)]
    graph = helper.make_graph([node], "g", inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in zip(names, shapes)}
    if op in ("Pow", "LpPool", "Sqrt", "ReduceProd"):
        feeds = {n: np.abs(v) + 0.1 for n, v in feeds.items()}
    if op == "BatchNormalization":
        feeds["in3"] = np.abs(feeds["in3"]) + 0.5
    return model, feeds


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_converter_agrees_with_onnxruntime(case, rng, tmp_path):
    _, op, opset, attrs, shapes, consts = case
    model, feeds = _single_node(op, opset, attrs, shapes, consts, rng)
    path = tmp_path / "node.onnx"
    onnx.save(model, str(path))
    if op == "LRN" and attrs["size"] % 2 == 0:       # onnxruntime has odd sizes only: the spec's formula
        ref = [_lrn_reference(feeds["in0"], **attrs)]
    else:
        ref = session(path).run(None, feeds)
    net = striate.onnx.load(path)
    with st.no_grad():
        got = net(*[feeds[n] for n in net.input_names])
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        assert relative_error(g.data, r) < 1e-5


def _lrn_reference(x, size, alpha, beta, bias):
    """The ONNX spec: channels c − ⌊(size−1)/2⌋ … c + ⌈(size−1)/2⌉."""
    C = x.shape[1]
    out = np.empty_like(x)
    for c in range(C):
        lo, hi = max(0, c - (size - 1) // 2), min(C - 1, c + -(-(size - 1) // 2))
        square_sum = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (bias + alpha / size * square_sum) ** beta
    return out
