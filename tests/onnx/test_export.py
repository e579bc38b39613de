"""striate.onnx.export: every layer and every model, checked by onnxruntime at other batch sizes."""
import numpy as np
import pytest

import striate as st
import striate.functional as F
import striate.onnx
from striate import (
    models,
    nn,
)
from striate.onnx import TraceError

from .helpers import check_export, forward, onnx, session, trained_like


class Lambda(nn.Module):
    """A custom forward: tensor arithmetic and functional ops, no layer of its own."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


LAYERS = [
    # (id, module factory, input shape (N, C, H, W) or (N, D))
    ("conv", lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 9, 8)),
    ("conv-same-dilated", lambda: nn.Conv2d(4, 6, (3, 4), padding="same", dilation=2), (2, 4, 9, 10)),
    ("conv-groups", lambda: nn.Conv2d(4, 8, 3, groups=2, bias=False), (2, 4, 7, 9)),
    ("conv-depthwise", lambda: nn.Conv2d(4, 4, 3, groups=4, padding=1), (2, 4, 7, 7)),
    ("conv-transpose", lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
     (2, 4, 5, 6)),
    ("fused-sum", lambda: nn.FusedConv2d(3, 4, 3, padding=1, fusion="sum"), (2, 3, 7, 7)),
    ("fused-concat", lambda: nn.FusedConv2d(3, 4, 3, stride=2, fusion="concat"), (2, 3, 9, 9)),
    ("fused-product", lambda: nn.FusedConv2d(3, 4, 3, fusion="product"), (2, 3, 7, 8)),
    ("max-pool", lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 3, 9, 8)),
    ("max-pool-dilated", lambda: nn.MaxPool2d(2, 1, dilation=2), (2, 3, 7, 8)),
    ("min-pool", lambda: nn.MinPool2d(2), (2, 3, 8, 8)),
    ("avg-pool", lambda: nn.AvgPool2d(3, 2, 1), (2, 3, 9, 8)),
    ("avg-pool-exclude-pad", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 9, 8)),
    ("avg-pool-ceil", lambda: nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False), (2, 3, 7, 7)),
    ("sum-pool", lambda: nn.SumPool2d(2), (2, 3, 8, 8)),
    ("lp-pool-3", lambda: nn.Sequential(nn.ReLU(), nn.LPPool2d(3, 2)), (2, 3, 8, 8)),
    ("lp-pool-1", lambda: nn.LPPool2d(1, 2), (2, 3, 8, 8)),
    ("l2-pool", lambda: nn.L2Pool2d(2, 2), (2, 3, 8, 8)),
    ("adaptive-avg", lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 8, 7)),
    ("adaptive-avg-even", lambda: nn.AdaptiveAvgPool2d(2), (2, 3, 8, 6)),
    ("adaptive-max", lambda: nn.AdaptiveMaxPool2d(2), (2, 3, 8, 6)),
    ("global-avg", lambda: nn.GlobalAvgPool2d(), (2, 3, 5, 7)),
    ("global-max", lambda: nn.GlobalMaxPool2d(), (2, 3, 5, 7)),
    ("activations", lambda: nn.Sequential(nn.LeakyReLU(0.2), nn.Tanh(), nn.ScaledTanh(), nn.Sigmoid()), (2, 3, 4, 5)),
    ("softmax", lambda: nn.Sequential(nn.Flatten(), nn.Softmax(dim=1)), (2, 3, 4, 5)),
    ("log-softmax", lambda: nn.LogSoftmax(dim=1), (2, 7)),
    ("dropout", lambda: nn.Sequential(nn.Dropout(0.5), nn.Dropout2d(0.3), nn.ReLU()), (2, 3, 4, 5)),
    ("batch-norm-2d", lambda: nn.BatchNorm2d(3), (2, 3, 5, 4)),
    ("batch-norm-1d", lambda: nn.BatchNorm1d(6), (2, 6)),
    ("batch-norm-no-affine", lambda: nn.BatchNorm2d(3, affine=False), (2, 3, 4, 4)),
    ("avg-pool-divisor", lambda: nn.AvgPool2d(3, 2, 1, divisor_override=4), (2, 3, 9, 8)),
    ("layer-norm", lambda: nn.LayerNorm((4, 5)), (2, 3, 4, 5)),
    ("lrn-odd", lambda: nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0), (2, 7, 4, 5)),
    ("lrn-even", lambda: nn.LocalResponseNorm(4, alpha=1e-2, beta=0.6, k=1.0), (2, 7, 4, 5)),
    ("linear", lambda: nn.Sequential(nn.Flatten(), nn.Linear(60, 7)), (2, 3, 4, 5)),
    ("linear-3d", lambda: nn.Linear(5, 3), (2, 4, 5)),
    ("identity-unflatten", lambda: nn.Sequential(nn.Identity(), nn.Flatten(), nn.Unflatten(1, (3, 20))), (2, 3, 4, 5)),
    ("pad", lambda: nn.Sequential(nn.ZeroPad2d((1, 2, 0, 1)), nn.ConstantPad2d(1, -0.5)), (2, 3, 4, 5)),
    ("residual", lambda: nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())),
     (2, 4, 6, 6)),
    ("residual-shortcut", lambda: nn.Residual(nn.Conv2d(3, 5, 3, padding=1), nn.Conv2d(3, 5, 1)), (2, 3, 6, 6)),
    ("concat", lambda: nn.Concat(nn.Conv2d(3, 2, 1), nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
                                 nn.MaxPool2d(3, 1, 1)), (2, 3, 6, 7)),
    ("arithmetic", lambda: Lambda(lambda x: (-x * 2 + 1) / (x.abs() + 1.0) - (x ** 2).exp() * 0.1 + 2 ** x),
     (2, 3, 4, 5)),
    ("reductions", lambda: Lambda(lambda x: x.sum(axis=1, keepdims=True) + x.mean(axis=(2, 3), keepdims=True)
                                  - x.max(axis=1, keepdims=True)), (2, 3, 4, 5)),
    ("reshape-transpose", lambda: Lambda(lambda x: x.reshape(x.shape[0], 3, -1).transpose(0, 2, 1) @
                                         x.reshape(x.shape[0], 3, -1)), (2, 3, 4, 5)),
    ("getitem", lambda: Lambda(lambda x: x[:, 1:, ::2, 1] * x[:, :2, 1::2, -1]), (2, 3, 4, 5)),
    ("branch-product", lambda: Lambda(lambda x: F.concat([F.relu(x), F.sigmoid(x) * F.tanh(x)], axis=1)),
     (2, 3, 4, 5)),
    ("stack-split", lambda: Lambda(lambda x: F.stack(list(F.split(x, 1, axis=1)), axis=2).flatten(1)), (2, 3, 4, 5)),
]


@pytest.mark.parametrize("make, shape", [(m, s) for _, m, s in LAYERS], ids=[i for i, _, _ in LAYERS])
def test_layer_exports_and_onnxruntime_agrees(make, shape, rng):
    model = trained_like(make(), rng)
    check_export(model, shape, rng, batches=(3, 1))


@pytest.mark.parametrize("name, shape", [
    ("lenet5", (2, 1, 32, 32)), ("lenet5-modern", (2, 1, 32, 32)), ("mlp", (2, 1, 28, 28)),
    ("alexnet-small", (2, 1, 32, 32)),
])
def test_models_export(name, shape, rng):
    model = trained_like(models.get(name, rng=0), rng)
    proto = check_export(model, shape, rng, batches=(5, 1))
    names = {i.name for i in proto.graph.initializer}
    assert {n for n, _ in model.named_parameters()} <= names          # stable names


@pytest.mark.parametrize("skip", ["plain", "residual", "long skip"])
def test_experiment_models_with_hand_written_forwards(skip, rng):
    from striate.experiments.fcn import FCN
    from striate.experiments.skip import DeepCNN
    model = trained_like(DeepCNN(width=8, depth=10, skip=skip, rng=0), rng)   # slices, concat, shortcuts
    check_export(model, (2, 1, 28, 28), rng, batches=(3,))
    check_export(trained_like(FCN(rng=0), rng), (2, 1, 28, 28), rng, batches=(3,))


def test_lenet5_keeps_its_c3_pieces_and_rbf_centres(rng):
    model = models.get("lenet5", rng=0)
    proto = check_export(model, (2, 1, 32, 32), rng)
    names = {i.name for i in proto.graph.initializer}
    assert {"c3.weight_3", "c3.weight_4", "c3.weight_6", "output.centres", "s2.coefficient"} <= names
    assert "ScatterND" in {n.op_type for n in proto.graph.node}


@pytest.mark.slow
def test_alexnet_as_published_exports_and_round_trips(rng, tmp_path):
    model = models.get("alexnet", rng=0)      # groups, LRN, dropout, 61 million weights
    proto = check_export(model, (1, 3, 227, 227), rng, batches=(2,))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("LRN") == 2
    assert sum(1 for n in proto.graph.node if n.op_type == "Conv" and
               any(a.name == "group" and a.i == 2 for a in n.attribute)) == 3
    (tmp_path / "alexnet.onnx").write_bytes(proto.SerializeToString())
    del proto
    net = striate.onnx.load(tmp_path / "alexnet.onnx")
    assert net.num_parameters() == model.num_parameters() == 60_965_224
    x = rng.standard_normal((2, 3, 227, 227)).astype(np.float32)
    with st.no_grad():
        np.testing.assert_allclose(net(x).data, forward(model, x), rtol=1e-6, atol=1e-6)


def test_export_writes_a_valid_file_and_restores_the_mode(tmp_path, rng):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5), nn.Flatten())
    model.train()
    striate.onnx.export(model, np.zeros((2, 1, 5, 5), np.float32), tmp_path / "m.onnx", opset=13)
    assert all(m.training for m in model.modules())
    loaded = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.opset_import[0].version == 13
    assert loaded.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    x = rng.standard_normal((4, 1, 5, 5)).astype(np.float32)
    got = session(tmp_path / "m.onnx").run(None, {"input": x})[0]
    np.testing.assert_allclose(got, forward(model, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [13, 15, 17, 18])
def test_opsets(opset, rng):
    model = trained_like(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                                       nn.Linear(36, 5), nn.LogSoftmax(dim=1)), rng)
    check_export(model, (2, 3, 8, 8), rng, opset=opset)
    check_export(Lambda(lambda x: x.mean(axis=1) + x.max(axis=1)), (2, 3, 4), rng, opset=opset)


def test_unexportable_op_names_the_layer():
    class Clamp(nn.Module):
        def forward(self, x):
            return st.Tensor.from_op(np.clip(x.data, 0, 1), (x,), lambda g: (g,), "clamp")

    model = nn.Sequential(nn.Conv2d(1, 2, 3), Clamp())
    with pytest.raises(TraceError, match=r"layer '1' \(Clamp\).*'clamp'"):
        striate.onnx.export(model, np.zeros((1, 1, 5, 5), np.float32), "/dev/null")


def test_output_computed_outside_the_graph_is_refused():
    model = Lambda(lambda x: st.Tensor(x.data * 2))
    with pytest.raises(TraceError, match="does not depend on its input"):
        striate.onnx.export(model, np.zeros((1, 3), np.float32), "/dev/null")


def test_neocognitron_is_refused_with_a_reason():
    model = models.get("neocognitron")
    with pytest.raises(TraceError, match="Neocognitron.*self-organisation"):
        striate.onnx.export(model, np.zeros((1, 1, 16, 16), np.float32), "/dev/null")


def test_bad_opset():
    with pytest.raises(ValueError, match="opset must be an int from 13 to 18"):
        striate.onnx.export(nn.ReLU(), np.zeros((1, 3), np.float32), "/dev/null", opset=9)


def test_import_striate_does_not_import_onnx():
    import subprocess
    import sys
    code = ("import sys, striate, striate.nn, striate.models, striate.cli.main; assert 'onnx' not in sys.modules; "
            "import striate.onnx; assert 'onnx' not in sys.modules; "
            "from striate.onnx import trace; assert 'onnx' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
