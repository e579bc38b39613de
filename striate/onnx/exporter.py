"""Write a striate model as an ONNX graph: trace it, then one small emitter per op.

The emitters read like a table (in the manner of PyTorch's symbolic functions):
each takes the :class:`_Emitter` and one :class:`~striate.onnx.trace.OpRecord`
and appends the ONNX nodes that compute the record's outputs. Parameters and
buffers become initializers under their ``named_parameters`` / ``named_buffers``
names (``c1.weight``, ``bn1.running_mean``); other constants become initializers
``const_<n>``. The batch axis is dynamic (``N``).
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..checks import nonnegative_pair, positive_pair
from ..functional.shape import pad_widths
from ..nn.module import Module
from ._deps import onnx
from .trace import OpRecord, TraceError, Value, trace

__all__ = ["EMITTERS", "MAX_OPSET", "MIN_OPSET", "export", "to_model_proto"]

MIN_OPSET, MAX_OPSET = 13, 18
EMITTERS: dict = {}


def emits(*ops):
    def register(fn):
        for op in ops:
            EMITTERS[op] = fn
        return fn
    return register


class _Emitter:
    """Collects nodes and initializers; names values."""

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes: list = []
        self.initializers: dict[str, np.ndarray] = {}
        self.trainable: list[str] = []
        self.counter = 0

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}_{self.counter}"

    def name(self, v: Value) -> str:
        """The ONNX name of a traced value; parameters and constants become initializers."""
        if v.kind in ("parameter", "buffer", "constant") and v.name not in self.initializers:
            data = v.data
            assert data is not None                   # the tracer gives these kinds their array
            if data.dtype.kind == "f":
                data = data.astype(np.float32)
            self.initializers[v.name] = np.ascontiguousarray(data)
            if v.kind == "parameter":
                self.trainable.append(v.name)
        return v.name

    def operand(self, x) -> str:
        """A Value, an array or a number as an ONNX input name.

        Numbers meet float tensors (``x * 2``), so they become float32, as do float
        arrays; integer arrays (indices) keep their type.
        """
        if isinstance(x, Value):
            return self.name(x)
        a = np.asarray(x)
        if a.ndim == 0 or a.dtype.kind == "f":
            a = a.astype(np.float32)
        return self.const(a)

    def const(self, array, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.initializers[name] = np.ascontiguousarray(array)
        return name

    def ints(self, values) -> str:
        return self.const(np.asarray(values, dtype=np.int64), "shape")

    def node(self, op_type: str, inputs, outputs=None, **attrs):
        """Append a node; returns its output name (or names, when ``outputs`` is a count)."""
        if outputs is None or isinstance(outputs, int):
            count = outputs or 1
            outputs = [self.fresh(op_type.lower()) for _ in range(count)]
            single = count == 1 and not isinstance(outputs, int)
        else:
            outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
            single = len(outputs) == 1
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(onnx.helper.make_node(op_type, list(inputs), outputs,
                                                name=f"{op_type}_{len(self.nodes)}", **attrs))
        return outputs[0] if single else outputs


# ---------------------------------------------------------------------------
# helpers shared by the emitters


def _x(r: OpRecord, key: str = "x") -> Value:
    return r.args[key]


def _out(r: OpRecord, i: int = 0) -> str:
    return r.outputs[i].name


def _pads2d(padding, kernel, dilation=(1, 1)) -> list[int]:
    """striate's padding (int, pair, "same", "valid") as ONNX pads [top, left, bottom, right]."""
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0, 0, 0]
        th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
        return [th // 2, tw // 2, th - th // 2, tw - tw // 2]
    ph, pw = nonnegative_pair(padding, "padding", "export")
    return [ph, pw, ph, pw]


def _pool_geometry(r: OpRecord):
    k = positive_pair(r.args["kernel_size"], "kernel_size", r.op)
    stride = r.args.get("stride")
    s = k if stride is None else positive_pair(stride, "stride", r.op)
    pads = _pads2d(r.args.get("padding", 0), k)
    return list(k), list(s), pads


def _reduce(e: _Emitter, op_type: str, x: str, axes, keepdims: bool, out=None, axes_as_input=None):
    """ReduceSum takes axes as an input from opset 13, the other reductions from opset 18."""
    if axes_as_input is None:
        axes_as_input = op_type == "ReduceSum" or e.opset >= 18
    if axes is None:
        return e.node(op_type, [x], out, keepdims=int(keepdims))
    axes = [int(a) for a in np.atleast_1d(axes)]
    if axes_as_input:
        return e.node(op_type, [x, e.ints(axes)], out, keepdims=int(keepdims))
    return e.node(op_type, [x], out, axes=axes, keepdims=int(keepdims))


def _batch_shape(v: Value, shape) -> list[int]:
    """A target shape for Reshape, with 0 (copy the input's) on a batch axis kept in place."""
    shape = [int(s) for s in shape]
    if v.batched and shape and shape[0] == v.shape[0]:
        shape[0] = 0
    return shape


# ---------------------------------------------------------------------------
# convolution


@emits("conv2d")
def _conv2d(e, r):
    w = r.args["weight"]
    k = w.shape[2:]
    dilation = positive_pair(r.args["dilation"], "dilation", "conv2d")
    inputs = [e.name(_x(r)), e.operand(w)] + ([e.operand(r.args["bias"])] if r.args["bias"] is not None else [])
    e.node("Conv", inputs, _out(r), kernel_shape=list(k), pads=_pads2d(r.args["padding"], k, dilation),
           strides=list(positive_pair(r.args["stride"], "stride", "conv2d")),
           dilations=list(dilation), group=int(r.args["groups"]))


@emits("conv_transpose2d")
def _conv_transpose2d(e, r):
    w = r.args["weight"]
    ph, pw = nonnegative_pair(r.args["padding"], "padding", "conv_transpose2d")
    inputs = [e.name(_x(r)), e.operand(w)] + ([e.operand(r.args["bias"])] if r.args["bias"] is not None else [])
    e.node("ConvTranspose", inputs, _out(r), kernel_shape=list(w.shape[2:]), pads=[ph, pw, ph, pw],
           strides=list(positive_pair(r.args["stride"], "stride", "conv_transpose2d")),
           output_padding=list(nonnegative_pair(r.args["output_padding"], "output_padding", "")),
           dilations=list(positive_pair(r.args["dilation"], "dilation", "")), group=int(r.args["groups"]))


@emits("conv2d_fused")
def _conv2d_fused(e, r):
    x, w, b, fusion = _x(r), r.args["weight"], r.args["bias"], r.args["fusion"]
    K, C, kh, kw = w.shape
    geometry = dict(kernel_shape=[kh, kw], pads=_pads2d(r.args["padding"], (kh, kw)),
                    strides=list(positive_pair(r.args["stride"], "stride", "conv2d_fused")))
    bias = [e.operand(b)] if b is not None else []
    if fusion == "sum":
        e.node("Conv", [e.name(x), e.operand(w)] + bias, _out(r), **geometry)
        return
    # every response r[k, c] = x[:, c] ⋆ w[k, c]: a depthwise convolution (group C) whose
    # output channel c·K + k holds r[k, c]; its weight is w (K, C, kh, kw) as (C·K, 1, kh, kw)
    wt = e.node("Transpose", [e.operand(w)], perm=[1, 0, 2, 3])
    wt = e.node("Reshape", [wt, e.ints([C * K, 1, kh, kw])])
    resp = e.node("Conv", [e.name(x), wt], group=C, **geometry)             # (N, C·K, OH, OW)
    OH, OW = r.outputs[0].shape[2:]
    resp = e.node("Reshape", [resp, e.ints([0, C, K, OH, OW])])            # (N, C, K, OH, OW)
    if fusion == "concat":                                                 # channel k·C + c
        resp = e.node("Transpose", [resp], perm=[0, 2, 1, 3, 4])
        target = [0, K * C, OH, OW]
    else:                                                                  # product over c
        resp = _reduce(e, "ReduceProd", resp, [1], keepdims=False)
        target = None
    if target is not None:
        resp = e.node("Reshape", [resp, e.ints(target)], None if bias else _out(r))
    if bias:
        e.node("Add", [resp, e.node("Reshape", [bias[0], e.ints([-1, 1, 1])])], _out(r))
    elif target is None:
        e.node("Identity", [resp], _out(r))


# ---------------------------------------------------------------------------
# pooling


@emits("max_pool2d")
def _max_pool2d(e, r, x_name=None, out=None):
    k, s, pads = _pool_geometry(r)
    return e.node("MaxPool", [x_name or e.name(_x(r))], out or _out(r), kernel_shape=k, strides=s, pads=pads,
                  dilations=list(positive_pair(r.args["dilation"], "dilation", r.op)),
                  ceil_mode=int(bool(r.args["ceil_mode"])))


@emits("min_pool2d")
def _min_pool2d(e, r):
    neg = e.node("Neg", [e.name(_x(r))])
    e.node("Neg", [_max_pool2d(e, r, neg, e.fresh("maxpool"))], _out(r))


@emits("avg_pool2d")
def _avg_pool2d(e, r):
    k, s, pads = _pool_geometry(r)
    divisor = r.args["divisor_override"]
    include = bool(r.args["count_include_pad"]) or divisor is not None
    pooled = e.node("AveragePool", [e.name(_x(r))], None if divisor else _out(r), kernel_shape=k,
                    strides=s, pads=pads, ceil_mode=int(bool(r.args["ceil_mode"])),
                    count_include_pad=int(include))
    if divisor:
        e.node("Mul", [pooled, e.operand(np.float32(k[0] * k[1] / divisor))], _out(r))


def _sum_pool(e, r, x_name, out):
    k, s, pads = _pool_geometry(r)
    mean = e.node("AveragePool", [x_name], kernel_shape=k, strides=s, pads=pads, count_include_pad=1)
    return e.node("Mul", [mean, e.operand(np.float32(k[0] * k[1]))], out)


@emits("sum_pool2d")
def _sum_pool2d(e, r):
    _sum_pool(e, r, e.name(_x(r)), _out(r))


@emits("lp_pool2d", "l2_pool2d")
def _lp_pool2d(e, r):
    p = float(r.args.get("p", 2))
    x = e.name(_x(r))
    if p == 2:
        k, s, pads = _pool_geometry(r)
        e.node("LpPool", [x], _out(r), kernel_shape=k, strides=s, pads=pads, p=2)
    elif p == 1:
        _sum_pool(e, r, x, _out(r))
    else:                                                   # (Σ x^p)^(1/p), x^p as is (no |x|)
        powered = e.node("Pow", [x, e.operand(np.float32(p))])
        total = _sum_pool(e, r, powered, None)
        e.node("Pow", [total, e.operand(np.float32(1 / p))], _out(r))


def _adaptive(e, r, kind):
    x = _x(r)
    H, W = x.shape[2:]
    OH, OW = r.outputs[0].shape[2:]
    if (OH, OW) == (1, 1):
        e.node("GlobalAveragePool" if kind == "avg" else "GlobalMaxPool", [e.name(x)], _out(r))
    elif H % OH == 0 and W % OW == 0:
        k = [H // OH, W // OW]
        e.node("AveragePool" if kind == "avg" else "MaxPool", [e.name(x)], _out(r), kernel_shape=k, strides=k)
    elif kind == "avg":
        # uneven windows: out = Ah · x · Awᵀ, each row of A averaging one window (separable)
        def averaging(size, out_size):
            A = np.zeros((out_size, size), dtype=np.float32)
            for o in range(out_size):
                lo, hi = (o * size) // out_size, -((-(o + 1) * size) // out_size)
                A[o, lo:hi] = 1.0 / (hi - lo)
            return A
        rows = e.node("MatMul", [e.const(averaging(H, OH)), e.name(x)])            # (N, C, OH, W)
        e.node("MatMul", [rows, e.const(averaging(W, OW).T.copy())], _out(r))      # (N, C, OH, OW)
    else:
        raise TraceError(f"adaptive_max_pool2d from {H}×{W} to {OH}×{OW} (uneven windows) has no "
                         "ONNX form here")


@emits("adaptive_avg_pool2d", "global_avg_pool2d")
def _adaptive_avg(e, r):
    _adaptive(e, r, "avg")


@emits("adaptive_max_pool2d", "global_max_pool2d")
def _adaptive_max(e, r):
    _adaptive(e, r, "max")


# ---------------------------------------------------------------------------
# activations, normalisation, dense


@emits("relu", "sigmoid", "tanh", "exp", "log", "abs", "neg")
def _unary(e, r):
    op_type = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "log": "Log",
               "abs": "Abs", "neg": "Neg"}[r.op]
    x = r.args.get("x", r.args.get("a"))
    e.node(op_type, [e.name(x)], _out(r))


@emits("leaky_relu")
def _leaky_relu(e, r):
    e.node("LeakyRelu", [e.name(_x(r))], _out(r), alpha=float(r.args["negative_slope"]))


@emits("scaled_tanh")
def _scaled_tanh(e, r):                                     # a · tanh(s · x)
    inner = e.node("Mul", [e.name(_x(r)), e.operand(np.float32(r.args["s"]))])
    e.node("Mul", [e.node("Tanh", [inner]), e.operand(np.float32(r.args["a"]))], _out(r))


@emits("softmax", "log_softmax")
def _softmax(e, r):
    e.node("Softmax" if r.op == "softmax" else "LogSoftmax", [e.name(_x(r))], _out(r), axis=int(r.args["dim"]))


@emits("dropout", "dropout2d")
def _dropout(e, r):
    # traced in evaluation mode: the op returned its input (and no record reaches here)
    raise TraceError("dropout in training mode cannot be exported")


@emits("batch_norm")
def _batch_norm(e, r):
    x = _x(r)
    mean, var = r.args["running_mean"], r.args["running_var"]
    if r.args["training"] or mean is None or var is None:
        raise TraceError("batch_norm with batch statistics (training mode, or no running statistics) "
                         "cannot be exported; export in evaluation mode with running statistics")
    C = x.shape[1]
    weight = r.args["weight"] if r.args["weight"] is not None else np.ones(C, np.float32)
    bias = r.args["bias"] if r.args["bias"] is not None else np.zeros(C, np.float32)
    e.node("BatchNormalization", [e.name(x), e.operand(weight), e.operand(bias), e.operand(mean), e.operand(var)],
           _out(r), epsilon=float(r.args["eps"]))


@emits("layer_norm")
def _layer_norm(e, r):
    if e.opset < 17:
        raise TraceError(f"layer_norm needs opset 17 or later (LayerNormalization), got opset {e.opset}")
    x, shape = _x(r), r.args["normalized_shape"]
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    weight = r.args["weight"] if r.args["weight"] is not None else np.ones(shape, np.float32)
    inputs = [e.name(x), e.operand(weight)] + ([e.operand(r.args["bias"])] if r.args["bias"] is not None else [])
    e.node("LayerNormalization", inputs, _out(r), axis=-len(shape), epsilon=float(r.args["eps"]))


@emits("local_response_norm")
def _lrn(e, r):
    size, alpha, beta, k = int(r.args["size"]), float(r.args["alpha"]), float(r.args["beta"]), float(r.args["k"])
    x = e.name(_x(r))
    if size % 2:            # ONNX's window is centred for odd sizes, as ours
        e.node("LRN", [x], _out(r), size=size, alpha=alpha, beta=beta, bias=k)
        return
    # even size: our window is c − size//2 … c + (size−1)//2, ONNX's the mirror image;
    # sum the squares over channels with a (size, 1, 1) average pool, as PyTorch's exporter does
    sq = e.node("Unsqueeze", [e.node("Mul", [x, x]), e.ints([1])])          # (N, 1, C, H, W)
    padded = e.node("Pad", [sq, e.ints([0, 0, size // 2, 0, 0, 0, 0, (size - 1) // 2, 0, 0])])
    avg = e.node("AveragePool", [padded], kernel_shape=[size, 1, 1], strides=[1, 1, 1])
    avg = e.node("Squeeze", [avg, e.ints([1])])                              # Σ x² / size
    d = e.node("Add", [e.node("Mul", [avg, e.operand(np.float32(alpha))]), e.operand(np.float32(k))])
    e.node("Div", [x, e.node("Pow", [d, e.operand(np.float32(beta))])], _out(r))


@emits("linear")
def _linear(e, r):
    x, w, b = _x(r), r.args["weight"], r.args["bias"]
    if len(x.shape) == 2:
        inputs = [e.name(x), e.operand(w)] + ([e.operand(b)] if b is not None else [])
        e.node("Gemm", inputs, _out(r), transB=1)
        return
    y = e.node("MatMul", [e.name(x), e.node("Transpose", [e.operand(w)], perm=[1, 0])],
               None if b is not None else _out(r))
    if b is not None:
        e.node("Add", [y, e.operand(b)], _out(r))


# ---------------------------------------------------------------------------
# shape ops


@emits("pad")
def _pad(e, r):
    x = _x(r)
    widths = pad_widths(r.args["padding"], len(x.shape))
    pads = [lo for lo, _ in widths] + [hi for _, hi in widths]
    e.node("Pad", [e.name(x), e.ints(pads), e.operand(np.float32(r.args["value"]))], _out(r), mode="constant")


@emits("flatten")
def _flatten(e, r):
    x, out = _x(r), r.outputs[0]
    ndim = len(x.shape)
    start, end = int(r.args["start_dim"]) % max(ndim, 1), int(r.args["end_dim"]) % max(ndim, 1)
    if end == ndim - 1 and start > 0 and ndim > 0:
        e.node("Flatten", [e.name(x)], out.name, axis=start)
        return
    shape = list(out.shape)
    if x.batched and start == 0:
        shape[0] = -1
    elif x.batched:
        shape[0] = 0
    e.node("Reshape", [e.name(x), e.ints(shape)], out.name)


@emits("reshape")
def _reshape(e, r):
    x, out = r.args["a"], r.outputs[0]
    target = list(out.shape)
    if x.batched and out.batched:
        target[0] = 0                 # Reshape's 0: the input's own size there, N
    e.node("Reshape", [e.name(x), e.ints(target)], out.name)


@emits("transpose")
def _transpose(e, r):
    axes = r.args["axes"]
    perm = None if axes is None else [int(a) % len(r.args["a"].shape) for a in axes]
    e.node("Transpose", [e.name(r.args["a"])], _out(r), perm=perm)


@emits("concat", "stack")
def _concat(e, r):
    xs = r.args["xs"]
    axis = int(r.args["axis"])
    names = [e.operand(t) for t in xs]
    if r.op == "stack":
        axis = axis % (len(r.outputs[0].shape))
        names = [e.node("Unsqueeze", [n, e.ints([axis])]) for n in names]
    e.node("Concat", names, _out(r), axis=axis)


@emits("split")
def _split(e, r):
    x = _x(r)
    axis = int(r.args["axis"]) % len(x.shape)
    sizes = [o.shape[axis] for o in r.outputs]
    e.node("Split", [e.name(x), e.ints(sizes)], [o.name for o in r.outputs], axis=axis)


@emits("getitem")
def _getitem(e, r):
    a, index = r.args["a"], r.args["index"]
    items = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items):
        raise TraceError(f"indexing with {index!r} (arrays) has no ONNX form here; use slices and ints")
    n_axes = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + (slice(None),) * (len(a.shape) - n_axes) + items[at + 1:]
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = out_axis = 0
    for i in items:
        if i is None:
            unsqueeze.append(out_axis)
            out_axis += 1
            continue
        if isinstance(i, slice):
            start, stop, step = i.indices(a.shape[axis])
            if (start, stop, step) != (0, a.shape[axis], 1):
                big = np.iinfo(np.int64).max if step > 0 else np.iinfo(np.int64).min
                starts.append(start)
                ends.append(big if i.stop is None else stop)
                axes.append(axis)
                steps.append(step)
            out_axis += 1
        else:
            idx = int(i) % a.shape[axis]
            starts.append(idx)
            ends.append(idx + 1)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        axis += 1
    y = e.name(a)
    if axes:
        y = e.node("Slice", [y, e.ints(starts), e.ints(ends), e.ints(axes), e.ints(steps)])
    if squeeze:
        y = e.node("Squeeze", [y, e.ints(squeeze)])
    if unsqueeze:
        y = e.node("Unsqueeze", [y, e.ints(unsqueeze)])
    e.node("Identity", [y], _out(r))


# ---------------------------------------------------------------------------
# tensor arithmetic


@emits("add", "sub", "mul", "div", "matmul")
def _binary(e, r):
    op_type = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "matmul": "MatMul"}[r.op]
    e.node(op_type, [e.operand(r.args["a"]), e.operand(r.args["b"])], _out(r))


@emits("power")
def _power(e, r):
    e.node("Pow", [e.name(r.args["a"]), e.operand(np.float32(r.args["exponent"]))], _out(r))


@emits("rpower")
def _rpower(e, r):
    e.node("Pow", [e.operand(np.float32(r.args["base"])), e.name(r.args["a"])], _out(r))


@emits("sum", "mean", "max")
def _reduction(e, r):
    op_type = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax"}[r.op]
    _reduce(e, op_type, e.name(r.args["a"]), r.args["axis"], bool(r.args["keepdims"]), _out(r))


@emits("place_kernels")
def _place_kernels(e, r):
    """Pieces of a kernel scattered into zeros: ``dense[rows[i], cols[i]] = weights[i]``."""
    dense = e.const(np.zeros(r.args["shape"], dtype=np.float32), "zeros")
    pieces = list(zip(r.args["weights"], r.args["rows"], r.args["cols"]))
    for i, (w, rows, cols) in enumerate(pieces):
        rows, cols = np.broadcast_arrays(np.asarray(rows), np.asarray(cols))      # (G, f) each
        indices = np.stack([rows, cols], axis=-1).astype(np.int64)                # (G, f, 2)
        last = i == len(pieces) - 1
        dense = e.node("ScatterND", [dense, e.const(indices, "indices"), e.operand(w)],
                       _out(r) if last else None)


# ---------------------------------------------------------------------------
# the graph


def to_model_proto(model: Module, example_input, opset: int = 18, input_name: str = "input",
                   output_name: str = "output"):
    """The ONNX ``ModelProto`` of ``model`` traced on ``example_input`` (see :func:`export`)."""
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"export: opset must be an int from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}")
    _refuse_unexportable(model)
    graph = trace(model, example_input, input_name)
    e = _Emitter(int(opset))
    if len(graph.outputs) == 1 and graph.outputs[0].kind == "op":
        graph.outputs[0].name = output_name
    for r in graph.records:
        emitter = EMITTERS.get(r.op)
        if emitter is None:
            raise TraceError(f"cannot export layer {r.module!r} ({r.module_type}): op {r.op!r} has no "
                             "ONNX emitter")
        try:
            emitter(e, r)
        except TraceError as exc:
            raise TraceError(f"cannot export layer {r.module!r} ({r.module_type}): {exc}") from None
    outputs = []
    for i, v in enumerate(graph.outputs):
        name = v.name
        if v.kind != "op" or name != output_name:
            name = output_name if len(graph.outputs) == 1 else f"{output_name}_{i}"
            e.node("Identity", [e.name(v)], name)
        outputs.append(_value_info(name, v))
    inputs = [_value_info(v.name, v) for v in graph.inputs]
    initializers = [onnx.numpy_helper.from_array(a, name) for name, a in e.initializers.items()]
    onnx_graph = onnx.helper.make_graph(e.nodes, type(model).__name__, inputs, outputs, initializers)
    proto = onnx.helper.make_model(onnx_graph, opset_imports=[onnx.helper.make_opsetid("", int(opset))],
                                   producer_name="striate")
    proto.ir_version = 8              # IR 8 carries opsets up to 18; older runtimes read it
    onnx.helper.set_model_props(proto, {"striate.trainable": json.dumps(e.trainable)})
    return proto


def _value_info(name: str, v: Value):
    dims = ["N" if (i == 0 and v.batched) else int(d) for i, d in enumerate(v.shape)]
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(np.float32) if v.dtype.kind == "f" else v.dtype)
    return onnx.helper.make_tensor_value_info(name, elem, dims)


def _refuse_unexportable(model: Module) -> None:
    from ..models.neocognitron import Neocognitron
    for path, m in model.named_modules():
        if isinstance(m, Neocognitron):
            raise TraceError(f"cannot export layer {path or '(the model)'!r} ({type(m).__name__}): the "
                             "neocognitron learns by self-organisation with winner-take-all updates and "
                             "its forward is not written as differentiable striate ops; ONNX has no "
                             "form for its shunting inhibition planes either")


def export(model: Module, example_input, path, opset: int = 18) -> None:
    """Write ``model`` as an ONNX file with float32 weights, traced on ``example_input``.

    The forward is run once in evaluation mode (batch norm uses its running
    statistics, dropout is off); the model's mode is restored afterwards. Axis 0
    of the input and output is the dynamic batch axis ``N``.

    Args:
        model: a ``striate.nn.Module`` built from striate's layers and ops.
        example_input: an array or Tensor of the input's shape, e.g. (2, 1, 32, 32).
        path: the file to write.
        opset: the ONNX opset, 13 to 18.

    Raises:
        TraceError (a ValueError) naming the layer (module path and type) that cannot be exported.

    Example:
        >>> import os, tempfile, striate.onnx
        >>> path = os.path.join(tempfile.mkdtemp(), "lenet.onnx")
        >>> striate.onnx.export(st.models.get("lenet5-modern"), np.zeros((1, 1, 32, 32), np.float32), path)
    """
    proto = to_model_proto(model, example_input, opset)
    onnx.checker.check_model(proto, full_check=True)
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "wb") as f:
        f.write(proto.SerializeToString())
    os.replace(tmp, path)
