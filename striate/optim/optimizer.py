"""The optimizer base class: parameter groups, per-parameter state, and saving both.

An optimizer holds ``param_groups``, a list of dicts each with a ``"params"``
list and its hyper-parameters (``lr`` and the rest; missing ones come from the
optimizer's defaults), and ``state``, a dict from parameter to that parameter's
buffers (momentum, Adam's moments, step counts). ``step()`` updates every
parameter that has a gradient, in place on ``p.data`` and without recording a
graph; subclasses write the update for one parameter in ``_update``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..checks import check_number
from ..tensor import Tensor, enable_grad, no_grad
from ..threads import for_tiles, split

__all__ = ["Optimizer", "blocks", "each_block"]

# Updates run over flat blocks of this many elements (256 KiB of float32), so that every
# temporary an update makes is a block that stays in cache, not an array the size of the
# parameter (AlexNet's fc6 has 37.7 million weights) that must be allocated and faulted in.
_BLOCK = 1 << 16
_TILE = 1 << 20        # elements per tile of blocks shared out over threads (a large parameter's update)
_SERIAL = 1 << 19      # smaller parameters are updated by the calling thread


def blocks(*arrays: np.ndarray | None) -> Iterator[tuple[Any, ...]]:
    """Matching slices of same-shape arrays, ``_BLOCK`` elements at a time (None stays None).

    The slices are views: updating them in place updates the arrays. Small arrays, and
    arrays that are not contiguous (so that a flat view would be a copy), come whole, once.
    """
    present = [a for a in arrays if a is not None]
    size = present[0].size
    if size <= _BLOCK or not all(a.flags.c_contiguous for a in present):
        yield arrays
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    for start in range(0, size, _BLOCK):
        yield tuple(None if f is None else f[start:start + _BLOCK] for f in flat)


def each_block(update: Callable[..., object], *arrays: np.ndarray | None) -> None:
    """``update(*slices)`` for each of ``blocks(*arrays)``; a large parameter's blocks are
    shared out over striate's threads (elementwise updates: the same result at any count)."""
    size = next(a for a in arrays if a is not None).size
    if size < _SERIAL:                         # most parameters: no tiles to cut
        for part in blocks(*arrays):
            update(*part)
        return
    parts = list(blocks(*arrays))
    for_tiles(split(len(parts), size / len(parts), _TILE, _SERIAL),
              lambda s, e: [update(*parts[i]) for i in range(s, e)])


class Optimizer:
    """Base class. ``params`` is an iterable of parameters, or of dicts
    ``{"params": [...], "lr": ..., ...}`` (parameter groups with their own settings)."""

    def __init__(self, params: Iterable[Any], defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict] = {}
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__} expects an iterable of parameters "
                            "(e.g. model.parameters()), got a single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- groups ----------------------------------------------------------------
    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters, e.g. a layer to fine-tune with its own ``lr``."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry, got {group!r}")
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name} can only optimize Tensors, got {type(p).__name__} "
                                f"at position {i} of group {len(self.param_groups)}")
            if p.dtype.kind != "f":
                raise TypeError(f"{name} can only optimize float Tensors, got dtype {p.dtype}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{name}: a parameter appears more than once (in this group or an earlier one)")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict) -> None:
        """Validate a group's hyper-parameters (a TypeError or ValueError naming the value)."""
        check_number(group.get("lr"), "lr", type(self).__name__, at_least=0)

    # -- stepping ----------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``None``, or zeros with ``set_to_none=False``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Tensor] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()``'s loss if given
        (the closure recomputes the loss and its gradients)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.shape != p.shape:
                        raise ValueError(f"{type(self).__name__}: gradient of shape {p.grad.shape} "
                                         f"for a parameter of shape {p.shape}")
                    self._update(p, p.grad, group, self.state.setdefault(p, {}))
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, group: dict, state: dict) -> None:
        raise NotImplementedError

    # -- saving ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {name: array or number}}, "param_groups": [...]}``.

        Parameters are numbered in the order of the groups (0, 1, ...), as in
        PyTorch; each group lists its indices under ``"params"``. Arrays are copies.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict`` returned (for the same parameters, in the same groups)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{name}.load_state_dict expects a dict with 'state' and 'param_groups' "
                             f"(from state_dict()), got {type(state_dict).__name__}"
                             + (f" with keys {sorted(state_dict)}" if isinstance(state_dict, dict) else ""))
        saved = list(state_dict["param_groups"])
        if len(saved) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the saved state has {len(saved)} parameter "
                             f"group(s), this optimizer has {len(self.param_groups)}")
        for i, (mine, theirs) in enumerate(zip(self.param_groups, saved)):
            if len(theirs["params"]) != len(mine["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has {len(theirs['params'])} "
                                 f"parameter(s) in the saved state, {len(mine['params'])} here")
        by_index: dict[int, Tensor] = {}
        for mine, theirs in zip(self.param_groups, saved):
            for saved_index, p in zip(theirs["params"], mine["params"]):
                by_index[int(saved_index)] = p
        new_state: dict[Tensor, dict] = {}
        for key, buffers in state_dict["state"].items():
            try:
                p = by_index[int(key)]
            except (KeyError, ValueError):
                raise ValueError(f"{name}.load_state_dict: state for parameter {key!r}, which no "
                                 "group lists") from None
            restored = {}
            for buf_name, value in buffers.items():
                if isinstance(value, Tensor):
                    value = value.data
                if isinstance(value, np.ndarray):
                    if value.shape != p.shape:
                        raise ValueError(f"{name}.load_state_dict: {buf_name} of parameter {key} has "
                                         f"shape {value.shape}, the parameter has {p.shape}")
                    value = np.array(value, dtype=p.dtype if value.dtype.kind == "f" else value.dtype)
                restored[buf_name] = value
            new_state[p] = restored
        for mine, theirs in zip(self.param_groups, saved):
            for key, value in theirs.items():
                if key != "params":
                    mine[key] = tuple(value) if isinstance(value, list) else value
            self._check_group(mine)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)
