"""Checkpoints: everything a resume needs, in one safetensors file written atomically.

Exact resumption. A checkpoint is only ever taken between two steps, and holds
everything the next step depends on: the weights, the optimizer's buffers, the
scheduler, striate's default random generator (dropout draws from it) and any
generator a layer keeps for itself, and the position in the data (epoch, batch).
The data order of epoch ``e`` and the augmentation of each batch depend only on
the loader's seed, ``e`` and the batch index (see ``data.DataLoader``). So a run
stopped at any moment — Ctrl-C, or killed outright — and resumed from its last
checkpoint ends with exactly the weights of a run that was never interrupted.
Checkpoints are written atomically (temporary file, fsync, rename): a kill during
the write leaves the previous one intact.

A checkpoint read back is checked field by field before anything is restored, and
restoring is all or nothing (:func:`load_checkpoint`).
"""
from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable

import numpy as np

from .. import random as st_random
from ..serialization import load, save

__all__ = ["save_checkpoint", "load_checkpoint", "loader_identity"]


def _layer_generators(model) -> dict[str, np.random.Generator]:
    """Random generators that layers keep for themselves (e.g. ``Dropout(rng=...)``), by dotted name."""
    found = {}
    for module_name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator):
                found[f"{module_name}.{attr}" if module_name else attr] = value
    return found


def loader_identity(loader) -> dict:
    """What must match for a resumed run to see the same batches (seed, sizes, shuffling)."""
    state = loader.state_dict() if hasattr(loader, "state_dict") else {}
    return {k: state[k] for k in ("seed", "num_samples", "batch_size", "shuffle", "drop_last") if k in state}



def save_checkpoint(path, model, optimizer, scheduler, position: dict, history: list,
                    loader_identity: dict | None = None) -> None:
    """Everything a resume needs, in one safetensors file written atomically.

    ``position`` is ``{"epoch": e, "batch": b, "partial": running sums or None}``:
    the next step to take is batch ``b`` of epoch ``e``.
    """
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    meta = {"position": position, "history": history, "rng": st_random.get_state(),
            "layer_rngs": {k: g.bit_generator.state for k, g in _layer_generators(model).items()},
            "loader": loader_identity or {}, "optimizer_type": type(optimizer).__name__,
            "scheduler_type": type(scheduler).__name__ if scheduler is not None else None}
    save(state, path, metadata={"striate_checkpoint": meta})


def load_checkpoint(path, model, optimizer, scheduler, train_loader=None) -> tuple[dict, list]:
    """Restore model, optimizer, scheduler and random generators; return (position, history).

    Raises ValueError (naming the file) when the checkpoint does not belong to
    this model, optimizer, scheduler or training data, or when its content is
    damaged or tampered with (a CheckpointError for a file that is not a
    checkpoint at all). Nothing is changed unless everything can be restored.
    """
    state, metadata = load(path, with_metadata=True)
    meta = metadata.get("striate_checkpoint") if isinstance(metadata, dict) else None
    if not isinstance(meta, dict) or not isinstance(state, dict) or "model" not in state or "optimizer" not in state:
        raise ValueError(f"{path}: not a training checkpoint (no model/optimizer state); "
                         f"to start from weights only, load them with st.load and model.load_state_dict")
    position, history = _checked_meta(path, meta, state)
    if train_loader is not None:
        mine = loader_identity(train_loader)
        theirs = meta.get("loader") or {}
        differ = [f"{k} {theirs[k]!r} there, {mine[k]!r} here" for k in mine if k in theirs and theirs[k] != mine[k]]
        if differ:
            raise ValueError(f"{path}: the checkpoint was made with other training data or loader settings "
                             f"({'; '.join(differ)}); resuming would not continue the same run")
    if scheduler is None and "scheduler" in state:
        raise ValueError(f"{path}: the checkpoint has a learning-rate scheduler's state but no scheduler was given")
    if scheduler is not None and "scheduler" not in state:
        raise ValueError(f"{path}: a scheduler was given but the checkpoint was made without one")
    for what, mine in (("optimizer", optimizer), ("scheduler", scheduler)):
        theirs = meta.get(f"{what}_type")
        if mine is not None and theirs is not None and theirs != type(mine).__name__:
            raise ValueError(f"{path}: the checkpoint was made with the {what} {theirs}, "
                             f"not {type(mine).__name__}")
    undo = _snapshot(model, optimizer, scheduler)
    try:
        _restore(path, lambda: model.load_state_dict(state["model"]), "the checkpoint does not fit this model")
        _restore(path, lambda: optimizer.load_state_dict(state["optimizer"]),
                 f"the checkpoint does not fit this optimizer ({type(optimizer).__name__})")
        if scheduler is not None:
            _restore(path, lambda: _load_scheduler(scheduler, state["scheduler"]),
                     f"the checkpoint's learning-rate schedule does not fit {type(scheduler).__name__}")
        _restore(path, lambda: st_random.set_state(meta["rng"]), "the random generator's state is damaged")
        generators = _layer_generators(model)
        for name, gen_state in meta["layer_rngs"].items():
            if name in generators:
                _restore(path, functools.partial(setattr, generators[name].bit_generator, "state", gen_state),
                         f"the state of the random generator {name} is damaged")
    except BaseException:
        undo()
        raise
    return position, history


_RESTORE_ERRORS = (KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError)


def _restore(path, apply: Callable[[], object], problem: str) -> None:
    """Run ``apply``; any error a damaged or foreign state can cause becomes one ValueError naming the file."""
    try:
        apply()
    except _RESTORE_ERRORS as exc:
        raise ValueError(f"{path}: {problem}: {_message(exc)}") from None


def _load_scheduler(scheduler, saved) -> None:
    # A scheduler's load_state_dict copies every entry onto the object: only its own
    # entries, with values of the same kinds, may come from a file.
    own = scheduler.state_dict()
    if not isinstance(saved, dict):
        raise TypeError(f"expected a dict, got {type(saved).__name__}")
    for key, value in saved.items():
        if key not in own:
            raise KeyError(f"unexpected entry {key!r}")
        if _kind(value) != _kind(own[key]):
            raise TypeError(f"entry {key!r} is {value!r}, expected a value like {own[key]!r}")
    missing = [k for k in own if k not in saved]
    if missing:
        raise KeyError(f"missing entries {missing}")
    scheduler.load_state_dict(saved)


def _kind(value) -> str:
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, (list, tuple)):
        return "sequence"
    return type(value).__name__


def _snapshot(model, optimizer, scheduler) -> Callable[[], None]:
    """A function that puts model, optimizer, scheduler and generators back as they are now."""
    weights = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    opt_state = copy.deepcopy(optimizer.state_dict())
    sched_state = copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None
    rng_state = st_random.get_state()
    layer_states = {k: g.bit_generator.state for k, g in _layer_generators(model).items()}

    def undo():
        model.load_state_dict(weights)
        optimizer.load_state_dict(opt_state)
        if scheduler is not None:
            scheduler.load_state_dict(sched_state)
        st_random.set_state(rng_state)
        for name, g in _layer_generators(model).items():
            if name in layer_states:
                g.bit_generator.state = layer_states[name]
    return undo


_HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "lr")


def _checked_meta(path, meta: dict, state: dict) -> tuple[dict, list]:
    """The position and history of a checkpoint, after checking every field ``fit`` will use."""
    def bad(what):
        return ValueError(f"{path}: the checkpoint is damaged or was altered: {what}; "
                          f"resume from another checkpoint or start the run again")

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    position = meta.get("position")
    if not isinstance(position, dict):
        raise bad(f"its position is {position!r}, expected {{'epoch': ..., 'batch': ...}}")
    epoch, batch, partial = position.get("epoch"), position.get("batch"), position.get("partial")
    if not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1
            and isinstance(batch, int) and not isinstance(batch, bool) and batch >= 0):
        raise bad(f"its position is epoch {epoch!r}, batch {batch!r} (expected ints, epoch >= 1, batch >= 0)")
    if partial is not None and not (isinstance(partial, dict) and all(
            number(partial.get(k)) for k in ("loss_sum", "correct", "seen", "seconds"))):
        raise bad(f"the running sums of the epoch in progress are {partial!r}")
    history = meta.get("history")
    if not isinstance(history, list) or not all(
            isinstance(e, dict) and all(k in e for k in _HISTORY_KEYS)
            and all(number(e[k]) for k in _HISTORY_KEYS if k not in ("test_loss", "test_acc"))
            and all(e[k] is None or number(e[k]) for k in ("test_loss", "test_acc")) for e in history):
        raise bad("its history of finished epochs is not a list of epoch records")
    for key in ("rng", "layer_rngs", "loader"):
        if not isinstance(meta.get(key, {}), dict):
            raise bad(f"{key} is {meta.get(key)!r}, expected a dict")
    if not isinstance(meta.get("rng"), dict):
        raise bad("it holds no state of the random generator")
    meta.setdefault("layer_rngs", {})
    for key in ("model", "optimizer"):
        if not isinstance(state[key], dict):
            raise bad(f"its {key} state is a {type(state[key]).__name__}, expected a dict")
    if not all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state["model"].items()):
        raise bad("its model state is not a dict of named arrays")
    return position, history


def _message(exc: BaseException) -> str:
    # str(KeyError("x")) is "'x'" with quotes: take the argument itself
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)

