"""Learning-rate schedules: they set ``group["lr"]`` of an optimizer's parameter groups.

Call ``scheduler.step()`` once per epoch, after the epoch's ``optimizer.step()``
calls (``ReduceLROnPlateau.step(metric)`` takes the validation metric). The
values are PyTorch's, computed the same way (its recursive forms), so a schedule
here and there agrees over any number of epochs::

    StepLR             lr = base_lr · γ^⌊epoch / step_size⌋
    MultiStepLR        lr = base_lr · γ^(number of milestones ≤ epoch)
    CosineAnnealingLR  lr = η_min + (base_lr − η_min) · (1 + cos(π · epoch / T_max)) / 2
    ReduceLROnPlateau  lr ← max(lr · factor, min_lr) after ``patience`` epochs without improvement

Each has ``get_last_lr()`` and ``state_dict()``/``load_state_dict()`` of plain
numbers and lists, ready for ``st.save``.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable

from ..checks import check_int, check_number
from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR", "ReduceLROnPlateau"]


def _check_optimizer(optimizer: object, name: str) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{name} expects a striate optimizer (e.g. optim.SGD), got {type(optimizer).__name__}")


class LRScheduler:
    """Base class: ``get_lr()`` gives the next learning rate of each group.

    Building a scheduler records ``initial_lr`` in every group (the ``base_lrs``)
    and sets epoch 0 (``last_epoch = 0``); each ``step()`` moves one epoch on.
    ``last_epoch`` other than -1 resumes a schedule whose optimizer state (with
    ``initial_lr``) was restored first.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(optimizer, name)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{name}: resuming at last_epoch={last_epoch} needs 'initial_lr' in "
                                   f"param_groups[{i}]; load the optimizer's state_dict first")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._initial = True
        self.step()
        self._initial = False

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def step(self) -> None:
        """Move to the next epoch and set each group's learning rate."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the latest ``step()``, one per parameter group."""
        return list(self._last_lr)

    def _current(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Everything but the optimizer, as plain numbers and lists."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = check_int(step_size, "step_size", "StepLR")
        self.gamma = check_number(gamma, "gamma", "StepLR", above=0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current()
        return [lr * self.gamma for lr in self._current()]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each epoch listed in ``milestones``
    (twice if listed twice)."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1):
        milestones = list(milestones)
        for m in milestones:
            check_int(m, "every milestone", "MultiStepLR", at_least=0)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = check_number(gamma, "gamma", "MultiStepLR", above=0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        hits = Counter(self.milestones)[self.last_epoch]
        if hits == 0:
            return self._current()
        return [lr * self.gamma ** hits for lr in self._current()]

    def closed_form(self, epoch: int) -> list[float]:
        """The learning rates at ``epoch``: base_lr · γ^(milestones passed)."""
        return [base * self.gamma ** bisect_right(self.milestones, epoch) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Anneal from the base learning rate to ``eta_min`` along half a cosine over ``T_max``
    epochs (SGDR without restarts; Loshchilov & Hutter, 2017). Past ``T_max`` the
    cosine carries on, rising again, as PyTorch's does.

    Like PyTorch, it updates the current ``lr`` recursively, so a change made to
    ``lr`` from outside carries through the schedule.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = check_int(T_max, "T_max", "CosineAnnealingLR")
        self.eta_min = check_number(eta_min, "eta_min", "CosineAnnealingLR", at_least=0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._initial:
            return self._current()
        if self._step_count == 1 and e > 0:       # resumed at a later epoch: the closed form
            return self.closed_form(e)
        if (e - 1 - T) % (2 * T) == 0:            # the trough, where the ratio below is 0/0
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for lr, base in zip(self._current(), self.base_lrs)]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - eta_min) + eta_min for lr in self._current()]

    def closed_form(self, epoch: int) -> list[float]:
        """η_min + (base_lr − η_min) · (1 + cos(π · epoch / T_max)) / 2."""
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(epoch * math.pi / self.T_max)) / 2
                for base in self.base_lrs]


class ReduceLROnPlateau:
    """Cut the learning rate when a metric stops improving (PyTorch's rules).

    Args:
        optimizer: the optimizer whose groups to adjust.
        mode: "min" (a loss) or "max" (an accuracy).
        factor: new lr = lr · factor (< 1).
        patience: epochs without improvement tolerated; the cut comes on the
            ``patience + 1``-th bad epoch.
        threshold: how much better counts as better: relative (``best · (1 ∓ threshold)``,
            threshold_mode "rel") or absolute (``best ∓ threshold``, "abs").
        cooldown: epochs to wait after a cut before counting bad epochs again.
        min_lr: a floor (one number, or one per group).
        eps: cuts smaller than this are skipped.

    Call ``step(metric)`` once per epoch.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | list[float] = 0.0, eps: float = 1e-8):
        name = "ReduceLROnPlateau"
        _check_optimizer(optimizer, name)
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{name}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        self.mode = mode
        self.factor = check_number(factor, "factor", name, above=0, below=1)
        self.patience = check_int(patience, "patience", name, at_least=0)
        self.cooldown = check_int(cooldown, "cooldown", name, at_least=0)
        self.threshold = check_number(threshold, "threshold", name, at_least=0)
        self.threshold_mode = threshold_mode
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ValueError(f"{name}: expected {n} min_lr values (one per parameter group), "
                                 f"got {len(min_lr)}")
            self.min_lrs = [float(v) for v in min_lr]
        else:
            self.min_lrs = [float(min_lr)] * n
        self.eps = float(eps)
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def _is_better(self, value: float) -> bool:
        """Better than the best by more than the threshold (PyTorch's four cases)."""
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return value < (self.best * (1 - self.threshold) if rel else self.best - self.threshold)
        return value > (self.best * (1 + self.threshold) if rel else self.best + self.threshold)

    def step(self, metric: float) -> None:
        """Record this epoch's metric; cut the learning rates if it has not improved
        for more than ``patience`` epochs."""
        value = float(metric.item() if hasattr(metric, "item") else metric)
        self.last_epoch += 1
        if self._is_better(value):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0            # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(group["lr"])
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)
