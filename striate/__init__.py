"""striate: convolutional neural networks from first principles, in NumPy.

>>> import striate as st
>>> import striate.functional as F
>>> from striate import nn, optim
>>> model = st.models.get("lenet5")
>>> run = st.load_run("runs/lenet5-mnist")          # doctest: +SKIP
"""
from .tensor import Tensor, tensor, as_tensor, no_grad, enable_grad, is_grad_enabled
from .gradcheck import gradcheck, GradcheckError
from .random import manual_seed
from .serialization import save, load, CheckpointError
from .summary import summary
from . import checks, functional, random, nn, optim, data, models
from .train import load_run, Run
from .compile import compile

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "as_tensor", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck",
           "GradcheckError", "manual_seed", "save", "load", "CheckpointError", "summary",
           "checks", "functional", "random", "nn", "optim", "data", "models", "load_run", "Run", "compile"]
