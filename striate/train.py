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
    curves.png              loss and accuracy per epoch
    confusion.png           the test confusion matrix

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
"""
from __future__ import annotations

import json
import math
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

__all__ = ["fit", "evaluate", "train_step", "save_checkpoint", "load_checkpoint", "TrainingDiverged",
           "TrainingInterrupted", "CHECKPOINT", "FINAL_WEIGHTS", "METRICS", "CONFIG"]

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
    this model, optimizer, scheduler or training data.
    """
    state, metadata = load(path, with_metadata=True)
    meta = (metadata or {}).get("striate_checkpoint")
    if meta is None or not isinstance(state, dict) or "model" not in state or "optimizer" not in state:
        raise ValueError(f"{path}: not a training checkpoint (no model/optimizer state); "
                         f"to start from weights only, load them with st.load and model.load_state_dict")
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
    try:
        model.load_state_dict(state["model"])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: the checkpoint does not fit this model: {_message(exc)}") from None
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: the checkpoint does not fit this optimizer ({type(optimizer).__name__}): "
                         f"{_message(exc)}") from None
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    st_random.set_state(meta["rng"])
    generators = _layer_generators(model)
    for name, gen_state in (meta.get("layer_rngs") or {}).items():
        if name in generators:
            generators[name].bit_generator.state = gen_state
    return meta["position"], meta["history"]


def _message(exc: BaseException) -> str:
    # str(KeyError("x")) is "'x'" with quotes: take the argument itself
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


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
        log: Callable[[str], None] | None = None) -> dict:
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

    Returns:
        ``{"epochs": [...per-epoch metrics...], "test_acc": final test accuracy,
        "test": evaluate(...) on val_loader}`` ("test" only with a val_loader).

    Raises:
        TrainingDiverged: a NaN or infinite loss or gradient; the message names
            the epoch, the step and the learning rate.
        TrainingInterrupted: Ctrl-C, after saving a checkpoint (with ``out_dir``).
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
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if resume:
            ckpt = out / CHECKPOINT
            if not ckpt.exists():
                raise FileNotFoundError(f"cannot resume: {ckpt} does not exist")
            position, history = load_checkpoint(ckpt, model, optimizer, scheduler, train_loader)
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

    def checkpoint(epoch, batch, partial_stats):
        if out is not None:
            save_checkpoint(out / CHECKPOINT, model, optimizer, scheduler,
                            {"epoch": epoch, "batch": batch, "partial": partial_stats}, history, identity)

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
                _write_json(out / METRICS, {"epochs": history, "finished": False})
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
        save(model, out / FINAL_WEIGHTS, metadata={"config": config or {}})
        summary = {"epochs": history, "finished": True, "final_test_acc": final["test_acc"],
                   "total_seconds": sum(e["seconds"] for e in history)}
        if "test" in final:
            summary["final_test_loss"] = final["test"]["loss"]
            summary["per_class_acc"] = [float(a) for a in final["test"]["per_class_acc"]]
            from .viz import plot_confusion
            names = list(class_names or [str(i) for i in range(final["test"]["confusion"].shape[0])])
            plot_confusion(final["test"]["confusion"], names, out / "confusion.png")
        _write_json(out / METRICS, summary)
        if history and not (out / "curves.png").exists():
            from .viz import plot_curves
            plot_curves(history, out / "curves.png", title=(config or {}).get("title", ""))
    return final


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
