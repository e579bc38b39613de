"""Optimizers (how parameters learn from their gradients) and learning-rate schedules.

>>> model = nn.Linear(4, 2)
>>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
>>> sched = optim.StepLR(opt, step_size=10, gamma=0.5)
>>> for epoch in range(20):
...     loss = (model(np.ones((8, 4), np.float32)) ** 2).mean()
...     opt.zero_grad(); loss.backward(); opt.step()
...     sched.step()
>>> opt.param_groups[0]["lr"]
0.025
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR, ReduceLROnPlateau, StepLR
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "LRScheduler", "StepLR",
           "MultiStepLR", "CosineAnnealingLR", "ReduceLROnPlateau"]
