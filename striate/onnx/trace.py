"""Record a model's forward as a flat list of op calls (PyTorch's tracer, in small).

The tracer runs ``model(example)`` once with the ops of ``striate.functional``,
the arithmetic of ``striate.tensor`` (what ``x * y``, ``-x``, ``x.reshape``,
``x.sum(axis)`` call) and a few model-specific building blocks wrapped, so
every outermost call becomes an :class:`OpRecord`: the op's name, its bound
arguments (tensors replaced by :class:`Value` references) and its outputs.
Calls made *inside* a recorded op (``l2_pool2d`` calling ``lp_pool2d``) are not
recorded again. Custom forwards therefore need no per-model code: LeNet-5's
partial C3 is a ``place_kernels`` and a ``conv2d``, its RBF output a ``sub``,
a ``mul`` and a ``sum``.

Nothing here knows about ONNX, so an inference planner can reuse the trace.

    >>> model = st.models.get("lenet5", rng=0)
    >>> graph = trace(model, np.zeros((1, 1, 32, 32), np.float32))   # evaluation mode, as exported
    >>> [r.op for r in graph.records][:3]
    ['conv2d', 'scaled_tanh', 'sum_pool2d']

A value that depends on the input is a *traced* value; a tensor that does not
(a parameter, a buffer, a constant made inside a forward) is a *constant*,
named after the parameter or buffer it is when it is one. An op that makes a
tensor from traced inputs without going through a recorded op (a custom
``Tensor.from_op`` in a user's layer) is refused, with the layer's module
path and type in the message.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import functional as F
from ..nn.module import Module
from ..tensor import Tensor, no_grad

_tensor_module = importlib.import_module("striate.tensor")   # the module; ``striate.tensor`` is also a function

__all__ = ["Graph", "OpRecord", "TraceError", "Value", "leaves", "trace", "traced_functions"]


class TraceError(ValueError):
    """A forward that the tracer cannot record (names the layer and its type)."""


@dataclasses.dataclass(eq=False)
class Value:
    """One tensor in the trace.

    ``kind`` is "input", "op" (made by a recorded op), "parameter", "buffer" or
    "constant"; ``name`` is the parameter's or buffer's dotted name for those,
    else a generated one. ``batched`` says whether axis 0 is the batch axis (it
    becomes the dynamic ``N`` of an exported graph).
    """
    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None = None          # the array, for parameters, buffers and constants
    batched: bool = False


@dataclasses.dataclass(eq=False)
class OpRecord:
    """One recorded call: ``outputs = op(**args)``, inside module ``module`` (dotted path)."""
    op: str
    args: dict[str, Any]        # bound arguments, defaults applied; Tensors replaced by Values
    outputs: list[Value]
    module: str                 # the innermost module whose forward made the call ("" for the model)
    module_type: str


@dataclasses.dataclass
class Graph:
    """A traced forward: inputs, records in execution order, outputs."""
    inputs: list[Value]
    records: list[OpRecord]
    outputs: list[Value]
    values: list[Value]         # every value, constants included


def traced_functions() -> list[tuple[types.ModuleType, str, str]]:
    """(module, attribute, op name) for each function the tracer records.

    Every op of ``striate.functional``; the functions of ``striate.tensor`` that Tensor's
    operators and methods call (``x * y`` is ``mul``, ``x.sum(1)`` is ``sum``); LeNet-5's
    kernel assembly, whose output a later ``conv2d`` reads (so that its pieces stay parameters);
    and the few ops of ``ops.py`` that imported graphs use beside those (``onnx_maximum``, ...),
    so that an imported graph is traced whole.
    """
    from ..models import lenet
    from . import ops
    table = [(F, name, "concat" if name == "cat" else name) for name in F.__all__]
    table += [(_tensor_module, name, name.rstrip("_")) for name in (
        "add", "sub", "mul", "div", "neg", "power", "rpower", "exp", "log", "abs_", "matmul",
        "sum_", "mean", "max_", "reshape", "transpose", "getitem")]
    table.append((lenet, "place_kernels", "place_kernels"))
    table += [(ops, name, f"onnx_{name}") for name in ops.__all__ if name != "constant"]
    return table


class _Tracer:
    def __init__(self, model: Module):
        self.values: dict[int, Value] = {}        # id(Tensor) -> Value
        self.keep: list[Tensor | np.ndarray] = []   # keeps traced tensors and arrays alive, so ids stay unique
        self.records: list[OpRecord] = []
        self.depth = 0
        self.module_stack: list[Module] = [model]
        self.paths = {id(m): name for name, m in model.named_modules()}
        self.param_names = {id(p): name for name, p in model.named_parameters()}
        self.buffers = [(name, b) for name, b in model.named_buffers() if isinstance(b, np.ndarray)]
        self.counter = 0

    # -- values ----------------------------------------------------------------
    def _fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def value_of(self, t: Tensor) -> Value:
        """The Value of a tensor met as an argument: traced, or a (named) constant."""
        v = self.values.get(id(t))
        if v is not None:
            return v
        data = t.data
        if id(t) in self.param_names:
            v = Value(self.param_names[id(t)], "parameter", data.shape, data.dtype, data)
        else:
            name = next((n for n, b in self.buffers if b is data or (
                b.shape == data.shape and b.dtype == data.dtype and np.shares_memory(b, data))), None)
            if name is not None:
                v = Value(name, "buffer", data.shape, data.dtype, data)
            else:
                v = Value(self._fresh("const"), "constant", data.shape, data.dtype, np.array(data))
        self.values[id(t)] = v
        self.keep.append(t)
        return v

    def add_input(self, t: Tensor, name: str) -> Value:
        v = Value(name, "input", t.shape, t.data.dtype, batched=t.ndim > 0)
        self.values[id(t)] = v
        self.keep.append(t)
        return v

    def array_value(self, a: np.ndarray) -> Value:
        """The Value of a plain array argument (a running statistic is a named buffer)."""
        v = self.values.get(id(a))
        if v is None:
            name = next((n for n, b in self.buffers if b is a), None)
            v = (Value(name, "buffer", a.shape, a.dtype, a) if name is not None else
                 Value(self._fresh("const"), "constant", a.shape, a.dtype, np.array(a)))
            self.values[id(a)] = v
            self.keep.append(a)
        return v

    def is_traced(self, obj) -> bool:
        """Whether a tensor depends on the input (made from it by recorded ops)."""
        return isinstance(obj, Tensor) and id(obj) in self.values and \
            self.values[id(obj)].kind in ("input", "op")

    def is_live(self, obj) -> bool:
        """Traced, or a parameter: ops on parameters are recorded too, so the
        parameters stay named initializers (LeNet-5's C3 pieces, a reshaped coefficient)."""
        return self.is_traced(obj) or (isinstance(obj, Tensor) and id(obj) in self.param_names)

    def where(self) -> tuple[str, str]:
        m = self.module_stack[-1]
        return self.paths.get(id(m), "?") or "(the model)", type(m).__name__

    # -- wrapping ----------------------------------------------------------------
    def wrap(self, fn: Callable, op: str) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def recorded(*args, **kwargs):
            if self.depth > 0:
                return fn(*args, **kwargs)
            self.depth += 1
            try:
                out = fn(*args, **kwargs)
            finally:
                self.depth -= 1
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            tensors = [a for a in leaves(bound.arguments) if isinstance(a, Tensor)]
            if not any(self.is_live(t) for t in tensors):
                return out                    # constants in, constant out: folded into the graph
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            if all(any(o is t for t in tensors) for o in outs):
                return out                    # the op returned its input as is (dropout in eval mode)
            args_ = _map(bound.arguments, self.value_of, self.array_value)
            out_values = []
            for o in outs:
                if self.is_traced(o):         # the op returned an input as is (dropout in eval mode)
                    out_values.append(self.values[id(o)])
                    continue
                v = Value(self._fresh(op), "op", o.shape, o.data.dtype)
                self.values[id(o)] = v
                self.keep.append(o)
                out_values.append(v)
            path, kind = self.where()
            self.records.append(OpRecord(op, args_, out_values, path, kind))
            _propagate_batch(self.records[-1])
            return out
        return recorded

    def check_from_op(self, parents, op):
        """Called for every Tensor.from_op: refuse untraced ops on traced values."""
        if self.depth == 0 and any(self.is_traced(p) for p in parents):
            path, kind = self.where()
            raise TraceError(f"cannot trace layer {path!r} ({kind}): its forward computes "
                             f"{op or 'an op'!r} with Tensor.from_op directly, an op the tracer "
                             "does not record; write it with striate.functional ops")


def leaves(obj):
    """Every value inside nested dicts, lists and tuples (a record's arguments), depth first."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from leaves(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from leaves(v)
    else:
        yield obj


def _map(obj, on_tensor, on_array):
    if isinstance(obj, dict):
        return {k: _map(v, on_tensor, on_array) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(v, on_tensor, on_array) for v in obj)
    if isinstance(obj, Tensor):
        return on_tensor(obj)
    if isinstance(obj, np.ndarray) and obj.ndim > 0 and obj.dtype.kind == "f":
        return on_array(obj)
    return obj


def _propagate_batch(record: OpRecord) -> None:
    """Mark outputs whose axis 0 is still the batch axis."""
    ins = [v for v in leaves(record.args) if isinstance(v, Value)]
    x = next((v for v in ins if v.batched), None)
    for out in record.outputs:
        if out.kind != "op":
            continue
        if x is None:                 # no batched input, no batched output
            out.batched = False
            continue
        keeps = True
        if record.op == "reshape":
            keeps = len(out.shape) > 0 and out.shape[0] == x.shape[0]
        elif record.op == "transpose":
            axes = record.args.get("axes")
            keeps = axes is not None and tuple(axes)[0] % len(x.shape) == 0
        elif record.op in ("sum", "mean", "max"):
            axis = record.args.get("axis")
            axes = range(len(x.shape)) if axis is None else np.atleast_1d(axis)
            keeps = all(int(a) % len(x.shape) != 0 for a in axes)
        elif record.op == "getitem":
            index = record.args["index"]
            first = index[0] if isinstance(index, tuple) and index else index
            keeps = (isinstance(first, slice) and first == slice(None)
                     or first is Ellipsis or (isinstance(index, tuple) and not index))
        elif record.op == "stack":
            keeps = int(record.args["axis"]) % len(out.shape) != 0
        elif record.op == "flatten":
            keeps = int(record.args["start_dim"]) % max(len(x.shape), 1) != 0
        elif record.op == "matmul":
            keeps = len(out.shape) > 1 and out.shape[0] == x.shape[0]
        out.batched = keeps


@contextlib.contextmanager
def _recording(tracer: _Tracer):
    patched = []
    for module, name, op in traced_functions():
        fn = getattr(module, name)
        patched.append((module, name, fn))
        setattr(module, name, tracer.wrap(fn, op))
    original_call = Module.__call__
    original_from_op = Tensor.__dict__["from_op"]

    def call(module, *args, **kwargs):
        tracer.module_stack.append(module)
        try:
            return original_call(module, *args, **kwargs)
        finally:
            tracer.module_stack.pop()

    def from_op(cls, data, parents, backward, op=""):
        tracer.check_from_op(parents, op)
        return original_from_op.__func__(cls, data, parents, backward, op)

    # Patched on the classes, like the functions above; setattr, since a method is not assignable
    # for the type checker (hence B010 is silenced on these four lines).
    setattr(Module, "__call__", call)  # noqa: B010
    setattr(Tensor, "from_op", classmethod(from_op))  # noqa: B010
    try:
        yield
    finally:
        setattr(Tensor, "from_op", original_from_op)  # noqa: B010
        setattr(Module, "__call__", original_call)  # noqa: B010
        for module, name, fn in reversed(patched):
            setattr(module, name, fn)


def trace(model: Module, example, input_name: str = "input") -> Graph:
    """Run ``model(example)`` once, in evaluation mode and without gradients, recording each op.

    The model's training mode is restored afterwards.

    Args:
        model: a ``striate.nn.Module`` taking one tensor.
        example: an array or Tensor, e.g. (N, C, H, W).

    Returns:
        a :class:`Graph`. Raises :class:`TraceError` when a layer computes something the
        tracer cannot record, or when the output does not depend on the input.
    """
    if not isinstance(model, Module):
        raise TypeError(f"trace expects a striate.nn.Module, got {type(model).__name__}")
    x = example if isinstance(example, Tensor) else Tensor(np.asarray(example, dtype=np.float32))
    tracer = _Tracer(model)
    x_value = tracer.add_input(x, input_name)
    with model.evaluating(), no_grad(), _recording(tracer):
        out = model(x)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    out_values = []
    for i, o in enumerate(outs):
        if not tracer.is_traced(o):
            raise TraceError(f"the output {i} of {type(model).__name__} does not depend on its input "
                             "through ops the tracer records (was it computed on .data or with NumPy?)")
        out_values.append(tracer.values[id(o)])
    return Graph([x_value], tracer.records, out_values, list(tracer.values.values()))
