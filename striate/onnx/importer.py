"""Read an ONNX graph as a ``striate.nn.Module``: one small converter per op.

In the manner of onnx2torch, a converter is registered for an op type and the
*since-version* of the op's schema from which it applies; a node is served by
the converter with the largest since-version not above the one that
``onnx.defs.get_schema(op, max_inclusive_version=opset).since_version`` gives,
so one converter serves every opset until the op's meaning changes (Softmax
at 13, Pad's inputs at 11). A converter reads the node's attributes once and
returns the function that runs it on Tensors with striate's ops.

Loading evaluates once whatever does not depend on the input: initializers,
``Constant`` nodes, the shape arithmetic exporters write (``Shape`` of a tensor
whose shape is static, ``Gather``, ``Concat``, ``Cast``, ``Equal`` ...), and an
``If`` whose condition is then known is replaced by the branch it takes. The
rest becomes the module's forward. Float initializers (and weights built by
``ConstantOfShape``) read by the computation become trainable Parameters,
under their ONNX names split at the dots (``conv1.weight`` is the parameter
``weight`` of a submodule ``conv1``), so ``state_dict`` keys are the ONNX names.

Files are checked before anything big is made: the file size, and every
tensor's declared element count against the bytes it carries.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import re
from collections.abc import Callable

import numpy as np

from .. import functional as F
from ..nn.module import Module, Parameter
from ..tensor import Tensor, no_grad
from . import ops
from ._deps import onnx

_T = importlib.import_module("striate.tensor")      # the module (``striate.tensor`` is also a function)

__all__ = ["CONVERTERS", "MAX_ELEMENTS", "MAX_FILE_BYTES", "OnnxImportError", "OnnxModule", "load"]

MAX_FILE_BYTES = 2 ** 31 - 1            # protobuf's own limit for one message
MAX_ELEMENTS = 2 ** 28                  # the most elements one tensor may have (1 GiB of float32)
PROBE_ELEMENTS = 2 ** 24                # the largest input run on zeros while loading (see start_probe)


class OnnxImportError(ValueError):
    """An ONNX file that striate cannot read, with the reason (file, node, op, opset)."""


# ---------------------------------------------------------------------------
# the converter table

CONVERTERS: dict[tuple[str, int], Callable] = {}


def converter(op_type: str, since: int = 1, nondiff=()):
    """Register ``fn(node) -> run(*inputs)`` for ``op_type`` from schema version ``since``.

    ``nondiff`` lists the input positions that are data, not values to train
    (shapes, axes, pads, exponents): a float initializer read only there stays a constant.
    """
    def register(fn):
        fn.nondiff = frozenset(nondiff)
        CONVERTERS[(op_type, since)] = fn
        return fn
    return register


def find_converter(op_type: str, opset: int, node_name: str):
    try:
        since = onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain="").since_version
    except Exception:       # onnx.defs.SchemaError; the class moved between onnx versions
        why = ("it appears only in a later opset" if onnx.defs.has(op_type, domain="")
               else "not an ONNX operator")
        raise OnnxImportError(f"unknown op {op_type!r} (node {node_name!r}, opset {opset}): {why}") from None
    versions = [v for (op, v) in CONVERTERS if op == op_type and v <= since]
    if not versions:
        supported = sorted({op for op, _ in CONVERTERS})
        raise OnnxImportError(f"op {op_type!r} (node {node_name!r}, opset {opset}, schema version {since}) "
                              f"is not supported; supported ops: {', '.join(supported)}")
    return CONVERTERS[(op_type, max(versions))]


class Node:
    """What a converter sees: the node's attributes and the model's opset."""

    def __init__(self, proto, opset: int):
        self.proto, self.op_type, self.opset = proto, proto.op_type, opset
        self.name = proto.name or (proto.output[0] if proto.output else proto.op_type)
        self.attrs = {a.name: onnx.helper.get_attribute_value(a) for a in proto.attribute}
        self.n_outputs = len(proto.output)

    def attr(self, name, default=None):
        value = self.attrs.get(name, default)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value

    def fail(self, reason: str):
        raise OnnxImportError(f"{self.op_type} node {self.name!r} (opset {self.opset}): {reason}")


def _ints(t) -> list[int]:
    return [int(v) for v in np.asarray(t.data if isinstance(t, Tensor) else t).reshape(-1)]


def _scalar(t) -> float:
    a = np.asarray(t.data if isinstance(t, Tensor) else t)
    if a.size != 1:
        raise OnnxImportError(f"expected a single number, got an array of shape {a.shape}")
    return a.reshape(()).item()


def _spatial(node, x_ndim: int, name: str, default: int):
    v = node.attr(name)
    return [default] * (x_ndim - 2) if v is None else [int(i) for i in v]


def _pads(node, x, kernel, strides, dilations):
    """ONNX pads [top, left, bottom, right] (or auto_pad) for a 2-D window op on ``x``."""
    auto = node.attr("auto_pad", "NOTSET")
    n = len(kernel)
    if auto in ("NOTSET", ""):
        pads = node.attr("pads")
        return [0] * (2 * n) if pads is None else [int(p) for p in pads]
    if auto == "VALID":
        return [0] * (2 * n)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        node.fail(f"auto_pad {auto!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    begin, end = [], []
    for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin + end


def _torch_pad(pads):
    """ONNX pads [b_1, ..., b_n, e_1, ..., e_n] as F.pad's (left, right, top, bottom, ...) from the last axis."""
    n = len(pads) // 2
    flat = []
    for axis in reversed(range(n)):
        flat += [pads[axis], pads[n + axis]]
    return tuple(flat)


def _check_2d(node, x, what="input"):
    if x.ndim != 4:
        node.fail(f"only 2-D (N, C, H, W) inputs are supported, got {what} of shape {tuple(x.shape)}")


def _check_size(node, shape, what="output"):
    """Refuse to make a tensor larger than MAX_ELEMENTS (a hostile pad, stride or shape)."""
    if any(int(s) < 0 for s in shape) or math.prod(int(s) for s in shape) > MAX_ELEMENTS:
        node.fail(f"the {what} would have shape {tuple(int(s) for s in shape)}, negative or more than "
                  f"{MAX_ELEMENTS} elements")


def _sym_or_pad(x, pads, value, node=None):
    """Symmetric pads pass to the op; others are applied first with F.pad."""
    top, left, bottom, right = pads
    if node is not None:
        N, C, H, W = x.shape
        _check_size(node, (N, C, H + top + bottom, W + left + right), "padded input")
    if top == bottom and left == right:
        return x, (top, left)
    return F.pad(x, (left, right, top, bottom), value), (0, 0)


# ---------------------------------------------------------------------------
# convolution


@converter("Conv", 1)
def _conv(node):
    group = int(node.attr("group", 1))

    def run(x, w, b=None):
        _check_2d(node, x)
        kernel = list(w.shape[2:])
        strides = _spatial(node, 4, "strides", 1)
        dilations = _spatial(node, 4, "dilations", 1)
        x, padding = _sym_or_pad(x, _pads(node, x, kernel, strides, dilations), 0.0, node)
        return F.conv2d(x, w, b, tuple(strides), padding, tuple(dilations), group)
    return run


@converter("ConvTranspose", 1)
def _conv_transpose(node):
    group = int(node.attr("group", 1))
    if node.attr("output_shape") is not None:
        node.fail("the output_shape attribute is not supported; give pads instead")
    if node.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID", ""):
        node.fail("auto_pad SAME_* is not supported for ConvTranspose")

    def run(x, w, b=None):
        _check_2d(node, x)
        strides = _spatial(node, 4, "strides", 1)
        dilations = _spatial(node, 4, "dilations", 1)
        out_pad = _spatial(node, 4, "output_padding", 0)
        pads = node.attr("pads") or [0, 0, 0, 0]
        top, left, bottom, right = [int(p) for p in pads]
        full = [(n - 1) * s + d * (k - 1) + 1 + o for n, s, d, k, o in
                zip(x.shape[2:], strides, dilations, w.shape[2:], out_pad)]
        _check_size(node, (x.shape[0], w.shape[1] * group, *full))
        if top == bottom and left == right:
            return F.conv_transpose2d(x, w, b, tuple(strides), (top, left), tuple(out_pad), group, tuple(dilations))
        y = F.conv_transpose2d(x, w, b, tuple(strides), 0, tuple(out_pad), group, tuple(dilations))
        H, W = y.shape[2:]
        return y[:, :, top:H - bottom, left:W - right]
    return run


# ---------------------------------------------------------------------------
# pooling


def _pool_attrs(node, x):
    kernel = [int(k) for k in node.attr("kernel_shape")]
    strides = _spatial(node, x.ndim, "strides", 1)
    dilations = _spatial(node, x.ndim, "dilations", 1)
    return kernel, strides, dilations, _pads(node, x, kernel, strides, dilations)


def _over_channels(node, x, kernel, strides, pads, pool):
    """A 3-D window (k, 1, 1) over (N, 1, C, H, W), as exporters write LRN: merge H and W."""
    if x.ndim != 5 or kernel[1:] != [1, 1] or strides[1:] != [1, 1] or any(pads[i] for i in (1, 2, 4, 5)):
        node.fail(f"only 2-D windows, or (k, 1, 1) windows on 5-D inputs, are supported; got kernel "
                  f"{kernel} on input {tuple(x.shape)}")
    N, C1, D, H, W = x.shape
    flat = x.reshape(N, C1, D, H * W)
    y = pool(flat, (kernel[0], 1), (strides[0], 1), [pads[0], 0, pads[3], 0])
    return y.reshape(N, C1, y.shape[2], H, W)


@converter("MaxPool", 1)
def _max_pool(node):
    if node.n_outputs > 1:
        node.fail("the Indices output is not supported")
    ceil = bool(node.attr("ceil_mode", 0))

    def pool(x, kernel, strides, pads, dilations=(1, 1)):
        _sym_or_pad(x, pads, 0.0, node)          # checks the padded size only
        big = [pads[0] > kernel[0] // 2, pads[1] > kernel[1] // 2]
        if pads[0] != pads[2] or pads[1] != pads[3] or any(big):
            x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]), float("-inf"))
            pads = [0, 0, 0, 0]
        return F.max_pool2d(x, tuple(kernel), tuple(strides), (pads[0], pads[1]), tuple(dilations), ceil)

    def run(x):
        kernel, strides, dilations, pads = _pool_attrs(node, x)
        if x.ndim == 4:
            return pool(x, kernel, strides, pads, dilations)
        return _over_channels(node, x, kernel, strides, pads, pool)
    return run


@converter("AveragePool", 1)
def _avg_pool(node):
    include = bool(node.attr("count_include_pad", 0))
    ceil = bool(node.attr("ceil_mode", 0))

    def pool(x, kernel, strides, pads):
        _sym_or_pad(x, pads, 0.0, node)          # checks the padded size only
        top, left, bottom, right = pads
        fits = top <= kernel[0] // 2 and left <= kernel[1] // 2
        if top == bottom and left == right and fits:
            return F.avg_pool2d(x, tuple(kernel), tuple(strides), (top, left), ceil, include)
        # uneven or wide padding: pad with zeros, average, and for count_include_pad=0
        # rescale each window by (window size / input elements it covers)
        padded = F.pad(x, (left, right, top, bottom), 0.0)
        y = F.avg_pool2d(padded, tuple(kernel), tuple(strides), 0, ceil, True)
        if include:
            return y
        H, W = x.shape[2:]
        mask = np.pad(np.ones((1, 1, H, W), x.dtype), ((0, 0), (0, 0), (top, bottom), (left, right)))
        count = F.avg_pool2d(mask, tuple(kernel), tuple(strides), 0, ceil, True).data
        return y * (1.0 / np.maximum(count, 1e-12)).astype(x.dtype)

    def run(x):
        kernel, strides, _, pads = _pool_attrs(node, x)
        if x.ndim == 4:
            return pool(x, kernel, strides, pads)
        return _over_channels(node, x, kernel, strides, pads, pool)
    return run


@converter("LpPool", 1)
def _lp_pool(node):
    p = float(node.attr("p", 2))

    def run(x):
        _check_2d(node, x)
        kernel, strides, _, pads = _pool_attrs(node, x)
        a = x if p == 2 else x.abs()                    # ONNX: (Σ |x|^p)^(1/p)
        a, padding = _sym_or_pad(a, pads, 0.0)
        if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
            a, padding = F.pad(a, (padding[1],) * 2 + (padding[0],) * 2), (0, 0)
        return F.lp_pool2d(a, p, tuple(kernel), tuple(strides), padding)
    return run


@converter("GlobalAveragePool", 1)
def _global_avg(node):
    def run(x):
        _check_2d(node, x)
        return F.global_avg_pool2d(x)
    return run


@converter("GlobalMaxPool", 1)
def _global_max(node):
    def run(x):
        _check_2d(node, x)
        return F.global_max_pool2d(x)
    return run


# ---------------------------------------------------------------------------
# normalisation, activations


@converter("BatchNormalization", 1, nondiff=(3, 4))
def _batch_norm(node):
    eps = float(node.attr("epsilon", 1e-5))
    if node.attr("training_mode", 0):
        node.fail("training_mode=1 is not supported (the graph must be exported for inference)")
    if node.opset < 9 and node.attr("spatial", 1) != 1:
        node.fail("spatial=0 is not supported")

    def run(x, scale, bias, mean, var, *_):
        return F.batch_norm(x, mean.data, var.data, scale, bias, training=False, eps=eps)
    return run


@converter("LayerNormalization", 17)
def _layer_norm(node):
    axis, eps = int(node.attr("axis", -1)), float(node.attr("epsilon", 1e-5))
    if node.n_outputs > 1:
        node.fail("the Mean and InvStdDev outputs are not supported")

    def run(x, scale, bias=None):
        return F.layer_norm(x, x.shape[axis % x.ndim:], scale, bias, eps)
    return run


@converter("LRN", 1)
def _lrn(node):
    size = int(node.attr("size"))
    alpha, beta, bias = float(node.attr("alpha", 1e-4)), float(node.attr("beta", 0.75)), float(node.attr("bias", 1.0))

    def run(x):
        if size % 2:
            return F.local_response_norm(x, size, alpha, beta, bias)
        # ONNX's even window reaches one channel further up than down; striate's (PyTorch's)
        # the other way: run ours on the channels in reverse order
        flip = (slice(None), slice(None, None, -1))
        return F.local_response_norm(x[flip], size, alpha, beta, bias)[flip]
    return run


@converter("Dropout", 1, nondiff=(1, 2))
def _dropout(node):
    def run(x, *_):
        if node.n_outputs > 1:
            return x, ops.constant(np.ones(x.shape, dtype=bool))
        return x
    return run


def _unary(op_type, fn):
    converter(op_type, 1)(lambda node: fn)


_unary("Relu", lambda x: F.relu(x))          # looked up at each call, so a tracer sees them
_unary("Sigmoid", lambda x: F.sigmoid(x))
_unary("Tanh", lambda x: F.tanh(x))
_unary("Abs", lambda x: x.abs())
_unary("Neg", lambda x: -x)
_unary("Exp", lambda x: x.exp())
_unary("Log", lambda x: x.log())
_unary("Sqrt", lambda x: x ** 0.5)
_unary("Reciprocal", lambda x: 1.0 / x)
_unary("Sign", lambda x: ops.sign(x))
_unary("Identity", lambda x: x)


@converter("LeakyRelu", 1)
def _leaky_relu(node):
    slope = float(node.attr("alpha", 0.01))
    return lambda x: F.leaky_relu(x, slope)


def _softmax_old(fn):
    """Opsets before 13: the input is seen as 2-D, (prod(shape[:axis]), prod(shape[axis:]))."""
    def make(node):
        axis = int(node.attr("axis", 1))

        def run(x):
            shape = x.shape
            a = axis % x.ndim
            flat = x.reshape(math.prod(shape[:a]), math.prod(shape[a:]))
            return fn(flat, 1).reshape(shape)
        return run
    return make


def _softmax_new(fn):
    def make(node):
        axis = int(node.attr("axis", -1))
        return lambda x: fn(x, axis)
    return make


converter("Softmax", 1)(_softmax_old(lambda x, dim: F.softmax(x, dim)))
converter("Softmax", 13)(_softmax_new(lambda x, dim: F.softmax(x, dim)))
converter("LogSoftmax", 1)(_softmax_old(lambda x, dim: F.log_softmax(x, dim)))
converter("LogSoftmax", 13)(_softmax_new(lambda x, dim: F.log_softmax(x, dim)))


# ---------------------------------------------------------------------------
# dense and arithmetic


@converter("Gemm", 1)
def _gemm(node):
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    trans_a, trans_b = bool(node.attr("transA", 0)), bool(node.attr("transB", 0))

    def run(a, b, c=None):
        if trans_b and not trans_a and alpha == 1.0 and beta == 1.0 and (c is None or c.ndim == 1):
            return F.linear(a, b, c)                                  # one matrix product, the common case
        y = (a.T if trans_a else a) @ (b.T if trans_b else b)
        if alpha != 1.0:
            y = y * alpha
        if c is not None:
            y = y + (c * beta if beta != 1.0 else c)
        return y
    return run


def _binary(op_type, fn, nondiff=()):
    converter(op_type, 1, nondiff)(lambda node: fn)


_binary("Add", lambda a, b: _T.add(a, b))       # looked up at each call, as the unary ops are
_binary("Sub", lambda a, b: _T.sub(a, b))
_binary("Mul", lambda a, b: _T.mul(a, b))
_binary("Div", lambda a, b: _T.div(a, b) if a.dtype.kind == "f" or b.dtype.kind == "f"
        else ops.constant(np.trunc(np.divide(a.data, b.data)).astype(a.dtype)))   # integers: toward zero
_binary("MatMul", lambda a, b: _T.matmul(a, b))
_binary("Equal", lambda a, b: ops.equal(a, b))


@converter("Pow", 1, nondiff=(1,))
def _pow(node):
    def run(x, y):
        if not (isinstance(y, Tensor) and y.requires_grad) and np.asarray(y.data).size == 1:
            return ops.power(x, _scalar(y))
        if not (isinstance(x, Tensor) and x.requires_grad) and np.asarray(x.data).size == 1:
            return _scalar(x) ** y
        node.fail("Pow needs a constant scalar exponent or a constant scalar base")
    return run


def _variadic(op_type, fn):
    def make(node):
        def run(*xs):
            out = xs[0]
            for x in xs[1:]:
                out = fn(out, x)
            return out
        return run
    converter(op_type, 1)(make)


_variadic("Sum", lambda a, b: _T.add(a, b))
_variadic("Max", lambda a, b: ops.maximum(a, b))
_variadic("Min", lambda a, b: ops.minimum(a, b))


@converter("Mean", 1)
def _mean(node):
    return lambda *xs: _variadic_sum(xs) * (1.0 / len(xs))


def _variadic_sum(xs):
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def _reduce(op_type, fn, axes_input_since):
    def make(node):
        keep = bool(node.attr("keepdims", 1))
        noop = bool(node.attr("noop_with_empty_axes", 0))
        axes_as_input = node_since(node) >= axes_input_since

        def run(x, axes=None):
            if axes_as_input:
                axes = None if axes is None or axes.size == 0 else _ints(axes)
            else:
                axes = node.attr("axes")
            if axes is None and noop:
                return x
            axes = tuple(range(x.ndim)) if axes is None else tuple(int(a) % x.ndim for a in axes)
            return fn(x, axes, keep)
        return run
    converter(op_type, 1, nondiff=(1,))(make)


def node_since(node) -> int:
    return onnx.defs.get_schema(node.op_type, max_inclusive_version=node.opset, domain="").since_version


_reduce("ReduceSum", lambda x, a, k: x.sum(axis=a, keepdims=k), 13)
_reduce("ReduceMean", lambda x, a, k: x.mean(axis=a, keepdims=k), 18)
_reduce("ReduceMax", lambda x, a, k: x.max(axis=a, keepdims=k), 18)
_reduce("ReduceProd", lambda x, a, k: ops.prod(x, a, k), 18)


# ---------------------------------------------------------------------------
# shapes


@converter("Flatten", 1)
def _flatten(node):
    axis = int(node.attr("axis", 1))

    def run(x):
        a = axis % x.ndim if x.ndim else 0
        return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))
    return run


@converter("Reshape", 1)
def _reshape_v1(node):
    shape = [int(s) for s in node.attr("shape", [])]
    return lambda x: _reshape(node, x, shape, allowzero=False)


@converter("Reshape", 5, nondiff=(1,))
def _reshape_v5(node):
    allowzero = bool(node.attr("allowzero", 0))
    return lambda x, shape: _reshape(node, x, _ints(shape), allowzero)


def _reshape(node, x, shape, allowzero):
    target = [x.shape[i] if (s == 0 and not allowzero) else s for i, s in enumerate(shape)]
    try:
        return x.reshape(tuple(target))
    except ValueError as exc:
        node.fail(str(exc))


@converter("Transpose", 1)
def _transpose(node):
    perm = node.attr("perm")
    return lambda x: x.transpose(*(perm if perm is not None else reversed(range(x.ndim))))


@converter("Concat", 1)
def _concat(node):
    axis = int(node.attr("axis", 1))

    def run(*xs):
        if all(x.dtype.kind != "f" for x in xs):
            return ops.constant(np.concatenate([x.data for x in xs], axis=axis))
        return F.concat(list(xs), axis=axis)
    return run


def _axes_attr_or_input(node, since_input: int):
    as_input = node_since(node) >= since_input

    def axes_of(x_ndim, axes):
        if as_input:
            return None if axes is None else _ints(axes)
        a = node.attr("axes")
        return None if a is None else [int(i) for i in a]
    return axes_of


@converter("Unsqueeze", 1, nondiff=(1,))
def _unsqueeze(node):
    axes_of = _axes_attr_or_input(node, 13)

    def run(x, axes=None):
        axes = axes_of(x.ndim, axes)
        ndim = x.ndim + len(axes)
        shape = list(x.shape)
        for a in sorted(int(a) % ndim for a in axes):
            shape.insert(a, 1)
        return x.reshape(tuple(shape)) if x.dtype.kind == "f" else ops.constant(x.data.reshape(shape))
    return run


@converter("Squeeze", 1, nondiff=(1,))
def _squeeze(node):
    axes_of = _axes_attr_or_input(node, 13)

    def run(x, axes=None):
        axes = axes_of(x.ndim, axes)
        axes = [i for i, s in enumerate(x.shape) if s == 1] if axes is None else [int(a) % x.ndim for a in axes]
        shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
        return x.reshape(shape) if x.dtype.kind == "f" else ops.constant(x.data.reshape(shape))
    return run


@converter("Pad", 1)
def _pad_v1(node):
    pads = [int(p) for p in node.attr("pads", node.attr("paddings", []))]
    return _pad_run(node, lambda *_: (pads, float(node.attr("value", 0.0))))


@converter("Pad", 11, nondiff=(1, 2, 3))
def _pad_v11(node):
    def args(x, pads, value=None, axes=None):
        pads = _ints(pads)
        if axes is not None:
            axes = [int(a) % x.ndim for a in _ints(axes)]
            full = [0] * (2 * x.ndim)
            for i, a in enumerate(axes):
                full[a], full[x.ndim + a] = pads[i], pads[len(axes) + i]
            pads = full
        return pads, 0.0 if value is None or np.asarray(value.data).size == 0 else _scalar(value)
    return _pad_run(node, args)


def _pad_run(node, args):
    mode = node.attr("mode", "constant")
    if mode != "constant":
        node.fail(f"mode {mode!r} is not supported (only 'constant')")

    def run(x, *rest):
        pads, value = args(x, *rest)
        if len(pads) != 2 * x.ndim:
            node.fail(f"pads has {len(pads)} values for a {x.ndim}-D input")
        if x.dtype.kind != "f":
            node.fail("padding integer tensors is not supported")
        _check_size(node, [n + pads[i] + pads[x.ndim + i] for i, n in enumerate(x.shape)])
        return F.pad(x, _torch_pad(pads), value)
    return run


@converter("Slice", 1)
def _slice_v1(node):
    starts, ends = node.attr("starts"), node.attr("ends")
    axes = node.attr("axes")
    return lambda x: _slice(x, starts, ends, axes, None)


@converter("Slice", 10, nondiff=(1, 2, 3, 4))
def _slice_v10(node):
    def run(x, starts, ends, axes=None, steps=None):
        return _slice(x, _ints(starts), _ints(ends), None if axes is None else _ints(axes),
                      None if steps is None else _ints(steps))
    return run


def _slice(x, starts, ends, axes, steps):
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        n = x.shape[a]
        big = 2 ** 62
        s, e = max(min(s, big), -big), max(min(e, big), -big)
        index[int(a) % x.ndim] = slice(s, e if not (st < 0 and e < -n) else None, st)
    key = tuple(index)
    return x[key] if x.dtype.kind == "f" else ops.constant(x.data[key])


@converter("Gather", 1, nondiff=(1,))
def _gather(node):
    axis = int(node.attr("axis", 0))
    return lambda x, indices: ops.take(x, indices, axis)


@converter("Shape", 1)
def _shape(node):
    start, end = node.attr("start", 0), node.attr("end")
    return lambda x: ops.constant(np.array(x.shape[start:end], dtype=np.int64))


@converter("Constant", 1)
def _constant(node):
    value = None
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attrs:
            v = node.attrs[key]
            value = (onnx.numpy_helper.to_array(v) if key == "value" else
                     np.array(v, dtype=np.float32 if "float" in key else np.int64))
    if value is None:
        node.fail("only value, value_float(s) and value_int(s) constants are supported")
    return lambda: ops.constant(value)


@converter("ConstantOfShape", 1, nondiff=(0,))
def _constant_of_shape(node):
    fill = node.attrs.get("value")
    fill = np.zeros(1, np.float32) if fill is None else onnx.numpy_helper.to_array(fill)

    def run(shape):
        shape = _ints(shape)
        if any(s < 0 for s in shape) or math.prod(shape) > MAX_ELEMENTS:
            node.fail(f"shape {shape} is negative or larger than {MAX_ELEMENTS} elements")
        return ops.constant(np.full(shape, fill.reshape(-1)[0], dtype=fill.dtype))
    return run


@converter("Cast", 1)
def _cast(node):
    to = node.attr("to")
    dtype = onnx.helper.tensor_dtype_to_np_dtype(int(to))
    return lambda x: ops.cast(x, dtype)


@converter("Split", 1, nondiff=(1,))
def _split(node):
    axis = int(node.attr("axis", 0))

    def run(x, split=None):
        sizes = _ints(split) if split is not None else node.attr("split")
        n = x.shape[axis]
        if sizes is None:
            k = node.attr("num_outputs", node.n_outputs)
            sizes = [-(-n // k)] * (k - 1)
            sizes.append(n - sum(sizes))
        out = F.split(x, list(sizes), axis=axis)
        return tuple(out)
    return run


@converter("ScatterND", 11, nondiff=(1,))
def _scatter_nd(node):
    if node.attr("reduction", "none") != "none":
        node.fail("only reduction='none' is supported")
    return lambda data, indices, updates: ops.scatter_nd(data, indices, updates)


@converter("Expand", 8, nondiff=(1,))
def _expand(node):
    def run(x, shape):
        shape = _ints(shape)
        _check_size(node, shape)
        return ops.expand(x, shape)
    return run


@converter("Clip", 1)
def _clip_v1(node):
    lo, hi = node.attr("min", -np.inf), node.attr("max", np.inf)
    return lambda x: ops.minimum(ops.maximum(x, np.float32(lo)), np.float32(hi))


@converter("Clip", 11, nondiff=(1, 2))
def _clip_v11(node):
    def run(x, lo=None, hi=None):
        if lo is not None:
            x = ops.maximum(x, ops.constant(lo.data.astype(x.dtype)))
        if hi is not None:
            x = ops.minimum(x, ops.constant(hi.data.astype(x.dtype)))
        return x
    return run


# ---------------------------------------------------------------------------
# reading the file safely


def _check_tensor(t, where: str) -> None:
    """Refuse a tensor whose declared size does not match the data it carries (before making it)."""
    if t.data_location == onnx.TensorProto.EXTERNAL or t.external_data:
        raise OnnxImportError(f"{where}: tensor {t.name!r} keeps its data in an external file, "
                              "which is not supported")
    if any(d < 0 for d in t.dims):
        raise OnnxImportError(f"{where}: tensor {t.name!r} has negative dimensions {list(t.dims)}")
    count = math.prod(int(d) for d in t.dims)
    if count > MAX_ELEMENTS:
        raise OnnxImportError(f"{where}: tensor {t.name!r} declares {count} elements "
                              f"(shape {list(t.dims)}), more than the limit {MAX_ELEMENTS}")
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
    except Exception:
        raise OnnxImportError(f"{where}: tensor {t.name!r} has an unknown data type {t.data_type}") from None
    if dtype.kind not in "fiub":
        raise OnnxImportError(f"{where}: tensor {t.name!r} has data type {dtype}, which is not supported")
    if t.HasField("raw_data"):
        carried = len(t.raw_data)
        needed = count * dtype.itemsize
    else:
        fields = {onnx.TensorProto.FLOAT: t.float_data, onnx.TensorProto.DOUBLE: t.double_data,
                  onnx.TensorProto.INT64: t.int64_data, onnx.TensorProto.UINT64: t.uint64_data,
                  onnx.TensorProto.UINT32: t.uint64_data}
        carried, needed = len(fields.get(t.data_type, t.int32_data)), count
    if carried != needed:
        raise OnnxImportError(f"{where}: tensor {t.name!r} declares shape {list(t.dims)} ({count} elements, "
                              f"{dtype}) but carries {carried} {'bytes' if t.HasField('raw_data') else 'values'}, "
                              f"not {needed}: the file is truncated or corrupt")


def _to_array(t, where: str) -> np.ndarray:
    _check_tensor(t, where)
    a = onnx.numpy_helper.to_array(t)
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    return a


def _check_graph(graph, where: str, depth: int = 0) -> None:
    """Check every tensor in a graph (and its subgraphs) before any is made."""
    if depth > 16:
        raise OnnxImportError(f"{where}: subgraphs nested more than 16 deep")
    for t in graph.initializer:
        _check_tensor(t, where)
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                _check_tensor(a.t, f"{where}, node {node.name or node.op_type!r}")
            elif a.type == onnx.AttributeProto.GRAPH:
                _check_graph(a.g, f"{where}, node {node.name or node.op_type!r}", depth + 1)
            elif a.type in (onnx.AttributeProto.TENSORS, onnx.AttributeProto.GRAPHS):
                raise OnnxImportError(f"{where}: node {node.name!r} has a list-of-tensors or list-of-graphs "
                                      "attribute, which is not supported")


def _read(path, max_bytes: int):
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise OnnxImportError(f"{path}: cannot read the file ({exc.strerror})") from None
    if size > max_bytes:
        raise OnnxImportError(f"{path}: the file has {size} bytes, more than the limit {max_bytes} "
                              "(pass max_bytes= to allow more)")
    with open(path, "rb") as f:
        data = f.read()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:
        raise OnnxImportError(f"{path}: not an ONNX model (the protobuf does not parse: "
                              f"{type(exc).__name__})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxImportError(f"{path}: not an ONNX model (no graph, or a graph without nodes)")
    return path, model


# ---------------------------------------------------------------------------
# the module


class OnnxModule(Module):
    """A module running an ONNX graph with striate's ops.

    Parameters sit in submodules named after the ONNX names' dotted parts;
    ``forward`` takes the graph's inputs in order (arrays or Tensors) and
    returns its output (a tuple when there are several).
    """

    def __init__(self):
        super().__init__()
        object.__setattr__(self, "_steps", [])
        object.__setattr__(self, "_constants", {})
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "input_names", [])
        object.__setattr__(self, "input_shapes", [])
        object.__setattr__(self, "output_names", [])

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise ValueError(f"this ONNX graph takes {len(self.input_names)} input(s) "
                             f"{self.input_names}, got {len(inputs)}")
        env = dict(self._constants)
        env.update(self._params)
        for name, shape, x in zip(self.input_names, self.input_shapes, inputs):
            x = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float32))
            if shape is not None and (x.ndim != len(shape) or any(
                    d is not None and d != s for d, s in zip(shape, x.shape))):
                want = tuple("N" if d is None else d for d in shape)
                raise ValueError(f"input {name!r} must have shape {want}, got {tuple(x.shape)}")
            env[name] = x
        for run, ins, outs, node in self._steps:
            try:
                result = run(*[None if n == "" else env[n] for n in ins])
            except OnnxImportError:
                raise
            except (ValueError, TypeError, IndexError) as exc:
                raise ValueError(f"{node}: {exc}") from exc
            if not isinstance(result, tuple):
                result = (result,)
            for n, r in zip(outs, result):
                if n:
                    env[n] = r
        outs = tuple(env[n] for n in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def extra_repr(self) -> str:
        return f"inputs={self.input_names}, outputs={self.output_names}, nodes={len(self._steps)}"


def _attach(module: Module, name: str, value: np.ndarray, used: set) -> Parameter:
    """A Parameter at the dotted path ``name`` (submodules made as needed)."""
    parts = [p for p in name.split(".") if p]
    ok = parts and all(re.fullmatch(r"[^.]+", p) for p in parts)
    if not ok or name in used:
        parts = [re.sub(r"\W", "_", name) or "param"]
    owner = module
    for part in parts[:-1]:
        child = owner._modules.get(part)
        if child is None:
            if part in owner._parameters or part in owner.__dict__:
                return _attach(module, re.sub(r"\W", "_", name), value, used | {name})
            child = Module()
            owner.add_module(part, child)
        owner = child
    leaf = parts[-1]
    if leaf in owner._modules or leaf in owner._parameters or leaf in owner.__dict__ \
            or leaf in ("forward", "training"):
        leaf = f"{leaf}_"
    p = Parameter(np.array(value, dtype=np.float32))
    owner.register_parameter(leaf, p)
    used.add(name)
    return p


def _identity(x):
    return x


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x.data, y.data)
                                    for x, y in zip(a, b))


class _Builder:
    def __init__(self, model, path):
        self.path = path
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if opset is None:
            raise OnnxImportError(f"{path}: the model imports no version of the default ONNX domain")
        self.opset: int = opset
        metadata = {p.key: p.value for p in model.metadata_props}
        try:
            listed = json.loads(metadata["striate.trainable"]) if "striate.trainable" in metadata else None
        except ValueError:
            listed = None
        self.listed = set(listed) if isinstance(listed, list) else None
        self.const: dict[str, np.ndarray] = {}
        self.source_trainable: dict[str, bool] = {}
        self.live: set[str] = set()
        self.steps: list = []
        self.uses: dict[str, list] = {}       # constant name -> [(converter, input position)]
        self.probes: list[dict[str, Tensor]] = []      # values on zero inputs (see start_probe)
        self.shape_derived: set[str] = set()            # live values computed from shapes only

    def start_probe(self, model, names, shapes):
        """Run the graph on zeros while planning, so that ``Shape`` nodes fold (and the Ifs
        that test them). A symbolic axis (a dynamic batch ``N``) is probed twice, at 2 and 3:
        shape arithmetic that gives the same in both (the channel count, the rank) folds,
        the rest (anything that reads N) runs with the forward."""
        def has_shape(g):
            return any(n.op_type in ("Shape", "Size") or any(
                a.type == onnx.AttributeProto.GRAPH and has_shape(a.g) for a in n.attribute) for n in g.node)
        if not has_shape(model.graph) or any(s is None for s in shapes):
            return
        sizes = (2, 3) if any(None in s for s in shapes) else (1,)    # else one probe, the 1 unused
        probes = []
        for size in sizes:
            concrete = [[size if d is None else d for d in s] for s in shapes]
            if any(math.prod(s) > PROBE_ELEMENTS for s in concrete):
                raise OnnxImportError(f"{self.path}: the declared input shapes {shapes} are too large to run "
                                      f"the shape arithmetic once while loading (more than {PROBE_ELEMENTS} "
                                      "elements)")
            probes.append({n: Tensor(np.zeros(s, np.float32)) for n, s in zip(names, concrete)})
        self.probes = probes

    def plan(self, graph, where="graph"):
        for proto in graph.node:
            self.add_node(proto, where)

    def add_node(self, proto, where):
        if proto.domain not in ("", "ai.onnx"):
            raise OnnxImportError(f"{self.path}: op {proto.op_type!r} of domain {proto.domain!r} "
                                  f"(node {proto.name!r}) is not supported; only the default ONNX domain is")
        node = Node(proto, self.opset)
        for n in proto.input:
            if n and n not in self.const and n not in self.live:
                raise OnnxImportError(f"{self.path}: node {node.name!r} ({proto.op_type}) reads {n!r}, "
                                      "which no earlier node, input or initializer defines")
        if proto.op_type == "If":
            return self.add_if(node, where)
        make = find_converter(proto.op_type, self.opset, node.name)
        run = make(node)
        ins = list(proto.input)
        if proto.op_type == "Shape" and self.probes and ins[0] in self.probes[0]:
            start, end = node.attr("start", 0), node.attr("end")
            shapes = {tuple(p[ins[0]].shape[start:end]) for p in self.probes}
            if len(shapes) == 1:
                return self.set_const(proto.output[0], np.array(shapes.pop(), dtype=np.int64), False)
        trains = any(n in self.const and i not in make.nondiff and self.trainable(n) for i, n in enumerate(ins))
        if all(n == "" or n in self.const for n in ins) and not trains:
            args = [None if n == "" else ops.constant(self.const[n]) for n in ins]
            try:
                result = run(*args)
            except OnnxImportError:
                raise
            except Exception as exc:
                raise OnnxImportError(f"{self.path}: {proto.op_type} node {node.name!r} (opset {self.opset}) "
                                      f"fails on its constant inputs: {exc}") from None
            result = result if isinstance(result, tuple) else (result,)
            trainable = proto.op_type == "ConstantOfShape" or any(self.source_trainable.get(n, False) for n in ins)
            for n, r in zip(proto.output, result):
                if n:
                    self.set_const(n, r.data if isinstance(r, Tensor) else np.asarray(r), trainable)
            return
        label = f"{proto.op_type} node {node.name!r}"
        outs = list(proto.output)
        derived = proto.op_type in ("Shape", "Size") or all(
            n == "" or n in self.const or n in self.shape_derived for n in ins)
        if self.probes:
            results = [self.run_probe(probe, run, ins, label) for probe in self.probes]
            if derived and all(_same(r, results[0]) for r in results[1:]):
                for n, r in zip(outs, results[0]):          # the same whatever N is: a constant
                    if n:
                        self.set_const(n, r.data, False)
                return
            for probe, result in zip(self.probes, results):
                probe.update((n, r) for n, r in zip(outs, result) if n)
        for i, n in enumerate(ins):
            if n in self.const:
                self.uses.setdefault(n, []).append((make, i))
        self.steps.append((run, ins, outs, label))
        self.live.update(n for n in outs if n)
        if derived:
            self.shape_derived.update(n for n in outs if n)

    def run_probe(self, probe, run, ins, label):
        args = [None if n == "" else probe[n] if n in probe else ops.constant(self.const[n])
                for n in ins]
        try:
            with no_grad():
                result = run(*args)
        except OnnxImportError:
            raise
        except MemoryError:
            raise OnnxImportError(f"{self.path}: {label} needs more memory than there is") from None
        except Exception as exc:
            raise OnnxImportError(f"{self.path}: {label} (opset {self.opset}) fails on inputs of the "
                                  f"declared shapes: {exc}") from None
        return result if isinstance(result, tuple) else (result,)

    def trainable(self, name) -> bool:
        """Whether a constant will be a Parameter: listed by striate's exporter, or else a
        float array that came from an initializer (or a ConstantOfShape weight)."""
        if self.listed is not None:
            return name in self.listed
        return self.const[name].dtype.kind == "f" and self.source_trainable.get(name, False)

    def set_const(self, name, array, trainable):
        self.const[name] = np.asarray(array)
        self.source_trainable[name] = trainable

    def add_if(self, node, where):
        cond = node.proto.input[0]
        if cond not in self.const:
            node.fail("the condition depends on the input; only an If whose condition is known "
                      "at load time (static shapes) is supported")
        branch = node.attrs["then_branch" if bool(np.asarray(self.const[cond]).reshape(-1)[0]) else "else_branch"]
        for init in branch.initializer:
            self.set_const(init.name, _to_array(init, f"{self.path}, If {node.name!r}"), False)
        self.plan(branch, f"If {node.name!r}")
        for out, inner in zip(node.proto.output, branch.output):
            if inner.name in self.const:
                self.set_const(out, self.const[inner.name], self.source_trainable.get(inner.name, False))
            else:
                self.steps.append((_identity, [inner.name], [out], f"If {node.name!r}"))
                self.live.add(out)
                for probe in self.probes:
                    probe[out] = probe[inner.name]
                if inner.name in self.shape_derived:
                    self.shape_derived.add(out)


def load(path, max_bytes: int = MAX_FILE_BYTES) -> OnnxModule:
    """Read an ONNX file as a ``striate.nn.Module`` whose forward runs striate's ops.

    Args:
        path: an ``.onnx`` file (weights inside it, not in external files).
        max_bytes: refuse larger files (default 2 GiB − 1, protobuf's limit).

    Returns:
        an :class:`OnnxModule`: float initializers read by the computation are
        trainable Parameters (``named_parameters()`` gives their ONNX names), so
        it fine-tunes with ``striate.optim`` and saves with ``st.save``.

    Raises:
        OnnxImportError (a ValueError) for an unreadable, corrupt or hostile
        file, and for an op that has no converter (naming op, node and opset).

    Example:
        >>> import pathlib, onnx, striate.onnx
        >>> wheel = pathlib.Path(onnx.__file__).parent / "backend/test/data/light"   # ships with onnx
        >>> net = striate.onnx.load(wheel / "light_resnet50.onnx")
        >>> net(np.zeros((1, 3, 224, 224), np.float32)).shape
        (1, 1000)
    """
    path, model = _read(path, max_bytes)
    _check_graph(model.graph, path)
    b = _Builder(model, path)
    inits = set()
    for t in model.graph.initializer:
        b.set_const(t.name, _to_array(t, path), True)
        inits.add(t.name)
    module = OnnxModule()
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else None for d in dims] \
            if vi.type.tensor_type.HasField("shape") else None
        module.input_names.append(vi.name)
        module.input_shapes.append(shape)
        b.live.add(vi.name)
    if not module.input_names:
        raise OnnxImportError(f"{path}: the graph has no input (every input is an initializer)")
    b.start_probe(model, module.input_names, module.input_shapes)
    b.plan(model.graph)
    module.output_names.extend(o.name for o in model.graph.output)
    for n in module.output_names:
        if n not in b.live and n not in b.const:
            raise OnnxImportError(f"{path}: the graph output {n!r} is not computed by any node")

    # trainable: listed by striate's exporter, else float arrays of initializer origin read
    # by the computation in a slot that is not shape data
    used: set = set()
    for name, uses in b.uses.items():
        a = b.const[name]
        if b.trainable(name) and any(i not in make.nondiff for make, i in uses):
            module._params[name] = _attach(module, name, a, used)
        else:
            module._constants[name] = ops.constant(a)
    for n in module.output_names:
        if n in b.const and n not in module._params:
            module._constants[n] = ops.constant(b.const[n])
    module._steps.extend(b.steps)
    return module
