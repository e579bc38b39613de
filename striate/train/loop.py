"""The training loop: one step, evaluation, one epoch, and ``fit``.

Read top to bottom: ``train_step`` (one optimisation step), ``evaluate`` (accuracy,
loss and confusion matrix on a data set), ``train_epoch`` (the steps of one epoch:
the loop that ``fit`` and the experiments share), then ``fit`` (epochs of steps,
with a checkpoint after each epoch and on Ctrl-C, and ``resume``).

Three seams for training in several processes (``striate.dist`` uses them):

* ``transform_grads(params)`` is called after backward and before the optimizer's
  step, with the model's parameters: it may change their ``.grad`` (e.g. average
  them across processes). The weights then move by the transformed gradients.
* ``fit(..., writer=False)``: only one process writes the run folder, shows the
  progress bar and logs; the others train the same steps silently and write
  nothing, and still resume from the folder's checkpoint when asked.
* ``reduce(array)``: the elementwise sum of a float64 array over the processes.
  With it each step's loss, correct predictions and samples, and the evaluation's
  loss, counts and confusion matrix, are those of all processes together (each
  process gives its share of every batch), and a Ctrl-C on any of them stops all
  of them after the same step.

Ctrl-C does not stop a step half-way: it is remembered, the step in progress
finishes, a checkpoint is saved, and ``fit`` raises :class:`TrainingInterrupted`.
A second Ctrl-C stops at once (the last checkpoint stays valid).

Failing early. Before the first step ``fit`` estimates the memory a step needs
(``memory.check_memory``) and refuses a run that would not fit (``NotEnoughMemory``),
and checks that the run folder can be written. A checkpoint that cannot be saved
later (disk full, folder turned read-only) stops the run with an OSError naming
the checkpoint that is intact. The run folder's files are described in ``run.py``;
what a checkpoint holds, and why a resumed run ends with exactly the weights of an
uninterrupted one, in ``checkpoint.py``.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from .. import functional as F
from ..compile import Inference
from ..tensor import Tensor, no_grad
from . import memory
from .checkpoint import load_checkpoint, loader_identity
from .run import CHECKPOINT, RunWriter

__all__ = ["fit", "evaluate", "train_step", "train_epoch", "EpochStats", "current_lr", "TrainingDiverged",
           "TrainingInterrupted"]


class TrainingDiverged(FloatingPointError):
    """The loss or a gradient became NaN or infinite (the weights are left as they were before that step).

    Raised by :func:`train_epoch` (and so by ``fit``) with where it happened:
    ``epoch``, ``step`` (1-based), ``steps`` (per epoch), ``lr``, and ``reason``
    (what :func:`train_step` found); these are None when raised by ``train_step`` itself.
    """

    def __init__(self, message: str, *, epoch: int | None = None, step: int | None = None,
                 steps: int | None = None, lr: float | None = None, reason: str | None = None):
        super().__init__(message)
        self.epoch, self.step, self.steps, self.lr, self.reason = epoch, step, steps, lr, reason


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


def _synchronised(model) -> bool:
    """Whether a layer of ``model`` exchanges sums with other processes in training (``reduce`` set)."""
    return any(getattr(m, "reduce", None) is not None for m in model.modules())


def train_step(model, loss_fn: Callable, optimizer, x: np.ndarray, y: np.ndarray,
               transform_grads: Callable[[list], None] | None = None) -> tuple[float, int]:
    """Forward, loss, backward, update. Returns (loss, number of correct predictions).

    ``transform_grads(params)``, if given, is called between backward and the
    optimizer's step with ``list(model.parameters())``; it may change each
    parameter's ``.grad`` in place or replace it (same shape), and the update uses
    what it leaves there (e.g. gradients averaged across processes).

    Raises TrainingDiverged, before touching the weights, when the loss or a
    gradient (after ``transform_grads``) is not finite.
    """
    if len(y) == 0:
        # a process whose share of a small last batch is empty: no loss, zero gradients, same collectives
        optimizer.zero_grad()
        if _synchronised(model):
            # its layers exchange sums with the other processes (synchronised batch norm): the
            # forward and backward run on no sample, so that those exchanges happen here too
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                (model(Tensor(x)).sum() * 0.0).backward()
        for p in model.parameters():
            if p.grad is None:
                p.grad = np.zeros_like(p.data)
        if transform_grads is not None:
            transform_grads(list(model.parameters()))
        optimizer.step()
        return 0.0, 0
    # Overflow on the way to a NaN is caught below with a clearer message than NumPy's warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        logits = model(Tensor(x))                          # (B, classes)
        loss = loss_fn(logits, y)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(f"the loss is {value}")
        optimizer.zero_grad()
        loss.backward()
        if transform_grads is not None:
            transform_grads(list(model.parameters()))
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
             progress: bool = False, *, reduce: Callable[[np.ndarray], np.ndarray] | None = None,
             compiled: bool = True) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix of ``model`` on ``loader``.

    Runs in eval mode under ``no_grad`` and restores the model's mode afterwards.
    ``loss_fn`` is called as ``loss_fn(logits, y, reduction="sum")``.

    ``compiled``: the forward runs through ``st.compile`` without measuring
    (``striate.compile.Inference``), planned in this call for each batch shape: it uses
    the current weights and gives the same numbers on every run, those of the op-by-op
    forward to float32 rounding. False runs the model op by op.

    Returns:
        ``{"loss": mean loss, "acc": accuracy, "n": number of samples,
        "confusion": (K, K) int64 counts (row: true class, column: prediction),
        "per_class_acc": (K,) float}``; K is ``num_classes``, by default the
        model's number of outputs.

    With ``reduce`` (a sum over processes, see the module's docstring) each process
    evaluates its share and all of them return the figures of all the shares.
    """
    was_training = model.training
    model.eval()
    forward = Inference(model, compiled)
    total_loss, seen, outputs = 0.0, 0, 0
    predictions, targets = [], []
    batches = loader
    if progress:
        from tqdm.auto import tqdm
        batches = tqdm(loader, desc="evaluate", unit="batch", leave=False)
    try:
        with no_grad():
            for x, y in batches:
                logits = forward(x)                    # (B, classes)
                outputs = logits.shape[1]
                total_loss += loss_fn(logits, y, reduction="sum").item()
                seen += len(y)
                predictions.append(logits.data.argmax(axis=1))
                targets.append(np.asarray(y))
    finally:
        model.train(was_training)
    if seen == 0 and reduce is None:
        raise ValueError("evaluate: the loader yielded no batches")
    pred = np.concatenate(predictions) if predictions else np.zeros(0, np.int64)
    true = np.concatenate(targets).astype(np.int64) if targets else np.zeros(0, np.int64)
    if reduce is not None and not num_classes:
        # every process must count the same classes: the model's outputs (the same model everywhere;
        # a process that saw no batch knows none)
        counts = reduce(np.array([outputs, outputs > 0], np.float64))
        num_classes = int(counts[0] // max(counts[1], 1))
    k = int(num_classes or max(outputs, int(true.max()) + 1))
    if len(true) and (true.min() < 0 or true.max() >= k):
        raise ValueError(f"evaluate: labels must be in [0, {k}), got labels from {true.min()} to {true.max()}")
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (true, pred), 1)
    if reduce is not None:
        sums = reduce(np.concatenate([[total_loss, seen], confusion.ravel()]).astype(np.float64))
        total_loss, seen = float(sums[0]), int(sums[1])
        confusion = np.rint(sums[2:]).astype(np.int64).reshape(k, k)
        if seen == 0:
            raise ValueError("evaluate: the loader yielded no batches")
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {"loss": total_loss / seen, "acc": float(confusion.trace() / seen), "n": seen,
            "confusion": confusion, "per_class_acc": per_class}


# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# one epoch


def current_lr(optimizer) -> float:
    """The learning rate of the optimizer's first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


@dataclass
class EpochStats:
    """Running sums of an epoch in progress: what a checkpoint keeps of it, and the epoch's summary."""

    loss_sum: float = 0.0        # Σ over samples of the loss
    correct: int = 0
    seen: int = 0                # samples
    seconds: float = 0.0         # of training (not evaluation)

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.seen, 1)

    @property
    def acc(self) -> float:
        return self.correct / max(self.seen, 1)

    def state_dict(self) -> dict:
        return {"loss_sum": self.loss_sum, "correct": self.correct, "seen": self.seen, "seconds": self.seconds}

    @classmethod
    def from_state(cls, state: dict | None) -> EpochStats:
        """The sums a checkpoint kept (``state_dict()``), or fresh ones for None."""
        if not state:
            return cls()
        return cls(state["loss_sum"], state["correct"], state["seen"], state["seconds"])


def train_epoch(model, loss_fn: Callable, optimizer, loader, epoch: int, start_batch: int = 0,
                stats: EpochStats | None = None,
                transform_grads: Callable[[list], None] | None = None, *,
                reduce: Callable[[np.ndarray], np.ndarray] | None = None) -> Iterator[tuple[int, float]]:
    """Train epoch ``epoch`` of ``loader`` from batch ``start_batch``, yielding ``(step, loss)`` after each step.

    ``stats`` (updated in place; a fresh one by default) gathers the epoch's sums, so
    the caller can read them between steps, after the last one, and after a
    divergence. The caller does the rest between two steps (progress bar,
    checkpoints, stopping): ``fit`` and the experiments' ``Context.train`` both
    train through this loop.

    With ``reduce`` (a sum over processes) the loss yielded and the sums gathered
    are those of the whole batch, all processes' shares together.

    Raises TrainingDiverged naming the epoch, the step and the learning rate.
    """
    stats = stats if stats is not None else EpochStats()
    model.train()
    steps, lr = len(loader), current_lr(optimizer)
    seconds, t0 = stats.seconds, time.perf_counter()
    for step, (x, y) in enumerate(loader.iter_epoch(epoch, start_batch=start_batch), start=start_batch):
        try:
            loss, ok = train_step(model, loss_fn, optimizer, x, y, transform_grads)
        except TrainingDiverged as exc:
            raise TrainingDiverged(
                f"training diverged at epoch {epoch}, step {step + 1} of {steps} (learning rate {lr:g}): "
                f"{exc}; lower the learning rate or check the input data",
                epoch=epoch, step=step + 1, steps=steps, lr=lr, reason=str(exc)) from None
        loss_sum, n = loss * len(y), len(y)
        if reduce is not None:
            sums = reduce(np.array([loss_sum, ok, n], np.float64))
            loss_sum, ok, n = float(sums[0]), int(sums[1]), int(sums[2])
            loss = loss_sum / max(n, 1)
        stats.loss_sum += loss_sum
        stats.correct += ok
        stats.seen += n
        stats.seconds = seconds + time.perf_counter() - t0
        yield step, loss


# ---------------------------------------------------------------------------
# fit


def fit(model, loss_fn: Callable, optimizer, train_loader, val_loader=None, epochs: int = 1,
        scheduler=None, out_dir=None, resume: bool = False, progress: bool = True,
        class_names=None, config: dict | None = None, checkpoint_seconds: float | None = None,
        log: Callable[[str], None] | None = None, check_memory: bool = True, plots: bool = True, *,
        transform_grads: Callable[[list], None] | None = None, writer: bool = True,
        reduce: Callable[[np.ndarray], np.ndarray] | None = None, compiled: bool = True) -> dict:
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
        out_dir: the run folder (see ``striate.train.run``); None writes nothing
            and Ctrl-C is left alone. A folder that already holds a run is
            refused unless ``resume``.
        resume: continue from ``out_dir/checkpoint.safetensors``; the model,
            optimizer, scheduler and loaders must be built as for the first run.
        class_names: labels for the confusion matrix.
        config: JSON-friendly description of the run, written to config.json and
            into model.safetensors' metadata (``striate.load_run`` rebuilds the
            model from ``config["model"]``).
        checkpoint_seconds: also checkpoint mid-epoch when this many seconds passed
            since the last one (epochs always end with one; 0: after every step).
        log: where the one-line epoch summaries go (default: printed).
        check_memory: before anything else, estimate the memory a training step
            needs (``estimate_memory``) and refuse with NotEnoughMemory when
            it exceeds ``available_memory()``; False skips the check.
        plots: draw curves.png and confusion.png in ``out_dir`` (matplotlib);
            False leaves them out.
        transform_grads: ``transform_grads(params)`` between backward and each
            optimizer step (see :func:`train_step`).
        writer: whether this process writes: the run folder, the progress bar and
            the log. With False nothing is written, shown or logged (the folder is
            only read, to resume); with several processes training one model,
            one of them writes.
        reduce: ``reduce(array)``, the sum of a float64 array over the processes:
            the losses, accuracies and evaluations are then those of all processes
            together, and a Ctrl-C on any stops all after the same step (see the
            module's docstring).
        compiled: the evaluation after each epoch runs through ``st.compile``
            (see :func:`evaluate`), planned anew each time, with that epoch's weights;
            False runs it op by op.

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
    if check_memory:
        _check_memory(model, train_loader, optimizer)
    if resume and out_dir is None:
        raise ValueError("fit(resume=True) needs out_dir")
    out = Path(out_dir) if out_dir is not None else None
    files = RunWriter(out) if out is not None and writer else None       # None: this process writes nothing
    if not writer:
        progress = False
    say = (log or (lambda line: tqdm.write(line))) if writer else (lambda line: None)
    title = (config or {}).get("title", "")
    steps_per_epoch = len(train_loader)
    identity = loader_identity(train_loader)

    history: list[dict] = []
    start_epoch, start_batch, partial = 1, 0, None
    if files is not None:
        files.prepare(resume)
    if resume:
        assert out is not None                # resume without out_dir was refused above
        ckpt = out / CHECKPOINT
        if not ckpt.exists():
            raise FileNotFoundError(f"cannot resume: {ckpt} does not exist")
        position, history = load_checkpoint(ckpt, model, optimizer, scheduler, train_loader)
        start_epoch, start_batch = int(position["epoch"]), int(position["batch"])
        partial = position.get("partial")
        if files is not None:
            files.resumed(start_epoch, start_batch)
        if start_epoch - 1 > epochs or (start_epoch - 1 == epochs and start_batch > 0):
            raise ValueError(f"cannot resume {ckpt} with epochs={epochs}: it is at epoch {start_epoch}, "
                             f"batch {start_batch}, past the end")
        if start_epoch <= epochs:
            say(f"resumed from {ckpt}: epoch {start_epoch}, batch {start_batch}/{steps_per_epoch}")
    if files is not None and config is not None:
        files.write_config(config)

    last_save = time.monotonic()
    last_eval = None        # evaluate() of the last epoch run in this call (reused for the final result)
    with _StopRequest(enabled=out is not None) as stop:
        for epoch in range(start_epoch, epochs + 1):
            first = start_batch if epoch == start_epoch else 0
            stats = EpochStats.from_state(partial)
            partial = None
            lr = current_lr(optimizer)
            bar = tqdm(total=steps_per_epoch, initial=first, desc=f"epoch {epoch}/{epochs}",
                       unit="batch", disable=not progress, leave=False, dynamic_ncols=True)
            try:
                for step, _ in train_epoch(model, loss_fn, optimizer, train_loader, epoch, first, stats,
                                           transform_grads, reduce=reduce):
                    bar.update(1)
                    if step % 10 == 0 or step == steps_per_epoch - 1:
                        bar.set_postfix(loss=f"{stats.loss:.4f}", acc=f"{100 * stats.acc:.2f}%",
                                        img_s=f"{stats.seen / max(stats.seconds, 1e-9):,.0f}", refresh=False)
                    due = checkpoint_seconds is not None and time.monotonic() - last_save >= checkpoint_seconds
                    if reduce is not None and stop.enabled:     # one process's Ctrl-C stops them all here
                        stop.requested = bool(reduce(np.array([stop.requested], np.float64))[0])
                    if (stop.requested or due) and step + 1 < steps_per_epoch:
                        if files is not None:
                            position = {"epoch": epoch, "batch": step + 1, "partial": stats.state_dict()}
                            files.save_checkpoint(model, optimizer, scheduler, position, history, identity)
                        last_save = time.monotonic()
                        if stop.requested:
                            raise _interrupted(out, epoch, step + 1, steps_per_epoch)
            finally:
                bar.close()

            record = {"epoch": epoch, "train_loss": stats.loss, "train_acc": stats.acc,
                      "test_loss": None, "test_acc": None, "seconds": stats.seconds, "lr": lr,
                      "images_per_second": stats.seen / max(stats.seconds, 1e-9)}
            if val_loader is not None:
                last_eval = evaluate(model, val_loader, loss_fn, num_classes=_num_classes(class_names),
                                     reduce=reduce, compiled=compiled)
                record["test_loss"], record["test_acc"] = last_eval["loss"], last_eval["acc"]
            history.append(record)
            if scheduler is not None:
                if _wants_metric(scheduler):
                    scheduler.step(record["test_loss"] if record["test_loss"] is not None else record["train_loss"])
                else:
                    scheduler.step()
            say(_summary_line(record, epochs))
            if files is not None:
                position = {"epoch": epoch + 1, "batch": 0, "partial": None}        # the next epoch's start
                files.save_checkpoint(model, optimizer, scheduler, position, history, identity)
                files.write_progress(history, plots, title)
            last_save = time.monotonic()
            if stop.requested and epoch < epochs:
                raise _interrupted(out, epoch + 1, 0, steps_per_epoch)

    final: dict[str, Any] = {"epochs": history, "test_acc": history[-1]["test_acc"] if history else None}
    if val_loader is not None:
        result = last_eval or evaluate(model, val_loader, loss_fn, num_classes=_num_classes(class_names),
                                       reduce=reduce, compiled=compiled)
        final["test"] = result
        final["test_acc"] = result["acc"]
    if files is not None:
        files.write_final(model, config, history, final.get("test"), final["test_acc"], class_names, plots)
    return final


def _check_memory(model, train_loader, optimizer) -> None:
    """memory.check_memory for the loader's sample shape and batch size (no check without a shape)."""
    shape = train_loader.sample_shape() if hasattr(train_loader, "sample_shape") else \
        getattr(model, "input_shape", None)
    if shape is not None:
        batch = min(int(getattr(train_loader, "batch_size", 1)), int(getattr(train_loader, "num_samples", 1 << 62)))
        memory.check_memory(model, shape, batch, optimizer)


def _interrupted(out: Path | None, epoch: int, batch: int, steps_per_epoch: int) -> TrainingInterrupted:
    assert out is not None                    # fit listens for Ctrl-C only when it has out_dir
    where = f"epoch {epoch}, batch {batch}/{steps_per_epoch}" if batch else f"the start of epoch {epoch}"
    return TrainingInterrupted(f"interrupted; checkpoint saved in {out / CHECKPOINT} at {where}; "
                               f"fit(..., resume=True) continues from there", epoch, batch, out / CHECKPOINT)

class _StopRequest:
    """Turns Ctrl-C (SIGINT) into a request that ``fit`` honours between two steps.

    Only where a handler can be installed (the main thread); elsewhere a Ctrl-C
    cannot reach the loop anyway. A second Ctrl-C raises KeyboardInterrupt at once.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None   # the handler to put back

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




def _num_classes(class_names) -> int | None:
    return len(class_names) if class_names else None


def _wants_metric(scheduler) -> bool:
    from ..optim.lr_scheduler import ReduceLROnPlateau
    return isinstance(scheduler, ReduceLROnPlateau) or bool(getattr(scheduler, "needs_metric", False))


def _summary_line(r: dict, epochs: int) -> str:
    line = (f"epoch {r['epoch']:>{len(str(epochs))}}/{epochs}  "
            f"train loss {r['train_loss']:.4f} acc {100 * r['train_acc']:.2f}%")
    if r["test_acc"] is not None:
        line += f"  test loss {r['test_loss']:.4f} acc {100 * r['test_acc']:.2f}%"
    line += f"  lr {r['lr']:.4g}  {r['seconds']:.1f} s ({r['images_per_second']:,.0f} img/s)"
    return line
