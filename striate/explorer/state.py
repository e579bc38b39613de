"""The run the explorer shows, and the one lock that makes its model safe to share between requests.

The server answers requests on many threads at once; striate's model is not made for that:
a forward pass through it registers hooks on the model's modules (:func:`compute.trace`),
the fast convolution reuses one workspace of scratch arrays, and a compiled plan (the run's
``predict``) its buffers. So every use of the model
takes :attr:`Explorer.lock`, one ``threading.Lock``. A LeNet-5 forward pass takes about a
millisecond, far less than decoding an upload or writing the JSON answer, and both of those
run outside the lock, in parallel. A single worker thread fed by a queue would serialise the
model the same way, with more code to read.

A run still training is followed: when its weights file changes (a new checkpoint, or the
final weights), the next request loads it again.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..data.images import mnist_style
from ..train import load_run, run_state
from ..train.run import FINAL_WEIGHTS, METRICS
from . import compute

__all__ = ["Explorer", "newest_finished_run", "NoRun"]

CONFUSION_BATCH = 250       # test images per forward pass while computing the confusion matrix

#: how to make a run when there is none (the page and the command line say it)
TRAIN_HINT = "striate train lenet5-modern"


class NoRun(LookupError):
    """The explorer was started without a trained run."""


def newest_finished_run(folder) -> Path | None:
    """The finished run under ``folder`` (``./runs``) whose final weights are the newest, or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    finished = [p for p in folder.iterdir() if p.is_dir() and run_state(p) == "finished"
                and (p / FINAL_WEIGHTS).is_file()]
    return max(finished, key=lambda p: (p / FINAL_WEIGHTS).stat().st_mtime, default=None)


class Explorer:
    """A loaded run (or none), its model's lock, and what is computed once: layers, confusion matrix."""

    def __init__(self, path=None):
        self.lock = threading.Lock()
        self.path = None if path is None else Path(path)
        self.run = None
        self._stamp = None
        self._layers = None
        self._test = None                 # (images (N, 28, 28) uint8, labels (N,)), False if unavailable
        self._confusion = None
        if self.path is not None:
            self._load()

    # -- the run -----------------------------------------------------------
    def _load(self) -> None:
        """(Re)load the run; the caller holds the lock or nobody else can see this object yet."""
        self.run = load_run(self.path)
        self._stamp = self._weights_stamp()
        self._layers = compute.describe_layers(self.run.model, self.run.input_shape)
        self._confusion = None

    def _weights_stamp(self):
        weights = self.run.weights
        try:
            return (str(weights), weights.stat().st_mtime_ns, (self.folder / FINAL_WEIGHTS).exists())
        except OSError:
            return None

    @property
    def folder(self) -> Path:
        return self.path if self.path.is_dir() else self.path.parent

    def require(self):
        """The run, reloaded first if its weights changed on disk; NoRun when there is none."""
        if self.run is None:
            raise NoRun(f"no trained run: train one with `{TRAIN_HINT}`, then start `striate serve` again")
        if self.path.is_dir() and self._weights_stamp() != self._stamp:
            with self.lock:
                if self._weights_stamp() != self._stamp:
                    self._load()
        return self.run

    def model_json(self) -> dict:
        run = self.require()
        config = run.config
        model = config.get("model", {})
        return {"name": model.get("name", "model"), "title": config.get("title") or model.get("name"),
                "dataset": run.dataset, "classes": run.classes, "input_shape": list(run.input_shape),
                "image_size": list(run.image_size), "parameters": int(run.model.num_parameters()),
                "layers": self._layers, "state": run_state(self.folder) if self.path.is_dir() else "finished"}

    # -- one image through the model -----------------------------------------
    def digit(self, gray: np.ndarray) -> np.ndarray:
        """A decoded picture (H, W) in [0, 1] → the 28×28 digit, as ``striate predict`` prepares a file."""
        return mnist_style(gray)

    def forward(self, digit: np.ndarray):
        """(traces, probabilities (K,)) of one prepared digit (28, 28)."""
        run = self.require()
        x = run.preprocess(digit[None])                                    # (1, C, H, W), as in training
        with self.lock:
            traces, logits = compute.trace(run.model, x)
        return traces, compute.softmax(logits)[0], x[0]

    def layer_index(self, traces, name: str) -> int:
        for i, t in enumerate(traces):
            if t.name == name:
                return i
        raise compute.Refused(f"no layer {name!r}; the layers are: {', '.join(t.name for t in traces)}")

    # -- the test set ---------------------------------------------------------
    def test_set(self):
        """(images (N, 28, 28) uint8, labels (N,)) of the run's test images, or None if absent.

        The data set's test split; for a run trained with ``--limit N``, its first N/6 images
        (at least 100), the ones that run was tested on.
        """
        run = self.require()
        if self._test is None:
            from ..data import DatasetNotFoundError, get_dataset
            try:
                data = get_dataset(run.dataset or "mnist", train=False, download=False)
                images, labels = np.asarray(data.images), np.asarray(data.labels)
                limit = run.config.get("limit")
                if isinstance(limit, int) and limit > 0:       # the test images of a --limit run
                    n = max(limit // 6, 100)
                    images, labels = images[:n], labels[:n]
                self._test = (images, labels)
            except (DatasetNotFoundError, ValueError, OSError):
                self._test = False
        return self._test or None

    def confusion(self, examples: int = 40) -> dict:
        """The test set's confusion matrix under the current weights (computed once per weights)."""
        run = self.require()
        test = self.test_set()
        if test is None:
            raise NoRun(f"the {run.dataset or 'mnist'} test set is not on this machine")
        if self._confusion is None:
            images, labels = test
            predicted = []
            # compiled (Run.predict): only the class is needed; the run keeps the plan for these batches
            for lo in range(0, len(images), CONFUSION_BATCH):      # the lock is let go between batches,
                with self.lock:                                     # so that drawing stays live meanwhile
                    predicted.append(run.predict(images[lo:lo + CONFUSION_BATCH]).argmax(axis=1))
            self._confusion = compute.confusion(np.concatenate(predicted), labels, len(run.classes), examples)
        return self._confusion

    def metrics(self) -> dict:
        self.require()
        path = self.folder / METRICS
        try:
            import json
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            value = {}
        return value if isinstance(value, dict) else {}

    def first_kernels(self) -> dict | None:
        run = self.require()
        for name, module in run.model.named_modules():
            if name and compute.is_conv(module):
                weight = compute.conv_weight(module)
                assert weight is not None                      # is_conv: a layer with a kernel
                return {"layer": name, "shape": list(weight.shape), "values": compute.rounded(weight)}
        return None
