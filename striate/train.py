"""Training and evaluation: the loop, its progress bar, metrics and checkpoints.

Read top to bottom: ``train_step`` (one optimisation step), ``evaluate`` (accuracy,
loss and confusion matrix on a data set), checkpoints, then ``fit`` (epochs of
steps, with a checkpoint after each epoch and on Ctrl-C, and ``resume``).

A run folder holds::

    config.json             what the caller passed as ``config`` (the command line: the
                            model's name and arguments, the data set, the recipe)
    checkpoint.safetensors  the last checkpoint: model, optimizer, scheduler, RNG, data position
    metrics.json            per epoch: train_loss, train_acc, test_loss, test_acc, seconds, lr;
                            when finished, final_test_acc and per-class accuracy
    model.safetensors       the final weights (st.load + model.load_state_dict)
    curves.png              loss and accuracy per epoch (unless ``plots=False``)
    confusion.png           the test confusion matrix (unless ``plots=False``)

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

Ctrl-C does not stop a step half-way: it is remembered, the step in progress
finishes, a checkpoint is saved, and ``fit`` raises :class:`TrainingInterrupted`.
A second Ctrl-C stops at once (the last checkpoint stays valid).

Failing early. Before the first step ``fit`` estimates the memory a step needs
(:func:`estimate_memory`) and refuses a run that would not fit in
:func:`available_memory` (:class:`NotEnoughMemory`), and checks that the run folder
can be written. A checkpoint that cannot be saved later (disk full, folder turned
read-only) stops the run with an OSError naming the checkpoint that is intact.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import functional as F
from . import random as st_random
from .serialization import atomic_write_bytes, load, save
from .tensor import Tensor, no_grad

__all__ = ["fit", "evaluate", "train_step", "save_checkpoint", "load_checkpoint", "estimate_memory",
           "available_memory", "TrainingDiverged", "TrainingInterrupted", "NotEnoughMemory", "CHECKPOINT",
           "FINAL_WEIGHTS", "METRICS", "CONFIG"]

CHECKPOINT = "checkpoint.safetensors"
FINAL_WEIGHTS = "model.safetensors"
METRICS = "metrics.json"
CONFIG = "config.json"


class TrainingDiverged(FloatingPointError):
    """The loss or a gradient became NaN or infinite (the weights are left as they were before that step)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped with Ctrl-C after saving a checkpoint.

    Attributes: ``epoch`` and ``batch`` (where a resume continues; batch 0 is the
    start of that epoch), ``checkpoint`` (the file's path).
    """

    def __init__(self, message: str, epoch: int, batch: int, checkpoint: Path):
        super().__init__(message)
        self.epoch, self.batch, self.checkpoint = epoch, batch, checkpoint


class NotEnoughMemory(MemoryError):
    """Training would need more memory than the machine has available (refused before it starts).

    Attributes: ``needed`` and ``available`` (bytes), ``batch_size``, and ``fits``
    (the largest batch size the estimate allows, 0 if none).
    """

    def __init__(self, message: str, needed: int, available: int, batch_size: int, fits: int):
        super().__init__(message)
        self.needed, self.available, self.batch_size, self.fits = needed, available, batch_size, fits


# ---------------------------------------------------------------------------
# memory: an estimate from shapes, and what the machine has


# What a training step keeps per sample, as a multiple of the forward's outputs: each
# op's output stays alive for backward, and backward makes gradients of the same
# sizes while it runs. Measured peaks (tracemalloc, SGD step) were 0.9 to 1.6 times
# the outputs for the MLP, LeNet-5 and AlexNet; 2 leaves a margin.
_ACTIVATION_FACTOR = 2
_WORKSPACE = 64 << 20        # op scratch buffers, the interpreter, the loader's batch in the making


def _optimizer_slots(optimizer) -> int:
    """Arrays of a parameter's size that ``optimizer`` keeps per parameter (2, Adam's, if unknown)."""
    if optimizer is None:
        return 2
    groups = getattr(optimizer, "param_groups", [{}])
    if type(optimizer).__name__ == "SGD":
        return int(any(g.get("momentum", 0) for g in groups))
    if type(optimizer).__name__ in ("Adam", "AdamW"):
        return 2 + int(any(g.get("amsgrad", False) for g in groups))
    return 2


def _forward_bytes_per_sample(model, input_shape: tuple) -> int:
    """Bytes of every intermediate array one forward of a single sample makes.

    The forward runs in evaluation mode (no dropout draw, no running statistic
    moves: the model and the random generators are left exactly as they were)
    with the graph recorded, and the graph is walked from the output.
    """
    was_training = model.training
    model.eval()
    try:
        x = Tensor(np.zeros((1,) + tuple(input_shape), dtype=np.float32), requires_grad=True)
        out = model(x)
    finally:
        model.train(was_training)
    total, seen, stack = 0, set(), [out]
    while stack:
        t = stack.pop()
        if id(t) in seen or not isinstance(t, Tensor):
            continue
        seen.add(id(t))
        if t._parents:                              # an op's output (leaves are inputs and weights)
            total += t.data.nbytes
            stack.extend(t._parents)
    return total


def _memory_parts(model, input_shape: tuple, optimizer=None) -> tuple[int, int]:
    """(bytes independent of the batch, bytes per sample) of a training step."""
    weights = sum(p.data.nbytes for p in model.parameters())
    buffers = sum(b.nbytes for _, b in model.named_buffers()) if hasattr(model, "named_buffers") else 0
    fixed = weights * (2 + _optimizer_slots(optimizer)) + buffers + _WORKSPACE    # weights, grads, state
    sample = 4 * math.prod(input_shape)                                           # float32 input
    per_sample = _ACTIVATION_FACTOR * _forward_bytes_per_sample(model, input_shape) + 2 * sample
    return fixed, per_sample


def estimate_memory(model, input_shape, batch_size: int, optimizer=None) -> int:
    """Bytes a training step of ``model`` on batches of ``batch_size`` needs, estimated from shapes.

    Args:
        model: the Module to train.
        input_shape: one sample's shape, (C, H, W) (no batch axis).
        batch_size: B.
        optimizer: the optimizer, for the size of its state (default: Adam's, two
            arrays per parameter).

    The estimate is weights × (2 + optimizer state) + B × (2 × the forward's
    intermediate arrays for one sample + the input) + a fixed workspace. One
    forward of a single sample in evaluation mode measures the intermediate
    arrays; the model is left unchanged. Intended to err on the high side:
    measured peaks of LeNet-5, the MLP and AlexNet were 40 to 80 % of it (leaving
    out the workspace).

    >>> estimate_memory(models.get("alexnet"), (3, 227, 227), 4096) / 2**30   # doctest: +SKIP
    64.5
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"estimate_memory: batch_size must be a positive int, got {batch_size!r}")
    input_shape = tuple(int(d) for d in input_shape)
    fixed, per_sample = _memory_parts(model, input_shape, optimizer)
    return fixed + int(batch_size) * per_sample


def available_memory() -> int | None:
    """Bytes this process can still allocate, or None where that cannot be found out.

    Linux: ``MemAvailable`` from /proc/meminfo, lowered to what the control group's
    limit leaves (a container's limit is what the kernel's OOM killer enforces);
    elsewhere the free physical pages (``os.sysconf``).
    """
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            pass
    headroom = _cgroup_headroom()
    if headroom is not None:
        found.append(headroom)
    return min(found) if found else None


def _cgroup_headroom() -> int | None:
    """The control group's memory limit minus its usage (v2, then v1), or None without a limit."""
    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return None

    folder = "/sys/fs/cgroup"
    limit, usage, stat = read(f"{folder}/memory.max"), read(f"{folder}/memory.current"), "memory.stat"
    if limit is None:
        folder += "/memory"
        limit, usage = read(f"{folder}/memory.limit_in_bytes"), read(f"{folder}/memory.usage_in_bytes")
    if not limit or not usage or not limit.isdigit() or not usage.isdigit():
        return None                                  # "max", or no cgroup files
    if int(limit) >= 1 << 60:                        # v1 writes "no limit" as a huge number
        return None
    # The usage counts the page cache too; the part not recently used is given back on demand.
    reclaimable = 0
    for line in (read(f"{folder}/{stat}") or "").splitlines():
        key, _, value = line.partition(" ")
        if key in ("inactive_file", "total_inactive_file") and value.isdigit():
            reclaimable = int(value)
    return max(int(limit) - int(usage) + reclaimable, 0)


def _gb(n: float) -> str:
    return f"{n / 2 ** 30:.1f} GB" if n >= 2 ** 30 else f"{n / 2 ** 20:.1f} MB"


def _check_memory(model, input_shape, batch_size: int, optimizer) -> None:
    """Raise NotEnoughMemory, with the estimate, if a step would not fit in the available memory."""
    available = available_memory()
    if available is None:
        return
    fixed, per_sample = _memory_parts(model, tuple(input_shape), optimizer)
    allocated = sum(p.data.nbytes for p in model.parameters())     # the weights exist already
    needed = fixed + batch_size * per_sample
    if needed - allocated <= available:
        return
    fits = max(int((available + allocated - fixed) // per_sample), 0)
    advice = f"a batch size of at most {fits:,} should fit" if fits else "even a batch of one does not fit"
    raise NotEnoughMemory(
        f"training at batch size {batch_size:,} needs about {_gb(needed)} of memory "
        f"({_gb(fixed)} for the weights, their gradients and the optimizer's state, plus {_gb(per_sample)} "
        f"per sample for activations and their gradients), but only {_gb(available)} is available; "
        f"{advice}. Refused before starting rather than be killed by the system half-way "
        f"(fit(check_memory=False) skips this check)", needed, available, batch_size, fits)


# ---------------------------------------------------------------------------
# one step, and evaluation


def train_step(model, loss_fn: Callable, optimizer, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Forward, loss, backward, update. Returns (loss, number of correct predictions).

    Raises TrainingDiverged, before touching the weights, when the loss or a
    gradient is not finite.
    """
    # Overflow on the way to a NaN is caught below with a clearer message than NumPy's warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        logits = model(Tensor(x))                          # (B, classes)
        loss = loss_fn(logits, y)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(f"the loss is {value}")
        optimizer.zero_grad()
        loss.backward()
        bad = _first_nonfinite_grad(model)
        if bad is not None:
            raise TrainingDiverged(f"the gradient of {bad} is not finite (loss {value:.4g})")
    optimizer.step()
    correct = int((logits.data.argmax(axis=1) == y).sum())
    return value, correct


def _first_nonfinite_grad(model) -> str | None:
    """The name of a parameter whose gradient holds NaN or inf, or None."""
    for name, p in model.named_parameters():
        # a sum is one cheap pass; only when it is not finite look closer (it may just overflow)
        if p.grad is not None and not math.isfinite(float(p.grad.sum())) and not np.isfinite(p.grad).all():
            return name
    return None


def evaluate(model, loader, loss_fn: Callable = F.cross_entropy, num_classes: int | None = None,
             progress: bool = False) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix of ``model`` on ``loader``.

    Runs in eval mode under ``no_grad`` and restores the model's mode afterwards.
    ``loss_fn`` is called as ``loss_fn(logits, y, reduction="sum")``.

    Returns:
        ``{"loss": mean loss, "acc": accuracy, "n": number of samples,
        "confusion": (K, K) int64 counts (row: true class, column: prediction),
        "per_class_acc": (K,) float}``; K is ``num_classes``, by default the
        model's number of outputs.
    """
    was_training = model.training
    model.eval()
    total_loss, seen, outputs = 0.0, 0, 0
    predictions, targets = [], []
    batches = loader
    if progress:
        from tqdm.auto import tqdm
        batches = tqdm(loader, desc="evaluate", unit="batch", leave=False)
    try:
        with no_grad():
            for x, y in batches:
                logits = model(Tensor(x))              # (B, classes)
                outputs = logits.shape[1]
                total_loss += loss_fn(logits, y, reduction="sum").item()
                seen += len(y)
                predictions.append(logits.data.argmax(axis=1))
                targets.append(np.asarray(y))
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    pred = np.concatenate(predictions)
    true = np.concatenate(targets).astype(np.int64)
    k = int(num_classes or max(outputs, int(true.max()) + 1))
    if true.min() < 0 or true.max() >= k:
        raise ValueError(f"evaluate: labels must be in [0, {k}), got labels from {true.min()} to {true.max()}")
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (true, pred), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {"loss": total_loss / seen, "acc": float((pred == true).mean()), "n": seen,
            "confusion": confusion, "per_class_acc": per_class}


# ---------------------------------------------------------------------------
# checkpoints


def _current_lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _layer_generators(model) -> dict[str, np.random.Generator]:
    """Random generators that layers keep for themselves (e.g. ``Dropout(rng=...)``), by dotted name."""
    found = {}
    for module_name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator):
                found[f"{module_name}.{attr}" if module_name else attr] = value
    return found


def _loader_identity(loader) -> dict:
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
        mine = _loader_identity(train_loader)
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
                _restore(path, lambda: setattr(generators[name].bit_generator, "state", gen_state),
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


def _remove_leftovers(folder: Path) -> None:
    """Delete the temporary files of writes that a killed run left half-done (their targets are intact)."""
    for name in (CHECKPOINT, METRICS, CONFIG, FINAL_WEIGHTS, "striate-write-test"):
        for tmp in folder.glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass


def _check_writable(folder: Path) -> None:
    """Fail now, not after an epoch of work, if files cannot be created in ``folder``."""
    probe = folder / f".striate-write-test.{os.getpid()}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    except OSError as exc:
        raise _restated(exc, f"cannot write in the run folder {folder}: {exc.strerror or exc}; "
                             f"choose a writable out_dir") from exc


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


class _StopRequest:
    """Turns Ctrl-C (SIGINT) into a request that ``fit`` honours between two steps.

    Only where a handler can be installed (the main thread); elsewhere a Ctrl-C
    cannot reach the loop anyway. A second Ctrl-C raises KeyboardInterrupt at once.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt("interrupted twice: stopped at once; the last checkpoint is still valid")
        self.requested = True
        sys.stderr.write("\nCtrl-C: finishing this step and saving a checkpoint "
                         "(press Ctrl-C again to stop at once)\n")

    def __enter__(self):
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            # None: the previous handler was not installed from Python; the default is the closest
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.default_int_handler)
        return False


# ---------------------------------------------------------------------------
# the loop


def fit(model, loss_fn: Callable, optimizer, train_loader, val_loader=None, epochs: int = 1,
        scheduler=None, out_dir=None, resume: bool = False, progress: bool = True,
        class_names=None, config: dict | None = None, checkpoint_seconds: float | None = None,
        log: Callable[[str], None] | None = None, check_memory: bool = True, plots: bool = True) -> dict:
    """Train ``model`` for ``epochs`` epochs; evaluate on ``val_loader`` after each.

    Args:
        model: a Module whose forward gives logits (N, classes).
        loss_fn: ``loss_fn(logits, y, reduction=...)``, e.g. ``F.cross_entropy``.
        optimizer: an ``optim`` optimizer over ``model.parameters()``.
        train_loader: a ``data.DataLoader`` (anything with ``iter_epoch(epoch,
            start_batch)`` and ``len``, whose batches depend only on the epoch and
            batch index, as ours do). Epochs are numbered from 1.
        val_loader: any iterable of ``(x, y)`` batches, or None.
        scheduler: an LR scheduler stepped once per epoch (ReduceLROnPlateau gets the
            test loss, or the train loss without ``val_loader``).
        out_dir: the run folder (see the module docstring); None writes nothing
            and Ctrl-C is left alone. A folder that already holds a run is
            refused unless ``resume``.
        resume: continue from ``out_dir/checkpoint.safetensors``; the model,
            optimizer, scheduler and loaders must be built as for the first run.
        class_names: labels for the confusion matrix.
        config: JSON-friendly description of the run, written to config.json and
            into model.safetensors' metadata (``striate evaluate``/``predict``
            rebuild the model from ``config["model"]``).
        checkpoint_seconds: also checkpoint mid-epoch when this many seconds passed
            since the last one (epochs always end with one; 0: after every step).
        log: where the one-line epoch summaries go (default: printed).
        plots: draw curves.png and confusion.png in ``out_dir`` (matplotlib);
            False leaves them out.
        check_memory: before anything else, estimate the memory a training step
            needs (:func:`estimate_memory`) and refuse with NotEnoughMemory when
            it exceeds :func:`available_memory`; False skips the check.

    Returns:
        ``{"epochs": [...per-epoch metrics...], "test_acc": final test accuracy,
        "test": evaluate(...) on val_loader}`` ("test" only with a val_loader).

    Raises:
        TrainingDiverged: a NaN or infinite loss or gradient; the message names
            the epoch, the step and the learning rate.
        TrainingInterrupted: Ctrl-C, after saving a checkpoint (with ``out_dir``).
        NotEnoughMemory: the estimate exceeds the available memory (see ``check_memory``).
        OSError: ``out_dir`` cannot be written (checked before training), or a
            checkpoint could not be saved (disk full, ...); the previous
            checkpoint is then intact and the message says where training stood.
    """
    from tqdm.auto import tqdm

    if not hasattr(train_loader, "iter_epoch"):
        raise TypeError(f"fit: train_loader must be a striate DataLoader (with iter_epoch(epoch, start_batch)), "
                        f"got {type(train_loader).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    out = Path(out_dir) if out_dir is not None else None
    say = log or (lambda line: tqdm.write(line))
    history: list[dict] = []
    start_epoch, start_batch, partial = 1, 0, None
    steps_per_epoch = len(train_loader)
    identity = _loader_identity(train_loader)
    if check_memory:
        shape = train_loader.sample_shape() if hasattr(train_loader, "sample_shape") else \
            getattr(model, "input_shape", None)
        if shape is not None:
            batch = min(int(getattr(train_loader, "batch_size", 1)),
                        int(getattr(train_loader, "num_samples", 1 << 62)))
            _check_memory(model, shape, batch, optimizer)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _check_writable(out)
        if resume:
            ckpt = out / CHECKPOINT
            if not ckpt.exists():
                raise FileNotFoundError(f"cannot resume: {ckpt} does not exist")
            position, history = load_checkpoint(ckpt, model, optimizer, scheduler, train_loader)
            _remove_leftovers(out)
            start_epoch, start_batch = int(position["epoch"]), int(position["batch"])
            partial = position.get("partial")
            if start_epoch - 1 > epochs or (start_epoch - 1 == epochs and start_batch > 0):
                raise ValueError(f"cannot resume {ckpt} with epochs={epochs}: it is at epoch {start_epoch}, "
                                 f"batch {start_batch}, past the end")
            if start_epoch <= epochs:
                say(f"resumed from {ckpt}: epoch {start_epoch}, batch {start_batch}/{steps_per_epoch}")
        elif (out / CHECKPOINT).exists() or (out / FINAL_WEIGHTS).exists():
            raise FileExistsError(f"{out} already holds a training run; continue it with resume=True, "
                                  f"or choose another out_dir (a run is never overwritten)")
        if config is not None:
            _write_json(out / CONFIG, config)
    elif resume:
        raise ValueError("fit(resume=True) needs out_dir")

    last_save = time.monotonic()
    last_eval = None        # evaluate() of the last epoch run in this call (reused for the final result)

    saved_at = [(start_epoch, start_batch) if resume else None]    # where the last good checkpoint stands

    def checkpoint(epoch, batch, partial_stats):
        if out is None:
            return
        try:
            save_checkpoint(out / CHECKPOINT, model, optimizer, scheduler,
                            {"epoch": epoch, "batch": batch, "partial": partial_stats}, history, identity)
        except OSError as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc      # the system's own words
            last = saved_at[0]
            kept = (f"the previous checkpoint (epoch {last[0]}, batch {last[1]}) is intact; free some space "
                    f"or make the folder writable, then resume from it" if last is not None
                    else "no checkpoint had been saved yet")
            raise _restated(exc, f"cannot save the checkpoint of epoch {epoch}, batch {batch} in "
                                 f"{out / CHECKPOINT}: {cause.strerror or cause}; {kept}") from exc
        saved_at[0] = (epoch, batch)

    def interrupted(epoch, batch):
        where = f"epoch {epoch}, batch {batch}/{steps_per_epoch}" if batch else f"the start of epoch {epoch}"
        return TrainingInterrupted(f"interrupted; checkpoint saved in {out / CHECKPOINT} at {where}; "
                                   f"fit(..., resume=True) continues from there", epoch, batch, out / CHECKPOINT)

    with _StopRequest(enabled=out is not None) as stop:
        for epoch in range(start_epoch, epochs + 1):
            model.train()
            first = start_batch if epoch == start_epoch else 0
            sums = partial or {}
            loss_sum, correct = sums.get("loss_sum", 0.0), sums.get("correct", 0)
            seen, seconds = sums.get("seen", 0), sums.get("seconds", 0.0)
            partial = None
            lr = _current_lr(optimizer)
            bar = tqdm(total=steps_per_epoch, initial=first, desc=f"epoch {epoch}/{epochs}",
                       unit="batch", disable=not progress, leave=False, dynamic_ncols=True)
            t0 = time.perf_counter()
            try:
                for step, (x, y) in enumerate(train_loader.iter_epoch(epoch, start_batch=first), start=first):
                    try:
                        loss, ok = train_step(model, loss_fn, optimizer, x, y)
                    except TrainingDiverged as exc:
                        raise TrainingDiverged(
                            f"training diverged at epoch {epoch}, step {step + 1} of {steps_per_epoch} "
                            f"(learning rate {lr:g}): {exc}; lower the learning rate or check the input "
                            f"data") from None
                    loss_sum += loss * len(y)
                    correct += ok
                    seen += len(y)
                    bar.update(1)
                    if step % 10 == 0 or step == steps_per_epoch - 1:
                        elapsed = seconds + time.perf_counter() - t0
                        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}%",
                                        img_s=f"{seen / max(elapsed, 1e-9):,.0f}", refresh=False)
                    due = checkpoint_seconds is not None and time.monotonic() - last_save >= checkpoint_seconds
                    if (stop.requested or due) and step + 1 < steps_per_epoch:
                        checkpoint(epoch, step + 1, {"loss_sum": loss_sum, "correct": correct, "seen": seen,
                                                     "seconds": seconds + time.perf_counter() - t0})
                        last_save = time.monotonic()
                        if stop.requested:
                            raise interrupted(epoch, step + 1)
            finally:
                bar.close()
            seconds += time.perf_counter() - t0

            record = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
                      "test_loss": None, "test_acc": None, "seconds": seconds, "lr": lr,
                      "images_per_second": seen / max(seconds, 1e-9)}
            if val_loader is not None:
                last_eval = evaluate(model, val_loader, loss_fn, num_classes=_num_classes(class_names))
                record["test_loss"], record["test_acc"] = last_eval["loss"], last_eval["acc"]
            history.append(record)
            if scheduler is not None:
                if _wants_metric(scheduler):
                    scheduler.step(record["test_loss"] if record["test_loss"] is not None else record["train_loss"])
                else:
                    scheduler.step()
            say(_summary_line(record, epochs))
            checkpoint(epoch + 1, 0, None)
            last_save = time.monotonic()
            if out is not None:
                with _saving(out, METRICS + " and curves.png", saved_at[0]):
                    _write_json(out / METRICS, {"epochs": history, "finished": False})
                    if plots:
                        from .viz import plot_curves
                        plot_curves(history, out / "curves.png", title=(config or {}).get("title", ""))
            if stop.requested and epoch < epochs:
                raise interrupted(epoch + 1, 0)

    final = {"epochs": history, "test_acc": history[-1]["test_acc"] if history else None}
    if val_loader is not None:
        result = last_eval or evaluate(model, val_loader, loss_fn, num_classes=_num_classes(class_names))
        final["test"] = result
        final["test_acc"] = result["acc"]
    if out is not None:
        with _saving(out, FINAL_WEIGHTS, saved_at[0]):
            save(model, out / FINAL_WEIGHTS, metadata={"config": config or {}})
        summary = {"epochs": history, "finished": True, "final_test_acc": final["test_acc"],
                   "total_seconds": sum(e["seconds"] for e in history)}
        if "test" in final:
            summary["final_test_loss"] = final["test"]["loss"]
            summary["per_class_acc"] = [float(a) for a in final["test"]["per_class_acc"]]
        with _saving(out, f"{METRICS} and the plots", saved_at[0]):
            if plots and "test" in final:
                from .viz import plot_confusion
                names = list(class_names or [str(i) for i in range(final["test"]["confusion"].shape[0])])
                plot_confusion(final["test"]["confusion"], names, out / "confusion.png")
            _write_json(out / METRICS, summary)
            if plots and history and not (out / "curves.png").exists():
                from .viz import plot_curves
                plot_curves(history, out / "curves.png", title=(config or {}).get("title", ""))
    return final


@contextlib.contextmanager
def _saving(out: Path, what: str, checkpoint_at):
    """Turn a failed write of a run's other files into an OSError that says what is safe."""
    try:
        yield
    except OSError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        safe = (f"the checkpoint (epoch {checkpoint_at[0]}, batch {checkpoint_at[1]}) is saved: resume from it "
                f"once the folder is writable" if checkpoint_at else "no checkpoint was saved")
        raise _restated(exc, f"cannot write {what} in {out}: {cause.strerror or cause}; {safe}") from exc


def _restated(exc: OSError, message: str) -> OSError:
    """An OSError with ``message`` and ``exc``'s errno (so a PermissionError stays one)."""
    return OSError(exc.errno, message) if exc.errno is not None else OSError(message)


def _num_classes(class_names) -> int | None:
    return len(class_names) if class_names else None


def _wants_metric(scheduler) -> bool:
    from .optim.lr_scheduler import ReduceLROnPlateau
    return isinstance(scheduler, ReduceLROnPlateau) or bool(getattr(scheduler, "needs_metric", False))


def _summary_line(r: dict, epochs: int) -> str:
    line = (f"epoch {r['epoch']:>{len(str(epochs))}}/{epochs}  "
            f"train loss {r['train_loss']:.4f} acc {100 * r['train_acc']:.2f}%")
    if r["test_acc"] is not None:
        line += f"  test loss {r['test_loss']:.4f} acc {100 * r['test_acc']:.2f}%"
    line += f"  lr {r['lr']:.4g}  {r['seconds']:.1f} s ({r['images_per_second']:,.0f} img/s)"
    return line
