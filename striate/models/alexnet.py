"""AlexNet, as published, and a small network built by the same rules for 28×28 images.

Source: A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification with
Deep Convolutional Neural Networks", NIPS 2012, section 3 (architecture), 4.2
(dropout) and 5 (training details).

``alexnet()`` follows section 3 layer by layer (input (N, 3, 227, 227))::

    layer  what it computes                                         output             parameters
    conv1  96 kernels 11×11×3, stride 4, + ReLU                     (N, 96, 55, 55)        34,944
    norm1  local response normalisation (k=2, n=5, α=1e-4, β=0.75)  (N, 96, 55, 55)             0
    pool1  max over 3×3 windows, stride 2 (overlapping)             (N, 96, 27, 27)             0
    conv2  256 kernels 5×5×48, padding 2, two groups, + ReLU        (N, 256, 27, 27)      307,456
    norm2  as norm1                                                 (N, 256, 27, 27)            0
    pool2  as pool1                                                 (N, 256, 13, 13)            0
    conv3  384 kernels 3×3×256, padding 1 (all to all), + ReLU      (N, 384, 13, 13)      885,120
    conv4  384 kernels 3×3×192, padding 1, two groups, + ReLU       (N, 384, 13, 13)      663,936
    conv5  256 kernels 3×3×192, padding 1, two groups, + ReLU       (N, 256, 13, 13)      442,624
    pool5  as pool1                                                 (N, 256, 6, 6)              0
    fc6    9216 → 4096, + ReLU, dropout 0.5                         (N, 4096)          37,752,832
    fc7    4096 → 4096, + ReLU, dropout 0.5                         (N, 4096)          16,781,312
    fc8    4096 → 1000 (the logits of a 1000-way softmax)           (N, 1000)           4,097,000
                                                                              total    60,965,224

Why 227 and not 224: the paper says its input is 224×224×3, but an 11×11 kernel
at stride 4 without padding fits (224 − 11)/4 + 1 = 54.25 times across 224
pixels, which is not a whole number of positions. With 227 it fits exactly 55
times, the 55×55×96 the paper's figure gives for conv1, and everything after
follows. (Implementations that keep 224 pad conv1 by 2, as torchvision does.)

The two groups: the network was split across two GPUs with 3 GB each. conv2,
conv4 and conv5 only see the maps computed on their own GPU, which is a
grouped convolution with ``groups=2`` (each kernel reads 48, 192, 192 input maps
instead of 96, 384, 384). conv3 and the fully connected layers communicate
across the GPUs: they are ordinary layers. conv1 is also split in the paper,
but each half reads all three colour channels, which is one ungrouped
convolution with 96 kernels. ``alexnet(grouped=False)`` is the one-GPU version,
62,378,344 parameters. The response normalisation runs over the 96 (256)
maps of the whole layer: the paper's formula clips its window at the layer's
total number of kernels, not at a GPU's half.

Response normalisation, the paper's section 3.3::

    b_c = a_c / (k + α · Σ_{c' = max(0, c − n/2)}^{min(N − 1, c + n/2)} a_c'²)^β,   k=2, n=5, α=1e-4, β=0.75

PyTorch's ``LocalResponseNorm`` (and ``F.local_response_norm``) divides α by n,
so the paper's layer is ``LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)``.

Dropout: the paper multiplies the outputs of fc6 and fc7 by a random 0/1 mask
(keep probability 0.5) while training, and by 0.5 at test time. striate's
dropout is the inverted form: it scales the kept outputs by 1/(1 − p) = 2
while training and does nothing at test time. In both forms an output's
expected value while training equals its value at test time. The two are the
same model written two ways: the weights of fc7 and fc8 in one are those of
the other halved, and nothing changes at test time except that the inverted
form needs no rescaling there.

Initialisation, section 5: every weight from N(0, 0.01²); the biases of conv2,
conv4, conv5, fc6 and fc7 equal to 1, so that their ReLUs start in the active
range and the first steps of training are quicker; the other biases 0.
``init="kaiming"`` draws N(0, 2/fan_in) with zero biases (He et al., 2015), and
``init="default"`` keeps the layers' own (PyTorch's) initialisation.

``alexnet_small()`` applies the same design to Fashion-MNIST's 28×28 grey images,
padded to 32×32 (input (N, 1, 32, 32), 452,234 parameters)::

    conv1  32 kernels 5×5, stride 2, padding 2, + ReLU, LRN   (N, 32, 16, 16)
    pool1  max 3×3, stride 2                                  (N, 32, 7, 7)
    conv2  64 kernels 5×5, padding 2, two groups, + ReLU, LRN (N, 64, 7, 7)
    pool2  max 3×3, stride 2                                  (N, 64, 3, 3)
    conv3  96 kernels 3×3, padding 1, + ReLU                  (N, 96, 3, 3)
    conv4  96 kernels 3×3, padding 1, two groups, + ReLU      (N, 96, 3, 3)
    conv5  64 kernels 3×3, padding 1, two groups, + ReLU      (N, 64, 3, 3)
    pool5  max 3×3, stride 2                                  (N, 64, 1, 1)
    fc6    64 → 512, ReLU, dropout 0.5; fc7 512 → 512, ReLU, dropout 0.5; fc8 512 → 10

The rules kept: a first layer whose stride shrinks the image at once (2 here: a
stride of 4 would leave too little of a 32-pixel image), ReLU everywhere, the
paper's response normalisation after the first two convolutions, overlapping
3/2 max pooling after conv1, conv2 and conv5 (the maps shrink 16 → 7 → 3 → 1 as
AlexNet's shrink 55 → 27 → 13 → 6), conv2, conv4 and conv5 in two groups,
three fully connected layers with dropout after the two hidden ones. Widths
are scaled down, and it starts from He initialisation (``init="kaiming"``),
which trains a small network in a few epochs where the paper's N(0, 0.01²)
would need many.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from .. import nn
from ..checks import conv_output_size, padding_sides, pair
from ..nn import Module
from ..random import get_rng
from ..tensor import Tensor
from . import register

__all__ = ["alexnet", "alexnet_small", "AlexNet", "PAPER_LRN", "SMALL_WIDTHS"]

#: the paper's response normalisation, in F.local_response_norm's terms (α multiplied by n)
PAPER_LRN: dict[str, Any] = dict(size=5, alpha=5 * 1e-4, beta=0.75, k=2.0)

#: the widths of alexnet_small's five convolutions (the paper's are 96, 256, 384, 384, 256)
SMALL_WIDTHS = (32, 64, 96, 96, 64)

_INITS = ("paper", "kaiming", "default")


def _positive_int(value, name: str, model: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{model}: {name} must be a positive int, got {value!r}")
    return int(value)


class AlexNet(Module):
    """The AlexNet layer pattern with every size a parameter (see the module docstring).

    conv1 (kernel, stride, padding) → ReLU → LRN → max pool 3/2 →
    conv2 5×5 pad 2, ``groups`` → ReLU → LRN → max pool 3/2 →
    conv3 3×3 pad 1 → ReLU → conv4 3×3 pad 1, ``groups`` → ReLU →
    conv5 3×3 pad 1, ``groups`` → ReLU → max pool 3/2 →
    fc6 → ReLU → dropout → fc7 → ReLU → dropout → fc8.

    Args:
        num_classes: outputs of fc8.
        in_channels: input channels (3 for colour images).
        input_size: H or (H, W) of the input; fixes the input width of fc6.
        widths: output channels of conv1 … conv5.
        hidden: width of fc6 and fc7.
        conv1_kernel, conv1_stride, conv1_padding: the first layer's geometry.
        groups: groups of conv2, conv4 and conv5 (2 in the paper, 1 on one GPU).
        dropout: drop probability after fc6 and fc7 (inverted dropout).
        init: "paper" (N(0, 0.01²), biases 1 in conv2, conv4, conv5, fc6, fc7, else 0),
            "kaiming" (N(0, 2/fan_in), biases 0) or "default" (the layers' own).
        rng: Generator, int seed or None for the initial weights.

    Shape:
        x:   (N, in_channels, H, W)
        out: (N, num_classes), the logits
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, input_size=227,
                 widths=(96, 256, 384, 384, 256), hidden: int = 4096, conv1_kernel: int = 11,
                 conv1_stride: int = 4, conv1_padding: int = 0, groups: int = 2, dropout: float = 0.5,
                 init: str = "paper", rng=None):
        super().__init__()
        name = type(self).__name__
        if init not in _INITS:
            raise ValueError(f"{name}: init must be one of {_INITS}, got {init!r}")
        if not isinstance(widths, (tuple, list)) or len(widths) != 5:
            raise ValueError(f"{name}: widths must be five channel counts (conv1 … conv5), got {widths!r}")
        c1, c2, c3, c4, c5 = (_positive_int(w, "every width", name) for w in widths)
        H, W = pair(input_size, "input_size", name)
        self.input_shape = (_positive_int(in_channels, "in_channels", name), H, W)
        rng = get_rng(rng)
        self.conv1 = nn.Conv2d(in_channels, c1, conv1_kernel, stride=conv1_stride, padding=conv1_padding,
                               rng=rng)
        self.norm1 = nn.LocalResponseNorm(**PAPER_LRN)
        self.pool1 = nn.MaxPool2d(3, stride=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2, groups=groups, rng=rng)
        self.norm2 = nn.LocalResponseNorm(**PAPER_LRN)
        self.pool2 = nn.MaxPool2d(3, stride=2)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1, rng=rng)
        self.conv4 = nn.Conv2d(c3, c4, 3, padding=1, groups=groups, rng=rng)
        self.conv5 = nn.Conv2d(c4, c5, 3, padding=1, groups=groups, rng=rng)
        self.pool5 = nn.MaxPool2d(3, stride=2)
        oh, ow = self.feature_size(H, W)
        self.fc6 = nn.Linear(c5 * oh * ow, hidden, rng=rng)
        self.drop6 = nn.Dropout(dropout)
        self.fc7 = nn.Linear(hidden, hidden, rng=rng)
        self.drop7 = nn.Dropout(dropout)
        self.fc8 = nn.Linear(hidden, num_classes, rng=rng)
        if init == "paper":
            self._paper_init(rng)
        elif init == "kaiming":
            self._kaiming_init(rng)

    def feature_size(self, H: int, W: int) -> tuple[int, int]:
        """(OH, OW) of pool5's maps for an H×W input; a ValueError if the input is too small."""
        sizes = []
        top, bottom, _, _ = padding_sides(self.conv1.padding, self.conv1.kernel_size, "AlexNet")
        for size in (H, W):
            s1 = conv_output_size(size, self.conv1.kernel_size[0], self.conv1.stride[0], top + bottom)
            p1 = conv_output_size(s1, 3, 2, 0)        # conv2 (5×5, pad 2) keeps the size
            p2 = conv_output_size(p1, 3, 2, 0)        # conv3–conv5 (3×3, pad 1) keep it too
            p5 = conv_output_size(p2, 3, 2, 0)
            sizes.append((s1, p1, p2, p5))
        if min(min(s) for s in sizes) < 1:
            raise ValueError(f"AlexNet: an input of {H}×{W} is too small for conv1 "
                             f"{self.conv1.kernel_size}/{self.conv1.stride} and three 3/2 poolings "
                             f"(sizes after conv1, pool1, pool2, pool5: {sizes[0]} × {sizes[1]})")
        return sizes[0][3], sizes[1][3]

    def _paper_init(self, rng) -> None:
        """Section 5: weights N(0, 0.01²); biases 1 in conv2, conv4, conv5, fc6, fc7, else 0."""
        ones = {"conv2", "conv4", "conv5", "fc6", "fc7"}
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
            layer = getattr(self, name)
            # float32 draws directly: fc6 alone has 37.7 million weights
            layer.weight.data[...] = rng.standard_normal(layer.weight.shape, dtype=np.float32)
            layer.weight.data *= np.float32(0.01)
            layer.bias.data[...] = 1.0 if name in ones else 0.0

    def _kaiming_init(self, rng) -> None:
        """He et al. (2015): weights N(0, 2/fan_in), which keeps the signal's scale through ReLUs; biases 0."""
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
            layer = getattr(self, name)
            fan_in = layer.weight.size // layer.weight.shape[0]
            layer.weight.data[...] = rng.standard_normal(layer.weight.shape, dtype=np.float32)
            layer.weight.data *= np.float32(math.sqrt(2.0 / fan_in))
            layer.bias.data[...] = 0.0

    def forward(self, x) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        C, H, W = self.input_shape
        if x.ndim != 4 or x.shape[1:] != (C, H, W):
            raise ValueError(f"AlexNet expects input (N, {C}, {H}, {W}) (the input_size it was built "
                             f"for), got {tuple(x.shape)}")
        x = self.pool1(self.norm1(F.relu(self.conv1(x))))    # (N, 96, 27, 27)   at 227×227
        x = self.pool2(self.norm2(F.relu(self.conv2(x))))    # (N, 256, 13, 13)
        x = F.relu(self.conv3(x))                            # (N, 384, 13, 13)
        x = F.relu(self.conv4(x))                            # (N, 384, 13, 13)
        x = self.pool5(F.relu(self.conv5(x)))                # (N, 256, 6, 6)
        x = self.drop6(F.relu(self.fc6(F.flatten(x))))       # (N, 4096)
        x = self.drop7(F.relu(self.fc7(x)))                  # (N, 4096)
        return self.fc8(x)                                   # (N, 1000)

    @staticmethod
    def count_parameters(num_classes: int = 1000, in_channels: int = 3, input_size=227,
                         widths=(96, 256, 384, 384, 256), hidden: int = 4096, conv1_kernel: int = 11,
                         conv1_stride: int = 4, conv1_padding: int = 0, groups: int = 2) -> dict:
        """Parameters per layer, from the shapes alone (no weights are made).

        Returns ``{"conv1": 34944, ..., "fc8": 4097000, "total": 60965224}`` for the defaults.
        """
        c1, c2, c3, c4, c5 = widths
        H, W = pair(input_size, "input_size", "AlexNet.count_parameters")
        k1 = conv1_kernel
        sizes = []
        for size in (H, W):
            s = conv_output_size(size, k1, conv1_stride, 2 * conv1_padding)
            for _ in range(3):
                s = conv_output_size(s, 3, 2, 0)
            sizes.append(s)
        counts = {
            "conv1": c1 * in_channels * k1 * k1 + c1,
            "conv2": c2 * (c1 // groups) * 25 + c2,
            "conv3": c3 * c2 * 9 + c3,
            "conv4": c4 * (c3 // groups) * 9 + c4,
            "conv5": c5 * (c4 // groups) * 9 + c5,
            "fc6": c5 * math.prod(sizes) * hidden + hidden,
            "fc7": hidden * hidden + hidden,
            "fc8": hidden * num_classes + num_classes,
        }
        counts["total"] = sum(counts.values())
        return counts


@register("alexnet")
def alexnet(num_classes: int = 1000, grouped: bool = True, input_size=227, dropout: float = 0.5,
            init: str = "paper", rng=None) -> AlexNet:
    """AlexNet as published: 60,965,224 parameters (62,378,344 with ``grouped=False``).

    Args:
        num_classes: outputs (1000 ImageNet classes).
        grouped: conv2, conv4, conv5 in two groups, as on the paper's two GPUs.
        input_size: H or (H, W); 227 gives the paper's maps (55, 27, 13, 6). Other sizes
            change fc6's input width (and the parameter count); at least 67.
        dropout: drop probability after fc6 and fc7.
        init: "paper" or "default" (see ``AlexNet``).
        rng: Generator, int seed or None.
    """
    _positive_int(num_classes, "num_classes", "alexnet")
    if not isinstance(grouped, (bool, np.bool_)):
        raise TypeError(f"alexnet: grouped must be True or False, got {grouped!r}")
    return AlexNet(num_classes=num_classes, input_size=input_size, groups=2 if grouped else 1,
                   dropout=dropout, init=init, rng=rng)


@register("alexnet-small")
def alexnet_small(num_classes: int = 10, in_channels: int = 1, input_size=32, widths=SMALL_WIDTHS,
                  hidden: int = 512, grouped: bool = True, dropout: float = 0.5, init: str = "kaiming",
                  rng=None) -> AlexNet:
    """AlexNet's design at the size of Fashion-MNIST (see the module docstring): 452,234 parameters.

    Input (N, 1, 32, 32): 28×28 images padded by 2 pixels on each side.
    """
    return AlexNet(num_classes=num_classes, in_channels=in_channels, input_size=input_size,
                   widths=tuple(widths), hidden=hidden, conv1_kernel=5, conv1_stride=2,
                   conv1_padding=2, groups=2 if grouped else 1, dropout=dropout, init=init, rng=rng)
