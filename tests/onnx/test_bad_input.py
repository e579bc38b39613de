"""Malformed and hostile ONNX files: a clear OnnxImportError within seconds, nothing huge allocated."""
import time

import numpy as np
import pytest

import striate.onnx
from striate import nn
from striate.onnx import OnnxImportError

from .helpers import onnx

helper, TensorProto = onnx.helper, onnx.TensorProto


def _model(nodes, initializers=(), inputs=None, opset=18, outputs=("y",)):
    inputs = inputs if inputs is not None else [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])]
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                              list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def _fails_fast(path, match, **kwargs):
    start = time.perf_counter()
    with pytest.raises(OnnxImportError, match=match):
        striate.onnx.load(path, **kwargs)
    assert time.perf_counter() - start < 5


def _valid(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    path = tmp_path / "valid.onnx"
    striate.onnx.export(model, np.zeros((1, 1, 8, 8), np.float32), path)
    return path


def test_truncated_file(tmp_path):
    data = _valid(tmp_path).read_bytes()
    for cut in (len(data) // 2, len(data) - 7, 10):
        path = tmp_path / "cut.onnx"
        path.write_bytes(data[:cut])
        _fails_fast(path, "cut.onnx: (not an ONNX model|.*truncated or corrupt)")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(seed).bytes(4096))
    _fails_fast(path, "noise.onnx: ")


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    _fails_fast(tmp_path / "empty.onnx", "not an ONNX model")
    _fails_fast(tmp_path / "absent.onnx", "cannot read the file")


def test_initializer_claiming_2_to_the_40_elements(tmp_path):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2 ** 20, 2 ** 20], raw_data=b"\0" * 16)
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [t])
    _fails_fast(_save(tmp_path, model), r"'w' declares 1099511627776 elements")


def test_initializer_with_less_data_than_its_shape(tmp_path):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 100], raw_data=b"\0" * 16)
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [t])
    _fails_fast(_save(tmp_path, model), r"'w' declares shape \[4, 100\].*carries 16 bytes, not 1600")
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 3], float_data=[1.0] * 5)
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [t])
    _fails_fast(_save(tmp_path, model), r"carries 5 values, not 12")


def test_constant_node_with_a_lying_tensor(tmp_path):
    t = TensorProto(name="c", data_type=TensorProto.FLOAT, dims=[1000], raw_data=b"\0" * 8)
    model = _model([helper.make_node("Constant", [], ["c"], value=t), helper.make_node("Add", ["x", "c"], ["y"])])
    _fails_fast(_save(tmp_path, model), "truncated or corrupt")


def test_constant_of_shape_asking_for_too_much(tmp_path):
    shape = onnx.numpy_helper.from_array(np.array([2 ** 31, 2 ** 31], np.int64), "s")
    model = _model([helper.make_node("ConstantOfShape", ["s"], ["c"]), helper.make_node("Add", ["x", "c"], ["y"])],
                   [shape])
    _fails_fast(_save(tmp_path, model), "ConstantOfShape node .*larger than")


def test_huge_padding(tmp_path):
    pads = onnx.numpy_helper.from_array(np.array([0, 2 ** 40, 0, 2 ** 40], np.int64), "p")
    model = _model([helper.make_node("Pad", ["x", "p"], ["y"])], [pads])
    path = _save(tmp_path, model)
    net = striate.onnx.load(path)
    with pytest.raises(OnnxImportError, match="Pad node .*more than"):
        net(np.zeros((1, 4), np.float32))


def test_file_size_limit(tmp_path):
    _fails_fast(_valid(tmp_path), "more than the limit 100", max_bytes=100)


def test_negative_dims(tmp_path):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-4, 2], raw_data=b"")
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [t])
    _fails_fast(_save(tmp_path, model), "negative dimensions")


def test_unknown_op_names_op_node_and_opset(tmp_path):
    model = _model([helper.make_node("Relu", ["x"], ["r"], name="first"),
                    helper.make_node("Hardmax", ["r"], ["y"], name="odd_one")], opset=13)
    _fails_fast(_save(tmp_path, model), r"op 'Hardmax' \(node 'odd_one', opset 13.*not supported")
    model = _model([helper.make_node("Frobnicate", ["x"], ["y"], name="n")])
    _fails_fast(_save(tmp_path, model), r"unknown op 'Frobnicate' \(node 'n', opset 18\)")


def test_custom_domain(tmp_path):
    model = _model([helper.make_node("Foo", ["x"], ["y"], domain="com.example", name="n")])
    _fails_fast(_save(tmp_path, model), "domain 'com.example'")


def test_undefined_input_and_cycles(tmp_path):
    model = _model([helper.make_node("Relu", ["z"], ["y"], name="r")])
    _fails_fast(_save(tmp_path, model), "reads 'z', which no earlier node")
    model = _model([helper.make_node("Add", ["x", "b"], ["a"], name="one"),
                    helper.make_node("Relu", ["a"], ["b"], name="two"), helper.make_node("Relu", ["b"], ["y"])])
    _fails_fast(_save(tmp_path, model), "reads 'b'")


def test_external_data_is_refused(tmp_path):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 3], data_location=TensorProto.EXTERNAL)
    entry = t.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [t])
    _fails_fast(_save(tmp_path, model), "external file")


def test_data_dependent_if_is_refused(tmp_path):
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "b", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    model = _model([helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
                    helper.make_node("Cast", ["s"], ["c"], to=TensorProto.BOOL),
                    helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch, name="iffy")])
    _fails_fast(_save(tmp_path, model), "If node 'iffy'.*condition depends on the input")


def test_huge_declared_input_shape(tmp_path):
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2 ** 20, 2 ** 20])]
    model = _model([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["y"], to=1)],
                   inputs=inputs)
    _fails_fast(_save(tmp_path, model), "declared input shapes .* too large")


def test_wrong_input_shape_at_run_time(tmp_path):
    net = striate.onnx.load(_valid(tmp_path))
    with pytest.raises(ValueError, match=r"input 'input' must have shape \('N', 1, 8, 8\), got \(2, 1, 9, 9\)"):
        net(np.zeros((2, 1, 9, 9), np.float32))
