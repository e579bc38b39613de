"""Pooling layers: no parameters, only a configuration; each calls one pooling op in ``F``.

Letters: N batch, C channels, H×W input, kh×kw window, OH×OW output::

    OH = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1,   stride defaults to the window size

The adaptive pools choose their windows so that the output is exactly
``output_size``; the global pools reduce each whole map to one value (N, C, 1, 1).
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..checks import IntPair, check_number, nonnegative_pair, positive_pair
from ..functional.pool import OutputSize
from ..tensor import Tensor, TensorLike
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "SumPool2d", "MinPool2d", "LPPool2d", "L2Pool2d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "GlobalAvgPool2d", "GlobalMaxPool2d"]


class _Pool2d(Module):
    """The configuration every windowed pool shares: window, stride (None → window), padding."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        kernel = positive_pair(kernel_size, "kernel_size", name)
        positive_pair(self.stride, "stride", name)
        pad = nonnegative_pair(padding, "padding", name)
        # A window of padding only has nothing to pool: PyTorch's rule, padding ≤ kernel_size // 2.
        if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
            raise ValueError(f"{name}: padding (={padding}) must be at most half the "
                             f"kernel_size (={kernel_size})")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _ExtremePool2d(_Pool2d):
    """Max and min pooling: windows may be dilated, and ``ceil_mode`` keeps a partial last window."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 dilation: IntPair = 1, ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding)
        positive_pair(dilation, "dilation", type(self).__name__)
        self.dilation = dilation
        self.ceil_mode = bool(ceil_mode)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class MaxPool2d(_ExtremePool2d):
    """Maximum over each window; on ties the gradient goes to the first maximum (as in PyTorch).

    Args:
        kernel_size: the window, kh or (kh, kw).
        stride: step between windows (default: the window size).
        padding: on each side, at most kernel_size // 2; padding never wins.
        dilation: spacing between a window's taps.
        ceil_mode: round the output size up (a partial window at the edge counts).

    Shape: (N, C, H, W) → (N, C, OH, OW).
    """

    def forward(self, x: TensorLike) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, dilation=self.dilation,
                            ceil_mode=self.ceil_mode)


class MinPool2d(_ExtremePool2d):
    """Minimum over each window; padding never wins. Arguments as :class:`MaxPool2d`.

    Shape: (N, C, H, W) → (N, C, OH, OW).
    """

    def forward(self, x: TensorLike) -> Tensor:
        return F.min_pool2d(x, self.kernel_size, self.stride, self.padding, dilation=self.dilation,
                            ceil_mode=self.ceil_mode)


class AvgPool2d(_Pool2d):
    """Mean over each window.

    Args:
        kernel_size, stride, padding: the windows (padding adds zeros, at most kernel_size // 2).
        ceil_mode: round the output size up.
        count_include_pad: padded zeros count in the divisor (the default, as in
            PyTorch); without it each window is divided by its number of real pixels.
        divisor_override: divide every window's sum by this int instead.

    Shape: (N, C, H, W) → (N, C, OH, OW).
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None):
        super().__init__(kernel_size, stride, padding)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        if divisor_override is not None and (isinstance(divisor_override, bool)
                                             or not isinstance(divisor_override, int) or divisor_override == 0):
            raise ValueError(f"AvgPool2d: divisor_override must be a nonzero int or None, "
                             f"got {divisor_override!r}")
        self.divisor_override = divisor_override

    def forward(self, x: TensorLike) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=self.count_include_pad,
                            divisor_override=self.divisor_override)


class SumPool2d(_Pool2d):
    """Sum over each window (average pooling without the division; LeNet-5's subsampling
    before its trainable coefficient). Shape: (N, C, H, W) → (N, C, OH, OW)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.sum_pool2d(x, self.kernel_size, self.stride, self.padding)


class LPPool2d(_Pool2d):
    """Power-average pooling: (Σ_window x^p)^(1/p), between sum pooling (p = 1) and max
    pooling (p → ∞). Shape: (N, C, H, W) → (N, C, OH, OW).

    Args:
        norm_type: the power p, a finite number ≥ 1.
        kernel_size, stride: the windows.
        padding: zeros on each side (PyTorch's LPPool2d has none).
    """

    def __init__(self, norm_type: float, kernel_size: IntPair, stride: IntPair | None = None,
                 padding: IntPair = 0):
        super().__init__(kernel_size, stride, padding)
        p = check_number(norm_type, "norm_type", type(self).__name__)
        if not 1 <= p < math.inf:
            raise ValueError(f"LPPool2d: norm_type must be a finite number >= 1, got {norm_type!r}"
                             + (" (for p = inf use MaxPool2d)" if p == math.inf else ""))
        self.norm_type = p

    def forward(self, x: TensorLike) -> Tensor:
        return F.lp_pool2d(x, self.norm_type, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"norm_type={self.norm_type:g}, " + super().extra_repr()


class L2Pool2d(_Pool2d):
    """√(Σ_window x²): LP pooling with p = 2. Shape: (N, C, H, W) → (N, C, OH, OW)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.l2_pool2d(x, self.kernel_size, self.stride, self.padding)


class _AdaptivePool2d(Module):
    def __init__(self, output_size: OutputSize) -> None:
        super().__init__()
        name = type(self).__name__
        size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
        if len(size) != 2 or any(s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer)))
                                 for s in size):
            raise TypeError(f"{name}: output_size must be an int or a pair of ints "
                            f"(None keeps the input size), got {output_size!r}")
        if any(s is not None and s < 1 for s in size):
            raise ValueError(f"{name}: output_size must be positive, got {output_size!r}")
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptivePool2d):
    """Mean over windows chosen so that the output is ``output_size`` (PyTorch's windows:
    start ⌊i·H/OH⌋, end ⌈(i+1)·H/OH⌉). Shape: (N, C, H, W) → (N, C, OH, OW)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)


class AdaptiveMaxPool2d(_AdaptivePool2d):
    """Maximum over windows chosen so that the output is ``output_size``.
    Shape: (N, C, H, W) → (N, C, OH, OW)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.adaptive_max_pool2d(x, self.output_size)


class GlobalAvgPool2d(Module):
    """Mean of each whole feature map. Shape: (N, C, H, W) → (N, C, 1, 1)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.global_avg_pool2d(x)


class GlobalMaxPool2d(Module):
    """Maximum of each whole feature map. Shape: (N, C, H, W) → (N, C, 1, 1)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.global_max_pool2d(x)
