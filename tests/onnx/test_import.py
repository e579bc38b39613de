"""striate.onnx.load: the onnx wheel's classic graphs, PyTorch's exports, striate's own round trip."""
import json
from pathlib import Path

import numpy as np
import pytest

import striate as st
import striate.functional as F
import striate.onnx
from striate import (
    models,
    optim,
)

from .helpers import forward, onnx, relative_error, session, trained_like
from .test_export import LAYERS

LIGHT = Path(onnx.__file__).parent / "backend/test/data/light"
REAL = Path(onnx.__file__).parent / "backend/test/data/real"
WHEEL_GRAPHS = ["bvlc_alexnet", "zfnet512", "vgg19", "squeezenet", "inception_v1", "inception_v2",
                "resnet50", "densenet121", "shufflenet"]


def _tolerances(name):
    """rtol/atol as the onnx backend test ships them (data/real/test_<name>/data.json; 1e-3, 1e-7 by default)."""
    path = REAL / f"test_{name}" / "data.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return data.get("rtol", 1e-3), data.get("atol", 1e-7)


def _dummy_input(shape):
    """The input the onnx backend test feeds these graphs (Runner.generate_dummy_data, random=False)."""
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


@pytest.mark.parametrize("name", WHEEL_GRAPHS)
def test_wheel_graph_matches_its_shipped_output(name):
    net = striate.onnx.load(LIGHT / f"light_{name}.onnx")
    expected = onnx.numpy_helper.to_array(onnx.load_tensor(str(LIGHT / f"light_{name}_output_0.pb")))
    x = _dummy_input([d or 1 for d in net.input_shapes[0]])
    with st.no_grad():
        got = net(x).data
    rtol, atol = _tolerances(name)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def _randomised(name, rng):
    """The wheel graph with its constant-filled weights replaced by random ones (a harder check)."""
    model = onnx.load(str(LIGHT / f"light_{name}.onnx"))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = tuple(int(s) for s in inits[node.input[0]])
            if len(shape) >= 2:
                w = rng.uniform(-1, 1, shape) * np.sqrt(3.0 / np.prod(shape[1:]))
            else:
                w = rng.uniform(0.5, 1.5, shape)
            model.graph.initializer.append(onnx.numpy_helper.from_array(w.astype(np.float32), node.output[0]))
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


@pytest.mark.parametrize("name", ["squeezenet", "inception_v1", "inception_v2", "resnet50", "shufflenet",
                                  "densenet121", "bvlc_alexnet"])
def test_wheel_graph_with_random_weights_agrees_with_onnxruntime(name, rng, tmp_path):
    model = _randomised(name, rng)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    net = striate.onnx.load(path)
    x = rng.standard_normal([d or 1 for d in net.input_shapes[0]]).astype(np.float32)
    # compare before the final softmax, where differences are not squashed
    last = model.graph.node[-1]
    if last.op_type == "Softmax":
        del model.graph.output[:]
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(last.input[0]))
        net.output_names[:] = [last.input[0]]
    with st.no_grad():
        got = net(x).data
    ref = session(model).run(None, {net.input_names[0]: x})[0]
    assert relative_error(got, ref.reshape(got.shape)) < 1e-4


# ---------------------------------------------------------------------------
# striate's own graphs: the round trip is exact


@pytest.mark.parametrize("make, shape", [(m, s) for _, m, s in LAYERS], ids=[i for i, _, _ in LAYERS])
def test_round_trip_of_every_layer(make, shape, rng, tmp_path):
    model = trained_like(make(), rng)
    striate.onnx.export(model, rng.standard_normal(shape).astype(np.float32), tmp_path / "m.onnx")
    net = striate.onnx.load(tmp_path / "m.onnx")
    assert net.num_parameters() == model.num_parameters()
    x = rng.standard_normal((3,) + tuple(shape[1:])).astype(np.float32)
    with st.no_grad():
        got = net(x).data
    np.testing.assert_allclose(got, forward(model, x), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name, shape", [
    ("lenet5", (2, 1, 32, 32)), ("lenet5-modern", (2, 1, 32, 32)), ("mlp", (2, 1, 28, 28)),
    ("alexnet-small", (2, 1, 32, 32)),
])
def test_round_trip_of_the_models(name, shape, rng, tmp_path):
    model = trained_like(models.get(name, rng=0), rng)
    striate.onnx.export(model, np.zeros(shape, np.float32), tmp_path / "m.onnx")
    net = striate.onnx.load(tmp_path / "m.onnx")
    assert net.num_parameters() == model.num_parameters()
    assert set(net.state_dict()) >= {n for n, _ in model.named_parameters()}
    x = rng.standard_normal((4,) + shape[1:]).astype(np.float32)
    with st.no_grad():
        got = net(x).data
    np.testing.assert_allclose(got, forward(model, x), rtol=1e-6, atol=1e-6)


def test_imported_graph_trains_and_saves(rng, tmp_path):
    model = models.get("lenet5-modern", rng=0)
    striate.onnx.export(model, np.zeros((1, 1, 32, 32), np.float32), tmp_path / "m.onnx")
    net = striate.onnx.load(tmp_path / "m.onnx")
    x = rng.standard_normal((16, 1, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    losses = _sgd(net, x, y, steps=5, lr=0.05)
    assert losses[-1] < losses[0]
    st.save(net, tmp_path / "net.safetensors")
    state = st.load(tmp_path / "net.safetensors")
    fresh = striate.onnx.load(tmp_path / "m.onnx")
    fresh.load_state_dict(state)
    with st.no_grad():
        np.testing.assert_array_equal(fresh(x).data, net(x).data)


def _sgd(net, x, y, steps, lr):
    opt = optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses
