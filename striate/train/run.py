"""The run folder: its files, its state, and a trained run loaded back (:func:`load_run`).

A run folder holds::

    config.json             what the caller passed as ``config`` (the command line: the
                            model's name and arguments, the data set, the recipe)
    checkpoint.safetensors  the last checkpoint: model, optimizer, scheduler, RNG, data position
    metrics.json            per epoch: train_loss, train_acc, test_loss, test_acc, seconds, lr;
                            when finished, final_test_acc and per-class accuracy
    model.safetensors       the final weights (st.load + model.load_state_dict), the config in
                            its metadata
    curves.png              loss and accuracy per epoch (unless ``fit(plots=False)``)
    confusion.png           the test confusion matrix (unless ``fit(plots=False)``)

A folder is "empty" (nothing to lose), "unfinished" (a checkpoint to resume) or
"finished" (:func:`run_state`); a run is never overwritten. :class:`RunWriter` is
how ``fit`` writes the folder; :func:`load_run` reads a finished (or unfinished)
one back as a :class:`Run`, ready to classify images.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import models
from ..compile import Inference
from ..data import DATASETS
from ..functional import softmax
from ..serialization import atomic_write_bytes, load, save
from ..tensor import Tensor, no_grad
from . import checkpoint
from .recipe import image_preprocess, preprocess

__all__ = ["CHECKPOINT", "FINAL_WEIGHTS", "METRICS", "CONFIG", "RunError", "Run", "load_run", "run_state",
           "free_run_dir", "check_no_run", "check_writable", "remove_leftovers", "read_json", "write_json",
           "RunWriter"]

CHECKPOINT = "checkpoint.safetensors"
FINAL_WEIGHTS = "model.safetensors"
METRICS = "metrics.json"
CONFIG = "config.json"
CURVES = "curves.png"
CONFUSION = "confusion.png"


class RunError(ValueError):
    """A run folder or weights file that cannot be loaded; the message names the file and what is wrong."""


# ---------------------------------------------------------------------------
# the folder's state


def run_state(folder) -> str:
    """"finished", "unfinished" (a checkpoint to resume) or "empty" (nothing to lose)."""
    folder = Path(folder)
    try:
        if json.loads((folder / METRICS).read_text()).get("finished"):
            return "finished"
    except (OSError, ValueError, AttributeError):
        pass
    if (folder / CHECKPOINT).exists():
        return "unfinished"
    if (folder / FINAL_WEIGHTS).exists():
        return "finished"
    return "empty"


def free_run_dir(base) -> Path:
    """``base``, or base-2, base-3, ... : the first that holds no run (a run is never overwritten)."""
    base = Path(base)
    candidate, n = base, 1
    while run_state(candidate) != "empty":
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def check_no_run(folder) -> None:
    """Raise FileExistsError if ``folder`` already holds a run (finished or not)."""
    if run_state(folder) != "empty":
        raise FileExistsError(f"{folder} already holds a training run; continue it with resume=True, "
                              f"or choose another out_dir (a run is never overwritten)")


def check_writable(folder) -> None:
    """Fail now, not after an epoch of work, if files cannot be created in ``folder``."""
    probe = Path(folder) / f".striate-write-test.{os.getpid()}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    except OSError as exc:
        raise _restated(exc, f"cannot write in the run folder {folder}: {exc.strerror or exc}; "
                             f"choose a writable out_dir") from exc


def remove_leftovers(folder) -> None:
    """Delete the temporary files of writes that a killed run left half-done (their targets are intact)."""
    for name in (CHECKPOINT, METRICS, CONFIG, FINAL_WEIGHTS, "striate-write-test"):
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2) + "\n").encode())


def read_json(path) -> dict:
    """A JSON object from ``path``; RunError when the file is not valid JSON or not an object."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except ValueError as exc:
        raise RunError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise RunError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------
# writing a run (what fit does with its out_dir)


class RunWriter:
    """The run folder as ``fit`` writes it: config, checkpoints, metrics, plots, final weights.

    A write that fails (disk full, folder turned read-only) becomes an OSError
    that says what is safe: ``saved_at``, the (epoch, batch) of the last good
    checkpoint, or that none was saved yet.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.checkpoint = self.folder / CHECKPOINT
        self.saved_at: tuple[int, int] | None = None

    def prepare(self, resume: bool) -> None:
        """Create the folder and check it can be written; unless resuming, refuse a folder holding a run."""
        self.folder.mkdir(parents=True, exist_ok=True)
        check_writable(self.folder)
        if not resume:
            check_no_run(self.folder)

    def resumed(self, epoch: int, batch: int) -> None:
        """The checkpoint at (epoch, batch) was read back: clear what killed writes left behind."""
        remove_leftovers(self.folder)
        self.saved_at = (epoch, batch)

    def write_config(self, config: dict) -> None:
        write_json(self.folder / CONFIG, config)

    def save_checkpoint(self, model, optimizer, scheduler, position: dict, history: list,
                        loader_identity: dict) -> None:
        """:func:`checkpoint.save_checkpoint` into the folder; ``saved_at`` moves only when it succeeded."""
        epoch, batch = position["epoch"], position["batch"]
        try:
            checkpoint.save_checkpoint(self.checkpoint, model, optimizer, scheduler, position, history,
                                       loader_identity)
        except OSError as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc      # the system's own words
            last = self.saved_at
            kept = (f"the previous checkpoint (epoch {last[0]}, batch {last[1]}) is intact; free some space "
                    f"or make the folder writable, then resume from it" if last is not None
                    else "no checkpoint had been saved yet")
            raise _restated(exc, f"cannot save the checkpoint of epoch {epoch}, batch {batch} in "
                                 f"{self.checkpoint}: {cause.strerror or cause}; {kept}") from exc
        self.saved_at = (epoch, batch)

    def write_progress(self, history: list, plots: bool, title: str) -> None:
        """metrics.json (not finished yet) and the curves so far, after an epoch."""
        with self._saving(METRICS + " and " + CURVES):
            write_json(self.folder / METRICS, {"epochs": history, "finished": False})
            if plots:
                from ..viz import plot_curves
                plot_curves(history, self.folder / CURVES, title=title)

    def write_final(self, model, config: dict | None, history: list, test: dict | None, test_acc,
                    class_names, plots: bool) -> None:
        """The final weights (the config in their metadata), metrics.json marked finished, and the plots."""
        with self._saving(FINAL_WEIGHTS):
            save(model, self.folder / FINAL_WEIGHTS, metadata={"config": config or {}})
        summary = {"epochs": history, "finished": True, "final_test_acc": test_acc,
                   "total_seconds": sum(e["seconds"] for e in history)}
        if test is not None:
            summary["final_test_loss"] = test["loss"]
            summary["per_class_acc"] = [float(a) for a in test["per_class_acc"]]
        with self._saving(f"{METRICS} and the plots"):
            if plots and test is not None:
                from ..viz import plot_confusion
                names = list(class_names or [str(i) for i in range(test["confusion"].shape[0])])
                plot_confusion(test["confusion"], names, self.folder / CONFUSION)
            write_json(self.folder / METRICS, summary)
            if plots and history and not (self.folder / CURVES).exists():
                from ..viz import plot_curves
                plot_curves(history, self.folder / CURVES, title=(config or {}).get("title", ""))

    @contextlib.contextmanager
    def _saving(self, what: str):
        """Turn a failed write of the folder's other files into an OSError that says what is safe."""
        try:
            yield
        except OSError as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
            at = self.saved_at
            safe = (f"the checkpoint (epoch {at[0]}, batch {at[1]}) is saved: resume from it "
                    f"once the folder is writable" if at else "no checkpoint was saved")
            raise _restated(exc, f"cannot write {what} in {self.folder}: {cause.strerror or cause}; "
                                 f"{safe}") from exc


def _restated(exc: OSError, message: str) -> OSError:
    """An OSError with ``message`` and ``exc``'s errno (so a PermissionError stays one)."""
    return OSError(exc.errno, message) if exc.errno is not None else OSError(message)


# ---------------------------------------------------------------------------
# a trained run, loaded back


class Run:
    """A trained run: the model (eval mode), its config, class names and metrics; it classifies images.

    Made by :func:`load_run`. Attributes:
        path: the run folder or weights file it was loaded from.
        model: the model with the run's weights, in eval mode.
        config: the run's config.json (or the weights file's metadata).
        classes: the class names, ``classes[k]`` for output k: the config's ``"classes"``
            when recorded, else those of the data set it was trained on.
        metrics: metrics.json as a dict (empty when there is none).
        dataset: the data set's name from the config (None if not recorded).
        weights: the file the weights came from.
        images: for a run trained on class folders, how its images were made
            (``{"size", "channels", "resize", ...}``: ``data.ImageFolder.describe()``); else None.

    Not run as a doctest (it needs a trained run folder and MNIST's test images)::

        run = st.load_run("runs/lenet5-mnist")
        run.predict(test_images[:5]).argmax(axis=1)            # (5, 28, 28) uint8 -> 5 labels
    """

    def __init__(self, path, model, config: dict, weights, metrics: dict):
        self.path, self.model, self.config = Path(path), model, config
        self.weights, self.metrics = Path(weights), metrics
        self._compiled: Inference | None = None             # predict's compiled forward, kept for its plans
        dataset = config.get("dataset")
        self.dataset = dataset if isinstance(dataset, str) else None
        known = self.dataset if self.dataset in DATASETS else None        # a data set striate knows, by name
        self.input_shape = tuple(getattr(model, "input_shape", ()))          # (C, H, W)
        # a run on class folders records how its images were made (data.ImageFolder.describe())
        images = config.get("images")
        self.images = images if isinstance(images, dict) and "resize" in images else None
        if self.images is not None:
            normalize = (config.get("preprocess") or {}).get("normalize")
            if not (isinstance(normalize, list) and len(normalize) == 2):
                raise RunError(f"{path}: the run's config lacks the normalisation of its images "
                               f"('preprocess': {{'normalize': [mean, std]}})")
            self.image_size = tuple(self.input_shape[-2:])
            self._transform = image_preprocess(normalize[0], normalize[1])
        else:
            # the images the run was trained on: the data set's 28×28, padded by the transform to the model's size
            self.image_size = (28, 28) if known and len(self.input_shape) == 3 else tuple(self.input_shape[-2:])
            self._transform = preprocess(known or "mnist", self.input_shape or None)
        if isinstance(config.get("classes"), list) and all(isinstance(c, str) for c in config["classes"]):
            self.classes = list(config["classes"])
        elif known:
            self.classes = list(DATASETS[known].classes)
        else:
            self.classes = [str(k) for k in range(self._outputs())]

    def __repr__(self) -> str:
        name = (self.config.get("model") or {}).get("name", "?")
        return f"Run({str(self.path)!r}, model={name!r}, dataset={self.dataset!r}, classes={len(self.classes)})"

    def _repr_html_(self) -> str:
        """How a notebook shows a run: what it is, its final test accuracy, and its curves.png."""
        import base64
        import html
        name = (self.config.get("model") or {}).get("name", "?")
        epochs = self.metrics.get("epochs") or []
        acc = self.metrics.get("final_test_acc")
        facts = [f"model {name}", f"data {self.dataset or '?'}", f"{len(epochs)} epoch{'s' * (len(epochs) != 1)}"]
        if isinstance(acc, (int, float)):
            facts.append(f"test accuracy {100 * acc:.2f}%")
        out = f"<p><b>Run</b> {html.escape(str(self.path))}: {html.escape(', '.join(facts))}</p>"
        folder = self.path if self.path.is_dir() else self.path.parent
        if (folder / CURVES).is_file():
            png = base64.b64encode((folder / CURVES).read_bytes()).decode("ascii")
            out += f"<img src='data:image/png;base64,{png}' alt='training curves' style='max-width:720px'>"
        return out

    @property
    def transform(self):
        """The run's test transform of float batches (B, C, H, W) in [0, 1]: what a test loader applies."""
        return self._transform

    def load_images(self, images) -> np.ndarray:
        """``images`` (files or arrays, as for :meth:`preprocess`) checked and made into what the
        run's data loader held before its transform: (N, H, W, C), uint8, or float in [0, 1]."""
        return self._checked(images, "Run.load_images")

    def preprocess(self, images) -> np.ndarray:
        """Images as the model takes them, prepared exactly as the run's test set was: float32 (N, C, H, W).

        ``images``: uint8 (0–255) or float ([0, 1]) of shape (N, H, W) or (N, H, W, C)
        with H×W the size of the data set's images (28×28 for MNIST), or a list of
        image files (prepared as ``striate predict`` does: ``data.images.mnist_style``).
        Padding to the model's input size and normalisation with the data set's
        statistics follow, as in training.

        A run trained on class folders (``run.images`` records how) takes image files,
        each decoded, converted to the run's channels and resized with the run's method,
        exactly as ``data.ImageFolder`` made the training images
        (``data.folders.prepare_image``); or arrays (N, h, w) or (N, h, w, 1 or 3), uint8 or
        float in [0, 1], of any size, each prepared the same way. Its normalisation is
        the one recorded in the run (the training images' per-channel mean and std).
        """
        return self._prepare(self._checked(images, "Run.preprocess"))

    def predict(self, images, batch_size: int = 256, compiled: bool = True) -> np.ndarray:
        """Class probabilities, float32 (N, len(classes)); each row sums to 1.

        ``images`` as for :meth:`preprocess`. The model runs in evaluation mode under no_grad,
        ``batch_size`` images at a time, so memory stays bounded however many are passed.

        ``compiled``: the model runs through ``st.compile`` without measuring
        (``striate.compile.Inference``): the same probabilities on every run, those of the
        op-by-op forward to float32 rounding, with the current weights. The run keeps its
        plans (one per batch shape) for later calls. False runs the model op by op.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"Run.predict: batch_size must be a positive int, got {batch_size!r}")
        images = self._checked(images, "Run.predict")              # (N, H, W, C) uint8 or float
        forward = self._forward(compiled)
        out = []
        with no_grad():
            for lo in range(0, len(images), batch_size):
                logits = forward(self._prepare(images[lo:lo + batch_size]))                 # (B, K)
                out.append(softmax(logits, dim=1).data)
        probs = np.concatenate(out)
        if probs.shape[1] != len(self.classes):
            raise RunError(f"{self.path}: the model has {probs.shape[1]} outputs but the run names "
                           f"{len(self.classes)} classes ({self.dataset or 'from its config'})")
        return probs

    def _forward(self, compiled: bool) -> Inference:
        """The model's forward for predict: compiled (made once, for this model) or op by op."""
        if not compiled:
            return Inference(self.model, compiled=False)
        if self._compiled is None or self._compiled.model is not self.model:
            self._compiled = Inference(self.model)
        return self._compiled

    def _checked(self, images, op: str) -> np.ndarray:
        """``images`` checked against what the run was trained on: (N, H, W, C), uint8 or float in [0, 1]."""
        if len(self.input_shape) != 3:
            raise RunError(f"{op}: the model of {self.path} takes inputs of shape {self.input_shape}, not images")
        if self.images is not None:
            return self._folder_images(images, op)
        C, (H, W) = self.input_shape[0], self.image_size
        want = f"(N, {H}, {W})" + (f" or (N, {H}, {W}, {C})" if C == 1 else f" (N, {H}, {W}, {C})")
        if isinstance(images, (str, os.PathLike)):
            raise TypeError(f"{op} expects a list of image files or an array {want}, got one path "
                            f"{str(images)!r}: pass [{str(images)!r}]")
        if isinstance(images, (list, tuple)) and not images:
            raise ValueError(f"{op} expects at least one image {want} or image file, got an empty "
                             f"{type(images).__name__}")
        if isinstance(images, Sequence) and all(isinstance(p, (str, os.PathLike)) for p in images):
            from ..data.images import mnist_style
            images = np.stack([mnist_style(p) for p in images])             # (N, 28, 28) float32 in [0, 1]
        if not isinstance(images, np.ndarray):
            raise TypeError(f"{op} expects images as a NumPy array {want} or a list of image files, "
                            f"got {type(images).__name__}")
        if images.dtype != np.uint8 and images.dtype.kind != "f":
            raise TypeError(f"{op} expects uint8 (0-255) or float ([0, 1]) images, got dtype {images.dtype}")
        x = images[..., None] if images.ndim == 3 else images               # (N, H, W, C)
        if x.ndim != 4 or x.shape[1:] != (H, W, C):
            raise ValueError(f"{op} expects images {want} (the size of the images the run was trained on, "
                             f"{H}×{W}, {C} channel{'s' if C > 1 else ''}), got shape {images.shape}")
        if len(x) == 0:
            raise ValueError(f"{op} expects at least one image {want}, got shape {images.shape}")
        if x.dtype != np.uint8:
            lo, hi = float(x.min()), float(x.max())
            if not (lo >= 0 and hi <= 1):
                raise ValueError(f"{op} takes float images as values in [0, 1], got values from {lo:g} to "
                                 f"{hi:g} (pass the raw images, not normalised ones; uint8 are taken as 0-255)")
        return x

    def _folder_images(self, images, op: str) -> np.ndarray:
        """Files or arrays of any size, prepared as the run's ImageFolder made its images: uint8 (N, H, W, C)."""
        from ..data.folders import prepare_image
        assert self.images is not None                       # only folder runs come here
        C, size, method = self.input_shape[0], self.image_size, self.images["resize"]
        want = f"image files or an array (N, H, W) or (N, H, W, {C}) of any size"
        if isinstance(images, (str, os.PathLike)):
            raise TypeError(f"{op} expects {want}, got one path {str(images)!r}: pass [{str(images)!r}]")
        if isinstance(images, (list, tuple)) and not images:
            raise ValueError(f"{op} expects at least one image, got an empty {type(images).__name__}")
        if isinstance(images, Sequence) and all(isinstance(p, (str, os.PathLike)) for p in images):
            prepared = [prepare_image(p, size, C, method) for p in images]                # (C, H, W) uint8 each
        elif isinstance(images, np.ndarray):
            if images.dtype != np.uint8 and images.dtype.kind != "f":
                raise TypeError(f"{op} expects uint8 (0-255) or float ([0, 1]) images, got dtype {images.dtype}")
            if images.ndim not in (3, 4) or len(images) == 0 or (images.ndim == 4 and images.shape[3] not in (1, 3)):
                raise ValueError(f"{op} expects {want}, got shape {images.shape}")
            if images.dtype != np.uint8 and not (np.isfinite(images).all() and images.min() >= 0
                                                 and images.max() <= 1):
                raise ValueError(f"{op} takes float images as values in [0, 1] (pass the raw images, not "
                                 f"normalised ones; uint8 are taken as 0-255)")
            prepared = [prepare_image(image, size, C, method) for image in images]
        else:
            raise TypeError(f"{op} expects {want}, got {type(images).__name__}")
        return np.stack(prepared).transpose(0, 2, 3, 1)                                  # (N, H, W, C)

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        """Checked images (B, H, W, C) -> float32 (B, C, H, W) through the run's test transform."""
        if x.dtype == np.uint8:
            x = np.divide(x, np.float32(255), dtype=np.float32)          # as the data loader's to_float
        else:
            x = x.astype(np.float32, copy=False)
        return self._transform(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), None)

    def _outputs(self) -> int:
        """The model's number of outputs, from one forward of a blank sample."""
        with no_grad():
            return int(self.model(Tensor(np.zeros((1,) + self.input_shape, np.float32))).shape[1])


def load_run(path) -> Run:
    """A trained run from its folder (or its weights file), ready to classify images.

    ``path``: a run folder written by ``fit``/``striate train`` (config.json and
    model.safetensors, or only a checkpoint of an unfinished run), or a weights
    file whose metadata holds the config (model.safetensors) or that has a
    config.json beside it.

    Not run as a doctest (it needs a trained run folder)::

        run = st.load_run("runs/lenet5-mnist")
        probs = run.predict(images)                            # (N, 10), rows sum to 1

    Raises RunError (a ValueError; one line naming the file and the problem) for
    a missing folder or config, bad JSON, a config without a model description,
    or weights that do not fit the model; CheckpointError for a file that is not
    a safetensors checkpoint (a pickle is refused before it is read).
    """
    p = Path(path)
    config: dict | None                     # config.json, or the weights file's metadata
    if p.is_dir():
        config_file = p / CONFIG
        if not config_file.exists():
            raise RunError(f"{p}: no {CONFIG} in this folder (expected a run folder written by 'striate train')")
        config = read_json(config_file)
        weights = p / FINAL_WEIGHTS if (p / FINAL_WEIGHTS).exists() else p / CHECKPOINT
        if not weights.exists():
            raise RunError(f"{p}: neither {FINAL_WEIGHTS} nor {CHECKPOINT} is there: nothing to load")
        state, metadata = load(weights, with_metadata=True)
        folder = p
    elif p.is_file():
        weights = folder = p
        state, metadata = load(p, with_metadata=True)
        config = metadata.get("config") if isinstance(metadata, dict) else None
        if config is not None and not isinstance(config, dict):
            raise RunError(f"{p}: the model description in the file's metadata is a "
                           f"{type(config).__name__}, expected a JSON object")
        if not config and (p.parent / CONFIG).exists():
            config = read_json(p.parent / CONFIG)
        if not config:
            raise RunError(f"{p}: the file holds weights but no model description; "
                           f"pass the run folder that has {CONFIG}")
        folder = p.parent
    else:
        raise RunError(f"{p}: no such run folder or weights file")
    description = config.get("model")
    if not isinstance(description, dict) or "name" not in description:
        raise RunError(f"{p}: the run's config has no model description ('model': {{'name': ..., 'kwargs': ...}})")
    try:
        model = models.from_config(description)
    except (ValueError, TypeError) as exc:
        raise RunError(f"{p}: cannot rebuild the model: {exc}") from None
    except MemoryError:
        raise RunError(f"{p}: cannot rebuild the model: its description {description} asks for more "
                       f"memory than this machine has") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):      # a training checkpoint
        state = state["model"]
    if not isinstance(state, dict):
        raise RunError(f"{weights}: holds no state dict of weights")
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError, TypeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise RunError(f"{weights}: these weights do not fit model {description['name']!r}: {message}") from None
    model.eval()
    metrics = read_json(folder / METRICS) if (folder / METRICS).is_file() else {}
    return Run(p, model, config, weights, metrics)
