"""PyTorch twins of striate's models, built with the same weights, for side-by-side timing.

Each ``*_like(model)`` takes a striate model and returns a ``torch.nn.Module`` that computes
the same function with a copy of its parameters.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as tF


def _param(a) -> tnn.Parameter:
    return tnn.Parameter(torch.tensor(np.array(a.data if hasattr(a, "data") else a)))


class TorchLeNet5Modern(tnn.Module):
    def __init__(self, model):
        super().__init__()
        self.c1 = tnn.Conv2d(model.c1.in_channels, 6, 5)
        self.c3 = tnn.Conv2d(6, 16, 5)
        self.f5 = tnn.Linear(400, 120)
        self.f6 = tnn.Linear(120, 84)
        self.output = tnn.Linear(84, model.output.out_features)
        with torch.no_grad():
            for name in ("c1", "c3", "f5", "f6", "output"):
                ours, theirs = getattr(model, name), getattr(self, name)
                theirs.weight.copy_(torch.from_numpy(ours.weight.data))
                theirs.bias.copy_(torch.from_numpy(ours.bias.data))

    def forward(self, x):
        x = tF.max_pool2d(tF.relu(self.c1(x)), 2)
        x = tF.max_pool2d(tF.relu(self.c3(x)), 2)
        x = tF.relu(self.f5(x.flatten(1)))
        x = tF.relu(self.f6(x))
        return self.output(x)


def _scaled_tanh(x):
    return 1.7159 * torch.tanh(x * (2 / 3))


class TorchLeNet5(tnn.Module):
    """The paper's LeNet-5: C3's partial connections as a masked dense kernel (the same
    multiply-adds as striate's), trainable subsampling, fixed RBF centres."""

    def __init__(self, model):
        super().__init__()
        self.c1_w, self.c1_b = _param(model.c1.weight), _param(model.c1.bias)
        self.s2_c, self.s2_b = _param(model.s2.coefficient), _param(model.s2.bias)
        self.c3_w = _param(model.c3.dense_weight())
        self.register_buffer("c3_mask", torch.tensor(model.c3.connections.T[:, :, None, None]
                                                     .astype(np.float32)))
        self.c3_b = _param(model.c3.bias)
        self.s4_c, self.s4_b = _param(model.s4.coefficient), _param(model.s4.bias)
        self.c5_w, self.c5_b = _param(model.c5.weight), _param(model.c5.bias)
        self.f6_w, self.f6_b = _param(model.f6.weight), _param(model.f6.bias)
        self.register_buffer("centres", torch.tensor(np.array(model.output.centres)))

    @staticmethod
    def _subsample(x, c, b):
        return tF.avg_pool2d(x, 2) * 4 * c.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)

    def forward(self, x):
        x = _scaled_tanh(tF.conv2d(x, self.c1_w, self.c1_b))
        x = _scaled_tanh(self._subsample(x, self.s2_c, self.s2_b))
        x = _scaled_tanh(tF.conv2d(x, self.c3_w * self.c3_mask, self.c3_b))
        x = _scaled_tanh(self._subsample(x, self.s4_c, self.s4_b))
        x = _scaled_tanh(tF.conv2d(x, self.c5_w, self.c5_b))
        x = _scaled_tanh(tF.linear(x.flatten(1), self.f6_w, self.f6_b))
        diff = x[:, None, :] - self.centres                     # (N, 10, 84)
        return -(diff * diff).sum(2)


def torch_alexnet(num_classes: int = 1000, groups: int = 2, dropout: float = 0.5) -> tnn.Sequential:
    """The paper's AlexNet in PyTorch alone, input (N, 3, 227, 227), PyTorch's own initialisation.

    Unlike the twins above it needs no striate model: a process that measures PyTorch's memory
    can build it without importing striate. Same layers as ``striate.models.alexnet()``:
    ``LocalResponseNorm(5, alpha=5e-4, ...)`` is the paper's α=1e-4, since PyTorch divides α by
    the window size.
    """
    def lrn():
        return tnn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)

    return tnn.Sequential(
        tnn.Conv2d(3, 96, 11, stride=4), tnn.ReLU(), lrn(), tnn.MaxPool2d(3, 2),              # (N, 96, 27, 27)
        tnn.Conv2d(96, 256, 5, padding=2, groups=groups), tnn.ReLU(), lrn(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(256, 384, 3, padding=1), tnn.ReLU(),                                        # (N, 384, 13, 13)
        tnn.Conv2d(384, 384, 3, padding=1, groups=groups), tnn.ReLU(),
        tnn.Conv2d(384, 256, 3, padding=1, groups=groups), tnn.ReLU(), tnn.MaxPool2d(3, 2),   # (N, 256, 6, 6)
        tnn.Flatten(),
        tnn.Linear(9216, 4096), tnn.ReLU(), tnn.Dropout(dropout),
        tnn.Linear(4096, 4096), tnn.ReLU(), tnn.Dropout(dropout),
        tnn.Linear(4096, num_classes),
    )
