"""Where striate's random numbers come from.

Every function or layer that draws random numbers (weight initialisation,
dropout, data shuffling) takes an ``rng`` argument, a ``numpy.random.Generator``.
When it is omitted, striate's default generator is used; ``manual_seed`` resets
that one, and ``get_state``/``set_state`` save and restore it (checkpoints do).
Nothing here touches NumPy's global ``np.random`` state.
"""
from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "default_rng", "get_rng", "get_state", "set_state"]

_default = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed striate's default generator; returns it."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_rng() -> np.random.Generator:
    """striate's default generator (used when an ``rng`` argument is None)."""
    return _default


def get_rng(rng: np.random.Generator | int | None = None) -> np.random.Generator:
    """``rng`` itself, a new generator seeded with it if it is an int, or the default one."""
    if rng is None:
        return _default
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")
    return rng


def get_state() -> dict:
    """The default generator's state (a JSON-friendly dict)."""
    return dict(_default.bit_generator.state)


def set_state(state: dict) -> None:
    """Restore the default generator's state saved by ``get_state``."""
    _default.bit_generator.state = state
