"""The ops: each a function with its forward and its backward side by side.

Every op takes Tensors (or arrays) and returns a Tensor; shapes are ``(N, C, H, W)``.
"""
from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from . import activation, conv, dropout, linear, loss, norm, pool, shape

__all__ = (activation.__all__ + conv.__all__ + dropout.__all__ + linear.__all__ + loss.__all__
           + norm.__all__ + pool.__all__ + shape.__all__)
