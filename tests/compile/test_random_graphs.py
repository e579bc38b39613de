"""Random networks of the layers the planner knows, compiled against eager striate."""
from __future__ import annotations

import numpy as np
import pytest

import striate as st
from striate import nn

from .helpers import assert_float32_close


def _conv(rng, C, H, W, same=False):
    """A random Conv2d that fits (C, H, W): stride, padding, dilation and groups vary."""
    groups = int(rng.choice([g for g in (1, 2, 3) if C % g == 0]))
    K = groups * int(rng.integers(1, 5))
    k = int(rng.choice([1, 2, 3, 5])) if not same else int(rng.choice([1, 3]))
    stride = 1 if same else int(rng.choice([1, 1, 2]))
    dilation = 1 if same or k == 1 else int(rng.choice([1, 1, 2]))
    padding = (k // 2) if same else int(rng.integers(0, k // 2 + 1))
    reach = dilation * (k - 1) + 1
    if H + 2 * padding < reach or W + 2 * padding < reach:
        return None, (C, H, W)
    layer = nn.Conv2d(C, K, k, stride=stride, padding=padding, dilation=dilation, groups=groups,
                      bias=bool(rng.integers(0, 2)) or not same, rng=rng)
    OH = (H + 2 * padding - reach) // stride + 1
    OW = (W + 2 * padding - reach) // stride + 1
    return layer, (K, OH, OW)


def random_net(seed: int):
    rng = np.random.default_rng(seed)
    C, H, W = int(rng.integers(1, 5)), int(rng.integers(8, 15)), int(rng.integers(8, 15))
    shape = (C, H, W)
    layers = []
    for _ in range(int(rng.integers(3, 8))):
        C, H, W = shape
        kind = rng.choice(["conv", "conv", "bn", "act", "maxpool", "avgpool", "dropout", "residual", "concat"])
        if kind == "conv":
            layer, shape = _conv(rng, C, H, W)
        elif kind == "bn":
            layer = nn.BatchNorm2d(C)
        elif kind == "act":
            layer = rng.choice([nn.ReLU, nn.Tanh, nn.Sigmoid, nn.ScaledTanh])()
        elif kind in ("maxpool", "avgpool"):
            k = int(rng.choice([2, 3]))
            s = int(rng.choice([1, 2, k]))
            p = int(rng.integers(0, k // 2 + 1))
            if H + 2 * p < k or W + 2 * p < k:
                continue
            layer = (nn.MaxPool2d(k, s, p) if kind == "maxpool" else nn.AvgPool2d(k, s, p))
            shape = (C, (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1)
        elif kind == "dropout":
            layer = nn.Dropout(0.3, rng=rng)
        elif kind == "residual":
            body = nn.Sequential(nn.Conv2d(C, C, 3, padding=1, rng=rng), nn.BatchNorm2d(C), nn.ReLU(),
                                 nn.Conv2d(C, C, 1, rng=rng))
            layer = nn.Residual(body)
        else:
            first, (K1, _, _) = _conv(rng, C, H, W, same=True)
            second, (K2, _, _) = _conv(rng, C, H, W, same=True)
            layer = nn.Concat(first, nn.Sequential(second, nn.ReLU()))
            shape = (K1 + K2, H, W)
        if layer is not None:
            layers.append(layer)
    C, H, W = shape
    layers += [nn.Flatten(), nn.Linear(C * H * W, 4, rng=rng), nn.ReLU(), nn.Linear(4, 3, rng=rng)]
    model = nn.Sequential(*layers)
    input_shape = (int(layers[0].in_channels) if isinstance(layers[0], nn.Conv2d) else None)
    return model, (input_shape, H, W), rng


@pytest.mark.parametrize("seed", range(24))
def test_random_network(seed):
    rng = np.random.default_rng(seed)
    C, H, W = int(rng.integers(1, 5)), int(rng.integers(8, 15)), int(rng.integers(8, 15))
    model, _, rng = random_net(seed)
    N = int(rng.integers(1, 8))
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    model.train()                                       # trained running statistics
    with st.no_grad():
        for _ in range(3):
            model(rng.standard_normal((4, C, H, W)).astype(np.float32) * 2 + 0.5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data[...] = rng.uniform(-1.5, 1.5, m.num_features)
            m.bias.data[...] = rng.standard_normal(m.num_features)
    model.eval()
    fast = st.compile(model)
    assert_float32_close(model, fast, x)
    assert_float32_close(model, fast, x * 3.0)
