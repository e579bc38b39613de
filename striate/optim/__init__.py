"""Optimizers (how parameters learn from their gradients) and learning-rate schedules.

>>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
>>> sched = optim.StepLR(opt, step_size=10, gamma=0.5)
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR, ReduceLROnPlateau, StepLR
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "LRScheduler", "StepLR",
           "MultiStepLR", "CosineAnnealingLR", "ReduceLROnPlateau"]
