"""From a traced forward to a list of steps: what ``st.compile`` does with a model.

1. Trace: run the model once on the example, in evaluation mode without gradients,
   recording every op (``striate.onnx.trace``: a flat list of op records). Dropout is
   the identity in evaluation, so it is not even recorded.
2. Plan, walking the records in order:

   * a ``conv2d`` becomes a :class:`~striate.compile.steps.ConvStep` that also takes what
     only it feeds: a batch norm in evaluation (folded into its weights and bias), an
     activation, a max pool (run on each block of the convolution's output while it is
     still in cache; the bias and activation then run on the pooled, smaller block);
     a convolution whose output only ops without a batch-last step read (the 1998
     LeNet-5's trainable subsampling) stays as in eager mode instead, in (N, K, OH, OW),
     rather than be made batch last and reordered back at once;
   * a ``linear`` takes its activation; ``flatten`` of a batch-last image is free;
   * pools, local response norm, activations, batch norm, residual adds and channel
     concatenations have their own steps on preallocated buffers;
   * every other op runs as in eager mode (an :class:`~striate.compile.steps.EagerStep`),
     so every model works.

   Each value gets a layout (see ``steps.py``): steps that can, keep images batch last;
   reorder steps are inserted only where a value moves between layouts.
3. Measure: planning runs the steps once on the example; each convolution is timed with
   every block size it could use (and with ``striate.functional.conv2d``, which has
   Winograd) and keeps the fastest. ``print(fast)`` shows the times. With
   ``measure=False`` nothing is timed: each convolution takes a fixed block size, so the
   plan depends only on the model and the input's shape.

The run that planning makes on the example is the answer to the call that made the plan;
the plan then keeps only its buffers.
"""
from __future__ import annotations

import inspect
import textwrap
import time
from collections import Counter
from typing import Any

import numpy as np

from ..functional.conv import conv_geometry
from ..nn.dropout import Dropout
from ..nn.module import Module
from ..onnx.trace import Graph, TraceError, Value, leaves, trace, traced_functions
from ..tensor import Tensor, no_grad
from ..threads import get_num_threads
from .steps import (
    AddStep,
    BatchNormStep,
    ConcatStep,
    ConvStep,
    EagerStep,
    LayoutStep,
    LinearStep,
    LRNStep,
    PoolGeometry,
    PoolStep,
    Source,
    Step,
    UnaryStep,
    ViewStep,
    activation,
    fmt_bytes,
    to_layout,
)

__all__ = ["Compiled", "Plan", "compile", "eager_forward"]

MAX_PLANS = 8          # plans kept per compiled model, one per input shape and dtype

# the ops with a step that reads an image batch last (CHWN): a convolution's output is
# made batch last only when one of these reads it
BATCH_LAST_READERS = frozenset({"conv2d", "max_pool2d", "avg_pool2d", "local_response_norm", "flatten",
                                "reshape", "relu", "scaled_tanh", "tanh", "sigmoid", "batch_norm", "add",
                                "concat"})


class _Ref:
    """A traced value in an eager step's arguments: the slot holding it in std layout."""

    def __init__(self, slot: int):
        self.slot = slot


def _map(obj, fn):
    if isinstance(obj, dict):
        return {k: _map(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(v, fn) for v in obj)
    return fn(obj)


def _traced(v) -> bool:
    return isinstance(v, Value) and v.kind in ("input", "op")


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    return int(v[0]), int(v[1])


class Plan:
    """The steps for one input shape and dtype. ``run(x)`` returns the model's output(s)."""

    def __init__(self, model: Module, example: Tensor, measure: bool = True, threads: int = 1):
        t0 = time.perf_counter()
        self.model = model
        self.shape, self.dtype = tuple(example.shape), example.data.dtype
        self.eager_only = ""
        self._example_output: Any = None
        self.steps: list[Step] = []
        self.notes: list[str] = []
        try:
            self.graph: Graph = trace(model, example)
        except (TraceError, ValueError) as exc:     # a forward the tracer cannot record: run it as it is
            if not isinstance(exc, TraceError) and not isinstance(exc.__cause__, TraceError):
                raise
            self.eager_only = str(exc)
            self.plan_seconds = time.perf_counter() - t0
            return
        self.functions = {op: getattr(module, attr) for module, attr, op in traced_functions()}
        self.owners = dict(model.named_modules())
        self.sources: dict[int, Source] = {}
        self.slots: dict[tuple[int, str], int] = {}          # (id(Value), layout) -> slot
        self.layout: dict[int, str] = {}                      # id(Value) -> layout it was made in
        self.owned: set[int] = set()                          # slots held in a step's own buffer
        self.n_slots = 0
        uses: Counter = Counter()
        for r in self.graph.records:
            for v in leaves(r.args):
                if _traced(v):
                    uses[id(v)] += 1
        for v in self.graph.outputs:
            uses[id(v)] += 1
        self.uses = uses
        self.users: dict[int, list[int]] = {}
        for i, r in enumerate(self.graph.records):
            for v in leaves(r.args):
                if _traced(v):
                    self.users.setdefault(id(v), []).append(i)
        dropouts = [name for name, m in model.named_modules() if isinstance(m, Dropout)]
        if dropouts:
            self.notes.append(f"dropout removed (the identity in evaluation): {', '.join(dropouts)}")
        x_value = self.graph.inputs[0]
        self.input_slot = self._new_slot(x_value, "std")
        env: list[Any] = [None] * 0
        self._env = env
        self._measure = measure
        self.threads = threads
        self._build(example.data)
        # planning ran every step on the example: keep its output (the answer to the call that made
        # this plan) and let go of the intermediates, which a later run makes afresh
        self._example_output = self._outputs(self._env)
        self._env = []
        self.plan_seconds = time.perf_counter() - t0

    # -- slots -------------------------------------------------------------------
    def _new_slot(self, value: Value, layout: str) -> int:
        slot = self.n_slots
        self.n_slots += 1
        self.slots[(id(value), layout)] = slot
        self.layout.setdefault(id(value), layout)
        return slot

    def _slot(self, value: Value, layout: str | None = None) -> int:
        """The slot of a traced value in ``layout`` (inserting a reorder step when needed)."""
        made = self.layout[id(value)]
        layout = layout or made
        key = (id(value), layout)
        if key not in self.slots:
            src = self.slots[(id(value), made)]
            shape = self._shape_in(value, layout)
            step = LayoutStep([src], -1, made, layout, shape, value.dtype)
            step.output = self._new_slot(value, layout)
            self._add(step)
        return self.slots[key]

    @staticmethod
    def _shape_in(value: Value, layout: str) -> tuple[int, ...]:
        s = tuple(value.shape)
        if layout == "CHWN":
            return s[1:] + s[:1]
        if layout == "CN":
            return (s[1], s[0])
        return s

    def _source(self, value: Value) -> Source:
        if id(value) not in self.sources:
            self.sources[id(value)] = Source(value, self.owners)
        return self.sources[id(value)]

    def _add(self, step: Step, measure=None) -> None:
        self.steps.append(step)
        if step.buffers.get("out") is not None or isinstance(step, (ConvStep, LayoutStep)):
            self.owned.add(step.output)
        env = self._env
        while len(env) < self.n_slots:
            env.append(None)
        if measure is not None:
            measure(env)
        with no_grad():
            step.run(env)

    def _sole_user(self, value: Value):
        """The one record reading ``value``, when it is read once and is not an output."""
        if self.uses[id(value)] != 1 or any(o is value for o in self.graph.outputs):
            return None
        users = self.users.get(id(value), [])
        return users[0] if len(users) == 1 else None

    # -- building ------------------------------------------------------------------
    def _build(self, x: np.ndarray) -> None:
        env = self._env
        env.append(x)
        records = self.graph.records
        self.done: set[int] = set()
        for i, rec in enumerate(records):
            if i in self.done:
                continue
            self.done.add(i)
            handler = getattr(self, f"_plan_{rec.op}", None)
            if handler is None or not handler(i, rec):
                self._plan_eager(rec)
        frozen = [f"{s.name} {tuple(s.constant.shape)}" for s in self.sources.values()
                  if s.kind == "constant" and s.constant is not None and s.constant.size > 1]
        if frozen:
            self.notes.append("constants fixed at trace time (computed outside the recorded ops): "
                              + ", ".join(frozen))
        self.output_slots = [(self.slots[(id(v), self.layout[id(v)])], self.layout[id(v)])
                             for v in self.graph.outputs]

    def _plan_eager(self, rec) -> bool:
        fn = self.functions[rec.op]
        signature = inspect.signature(fn)

        def template(v):
            if _traced(v):
                return _Ref(self._slot(v, "std"))
            if isinstance(v, Value):
                return self._source(v)
            return v
        args = _map(rec.args, template)
        inputs = [a.slot for a in leaves(args) if isinstance(a, _Ref)]
        outputs = []
        for o in rec.outputs:
            if (id(o), "std") in self.slots:
                outputs.append(self.slots[(id(o), "std")])
            else:
                outputs.append(self._new_slot(o, "std"))
        step = EagerStep(inputs, outputs, fn, signature, args, _resolve, rec.op)
        step.out_shape = tuple(rec.outputs[0].shape)
        step.modules = [rec.module]
        self._add(step)
        return True

    # conv2d, with batch norm, activation and pool fused
    def _plan_conv2d(self, i, rec) -> bool:
        a = rec.args
        x, w, b = a["x"], a["weight"], a["bias"]
        if not _traced(x) or len(x.shape) != 4 or _traced(w) or (w.kind == "op") or \
                (b is not None and (not isinstance(b, Value) or b.kind == "op")) or \
                a.get("algorithm", "auto") != "auto" or x.dtype != w.dtype:
            return False
        if self.layout[id(x)] not in ("std", "CHWN"):
            return False
        H, W = x.shape[2:]
        K, _, kh, kw = w.shape
        geo = conv_geometry("conv2d", (H, W), (kh, kw), a["stride"], a["padding"], a["dilation"], a["groups"])
        bn: dict | None = None
        act: tuple[str, Any] | None = None
        pool: PoolGeometry | None = None
        last = rec.outputs[0]
        modules = [rec.module]
        fused: set[int] = set()
        while True:
            j = self._sole_user(last)
            if j is None or j in self.done:
                break
            nxt = self.graph.records[j]
            na = nxt.args
            if nxt.op == "batch_norm" and bn is None and act is None and pool is None and self._bn_ok(na, last):
                bn = self._bn_dict(na)
            elif act is None and nxt.op in ("relu", "scaled_tanh", "tanh", "sigmoid") and \
                    activation(nxt.op, na) is not None and (pool is None or pool.kind == "max"):
                act = (nxt.op, activation(nxt.op, na))
            elif pool is None and nxt.op in ("max_pool2d", "avg_pool2d") and \
                    (nxt.op == "max_pool2d" or act is None):
                pool = self._pool_geometry(nxt, geo.out_size, fused=True)
                if pool is None:
                    break
            else:
                break
            self.done.add(j)
            fused.add(j)
            modules.append(nxt.module)
            last = nxt.outputs[0]
        in_layout = self.layout[id(x)]
        readers = [self.graph.records[j].op for j in self.users.get(id(last), [])]
        if in_layout == "std" and pool is None and readers and \
                not any(op in BATCH_LAST_READERS for op in readers):
            # only ops without a batch-last step read it: a batch-last output would be written
            # image by image into (K, OH, OW, N) and reordered back at once; eager keeps (N, K, OH, OW)
            self.done -= fused
            return False
        step = ConvStep([self._slot(x)], -1, in_layout, x.shape, geo, K, self._source(w),
                        None if b is None else self._source(b), x.dtype, bn=bn, act=act, pool=pool,
                        conv_fn=self.functions["conv2d"], padding_arg=a["padding"], threads=self.threads)
        step.output = self._new_slot(last, "CHWN")
        step.modules = modules
        if self._measure:
            def measure(env):
                return step.choose(env, can_eager=True)
        else:
            def measure(env):
                return step.set_block(step.default_block(), workers=step.threads)
        self._add(step, measure)
        return True

    def _bn_ok(self, na, x) -> bool:
        return (na["x"] is x and not na["training"] and isinstance(na["running_mean"], Value)
                and isinstance(na["running_var"], Value)
                and not any(_traced(na[k]) or (isinstance(na[k], Value) and na[k].kind == "op")
                            for k in ("running_mean", "running_var", "weight", "bias")))

    def _bn_dict(self, na) -> dict:
        def src(v):
            return None if v is None else self._source(v)
        return {"mean": src(na["running_mean"]), "var": src(na["running_var"]), "gamma": src(na["weight"]),
                "beta": src(na["bias"]), "eps": float(na["eps"])}

    def _pool_geometry(self, rec, in_hw, fused=False) -> PoolGeometry | None:
        a = rec.args
        kernel = _pair(a["kernel_size"])
        stride = kernel if a["stride"] is None else _pair(a["stride"])
        padding = _pair(a["padding"])
        if a.get("ceil_mode") or _pair(a.get("dilation", 1)) != (1, 1):
            return None
        if rec.op == "avg_pool2d" and (a.get("divisor_override") is not None or
                                        (any(padding) and not a.get("count_include_pad", True))):
            return None
        if fused and any(padding):
            return None
        return PoolGeometry("max" if rec.op == "max_pool2d" else "avg", kernel, stride, padding, in_hw)

    def _plan_pool(self, i, rec) -> bool:
        x = rec.args["x"]
        if not _traced(x) or self.layout[id(x)] != "CHWN":
            return False
        pool = self._pool_geometry(rec, tuple(x.shape[2:]))
        if pool is None:
            return False
        step = PoolStep([self._slot(x)], -1, pool, x.shape[1], x.shape[0], x.dtype)
        step.output = self._new_slot(rec.outputs[0], "CHWN")
        step.modules = [rec.module]
        self._add(step)
        return True

    _plan_max_pool2d = _plan_pool
    _plan_avg_pool2d = _plan_pool

    def _plan_local_response_norm(self, i, rec) -> bool:
        a = rec.args
        x = a["x"]
        if not _traced(x) or self.layout[id(x)] != "CHWN":
            return False
        step = LRNStep([self._slot(x)], -1, self._shape_in(x, "CHWN"), x.dtype, int(a["size"]),
                       float(a["alpha"]), float(a["beta"]), float(a["k"]))
        step.output = self._new_slot(rec.outputs[0], "CHWN")
        step.modules = [rec.module]
        self._add(step)
        return True

    def _plan_linear(self, i, rec) -> bool:
        a = rec.args
        x, w, b = a["x"], a["weight"], a["bias"]
        if not _traced(x) or len(x.shape) != 2 or not isinstance(w, Value) or w.kind in ("input", "op") or \
                (b is not None and (not isinstance(b, Value) or b.kind in ("input", "op"))):
            return False
        layout = "CN" if self.layout[id(x)] == "CN" else "std"
        act = None
        last = rec.outputs[0]
        modules = [rec.module]
        j = self._sole_user(last)
        if j is not None and j not in self.done:
            nxt = self.graph.records[j]
            if nxt.op in ("relu", "scaled_tanh", "tanh", "sigmoid") and activation(nxt.op, nxt.args):
                act = (nxt.op, activation(nxt.op, nxt.args))
                self.done.add(j)
                modules.append(nxt.module)
                last = nxt.outputs[0]
        step = LinearStep([self._slot(x, layout)], -1, layout, x.shape[0], self._source(w),
                          None if b is None else self._source(b), w.shape[0], x.dtype, act)
        step.output = self._new_slot(last, layout)
        step.modules = modules
        self._add(step)
        return True

    def _plan_flatten(self, i, rec) -> bool:
        a = rec.args
        x = a["x"]
        if not _traced(x) or len(x.shape) != 4 or self.layout[id(x)] != "CHWN" or \
                int(a["start_dim"]) != 1 or int(a["end_dim"]) not in (-1, 3):
            return False
        N = x.shape[0]
        step = ViewStep([self._slot(x)], -1, "CN", (int(np.prod(x.shape[1:])), N))
        step.output = self._new_slot(rec.outputs[0], "CN")
        step.modules = [rec.module]
        self._add(step)
        return True

    def _plan_reshape(self, i, rec) -> bool:
        """reshape (N, C, H, W) -> (N, C·H·W) is flatten (what an imported graph has)."""
        x, out = rec.args["a"], rec.outputs[0]
        if not _traced(x) or len(x.shape) != 4 or self.layout[id(x)] != "CHWN" or \
                tuple(out.shape) != (x.shape[0], int(np.prod(x.shape[1:]))):
            return False
        step = ViewStep([self._slot(x)], -1, "CN", (out.shape[1], out.shape[0]))
        step.output = self._new_slot(out, "CN")
        step.modules = [rec.module]
        self._add(step)
        return True

    def _plan_unary(self, i, rec) -> bool:
        x = rec.args["x"]
        fn = activation(rec.op, rec.args)
        if not _traced(x) or fn is None:
            return False
        layout = self.layout[id(x)]
        src = self._slot(x)
        in_place = src in self.owned and self._sole_user(x) == i
        step = UnaryStep([src], -1, layout, self._shape_in(x, layout), x.dtype, fn, rec.op, in_place)
        step.output = self._new_slot(rec.outputs[0], layout)
        step.modules = [rec.module]
        self._add(step)
        if in_place:
            self.owned.add(step.output)
        return True

    _plan_relu = _plan_unary
    _plan_scaled_tanh = _plan_unary
    _plan_tanh = _plan_unary
    _plan_sigmoid = _plan_unary

    def _plan_batch_norm(self, i, rec) -> bool:
        a = rec.args
        x = a["x"]
        if not _traced(x) or not self._bn_ok(a, x) or len(x.shape) not in (2, 4):
            return False
        layout = self.layout[id(x)]
        src = self._slot(x)
        in_place = src in self.owned and self._sole_user(x) == i
        step = BatchNormStep([src], -1, layout, self._shape_in(x, layout), x.dtype, self._bn_dict(a), in_place)
        step.output = self._new_slot(rec.outputs[0], layout)
        step.modules = [rec.module]
        self._add(step)
        if in_place:
            self.owned.add(step.output)
        return True

    def _plan_add(self, i, rec) -> bool:
        a, b = rec.args["a"], rec.args["b"]
        if not (_traced(a) and _traced(b)) or tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
            return False
        la, lb = self.layout[id(a)], self.layout[id(b)]
        layout = la if la == lb else "std"
        step = AddStep([self._slot(a, layout), self._slot(b, layout)], -1, layout,
                       self._shape_in(a, layout), a.dtype)
        step.output = self._new_slot(rec.outputs[0], layout)
        step.modules = [rec.module]
        self._add(step)
        return True

    def _plan_concat(self, i, rec) -> bool:
        xs, axis = rec.args["xs"], rec.args["axis"]
        if not all(_traced(v) and len(v.shape) == 4 for v in xs) or int(axis) % 4 != 1:
            return False
        if any(self.layout[id(v)] != "CHWN" for v in xs):
            return False
        out = rec.outputs[0]
        step = ConcatStep([self._slot(v) for v in xs], -1, "CHWN", self._shape_in(out, "CHWN"), out.dtype, 0)
        step.output = self._new_slot(out, "CHWN")
        step.modules = [rec.module]
        self._add(step)
        return True

    # -- running -------------------------------------------------------------------
    def run(self, x: np.ndarray):
        if self.eager_only:
            return self._run_eager(x)
        env: list[Any] = [None] * self.n_slots
        env[self.input_slot] = x
        with no_grad():
            for step in self.steps:
                step.run(env)
        return self._outputs(env)

    def _outputs(self, env: list):
        outs = [Tensor(to_layout(env[slot], layout, "std"), dtype=self.dtype if env[slot].dtype == self.dtype
                       else env[slot].dtype) for slot, layout in self.output_slots]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def take_example_output(self):
        """The output of the run that planning made on its example, once (None after that, and for
        a plan that runs eagerly as a whole)."""
        out, self._example_output = self._example_output, None
        return out

    def _run_eager(self, x: np.ndarray):
        return eager_forward(self.model, Tensor(x, dtype=x.dtype))

    def profile(self, x: np.ndarray, repeats: int = 10) -> list[tuple[str, float]]:
        """(step label, median seconds) for each step, running the plan ``repeats`` times on x."""
        if self.eager_only:
            return []
        times: list[list[float]] = [[] for _ in self.steps]
        for _ in range(repeats):
            env: list[Any] = [None] * self.n_slots
            env[self.input_slot] = x
            with no_grad():
                for k, step in enumerate(self.steps):
                    t0 = time.perf_counter()
                    step.run(env)
                    times[k].append(time.perf_counter() - t0)
        return [(s.label(), float(np.median(t))) for s, t in zip(self.steps, times)]

    # -- reading -------------------------------------------------------------------
    def buffer_bytes(self) -> int:
        return sum(s.buffer_bytes() for s in self.steps)

    def describe(self) -> str:
        if self.eager_only:
            return (f"plan for input {self.shape} {self.dtype}: the whole forward in eager mode "
                    f"(under no_grad, in evaluation mode), since it cannot be traced: {self.eager_only}")
        lines = [(f"plan for input {self.shape} {self.dtype}: {len(self.steps)} steps from "
                  f"{len(self.graph.records)} traced ops, buffers {fmt_bytes(self.buffer_bytes())}, "
                  f"planned in {self.plan_seconds * 1e3:.0f} ms")]
        lines.append("  layouts: std = as eager, (N, C, H, W) or (N, F); CHWN and CN = batch last, "
                     "(C, H, W, N) and (F, N)")
        lines += [f"  {note}" for note in self.notes]
        for k, s in enumerate(self.steps, 1):
            where = ", ".join(m or "(model)" for m in dict.fromkeys(s.modules)) if s.modules else ""
            lines.append(f"  {k:>2}. {s.label():<58} {s.out_shape!s:<18} {s.out_layout:<4}"
                         + (f"  [{where}]" if where else ""))
            if isinstance(s, ConvStep):
                fused = []
                if s.bn:
                    fused.append("batch norm folded into the weights and bias (recomputed each call)")
                if s.pool and (s.bias is not None or s.bn or s.act):
                    fused.append("pool run on each block in cache; bias"
                                 + (" and " + s.act[0] if s.act else "") + " after it, on the 1/"
                                 f"{s.pool.kernel[0] * s.pool.kernel[1] if s.pool.stride == s.pool.kernel else 1}"
                                 "-size pooled block (max commutes with them)" if s.pool.kind == "max" else
                                 "pool on each block in cache")
                elif s.act or s.bias is not None:
                    fused.append("bias" + (" and " + s.act[0] if s.act else "") + " in place on the block's product")
                for f in fused:
                    lines.append(f"        fused: {f}")
                chosen = s._name(s.algorithm, s.n, s.rows, s.workers)
                lines.append(f"        algorithm: {chosen}" + (", the fastest measured:" if s.timings else ""))
                times = "; ".join(f"{name} {t * 1e3:.2f} ms" + (" ←" if name == chosen else "")
                                  for name, t in s.timings.items())
                lines += textwrap.wrap(times, 110, initial_indent=" " * 10, subsequent_indent=" " * 10)
            if s.buffers:
                lines.append("        buffers: " + ", ".join(f"{name} {fmt_bytes(a.nbytes)}"
                                                          for name, a in s.buffers.items()))
        return "\n".join(lines)


def eager_forward(model: Module, x: Tensor):
    """``model(x)`` op by op, in evaluation mode under ``no_grad``; each module's mode is put back after."""
    with model.evaluating(), no_grad():
        return model(x)


def _resolve(v, env):
    if isinstance(v, _Ref):
        a = env[v.slot]
        return Tensor(a, dtype=a.dtype)
    if isinstance(v, Source):
        return v.tensor()
    if isinstance(v, (list, tuple)):
        return type(v)(_resolve(u, env) for u in v)
    if isinstance(v, dict):
        return {k: _resolve(u, env) for k, u in v.items()}
    return v


class Compiled:
    """``st.compile(model)``: call it like the model, for inference.

    Plans once per input shape and dtype (the plans are kept, up to ``MAX_PLANS``);
    always reads the model's current parameters and buffers.
    """

    def __init__(self, model: Module, measure: bool = True, threads: int | None = None):
        if not isinstance(model, Module):
            raise TypeError(f"compile expects a striate.nn.Module, got {type(model).__name__}")
        self.model = model
        self.measure = measure
        if threads not in (None, 1, 2):
            raise ValueError(f"compile: threads must be None, 1 or 2, got {threads!r}")
        self.threads = threads
        self.plans: dict[tuple, Plan] = {}
        self.last: Plan | None = None

    @staticmethod
    def _input(x) -> Tensor:
        """x as the models take it: a Tensor as is, anything else as a float32 Tensor."""
        return x if isinstance(x, Tensor) else Tensor(x)

    def plan_for(self, x) -> Plan:
        return self.planned(x)[0]

    def planned(self, x) -> tuple[Plan, Any]:
        """The plan for x's shape and dtype; and x's output when that plan was made just now
        (planning ran every step on x: that run is the answer), else None."""
        t = self._input(x)
        key = (tuple(t.shape), t.data.dtype.str)
        plan = self.plans.get(key)
        if plan is not None:
            return plan, None
        threads = self.threads if self.threads is not None else min(get_num_threads(), 2)
        plan = Plan(self.model, t, measure=self.measure, threads=threads)
        if len(self.plans) >= MAX_PLANS:
            self.plans.pop(next(iter(self.plans)))
        self.plans[key] = plan
        return plan, plan.take_example_output()

    def __call__(self, x):
        t = self._input(x)
        plan, out = self.planned(t)
        self.last = plan
        return out if out is not None else plan.run(t.data)

    def profile(self, x, repeats: int = 10) -> list[tuple[str, float]]:
        """Per-step times of the plan for x (see :meth:`Plan.profile`)."""
        t = self._input(x)
        return self.plan_for(t).profile(t.data, repeats)

    def __repr__(self) -> str:
        head = f"compiled {type(self.model).__name__}"
        if not self.plans:
            return head + " (not planned yet: it plans at its first call, for that input's shape and dtype)"
        return head + "\n" + "\n".join(p.describe() for p in self.plans.values())


def compile(model: Module, measure: bool = True, threads: int | None = None) -> Compiled:
    """A callable that runs ``model``'s forward for inference, planned for speed.

    ``fast = compile(model)``; ``fast(x)`` equals ``model.eval()`` under ``no_grad()``
    applied to ``x`` (within float32 rounding) and ``print(fast)`` shows the plan.
    ``measure=False`` skips timing the convolution algorithms (a fixed block size).
    ``threads``: 2 lets a convolution's blocks be shared by two of striate's threads
    (``st.set_num_threads``), each half with its own buffers; measured against one thread
    when ``measure``, taken where the batch has two blocks or more when not. None (the
    default): 2 when striate has two threads or more, else 1. A block is computed the
    same way by either thread, so the result does not depend on it.
    """
    return Compiled(model, measure, threads)
