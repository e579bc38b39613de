"""Batches for training and evaluation, in an order that survives a restart.

:class:`DataLoader` cuts a data set into batches of float32 ``(B, C, H, W)``
images and int64 ``(B,)`` labels. A batch is made in one step: index the
whole uint8 image array with the batch's indices, convert that, then apply the
transform; nothing is done per sample in Python. A data set too large for one
array (:class:`~striate.data.ImageFolder`) is asked for the batch's indices
with ``get_batch(indices)`` instead, and the rest is the same.

Reproducible and resumable by construction: the order of epoch ``e`` is a
permutation drawn from a generator seeded with ``(seed, e)`` alone, and the
transform of batch ``b`` in epoch ``e`` draws from one seeded with
``(seed, e, b)``. So the loader's whole state is three numbers, ``seed``,
``epoch`` and the next ``batch``: a run restored from a checkpoint with
:meth:`DataLoader.load_state_dict` sees exactly the batches the interrupted run
would have seen, however many epochs or batches came before.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..random import get_rng
from .transforms import (
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    MNIST_MEAN,
    MNIST_STD,
    Compose,
    Normalize,
    PadTo,
    as_step,
    to_float,
)

__all__ = ["DataLoader", "mnist_preprocess", "fashion_mnist_preprocess"]

# Tags that keep the order stream and the transform stream apart (fixed-length
# spawn keys: SeedSequence([s, e]) and SeedSequence([s, e, 0]) would collide).
_ORDER, _TRANSFORM = 0, 1


def _is_lazy(data) -> bool:
    """A data set that makes its batches itself: ``len(data)`` and ``data.get_batch(indices)``."""
    return callable(getattr(data, "get_batch", None)) and hasattr(data, "__len__")


def _arrays(data) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(data, "images") and hasattr(data, "labels"):
        images, labels = data.images, data.labels
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data
    else:
        raise TypeError(f"DataLoader expects a data set with .images and .labels or a tuple (images, labels), "
                        f"or one with len and get_batch(indices); got {type(data).__name__}")
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim not in (3, 4):
        raise ValueError(f"DataLoader expects images (N, H, W) or (N, C, H, W), got shape {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"DataLoader expects integer labels (N,), got {labels.dtype} array of shape "
                         f"{labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"DataLoader: {len(images)} images but {len(labels)} labels")
    return images, labels.astype(np.int64, copy=False)


class DataLoader:
    """Iterate over ``(x, y)`` batches: x float32 (B, C, H, W), y int64 (B,).

    Args:
        data: a data set with ``.images`` (N, H, W) or (N, C, H, W), uint8 or
            float in [0, 1], and ``.labels`` (N,), or a tuple ``(images, labels)``;
            or a data set too large to hold as one array, with ``len(data)`` and
            ``data.get_batch(indices) -> (images, labels)`` (images uint8 or float,
            (B, H, W) or (B, C, H, W)), e.g. :class:`~striate.data.ImageFolder`: it is
            asked for each batch's indices, in the same order, so batches, resuming
            and determinism are the same as with arrays.
        batch_size: B; the last batch is smaller unless ``drop_last``.
        shuffle: a new permutation each epoch (else the data's order).
        drop_last: leave out a last, incomplete batch.
        seed: fixes the order and the transforms' randomness; None draws one
            from striate's default generator (so ``st.manual_seed`` fixes it).
        transform: applied to each float batch (B, C, H, W) as ``transform(x, rng)``
            (a function of x alone is accepted too), e.g. :func:`mnist_preprocess`.

    Each ``for x, y in loader`` is one pass over the next epoch (0, 1, 2, ...),
    a pass left early (``break``, an exception) included. Right after
    :meth:`load_state_dict` or :meth:`set_epoch`, the next pass starts at the
    restored batch instead. While a pass runs, :meth:`state_dict` says where it
    is, so a checkpoint taken inside the loop, or after leaving it, resumes at the
    next batch. ``len(loader)`` is the number of batches in a full epoch. One pass
    at a time: :meth:`iter_epoch` gives any epoch's batches without moving the loader.

    >>> loader = DataLoader(MNIST(), batch_size=64, shuffle=True, seed=0,  # needs MNIST  # doctest: +SKIP
    ...                     transform=mnist_preprocess(pad_to=32))
    >>> x, y = next(iter(loader)); x.shape, y.shape                             # doctest: +SKIP
    ((64, 1, 32, 32), (64,))
    """

    def __init__(self, data, batch_size: int = 64, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, transform: Callable | None = None):
        if _is_lazy(data):
            self.dataset, self.images = data, None
            self.labels = np.asarray(data.labels, dtype=np.int64) if hasattr(data, "labels") else None
            self._size = len(data)
        else:
            self.dataset = None
            self.images, self.labels = _arrays(data)
            self._size = len(self.labels)
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if seed is None:
            seed = int(get_rng().integers(2 ** 63))
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.transform = None if transform is None else as_step(transform)
        self.epoch = 0          # the epoch of the pass in progress, or of the next pass
        self.next_batch = 0     # the index in that epoch of the next batch
        self._pass_open = False  # a pass has begun and not reached the end of its epoch
        if len(self) == 0:
            raise ValueError(f"DataLoader: {self._size} samples with batch_size={self.batch_size} and "
                             f"drop_last=True make no batch")

    @property
    def num_samples(self) -> int:
        return self._size

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    # -- the order and the randomness, as functions of (seed, epoch, batch) ------

    def order(self, epoch: int) -> np.ndarray | None:
        """The sample indices of ``epoch`` in order (None when not shuffling: the data's order)."""
        if not self.shuffle:
            return None
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_ORDER, epoch, 0)))
        return rng.permutation(self.num_samples)

    def batch_rng(self, epoch: int, batch: int) -> np.random.Generator:
        """The generator the transform of batch ``batch`` of ``epoch`` draws from."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_TRANSFORM, epoch, batch)))

    def _make(self, order: np.ndarray | None, epoch: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
        lo = batch * self.batch_size
        hi = min(lo + self.batch_size, self.num_samples)
        index = slice(lo, hi) if order is None else order[lo:hi]
        if self.dataset is not None:
            images, y = self._get_batch(np.arange(lo, hi) if order is None else order[lo:hi])
            x = to_float(images)                                # (B, C, H, W) float32
        else:
            array, labels = self.images, self.labels
            assert array is not None and labels is not None     # arrays: set together in __init__
            x = to_float(array[index])                          # (B, C, H, W) float32
            if np.may_share_memory(x, array):                   # float data, sliced: never hand out a view
                x = x.copy()
            y = labels[index]
            y = y.copy() if order is None else y
        if self.transform is not None:
            x = np.asarray(self.transform(x, self.batch_rng(epoch, batch)))
            if x.ndim != 4:
                raise ValueError(f"DataLoader: the transform must return a batch (B, C, H, W), "
                                 f"got shape {x.shape}")
            x = x.astype(np.float32, copy=False)
        return x, y

    def _get_batch(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A lazy data set's batch, checked: images (B, H, W) or (B, C, H, W), labels int64 (B,)."""
        images, labels = self.dataset.get_batch(index)
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim not in (3, 4) or len(images) != len(index) or labels.shape != (len(index),):
            raise ValueError(f"DataLoader: {type(self.dataset).__name__}.get_batch of {len(index)} indices "
                             f"returned images of shape {images.shape} and labels of shape {labels.shape}; "
                             f"expected ({len(index)}, [C,] H, W) and ({len(index)},)")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"DataLoader: {type(self.dataset).__name__}.get_batch returned {labels.dtype} "
                             f"labels, expected integers")
        return images, labels.astype(np.int64, copy=False)

    def sample_shape(self) -> tuple[int, ...]:
        """The shape (C, H, W) of one sample as the batches hold it (after the transform).

        Found by preparing the first image alone, so it costs one image, not one batch.
        """
        if self.dataset is not None:
            first = self._get_batch(np.zeros(1, np.int64))[0]
        else:
            assert self.images is not None
            first = self.images[:1]
        x = to_float(first)                                     # (1, C, H, W)
        if self.transform is not None:
            x = np.asarray(self.transform(x.copy(), self.batch_rng(0, 0)))
        return tuple(x.shape[1:])

    # -- iteration ---------------------------------------------------------------

    def iter_epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The batches of ``epoch`` from ``start_batch`` on, leaving the loader's position alone."""
        if not 0 <= start_batch <= len(self):
            raise ValueError(f"DataLoader: start_batch must be in [0, {len(self)}], got {start_batch}")
        order = self.order(epoch)
        for b in range(start_batch, len(self)):
            yield self._make(order, epoch, b)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._pass_open or self.next_batch >= len(self):   # the last pass was left early, or ended
            self.epoch, self.next_batch = self.epoch + 1, 0
        self._pass_open = True
        epoch = self.epoch
        order = self.order(epoch)
        for b in range(self.next_batch, len(self)):
            batch = self._make(order, epoch, b)
            # Advance before yielding: a checkpoint taken while the caller works on
            # this batch counts it as done.
            self.next_batch = b + 1
            yield batch
        self.epoch, self.next_batch, self._pass_open = epoch + 1, 0, False

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Make the next iteration run ``epoch`` from batch ``start_batch`` (skipping those done)."""
        if epoch < 0 or not 0 <= start_batch <= len(self):
            raise ValueError(f"DataLoader.set_epoch: expected epoch >= 0 and start_batch in [0, {len(self)}], "
                             f"got epoch={epoch}, start_batch={start_batch}")
        self.epoch, self.next_batch, self._pass_open = int(epoch), int(start_batch), False

    # -- checkpoints ---------------------------------------------------------------

    def state_dict(self) -> dict:
        """Where the pass in progress (or the next pass) continues, plus what must match on restore.

        Plain ints and bools, so it fits in JSON or a checkpoint's metadata.
        """
        epoch, batch = self.epoch, self.next_batch
        if batch >= len(self):
            epoch, batch = epoch + 1, 0
        return {"seed": self.seed, "epoch": epoch, "batch": batch, "num_samples": self.num_samples,
                "batch_size": self.batch_size, "shuffle": self.shuffle, "drop_last": self.drop_last}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict`: same seed, epoch and next batch.

        The data set size, batch size, shuffle and drop_last must be the ones the
        state was saved with, otherwise the batches would differ; that is an error.
        """
        missing = [k for k in ("seed", "epoch", "batch") if k not in state]
        if missing:
            raise KeyError(f"DataLoader.load_state_dict: state lacks {', '.join(missing)}")
        mine = {"num_samples": self.num_samples, "batch_size": self.batch_size,
                "shuffle": self.shuffle, "drop_last": self.drop_last}
        differ = [f"{k}={state[k]!r} (this loader: {v!r})" for k, v in mine.items() if k in state and state[k] != v]
        if differ:
            raise ValueError(f"DataLoader.load_state_dict: the state is from a different loader: {'; '.join(differ)}")
        self.seed = int(state["seed"])
        self.set_epoch(int(state["epoch"]), int(state["batch"]))

    def __repr__(self) -> str:
        return (f"DataLoader({self.num_samples} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}, epoch={self.epoch}, next_batch={self.next_batch})")


# ---------------------------------------------------------------------------
# presets


def mnist_preprocess(pad_to: int | None = 32, normalize: bool = True, augment: Callable | None = None,
                     mean: float = MNIST_MEAN, std: float = MNIST_STD) -> Compose:
    """The usual preparation of MNIST batches, as a loader transform.

    In order: ``augment`` (e.g. ``RandomTranslate(2)``; it sees [0, 1] images so
    that what it shifts in is background), padding to ``pad_to`` × ``pad_to``
    (32: LeNet-5's input; None: none), then normalisation with the training set's
    mean and std.
    """
    steps = []
    if augment is not None:
        steps.append(augment)
    if pad_to is not None:
        steps.append(PadTo(pad_to))
    if normalize:
        steps.append(Normalize(mean, std))
    return Compose(*steps)


def fashion_mnist_preprocess(pad_to: int | None = 32, normalize: bool = True,
                             augment: Callable | None = None) -> Compose:
    """:func:`mnist_preprocess` with Fashion-MNIST's mean and std."""
    return mnist_preprocess(pad_to, normalize, augment, FASHION_MNIST_MEAN, FASHION_MNIST_STD)
