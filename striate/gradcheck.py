"""A numerical gradient check that learners can run on their own ops.

The analytic gradient (from ``backward``) of ``L = Σ fn(*inputs) · R``, with a
fixed random upstream gradient ``R``, is compared with central differences

    dL/dx_i ≈ (L(x + ε e_i) − L(x − ε e_i)) / 2ε

computed in float64. Inputs with more than ``max_elements`` elements are probed
along random directions ``v`` instead of unit vectors, comparing the directional
derivative ``⟨∇L, v⟩`` — the same check, at a fraction of the cost.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .tensor import Tensor, no_grad

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree."""


def _outputs(fn, tensors) -> list[Tensor]:
    """fn's float outputs (a Tensor or a tuple/list of them; other outputs are ignored)."""
    out = fn(*tensors)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return Tensors, got {type(o).__name__}")
    return [o for o in outs if o.dtype.kind == "f"]


def _loss(fn, tensors, upstream) -> float:
    """L = Σ_k Σ out_k · R_k, in float64."""
    return float(sum(float((o.data * r).sum()) for o, r in zip(_outputs(fn, tensors), upstream)))


def gradcheck(fn: Callable, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0, max_elements: int = 64,
              directions: int = 8, raise_exception: bool = True) -> bool:
    """Check ``fn``'s gradients with respect to every float input by central differences.

    Args:
        fn: takes Tensors, returns a Tensor (or a tuple of them).
        inputs: arrays or Tensors; floats become float64 Tensors requiring grad.
            Non-float inputs (labels, indices) are passed through unchanged.
        eps: the finite-difference step.
        atol, rtol: tolerance, ``|analytic − numeric| ≤ atol + rtol·|numeric|``.
        seed: seeds the upstream gradient and the random directions.
        max_elements: inputs larger than this are checked along random directions.
        directions: how many random directions for a large input.
        raise_exception: raise :class:`GradcheckError` on a mismatch (else return False).

    Returns:
        True when every gradient matches.

    Example:
        >>> import striate as st, striate.functional as F
        >>> x = np.random.default_rng(0).normal(size=(2, 3, 5, 5))
        >>> st.gradcheck(lambda t: F.max_pool2d(t, 2), [x])
        True
    """
    rng = np.random.default_rng(seed)
    tensors = []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        if data.dtype.kind == "f":
            tensors.append(Tensor(data.astype(np.float64), requires_grad=True, dtype=np.float64))
        else:
            tensors.append(x if isinstance(x, Tensor) else Tensor(data, dtype=data.dtype))

    outs = _outputs(fn, tensors)
    upstream = [rng.standard_normal(o.shape) for o in outs]
    for k, o in enumerate(outs):
        if o.dtype != np.float64:
            raise GradcheckError(f"gradcheck: output {k} is {o.dtype} for float64 inputs; "
                                 "an op lost precision (it should keep its input's dtype)")
    # Outputs that depend on no input (constants) have no graph and add nothing.
    terms = [(o * Tensor(r, dtype=np.float64)).sum() for o, r in zip(outs, upstream) if o.requires_grad]
    if terms:
        sum(terms[1:], terms[0]).backward()

    def evaluate():
        with no_grad():
            return _loss(fn, tensors, upstream)

    failures = []
    for index, t in enumerate(tensors):
        if not t.requires_grad:
            continue
        analytic = t.grad if t.grad is not None else np.zeros_like(t.data)
        base = t.data.copy()
        if t.size <= max_elements:
            probes = [np.eye(1, t.size, k).reshape(t.shape) for k in range(t.size)]
        else:
            probes = [rng.standard_normal(t.shape) for _ in range(directions)]
        for probe in probes:
            t.data = base + eps * probe
            plus = evaluate()
            t.data = base - eps * probe
            minus = evaluate()
            t.data = base
            numeric = (plus - minus) / (2 * eps)
            exact = float((analytic * probe).sum())
            tolerance = atol + rtol * abs(numeric)
            if not abs(exact - numeric) <= tolerance:   # also catches nan
                if t.size <= max_elements:
                    element = np.unravel_index(int(np.argmax(probe)), t.shape)
                    where = f"element {tuple(int(i) for i in element)}"
                else:
                    where = "a random direction"
                failures.append(f"input {index} {t.shape}, {where}: analytic {exact:.8g}, "
                                f"numerical {numeric:.8g} (difference {abs(exact - numeric):.3g}, "
                                f"tolerance {tolerance:.3g})")
    if failures:
        if raise_exception:
            shown = "\n  ".join(failures[:10])
            more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
            raise GradcheckError(f"gradcheck failed on {len(failures)} probe(s):\n  {shown}{more}")
        return False
    return True
