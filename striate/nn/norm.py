"""Normalisation layers: batch norm (learnt scale and shift, running statistics as buffers),
layer norm, and local response normalisation."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .. import functional as F
from ..checks import check_int, check_number, to_tensor
from ..tensor import Tensor, TensorLike
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "LocalResponseNorm"]


class _BatchNorm(Module):
    """Batch normalisation (Ioffe & Szegedy, 2015), as PyTorch's ``_BatchNorm``.

    Args:
        num_features: C, the channels.
        eps: added to the variance before the square root.
        momentum: weight of the newest batch in the running statistics; None
            means a cumulative average (1 / number of batches seen).
        affine: learn a per-channel scale ``weight`` (starts at 1) and shift ``bias`` (0).
        bias: with affine, whether to learn the shift (PyTorch's keyword).
        track_running_stats: keep ``running_mean``/``running_var`` (float32 buffers,
            0 and 1 at first) and ``num_batches_tracked`` (int64), used in evaluation
            mode; without them batch statistics are used in both modes.
        reduce: None (statistics of this process's batch), or a callable summing a
            float64 array over the processes of a data-parallel job: synchronised
            batch norm, statistics of the global batch (see ``F.batch_norm``;
            ``dist.DataParallel(..., sync_batchnorm=True)`` sets it on every layer).
    """

    _layouts: tuple[int, ...] = ()
    _layout_text = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, bias: bool = True,
                 reduce: Callable[[np.ndarray], np.ndarray] | None = None):
        super().__init__()
        name = type(self).__name__
        self.num_features = check_int(num_features, "num_features", name)
        self.eps = check_number(eps, "eps", name, above=0)
        self.momentum = (None if momentum is None else
                         check_number(momentum, "momentum", name, at_least=0, at_most=1))
        self.affine = bool(affine)
        self.use_bias = bool(bias) and self.affine     # whether a shift is learnt
        self.track_running_stats = bool(track_running_stats)
        if reduce is not None and not callable(reduce):
            raise TypeError(f"{name}: reduce must be None or a callable, got {type(reduce).__name__}")
        self.reduce = reduce
        C = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(C, dtype=np.float32))
            if self.use_bias:
                self.bias = Parameter(np.zeros(C, dtype=np.float32))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(C, dtype=np.float32))
            self.register_buffer("running_var", np.ones(C, dtype=np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            if self.bias is not None:
                self.bias.data[...] = 0

    def forward(self, x: TensorLike) -> Tensor:
        x = to_tensor(x, type(self).__name__)
        shape = tuple(x.shape)
        if len(shape) not in self._layouts or shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects input "
                             f"{self._layout_text} with C={self.num_features}, got {shape}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:        # cumulative moving average
                momentum = 1.0 / int(self.num_batches_tracked)
        # in evaluation mode without running statistics, batch statistics are used
        # (F.batch_norm does so when both running statistics are None)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, momentum=momentum, eps=self.eps, reduce=self.reduce)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.use_bias}, track_running_stats={self.track_running_stats}"
                + (", synchronised" if self.reduce is not None else ""))


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L): statistics per channel over N (and L).

    Shape: (N, C) → (N, C); (N, C, L) → (N, C, L).
    """

    _layouts = (2, 3)
    _layout_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W): statistics per channel over N, H and W.

    Shape: (N, C, H, W) → (N, C, H, W).
    """

    _layouts = (4,)
    _layout_text = "(N, C, H, W)"


class LayerNorm(Module):
    """Normalise each sample over its trailing axes ``normalized_shape``, then scale and shift.

    Args:
        normalized_shape: the trailing shape, e.g. C or (C, H, W).
        eps: added to the variance.
        elementwise_affine: learn ``weight`` (1) and ``bias`` (0) of that shape.
        bias: with elementwise_affine, whether to learn the shift too.

    Shape: (N, *normalized_shape) → the same.
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(check_int(n, "normalized_shape", "LayerNorm")
                                      for n in normalized_shape)
        self.eps = check_number(eps, "eps", "LayerNorm", above=0)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight: Parameter | None = Parameter(np.ones(self.normalized_shape, dtype=np.float32))
            self.bias: Parameter | None = (Parameter(np.zeros(self.normalized_shape, dtype=np.float32))
                                           if bias else None)
        else:
            self.weight = None
            self.bias = None

    def forward(self, x: TensorLike) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps:g}, elementwise_affine={self.elementwise_affine}"


class LocalResponseNorm(Module):
    """Divide each activation by the energy of ``size`` neighbouring channels (PyTorch's form):

        out_c = x_c / (k + alpha/size · Σ_{c' near c} x_c'²)^beta

    Shape: (N, C, H, W) → (N, C, H, W).
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = check_int(size, "size", "LocalResponseNorm")
        self.alpha = check_number(alpha, "alpha", "LocalResponseNorm")
        self.beta = check_number(beta, "beta", "LocalResponseNorm")
        self.k = check_number(k, "k", "LocalResponseNorm")

    def forward(self, x: TensorLike) -> Tensor:
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha:g}, beta={self.beta:g}, k={self.k:g}"
