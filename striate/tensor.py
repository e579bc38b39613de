"""Tensor and reverse-mode automatic differentiation.

A :class:`Tensor` wraps an array (``.data``), and, when it was made by an op
that needs gradients, remembers its parents and a ``backward`` closure that maps
the gradient of the output to the gradients of the parents.
``loss.backward()`` sorts the graph topologically (iteratively, so a chain of
thousands of layers is fine) and walks it in reverse, summing the gradients of
a tensor used more than once (skip connections, branches).

The elementary arithmetic lives here too, each op with its forward and its
backward side by side::

    out = a * b        backward:  da = g * b,  db = g * a   (then unbroadcast)

Everything bigger (convolution, pooling, normalisation, losses) is in
:mod:`striate.functional`, written the same way.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Union, cast

import numpy as np
import numpy.typing as npt

__all__ = [
    "Tensor", "tensor", "as_tensor", "no_grad", "enable_grad", "is_grad_enabled",
    "array_module", "unbroadcast", "DEFAULT_DTYPE", "TensorLike", "Gradients",
]

#: What ops accept as data: a Tensor, or anything NumPy makes an array of (arrays, lists, numbers).
TensorLike = Union["Tensor", npt.ArrayLike]
#: What an op's backward returns: dL/d(input) for each input, None where none is needed.
Gradients = tuple[np.ndarray | None, ...]

DEFAULT_DTYPE = np.float32
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# ---------------------------------------------------------------------------
# grad mode


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when ops record the graph for backward (the default)."""
    return _grad_mode.enabled


@contextlib.contextmanager
def _set_grad_enabled(mode: bool) -> Iterator[None]:
    previous = _grad_mode.enabled
    _grad_mode.enabled = mode
    try:
        yield
    finally:
        _grad_mode.enabled = previous


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: ops inside record no graph (inference, optimizer steps).

    The previous mode is restored on exit, also when the body raises.
    """
    return _set_grad_enabled(False)


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: turn graph recording back on inside a ``no_grad`` block."""
    return _set_grad_enabled(True)


# ---------------------------------------------------------------------------
# array helpers


def array_module(*arrays: object) -> Any:
    """The array library the arrays belong to: NumPy today.

    Ops call ``xp = array_module(x.data)`` and write ``xp.zeros(...)`` so that a
    GPU array library with NumPy's interface (CuPy) can be added without
    rewriting them.
    """
    for a in arrays:
        if isinstance(a, Tensor):
            a = a.data
        if type(a) is np.ndarray:            # the common case, answered without string work
            continue
        module = type(a).__module__.split(".")[0]
        if module == "cupy":  # pragma: no cover - no GPU array library in the test suite
            import cupy
            return cupy
    return np


def _to_array(data: TensorLike, dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """Convert data to an ndarray of a supported dtype (float32 unless told)."""
    if isinstance(data, Tensor):
        data = data.data
    xp = array_module(data)
    if dtype is None:
        dtype = DEFAULT_DTYPE
    dtype = np.dtype(dtype)
    if dtype.kind not in "fiub":
        raise TypeError(f"Tensor dtype must be a float, integer or bool type, got {dtype}")
    if dtype.kind == "f" and dtype not in _FLOAT_DTYPES:
        raise TypeError(f"Tensor supports float32 (the default) and float64, got {dtype}")
    try:
        arr = xp.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"Tensor expects an array-like of numbers, got {type(data).__name__}: {exc}") from None
    return arr


def unbroadcast(grad: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


# ---------------------------------------------------------------------------
# Tensor


class Tensor:
    """An array with an optional gradient.

    Args:
        data: array-like. Stored as float32 unless ``dtype`` says otherwise
            (float64 for gradient checks; integer dtypes for labels and indices).
        requires_grad: whether ``backward`` should compute ``.grad`` for it.
        dtype: optional NumPy dtype.

    In arithmetic a number or array takes the tensor's dtype, so ``t * 0.5``,
    ``t * np.float64(2)`` and ``t + float64_array`` stay float32 for a float32
    ``t``; every gradient has its tensor's shape and dtype. ``Tensor.max`` and
    the other reductions follow NumPy (``axis``, ``keepdims``; ``max`` returns
    values only, like ``torch.amax``).

    Example:
        >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        array([[2., 4.],
               [6., 8.]], dtype=float32)
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op",
                 "_is_leaf", "_retains_grad", "_freed", "__weakref__")
    # ``ndarray (op) Tensor`` and ``np.float64(2) * Tensor`` defer to Tensor's
    # reflected ops, and NumPy ufuncs refuse Tensors (``np.exp(t)`` would drop the
    # graph without a word): call ``t.exp()``, or ``np.exp(t.data)`` for a plain array.
    __array_ufunc__ = None

    def __init__(self, data: TensorLike, requires_grad: bool = False, dtype: npt.DTypeLike | None = None):
        self.data = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only float tensors can require gradients, got dtype {self.data.dtype}")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Callable[..., Any] | None = None
        self._op = ""
        self._is_leaf = True
        self._retains_grad = False
        self._freed = False

    @classmethod
    def from_op(cls, data: Any, parents: Sequence[Tensor], backward: Callable[..., Any] | None,
                op: str = "") -> Tensor:
        """Make the output of an op.

        ``backward(g)`` receives dL/d(output) (same shape as ``data``) and returns
        one gradient per parent (``None`` for a parent that needs none). The graph
        is recorded only when grad mode is on and some parent requires a gradient.
        """
        out = cls.__new__(cls)
        if not isinstance(data, np.ndarray) and array_module(data) is np:
            data = np.asarray(data)
        out.data = data
        out.grad = None
        out._op = op
        out._retains_grad = False
        out._freed = False
        if _grad_mode.enabled and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = tuple(parents)
            out._backward = backward
            out._is_leaf = False
        else:
            out.requires_grad = False
            out._parents = ()
            out._backward = None
            out._is_leaf = True
        return out

    # -- views of the data ---------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._is_leaf

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The underlying array (not a copy)."""
        return self.data

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        # np.asarray(t) gives the data (no gradient), for plotting and saving.
        return np.array(self.data, dtype=dtype, copy=copy)

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def _repr_html_(self) -> str:
        """How a notebook shows a tensor: shape, dtype and gradient state above its values
        (a table for a matrix of up to 16×16 once leading 1-axes are dropped, NumPy's text otherwise)."""
        import html
        a = np.asarray(self.data)
        facts = [f"shape {tuple(a.shape)}", str(a.dtype)]
        if self.requires_grad:
            facts.append("requires_grad" + (f", made by {self._op}" if self._op else ""))
        if self.grad is not None:
            facts.append("grad set")
        head = f"<b>Tensor</b> <span style='color:gray'>{html.escape(', '.join(facts))}</span>"
        m = a.reshape(a.shape[a.ndim - 2:]) if a.ndim >= 2 and a.size == a.shape[-2] * a.shape[-1] else a
        if 1 <= m.ndim <= 2 and a.size and all(d <= 16 for d in m.shape):
            rows = np.atleast_2d(m)
            cell = "<td style='text-align:right;font-family:monospace;padding:1px 6px'>{}</td>"
            body = "".join("<tr>" + "".join(cell.format(html.escape(f"{v:.4g}" if a.dtype.kind == "f" else str(v)))
                                            for v in row) + "</tr>" for row in rows)
            return f"{head}<table style='border-collapse:collapse'>{body}</table>"
        return f"{head}<pre>{html.escape(np.array2string(a, separator=', ', threshold=200))}</pre>"

    def detach(self) -> Tensor:
        """The same data, cut from the graph (no gradient flows through it)."""
        return Tensor.from_op(self.data, (), None, "detach")

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after ``backward``."""
        self._retains_grad = True

    def zero_grad(self) -> None:
        self.grad = None

    def astype(self, dtype: npt.DTypeLike) -> Tensor:
        """A copy converted to another float dtype (gradients convert back)."""
        src = self.dtype
        return Tensor.from_op(self.data.astype(dtype), (self,),
                              lambda g: (g.astype(src),), "astype")

    def __repr__(self) -> str:
        body = np.array2string(np.asarray(self.data), separator=", ", prefix="Tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.dtype != DEFAULT_DTYPE:
            extra += f", dtype={self.dtype}"
        return f"Tensor({body}{extra})"

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError("the truth value of a tensor with more than one element is ambiguous")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __hash__(self) -> int:
        return id(self)

    # -- autograd ------------------------------------------------------------
    def backward(self, grad: TensorLike | None = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) · grad into ``.grad`` of every leaf that requires it.

        Args:
            grad: the upstream gradient, same shape as ``self``; may be omitted
                for a one-element tensor (a loss), where it is 1.
            retain_graph: keep the graph so that backward can run through it again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(no input had requires_grad=True, or it was made under no_grad())")
        xp = array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element tensor, "
                                   f"got shape {self.shape}; pass grad= of that shape")
            root = xp.ones_like(self.data)
        else:
            root = _to_array(grad, self.dtype)
            if root.shape != self.shape:
                raise ValueError(f"backward() expects grad of shape {self.shape}, got {root.shape}")

        order = _topological_order(self)
        grads: dict[int, np.ndarray] = {id(self): root}
        del grad, root                # the root gradient lives on in ``grads`` only
        for node in order:
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._is_leaf or node._retains_grad:
                node._accumulate(g)
                if node._is_leaf:
                    continue
            if node._freed or node._backward is None:
                raise RuntimeError("backward through a graph that was already freed; "
                                   "call backward(retain_graph=True) the first time")
            parent_grads = node._backward(g)
            del g
            if len(parent_grads) != len(node._parents):
                raise RuntimeError(f"op {node._op!r} returned {len(parent_grads)} gradients "
                                   f"for {len(node._parents)} inputs")
            pg = None
            for parent, pg in zip(node._parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                if not isinstance(pg, xp.ndarray):   # a NumPy scalar from 0-d arithmetic
                    pg = xp.asarray(pg)
                if pg.shape != parent.shape:
                    raise RuntimeError(f"op {node._op!r} returned a gradient of shape {pg.shape} "
                                       f"for an input of shape {parent.shape}")
                if pg.dtype != parent.dtype:
                    # float32 meeting float64 computes in float64; the float32
                    # branch of the graph goes on in float32.
                    pg = pg.astype(parent.dtype)
                key = id(parent)
                if key in grads:
                    grads[key] = grads[key] + pg
                else:
                    grads[key] = pg
            del parent_grads, pg      # so that ``grads`` holds the only reference
            if not retain_graph:
                node._backward = None
                node._parents = ()
                node._freed = True

    def _accumulate(self, g: np.ndarray) -> None:
        if self.grad is None:
            # A copy: the same array may be handed to several tensors (a + b)
            # or be an op's saved output, and optimizers update .grad in place.
            self.grad = array_module(g).array(g, dtype=self.dtype, copy=True)
        else:
            self.grad += g

    # -- arithmetic (forward and backward side by side) ------------------------
    def __add__(self, other: TensorLike) -> Tensor:
        return add(self, other)

    def __radd__(self, other: TensorLike) -> Tensor:
        return add(other, self)

    def __sub__(self, other: TensorLike) -> Tensor:
        return sub(self, other)

    def __rsub__(self, other: TensorLike) -> Tensor:
        return sub(other, self)

    def __mul__(self, other: TensorLike) -> Tensor:
        return mul(self, other)

    def __rmul__(self, other: TensorLike) -> Tensor:
        return mul(other, self)

    def __truediv__(self, other: TensorLike) -> Tensor:
        return div(self, other)

    def __rtruediv__(self, other: TensorLike) -> Tensor:
        return div(other, self)

    def __matmul__(self, other: TensorLike) -> Tensor:
        return matmul(self, other)

    def __rmatmul__(self, other: TensorLike) -> Tensor:
        return matmul(other, self)

    def __pow__(self, exponent: float) -> Tensor:
        return power(self, exponent)

    def __rpow__(self, base: TensorLike) -> Tensor:
        return rpower(base, self)

    def __neg__(self) -> Tensor:
        return neg(self)

    def __getitem__(self, index: Any) -> Tensor:
        return getitem(self, index)

    # comparisons give plain boolean arrays (no gradient)
    def __lt__(self, other: TensorLike) -> np.ndarray:
        return self.data < _data(other)

    def __le__(self, other: TensorLike) -> np.ndarray:
        return self.data <= _data(other)

    def __gt__(self, other: TensorLike) -> np.ndarray:
        return self.data > _data(other)

    def __ge__(self, other: TensorLike) -> np.ndarray:
        return self.data >= _data(other)

    # -- reductions and shape ------------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return sum_(self, axis, keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return mean(self, axis, keepdims)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return max_(self, axis, keepdims)

    def argmax(self, axis: int | None = None) -> Any:
        return self.data.argmax(axis=axis)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """``t.reshape(2, 3)`` or ``t.reshape((2, 3))``."""
        first = shape[0] if len(shape) == 1 else None
        dims = tuple(first) if isinstance(first, (tuple, list)) else cast("tuple[int, ...]", shape)
        return reshape(self, dims)

    def view(self, *shape: int | Sequence[int]) -> Tensor:
        return self.reshape(*shape)

    def flatten(self, start_dim: int = 0) -> Tensor:
        return reshape(self, self.shape[:start_dim] + (-1,))

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """``t.transpose(1, 0)`` or ``t.transpose((1, 0))``; none reverses the axes."""
        first = axes[0] if len(axes) == 1 else None
        order = tuple(first) if isinstance(first, (tuple, list)) else cast("tuple[int, ...]", axes)
        return transpose(self, order or None)

    def permute(self, *axes: int | Sequence[int]) -> Tensor:
        return self.transpose(*axes)

    @property
    def T(self) -> Tensor:
        return transpose(self, None)

    def exp(self) -> Tensor:
        return exp(self)

    def log(self) -> Tensor:
        return log(self)

    def sqrt(self) -> Tensor:
        return power(self, 0.5)

    def abs(self) -> Tensor:
        return abs_(self)


def tensor(data: TensorLike, requires_grad: bool = False, dtype: npt.DTypeLike | None = None) -> Tensor:
    """Same as ``Tensor(data, requires_grad, dtype)``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(x: TensorLike, dtype: npt.DTypeLike | None = None) -> Tensor:
    """``x`` itself if it is a Tensor, else a new constant Tensor.

    A float ndarray keeps its dtype (float32 or float64); anything else becomes float32.
    """
    if isinstance(x, Tensor):
        return x
    if dtype is None and hasattr(x, "dtype") and np.dtype(x.dtype) in _FLOAT_DTYPES:
        dtype = x.dtype
    return Tensor(x, dtype=dtype)


def _data(x: TensorLike) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _constant_like(x: Any, t: Tensor) -> Tensor:
    """A number or array meeting Tensor ``t`` in arithmetic, as a constant Tensor.

    Against a float tensor it takes that tensor's dtype, whatever it was
    (``t * np.float64(2)`` and ``t + float64_array`` stay float32); against an
    integer tensor, integers stay integers and floats become float32.
    """
    if t.dtype.kind == "f":
        return Tensor(x, dtype=t.dtype)
    x = array_module(x).asarray(x)
    return Tensor(x, dtype=x.dtype if x.dtype.kind in "iub" else None)


def _pair_operands(a: TensorLike, b: TensorLike) -> tuple[Tensor, Tensor]:
    """Make both operands Tensors of one dtype family.

    Numbers and arrays take the tensor's dtype; an integer tensor meeting a
    float tensor is converted to the float's dtype (it cannot need a gradient).
    Two float tensors of different precision follow NumPy (float64), and the
    gradients are converted back to each input's dtype by ``backward``.
    """
    if not isinstance(a, Tensor):
        a = _constant_like(a, b) if isinstance(b, Tensor) else as_tensor(a)
    if not isinstance(b, Tensor):
        b = _constant_like(b, a)
    if a.dtype.kind == "f" and b.dtype.kind != "f":
        b = Tensor(b.data, dtype=a.dtype)
    elif b.dtype.kind == "f" and a.dtype.kind != "f":
        a = Tensor(a.data, dtype=b.dtype)
    return a, b


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from root that require grad, root first (iterative DFS)."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


# ---------------------------------------------------------------------------
# elementwise arithmetic; ``g`` is dL/d(out) throughout


def add(a: TensorLike, b: TensorLike) -> Tensor:
    """out = a + b (broadcasting)."""
    a, b = _pair_operands(a, b)

    def backward(g: np.ndarray) -> Gradients:
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)
    return Tensor.from_op(a.data + b.data, (a, b), backward, "add")


def sub(a: TensorLike, b: TensorLike) -> Tensor:
    """out = a - b (broadcasting)."""
    a, b = _pair_operands(a, b)

    def backward(g: np.ndarray) -> Gradients:
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)
    return Tensor.from_op(a.data - b.data, (a, b), backward, "sub")


def mul(a: TensorLike, b: TensorLike) -> Tensor:
    """out = a * b (broadcasting)."""
    a, b = _pair_operands(a, b)

    def backward(g: np.ndarray) -> Gradients:
        da = unbroadcast(g * b.data, a.shape) if a.requires_grad else None
        db = unbroadcast(g * a.data, b.shape) if b.requires_grad else None
        return da, db
    return Tensor.from_op(a.data * b.data, (a, b), backward, "mul")


def div(a: TensorLike, b: TensorLike) -> Tensor:
    """out = a / b (broadcasting)."""
    a, b = _pair_operands(a, b)
    out = a.data / b.data

    def backward(g: np.ndarray) -> Gradients:
        da = unbroadcast(g / b.data, a.shape) if a.requires_grad else None   # 1/b
        db = unbroadcast(-g * out / b.data, b.shape) if b.requires_grad else None   # -a/b²
        return da, db
    return Tensor.from_op(out, (a, b), backward, "div")


def neg(a: TensorLike) -> Tensor:
    """out = -a."""
    a = as_tensor(a)
    return Tensor.from_op(-a.data, (a,), lambda g: (-g,), "neg")


def power(a: TensorLike, exponent: float) -> Tensor:
    """out = a ** exponent, for a constant exponent (a number)."""
    a = as_tensor(a)
    if isinstance(exponent, Tensor) or np.ndim(exponent) != 0:
        raise TypeError("power() takes a constant number as exponent, "
                        f"got {type(exponent).__name__}; use exp(log(a) * b) for a tensor exponent")
    p = float(exponent)
    out = a.data ** a.dtype.type(p)

    def backward(g: np.ndarray) -> Gradients:
        if p == 0:   # a^0 = 1 everywhere; p·a^(p-1) would give 0·inf = nan at a = 0
            return (array_module(g).zeros_like(a.data),)
        return (g * (p * a.data ** a.dtype.type(p - 1)),)   # p·a^(p-1)
    return Tensor.from_op(out, (a,), backward, "pow")


def rpower(base: TensorLike, a: TensorLike) -> Tensor:
    """out = base ** a, for a constant positive base (a number): ``2 ** t``."""
    a = as_tensor(a)
    if isinstance(base, Tensor) or np.ndim(base) != 0:
        raise TypeError(f"base ** tensor takes a constant number as base, got {type(base).__name__}")
    xp = array_module(a.data)
    base = a.dtype.type(base)
    out = xp.power(base, a.data)

    def backward(g: np.ndarray) -> Gradients:
        return (g * out * xp.log(base),)   # ln(base)·base^a
    return Tensor.from_op(out, (a,), backward, "rpow")


def exp(a: TensorLike) -> Tensor:
    """out = e^a."""
    a = as_tensor(a)
    xp = array_module(a.data)
    out = xp.exp(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g * out,), "exp")


def log(a: TensorLike) -> Tensor:
    """out = ln a."""
    a = as_tensor(a)
    xp = array_module(a.data)
    return Tensor.from_op(xp.log(a.data), (a,), lambda g: (g / a.data,), "log")


def abs_(a: TensorLike) -> Tensor:
    """out = |a|; the gradient at 0 is 0."""
    a = as_tensor(a)
    xp = array_module(a.data)
    return Tensor.from_op(xp.abs(a.data), (a,), lambda g: (g * xp.sign(a.data),), "abs")


def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    """out = a @ b with NumPy's rules (1-D operands, batched stacks broadcast)."""
    a, b = _pair_operands(a, b)
    xp = array_module(a.data)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs operands with at least 1 dimension, got {a.shape} @ {b.shape}")
    k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if a.shape[-1] != k_b:
        raise ValueError(f"matmul: the last axis of a ({a.shape[-1]}) must match "
                         f"{'the second-to-last' if b.ndim > 1 else 'the length'} of b ({k_b}), "
                         f"got {a.shape} @ {b.shape}")
    out = xp.matmul(a.data, b.data)

    def backward(g: np.ndarray) -> Gradients:
        A = a.data[None, :] if a.ndim == 1 else a.data      # (..., n, k)
        B = b.data[:, None] if b.ndim == 1 else b.data      # (..., k, m)
        # Give g back the axes that 1-D operands dropped: (..., n, m). The m axis
        # first, so that 1-D @ 1-D (g of shape ()) becomes (1, 1).
        G = g
        if b.ndim == 1:
            G = G[..., None]
        if a.ndim == 1:
            G = xp.expand_dims(G, -2)
        da = db = None
        if a.requires_grad:
            da = xp.matmul(G, xp.swapaxes(B, -1, -2))         # (..., n, k)
            da = unbroadcast(da, A.shape).reshape(a.shape)
        if b.requires_grad:
            db = xp.matmul(xp.swapaxes(A, -1, -2), G)         # (..., k, m)
            db = unbroadcast(db, B.shape).reshape(b.shape)
        return da, db
    return Tensor.from_op(out, (a, b), backward, "matmul")


# ---------------------------------------------------------------------------
# reductions


def _norm_axes(axis: int | Sequence[int] | None, ndim: int, op: str = "reduction") -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple, negatives allowed) as sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ValueError(f"{op}: axis {ax} is out of range for a tensor with {ndim} dimensions")
    normed = sorted(int(ax) % ndim for ax in axes)
    if len(set(normed)) != len(normed):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(normed)


def _expand_reduced(g: np.ndarray, axes: tuple[int, ...], shape: tuple[int, ...],
                    keepdims: bool) -> np.ndarray:
    """Give a reduced gradient back its reduced axes (size 1) so it broadcasts to shape."""
    if not keepdims:
        for ax in axes:
            g = array_module(g).expand_dims(g, ax)
    return g


def sum_(a: TensorLike, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all axes when None)."""
    a = as_tensor(a)
    xp = array_module(a.data)
    axes = _norm_axes(axis, a.ndim, "sum")
    out = a.data.sum(axis=axes, keepdims=keepdims)

    def backward(g: np.ndarray) -> Gradients:
        return (xp.broadcast_to(_expand_reduced(g, axes, a.shape, keepdims), a.shape).astype(a.dtype),)
    return Tensor.from_op(out, (a,), backward, "sum")


def mean(a: TensorLike, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all axes when None)."""
    a = as_tensor(a)
    xp = array_module(a.data)
    axes = _norm_axes(axis, a.ndim, "mean")
    count = int(np.prod([a.shape[ax] for ax in axes])) if axes else 1
    out = a.data.mean(axis=axes, keepdims=keepdims)

    def backward(g: np.ndarray) -> Gradients:
        g = _expand_reduced(g, axes, a.shape, keepdims) / a.dtype.type(count)
        return (xp.broadcast_to(g, a.shape).astype(a.dtype),)
    return Tensor.from_op(out, (a,), backward, "mean")


def max_(a: TensorLike, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``; on ties the gradient is shared equally (like ``torch.amax``)."""
    a = as_tensor(a)
    axes = _norm_axes(axis, a.ndim, "max")
    out = a.data.max(axis=axes, keepdims=keepdims)

    def backward(g: np.ndarray) -> Gradients:
        m = _expand_reduced(out, axes, a.shape, keepdims)
        winners = (a.data == m).astype(a.dtype)
        winners /= winners.sum(axis=axes, keepdims=True)
        return (winners * _expand_reduced(g, axes, a.shape, keepdims),)
    return Tensor.from_op(out, (a,), backward, "max")


# ---------------------------------------------------------------------------
# shape


def reshape(a: TensorLike, shape: Sequence[int]) -> Tensor:
    """Same data, new shape (one entry may be -1)."""
    a = as_tensor(a)
    try:
        out = a.data.reshape(shape)
    except (ValueError, TypeError):
        raise ValueError(f"cannot reshape a tensor of shape {a.shape} ({a.size} elements) "
                         f"into shape {shape!r}") from None
    return Tensor.from_op(out, (a,), lambda g: (g.reshape(a.shape),), "reshape")


def transpose(a: TensorLike, axes: Sequence[int] | None = None) -> Tensor:
    """Permute the axes (reverse them when ``axes`` is None)."""
    a = as_tensor(a)
    if axes is not None:
        given = tuple(axes)
        axes = tuple(int(ax) % a.ndim for ax in given if -a.ndim <= ax < a.ndim)
        if len(axes) != len(given) or sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"transpose of a tensor of shape {a.shape} expects a permutation "
                             f"of its {a.ndim} axes, got {given}")
    inverse = None if axes is None else tuple(np.argsort(axes))
    out = a.data.transpose(axes)
    return Tensor.from_op(out, (a,), lambda g: (g.transpose(inverse),), "transpose")


def _is_basic_index(index: object) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def getitem(a: TensorLike, index: Any) -> Tensor:
    """``a[index]``: slices, integers, ``None``, ``...`` and integer/bool arrays.

    The gradient goes back to the selected elements; an element selected twice
    (fancy indexing with repeats) receives both gradients.
    """
    a = as_tensor(a)
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    xp = array_module(a.data)
    out = a.data[index]
    basic = _is_basic_index(index)

    def backward(g: np.ndarray) -> Gradients:
        da = xp.zeros_like(a.data)
        if basic:
            da[index] = g
        else:
            xp.add.at(da, index, g)
        return (da,)
    return Tensor.from_op(out, (a,), backward, "getitem")
