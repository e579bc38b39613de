"""striate: convolutional neural networks from first principles, in NumPy.

>>> import striate as st
>>> import striate.functional as F
>>> from striate import nn, optim
"""
from .tensor import Tensor, tensor, as_tensor, no_grad, enable_grad, is_grad_enabled
from .gradcheck import gradcheck, GradcheckError
from . import functional, random
from .random import manual_seed

__version__ = "0.1.0"
from . import nn, optim
from .serialization import save, load, CheckpointError
from .summary import summary
