"""striate: convolutional neural networks from first principles, in NumPy.

>>> import striate as st
>>> import striate.functional as F
>>> from striate import nn, optim
>>> model = st.models.get("lenet5")
>>> run = st.load_run("runs/lenet5-mnist")          # doctest: +SKIP
"""
from . import checks, data, functional, heap, models, nn, optim, random, threads
from .compile import compile
from .gradcheck import GradcheckError, gradcheck
from .random import manual_seed
from .serialization import CheckpointError, load, save
from .summary import summary
from .tensor import Tensor, as_tensor, enable_grad, is_grad_enabled, no_grad, tensor
from .threads import get_num_threads, set_num_threads
from .train import Run, load_run

__version__ = "0.1.0"

heap.keep_freed_memory()        # a step's large arrays reuse the last step's memory: see striate/heap.py
threads.single_threaded_blas()  # striate shares out the work itself: see striate/threads.py

__all__ = ["Tensor", "tensor", "as_tensor", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck",
           "GradcheckError", "manual_seed", "save", "load", "CheckpointError", "summary",
           "checks", "functional", "random", "nn", "optim", "data", "models", "load_run", "Run", "compile",
           "set_num_threads", "get_num_threads"]
