"""Where striate's random numbers come from.

Every function or layer that draws random numbers (weight initialisation,
dropout, data shuffling) takes an ``rng`` argument, a ``numpy.random.Generator``.
When it is omitted, striate's default generator is used; ``manual_seed`` resets
that one, and ``get_state``/``set_state`` save and restore it (checkpoints do).
Nothing here touches NumPy's global ``np.random`` state.
"""
from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "default_rng", "get_rng", "get_state", "set_state", "set_batch_share", "batch_share"]

_default = np.random.default_rng()
_share: tuple[int, int, int] | None = None        # (lo, hi, total): see set_batch_share


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


def set_batch_share(share: tuple[int, int, int] | None) -> None:
    """Declare that the batch in progress is samples ``lo:hi`` of a batch of ``total`` (None: the whole batch).

    Set by each process of a data-parallel job (``dist.ShardedLoader``) for the step
    it is taking. Ops that draw one random number per sample (dropout) then draw for
    all ``total`` samples and keep rows ``lo:hi``: every process's generator is in the
    same state, so each sample gets the mask one process would have given it,
    whatever the number of processes.
    """
    global _share
    if share is not None:
        lo, hi, total = (int(v) for v in share)
        if not 0 <= lo <= hi <= total:
            raise ValueError(f"set_batch_share: expected 0 <= lo <= hi <= total, got {share!r}")
        share = (lo, hi, total)
    _share = share


def batch_share() -> tuple[int, int, int] | None:
    """The share set by :func:`set_batch_share`, or None."""
    return _share
