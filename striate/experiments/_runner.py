"""What every experiment shares: data subsets, seeded training runs with a progress bar,
and the results folder.

An experiment module (``shift.py``, ``pooling.py``, ...) defines::

    NAME = "pooling"                     the command's name
    SUMMARY = "one line"                 for ``striate experiment --list``
    CLAIM = "..."                        what the chapter says, in our words
    SIZES = {"default": {...}, "quick": {...}}   the budget: subset sizes, epochs, ...
    def run(ctx: Context) -> Report      train, measure, and say what was found

and :func:`run_experiment` does the rest: seeds, one BLAS thread, the progress
bar, then writes into the output folder

    results.json   the claim, the budget, every number measured, the table, the finding
    NAME.png       the experiment's figure

and prints the table and the finding. Every number depends only on the seed and
the size (the same seed on the same machine gives the same numbers); only the
timings change from run to run.
"""
from __future__ import annotations

import functools
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import functional as F
from ..random import manual_seed
from ..tensor import Tensor, no_grad
from ..train import EpochStats, TrainingDiverged, evaluate, make_optimizer, preprocess, train_epoch

__all__ = ["Context", "Report", "run_experiment", "format_table", "markdown_table", "to_json", "dataset",
           "preprocess", "accuracy", "pct", "plural", "points", "smooth"]


@dataclass
class Report:
    """What an experiment hands back to the runner.

    Attributes:
        columns, rows: the table printed at the end and kept in results.json
            (cells are numbers or short strings).
        finding: what the numbers say, in a sentence or two, whatever they say.
        results: every number measured (JSON-friendly: numbers, strings, lists, dicts).
        plot: ``plot(path)`` draws the figure into the PNG file ``path``.
        notes: anything a reader should know to read the numbers (printed after the table).
        more_tables: further tables, each ``(title, columns, rows)``, printed after the first.
    """

    columns: Sequence[str]
    rows: Sequence[Sequence]
    finding: str
    results: dict
    plot: Callable[[Path], None]
    notes: list[str] = field(default_factory=list)
    more_tables: list[tuple[str, Sequence[str], Sequence[Sequence]]] = field(default_factory=list)


# ---------------------------------------------------------------------------
# data


@functools.lru_cache(maxsize=4)
def _load(name: str, train: bool):
    from ..data import get_dataset
    ds = get_dataset(name, train=train)
    return ds.images, ds.labels


def dataset(name: str, train: bool, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` images (N, 28, 28) uint8 and labels (N,) of MNIST or Fashion-MNIST.

    The first images, not a random draw: the subset is the same for every seed and
    every experiment, and both data sets are shuffled already (their first
    thousands hold every class in roughly equal numbers).
    """
    images, labels = _load(name, train)
    if n is not None:
        images, labels = images[:n], labels[:n]
    return images, labels


def batches(x: np.ndarray, y: np.ndarray, size: int = 500):
    """Ready-made float batches (x already transformed) for ``evaluate``."""
    for lo in range(0, len(y), size):
        yield x[lo:lo + size], y[lo:lo + size]


def accuracy(model, x: np.ndarray, y: np.ndarray, size: int = 500) -> float:
    """Accuracy of ``model`` (eval mode, no graph) on float inputs x (N, C, H, W) and labels y (N,)."""
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with no_grad():
            for xb, yb in batches(x, y, size):
                correct += int((model(Tensor(xb)).data.argmax(axis=1) == yb).sum())
    finally:
        model.train(was_training)
    return correct / len(y)


# ---------------------------------------------------------------------------
# training


class Context:
    """The experiment's budget, seed and tools; handed to ``run(ctx)``.

    Attributes:
        name: the experiment's name.
        size: the budget (``SIZES["quick"]`` or ``SIZES["default"]``).
        quick: whether this is the quick (test) budget.
        seed: the base seed; every model, data order and dropout mask derives from it.
        progress: show progress bars.
    """

    def __init__(self, name: str, size: dict, quick: bool, seed: int, progress: bool,
                 log: Callable[[str], None]):
        self.name, self.size, self.quick, self.seed = name, dict(size), quick, seed
        self.progress = progress
        self._log = log
        self._runs_planned = 0
        self._runs_done = 0

    def log(self, line: str) -> None:
        self._log(line)

    def plan(self, runs: int) -> None:
        """Say how many training runs are coming (the progress bar shows "run i/n")."""
        self._runs_planned, self._runs_done = int(runs), 0

    def init_rng(self, repeat: int = 0) -> np.random.Generator:
        """A fresh generator for initial weights: the same seed gives the same weights, so two
        variants with the same layer shapes start from the same point. ``repeat`` k > 0 gives the
        k-th other draw, for measuring how much a result depends on the seed."""
        return np.random.default_rng([self.seed, repeat])

    def run_seed(self, repeat: int = 0) -> int:
        """The seed of the data order and dropout masks of repeat ``repeat`` (0: the base seed itself)."""
        if repeat == 0:
            return self.seed
        return int(np.random.SeedSequence([self.seed, repeat]).generate_state(1)[0])

    def train(self, label: str, model, train_data, test_data, *, epochs: int, lr: float,
              transform=None, test_transform=None, batch_size: int = 64, momentum: float = 0.9,
              weight_decay: float = 0.0, eval_train: bool = False, evaluate_every_epoch: bool = True,
              optimizer: str = "sgd", repeat: int = 0) -> dict:
        """Train ``model`` with a constant learning rate and measure it.

        Args:
            label: the run's name in the progress bar and the log.
            train_data, test_data: ``(images, labels)``: uint8 (N, 28, 28) or float (N, C, H, W) in [0, 1].
            transform, test_transform: batch transforms (test_transform defaults to transform
                without augmentation: pass it explicitly when ``transform`` augments).
            eval_train: also measure the accuracy on the training images in evaluation mode
                (no dropout, running batch-norm statistics) after each epoch.
            evaluate_every_epoch: measure the test set after each epoch (else only at the end).
            optimizer: "sgd" (with Nesterov momentum when ``momentum`` > 0) or "adam".
            repeat: which repeat of the experiment this is (the data order and dropout masks come from
                ``run_seed(repeat)``; build the model with ``init_rng(repeat)``).

        Returns a dict: ``step_loss`` (the loss of every step), ``epochs`` (per epoch: train_loss
        and train_acc as seen while training, test_loss, test_acc, train_eval_acc with
        eval_train, seconds of training), ``test_acc``, ``test_loss``, ``seconds`` (training
        only), ``parameters`` and ``diverged`` (None, or where and why the loss became NaN or
        infinite: the run then stops and its accuracy is that of chance-level guessing, measured).
        """
        from tqdm.auto import tqdm

        from ..data import DataLoader

        seed = self.run_seed(repeat)
        manual_seed(seed)                      # dropout masks and anything else drawing from the default stream
        train_loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, seed=seed,
                                  transform=transform)
        test_loader = DataLoader(test_data, batch_size=1000, shuffle=False, seed=self.seed,
                                 transform=test_transform if test_transform is not None else transform)
        eval_loader = None
        if eval_train:
            eval_loader = DataLoader(train_data, batch_size=1000, shuffle=False, seed=self.seed,
                                     transform=test_transform if test_transform is not None else transform)
        opt = make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
        self._runs_done += 1
        which = f"[{self._runs_done}/{self._runs_planned}] " if self._runs_planned else ""
        steps = len(train_loader)
        bar = tqdm(total=epochs * steps, desc=f"{self.name} {which}{label}", unit="step", leave=False,
                   disable=not self.progress, dynamic_ncols=True)
        record: dict[str, Any] = {"label": label, "parameters": int(model.num_parameters()), "step_loss": [],
                                  "epochs": [], "diverged": None, "seconds": 0.0, "steps_per_epoch": steps}
        try:
            for epoch in range(1, epochs + 1):
                stats = EpochStats()
                try:
                    for step, loss in train_epoch(model, F.cross_entropy, opt, train_loader, epoch, stats=stats):
                        record["step_loss"].append(loss)
                        bar.update(1)
                        if step % 10 == 0:
                            bar.set_postfix(loss=f"{stats.loss:.3f}", refresh=False)
                except TrainingDiverged as exc:
                    record["diverged"] = f"epoch {exc.epoch}, step {exc.step}: {exc.reason}"
                record["seconds"] += stats.seconds
                last = epoch == epochs or record["diverged"] is not None
                entry = {"epoch": epoch, "train_loss": stats.loss, "train_acc": stats.acc,
                         "seconds": stats.seconds, "test_loss": None, "test_acc": None}
                if evaluate_every_epoch or last:
                    # after a divergence the weights may be huge: its overflow is reported as "diverged" instead
                    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                        result = evaluate(model, test_loader)
                        entry["test_loss"], entry["test_acc"] = result["loss"], result["acc"]
                        if eval_loader is not None:
                            entry["train_eval_acc"] = evaluate(model, eval_loader)["acc"]
                record["epochs"].append(entry)
                if record["diverged"] is not None:
                    break
        finally:
            bar.close()
        final = record["epochs"][-1]
        record["test_acc"], record["test_loss"] = final["test_acc"], final["test_loss"]
        line = (f"  {label}: test accuracy {100 * record['test_acc']:.2f}% after "
                f"{plural(len(record['epochs']), 'epoch')} ({record['seconds']:.1f} s of training)")
        if record["diverged"]:
            line += f"; diverged at {record['diverged']}"
        self.log(line)
        return record


# ---------------------------------------------------------------------------
# small helpers for findings and figures


def pct(x: float | None, digits: int = 1) -> str:
    """0.9731 → "97.3%" (None → "n/a")."""
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def plural(n: int, word: str) -> str:
    """plural(1, "epoch") → "1 epoch"; plural(3, "epoch") → "3 epochs"."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def points(a: float, b: float) -> str:
    """How accuracy ``a`` compares with ``b``, in percentage points: "2.1 points above", "0.3 points below"."""
    d = 100 * (a - b)
    if abs(d) < 0.05:
        return "level with"
    return f"{abs(d):.1f} points {'above' if d > 0 else 'below'}"


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Moving average over ``window`` steps (shorter at the start), for noisy per-step losses."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return v
    window = max(1, min(int(window), len(v)))
    c = np.cumsum(np.insert(v, 0, 0.0))
    ends = np.arange(1, len(v) + 1)
    starts = np.maximum(ends - window, 0)
    return (c[ends] - c[starts]) / (ends - starts)


# ---------------------------------------------------------------------------
# output


def to_json(value):
    """``value`` with NumPy types made Python and non-finite floats made None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"results must be JSON-friendly; got {type(value).__name__}: {value!r}")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{int(value):,}"
    return "—" if value is None else str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A plain-text table: a header, a rule, one line per row; numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row[i], (int, float, np.integer, np.floating)) or row[i] is None for row in rows)
               for i in range(len(columns))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """The same table in Markdown."""
    out = ["| " + " | ".join(columns) + " |",
           "|" + "|".join("---:" if all(isinstance(r[i], (int, float)) or r[i] is None for r in rows) else "---"
                          for i in range(len(columns))) + "|"]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def run_experiment(module, out, quick: bool = False, seed: int = 0, progress: bool | None = None,
                   log: Callable[[str], None] | None = None, threads: int | None = None) -> dict:
    """Run one experiment module and write its results into the folder ``out``.

    Args:
        module: an experiment module (see the module docstring).
        out: the output folder (created; results.json and NAME.png are replaced).
        quick: the small budget meant for tests, instead of the default one.
        seed: the base seed.
        progress: progress bars (default: when stderr is a terminal).
        log: where lines go (default: printed, above any progress bar).
        threads: striate's threads while it runs (None: as set; the results do not depend on it).

    Returns the content of results.json.
    """
    from tqdm.auto import tqdm

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"experiment seed must be a non-negative int, got {seed!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"experiment output {out} exists and is not a folder")
    if progress is None:
        progress = sys.stderr.isatty()
    say = log or (lambda line: tqdm.write(line) if progress else print(line, flush=True))
    size_name = "quick" if quick else "default"
    ctx = Context(module.NAME, module.SIZES[size_name], quick, int(seed), progress, say)
    say(f"experiment {module.NAME}: {module.CLAIM}")
    say(f"budget ({size_name}, by design a small one so that it runs in minutes on a CPU): "
        f"{module.budget(ctx.size)}; seed {seed}")

    limits = _threads_limit(threads)
    t0 = time.perf_counter()
    with limits:
        report = module.run(ctx)
    seconds = time.perf_counter() - t0

    if quick:
        report.finding = ("(Quick run: the budget is too small for these numbers to mean much; run without "
                          "--quick for the real measurement.) " + report.finding)
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{module.NAME}.png"
    report.plot(png)
    results = {
        "experiment": module.NAME,
        "claim": module.CLAIM,
        "command": f"striate experiment {module.NAME}" + (" --quick" if quick else "")
                   + (f" --seed {seed}" if seed else ""),
        "size": size_name,
        "budget": module.budget(ctx.size),
        "config": ctx.size,
        "seed": int(seed),
        "table": {"columns": list(report.columns), "rows": [list(r) for r in report.rows]},
        "more_tables": [{"title": t, "columns": list(c), "rows": [list(r) for r in rows]}
                        for t, c, rows in report.more_tables],
        "finding": report.finding,
        "notes": list(report.notes),
        "results": report.results,
        "figure": png.name,
        "seconds": seconds,
    }
    results = to_json(results)
    text = json.dumps(results, indent=1, allow_nan=False)
    tmp = out / "results.json.tmp"
    tmp.write_text(text + "\n")
    tmp.replace(out / "results.json")

    say("")
    say(format_table(report.columns, report.rows))
    for title, columns, rows in report.more_tables:
        say("")
        say(title)
        say(format_table(columns, rows))
    for note in report.notes:
        say(f"note: {note}")
    say(f"finding: {report.finding}")
    say(f"wrote {out / 'results.json'} and {png} ({seconds:.0f} s)")
    return results


def _threads_limit(threads):
    from ..threads import using
    return using(None if threads is None else int(threads))
