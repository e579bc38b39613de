"""Imported graphs under ``st.compile``: traced whole, planned, and equal to the eager graph.

Each graph is planned on one batch and compared on another (so that nothing computed from
the data is frozen into the plan), without measuring, as striate's own inference runs them.
"""
import numpy as np
import pytest

import striate as st
import striate.onnx
from striate import models

from .helpers import forward, trained_like
from .test_export import LAYERS


def _compiled_matches(net, x_plan, x_check):
    """Plan ``net`` on x_plan; on x_check the compiled graph gives the eager graph's output."""
    fast = st.compile(net, measure=False)
    fast(x_plan)
    plan = fast.last
    assert not plan.eager_only, plan.eager_only          # traced whole, not run eagerly as one piece
    got = fast(x_check).data
    assert fast.last is plan
    ref = forward(net, x_check)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * max(float(np.abs(ref).max()), 1.0))
    return plan


@pytest.mark.parametrize("make, shape", [(m, s) for _, m, s in LAYERS], ids=[i for i, _, _ in LAYERS])
def test_every_imported_layer_compiles(make, shape, rng, tmp_path):
    model = trained_like(make(), rng)
    striate.onnx.export(model, rng.standard_normal(shape).astype(np.float32), tmp_path / "m.onnx")
    net = striate.onnx.load(tmp_path / "m.onnx")
    x1, x2 = (rng.standard_normal((3,) + tuple(shape[1:])).astype(np.float32) for _ in range(2))
    _compiled_matches(net, x1, x2)


@pytest.mark.parametrize("name", ["lenet5", "lenet5-modern", "mlp", "alexnet-small"])
def test_imported_models_compile_and_plan_their_convolutions(name, rng, tmp_path):
    model = trained_like(models.get(name, rng=0), rng)
    striate.onnx.export(model, np.zeros((1, *model.input_shape), np.float32), tmp_path / "m.onnx")
    net = striate.onnx.load(tmp_path / "m.onnx")
    x1, x2 = (rng.standard_normal((6, *model.input_shape)).astype(np.float32) for _ in range(2))
    plan = _compiled_matches(net, x1, x2)
    np.testing.assert_allclose(st.compile(net, measure=False)(x2).data, forward(model, x2), rtol=1e-4, atol=1e-5)
    if name in ("lenet5-modern", "alexnet-small"):            # (the 1998 LeNet-5's convolutions feed Mul nodes)
        assert any(type(s).__name__ == "ConvStep" for s in plan.steps), plan.describe()


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "unfolded"])
@pytest.mark.parametrize("name", ["conv-bn-pools", "lrn", "lppool", "inception", "resnet", "view-head",
                                  "softmax-global-max"])
def test_pytorch_exports_compile(name, fold, rng, tmp_path):
    """PyTorch's graphs (Clip, Sign, Max, Softmax, broadcasting Mul and Add ...), batch axis dynamic."""
    torch = pytest.importorskip("torch")
    from .test_torch import NETS, _export, _trained_like
    torch.manual_seed(0)
    net = _trained_like(NETS[name](), 2)
    path = tmp_path / "t.onnx"
    path.write_bytes(_export(net, np.zeros((2, 3, 16, 16), np.float32), 17, fold, dynamic=True))
    model = striate.onnx.load(path)
    for n in (5, 1):
        x1, x2 = (rng.standard_normal((n, 3, 16, 16)).astype(np.float32) for _ in range(2))
        _compiled_matches(model, x1, x2)


@pytest.mark.parametrize("name", ["lenet5", "lenet5-modern"])
def test_a_plan_reads_every_parameter_of_an_imported_graph(name, rng, tmp_path):
    """Fine-tuning an imported graph is seen by its plan: every Parameter (LeNet-5's C3 pieces,
    which ScatterND nodes place into its kernel, included) is read at each call, none frozen."""
    model = trained_like(models.get(name, rng=0), rng)
    striate.onnx.export(model, np.zeros((1, *model.input_shape), np.float32), tmp_path / "m.onnx")
    net = striate.onnx.load(tmp_path / "m.onnx")
    x = rng.standard_normal((4, *model.input_shape)).astype(np.float32)
    fast = st.compile(net, measure=False)
    before = fast(x).data.copy()
    for param_name, p in net.named_parameters():
        p.data += np.float32(0.5) * np.abs(p.data).mean() * rng.standard_normal(p.shape).astype(np.float32)
        ref = forward(net, x)
        np.testing.assert_allclose(fast(x).data, ref, rtol=1e-5, atol=1e-5, err_msg=param_name)
    assert not np.allclose(before, ref)


def test_evaluate_runs_an_imported_graph_compiled(rng, tmp_path, monkeypatch):
    """striate's evaluate on an imported graph runs its plan, and counts what op by op counts."""
    from striate.data import DataLoader, mnist_preprocess
    from striate.train import evaluate
    from tests.compile.helpers import record_plan_batches
    runs = record_plan_batches(monkeypatch)
    model = trained_like(models.get("lenet5-modern", rng=0), rng)
    striate.onnx.export(model, np.zeros((1, 1, 32, 32), np.float32), tmp_path / "m.onnx")
    net = striate.onnx.load(tmp_path / "m.onnx")
    images, labels = rng.integers(0, 256, (90, 28, 28)).astype(np.uint8), rng.integers(0, 10, 90)
    loader = DataLoader((images, labels), batch_size=40, transform=mnist_preprocess(pad_to=32))
    compiled = evaluate(net, loader)
    assert runs == [40, 40, 10]
    eager = evaluate(net, loader, compiled=False)
    assert runs == [40, 40, 10]
    np.testing.assert_array_equal(compiled["confusion"], eager["confusion"])
    assert compiled["loss"] == pytest.approx(eager["loss"], rel=1e-5)
    np.testing.assert_array_equal(compiled["confusion"], evaluate(model, loader)["confusion"])
