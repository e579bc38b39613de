"""Graphs written by PyTorch's exporter (torch.onnx.export, dynamo=False) read by striate.onnx.load."""
import io
import warnings

import numpy as np
import pytest

import striate as st
import striate.functional as F
import striate.onnx
from striate import optim

from .helpers import relative_error, session

torch = pytest.importorskip("torch")
tnn = torch.nn


class Inception(tnn.Module):
    """Branches joined by concatenation, one of them an element-wise product of two branches."""

    def __init__(self, c):
        super().__init__()
        self.a = tnn.Conv2d(c, 4, 1)
        self.b = tnn.Sequential(tnn.Conv2d(c, 4, 3, padding=1, groups=2), tnn.ReLU())
        self.c = tnn.Sequential(tnn.Conv2d(c, c, 3, padding=1, groups=c), tnn.Sigmoid())   # depthwise
        self.d = tnn.Conv2d(c, c, 1)
        self.pool = tnn.MaxPool2d(3, 1, 1)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x), self.c(x) * self.d(x), self.pool(x)], 1)


class Block(tnn.Module):
    """A residual block: conv-bn-relu-conv-bn plus the input."""

    def __init__(self, c):
        super().__init__()
        self.body = tnn.Sequential(tnn.Conv2d(c, c, 3, padding=1, bias=False), tnn.BatchNorm2d(c), tnn.ReLU(),
                                   tnn.Conv2d(c, c, 3, padding=1, bias=False), tnn.BatchNorm2d(c))

    def forward(self, x):
        return torch.relu(self.body(x) + x)


class ViewHead(tnn.Module):
    """What hand-written forwards do: ReLU6, a mean over H and W, ``x.view(x.size(0), -1)``."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 6, 3, stride=2)
        self.fc = tnn.Linear(6 * 2, 10)

    def forward(self, x):
        x = torch.nn.functional.relu6(self.conv(x))
        x = torch.cat([x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)], 1)
        return self.fc(x.view(x.size(0), -1))


def _nets():
    return {
        "conv-bn-pools": lambda: tnn.Sequential(
            tnn.Conv2d(3, 8, 3, padding=1), tnn.BatchNorm2d(8), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(8, 8, 3, stride=2, padding=1), tnn.LeakyReLU(0.1),
            tnn.AvgPool2d(3, 2, 1, count_include_pad=False), tnn.Flatten(), tnn.Linear(8 * 2 * 2, 10)),
        "lrn": lambda: tnn.Sequential(tnn.Conv2d(3, 8, 5, padding=2), tnn.ReLU(),
                                      tnn.LocalResponseNorm(5, 1e-3, 0.75, 2.0),
                                      tnn.MaxPool2d(3, 2), tnn.Flatten(), tnn.Linear(8 * 7 * 7, 10)),
        "lppool": lambda: tnn.Sequential(tnn.Conv2d(3, 6, 3), tnn.ReLU(), tnn.LPPool2d(2, 2), tnn.Flatten(),
                                         tnn.Linear(6 * 7 * 7, 10)),
        "inception": lambda: tnn.Sequential(tnn.Conv2d(3, 4, 3, padding=1), tnn.ReLU(), Inception(4),
                                            tnn.AdaptiveAvgPool2d(2), tnn.Flatten(), tnn.Linear(16 * 4, 10)),
        "resnet": lambda: tnn.Sequential(tnn.Conv2d(3, 8, 3, stride=2, padding=1), tnn.BatchNorm2d(8), tnn.ReLU(),
                                         Block(8), Block(8), tnn.AdaptiveAvgPool2d(1), tnn.Flatten(),
                                         tnn.Linear(8, 10)),
        "view-head": ViewHead,
        "softmax-global-max": lambda: tnn.Sequential(tnn.Conv2d(3, 10, 3), tnn.AdaptiveMaxPool2d(1), tnn.Flatten(),
                                                     tnn.Softmax(dim=1)),
    }


NETS = _nets()


def _trained_like(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
        for m in net.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return net.eval()


def _export(net, x, opset, fold, dynamic=False):
    f = io.BytesIO()
    axes = {"x": {0: "N"}, "y": {0: "N"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.from_numpy(x), f, opset_version=opset, dynamo=False,
                          do_constant_folding=fold, input_names=["x"], output_names=["y"], dynamic_axes=axes)
    return f.getvalue()


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "unfolded"])
@pytest.mark.parametrize("opset", [13, 15, 17, 18])
@pytest.mark.parametrize("name", list(NETS))
def test_torch_export_agrees_with_onnxruntime(name, opset, fold, rng, tmp_path):
    torch.manual_seed(0)
    net = _trained_like(NETS[name](), 1)
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    path = tmp_path / "t.onnx"
    path.write_bytes(_export(net, x, opset, fold))
    model = striate.onnx.load(path)
    ops = {label.split()[0] for *_, label in model._steps}
    if "BatchNorm" in repr(net):     # folded into the convolutions, or kept as nodes
        assert ("BatchNormalization" in ops) == (not fold)
    with st.no_grad():
        got = model(x).data
    ref = session(path).run(None, {"x": x})[0]
    assert relative_error(got, ref) < 1e-4
    with torch.no_grad():
        assert relative_error(got, net(torch.from_numpy(x)).numpy()) < 1e-4


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "unfolded"])
@pytest.mark.parametrize("name", list(NETS))
def test_torch_export_with_a_dynamic_batch(name, fold, rng, tmp_path):
    """The batch axis symbolic: shape arithmetic that reads only C, H, W (LRN's) still folds."""
    torch.manual_seed(0)
    net = _trained_like(NETS[name](), 3)
    path = tmp_path / "t.onnx"
    path.write_bytes(_export(net, np.zeros((2, 3, 16, 16), np.float32), 17, fold, dynamic=True))
    model = striate.onnx.load(path)          # LRN's If (a test of the channel count) is resolved here
    for n in (1, 5):
        x = rng.standard_normal((n, 3, 16, 16)).astype(np.float32)
        with st.no_grad():
            got = model(x).data
        assert relative_error(got, session(path).run(None, {"x": x})[0]) < 1e-4


@pytest.mark.parametrize("name", ["conv-bn-pools", "inception", "resnet", "lrn", "lppool"])
def test_torch_export_fine_tunes(name, rng, tmp_path):
    torch.manual_seed(0)
    net = _trained_like(NETS[name](), 2)
    x = rng.standard_normal((8, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    path = tmp_path / "t.onnx"
    path.write_bytes(_export(net, x, 17, False))
    model = striate.onnx.load(path)
    opt = optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(4):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert model.num_parameters() == sum(p.numel() for p in net.parameters())
