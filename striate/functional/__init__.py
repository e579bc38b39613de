"""The ops: each a function with its forward and its backward side by side.

Every op takes Tensors (or arrays) and returns a Tensor; shapes are ``(N, C, H, W)``.
"""
# The modules are bound to private names first: ``dropout`` and ``linear`` are
# also functions, and the star imports below rebind those names to them.
from . import activation as _activation
from . import conv as _conv
from . import dropout as _dropout
from . import linear as _linear
from . import loss as _loss
from . import norm as _norm
from . import pool as _pool
from . import shape as _shape
from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403

__all__ = (_activation.__all__ + _conv.__all__ + _dropout.__all__ + _linear.__all__ + _loss.__all__
           + _norm.__all__ + _pool.__all__ + _shape.__all__)
