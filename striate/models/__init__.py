"""Ready-made networks, by name.

>>> import striate.models as models
>>> models.names()
['alexnet', 'alexnet-small', 'lenet5', 'lenet5-modern', 'mlp', 'neocognitron']
>>> net = models.get("lenet5-modern", rng=0)
>>> net.config
{'name': 'lenet5-modern', 'kwargs': {'rng': 0, 'num_classes': 10, 'in_channels': 1}}
>>> same = models.from_config(net.config)     # e.g. after json.load of a run's config.json

A model builder is a function decorated with ``@register("name")``. Calling
it, directly or through :func:`get`, records on the model it returns

* ``model.config``: ``{"name": ..., "kwargs": {...}}`` with every argument
  (defaults included), JSON-friendly: a training run saves it and
  :func:`from_config` rebuilds the same architecture. An ``rng`` given as a
  ``numpy.random.Generator`` is recorded as ``None`` (a generator is state,
  not configuration; the weights come from the checkpoint anyway); an int
  seed is kept.

and every model has ``model.input_shape``, the (C, H, W) it expects
(``(1, 32, 32)`` for LeNet-5, ``(1, 28, 28)`` for the MLP), so a command line
tool can pick the preprocessing.

Names are case-insensitive and ``_`` and ``-`` are interchangeable:
``"lenet5_modern"`` is ``"lenet5-modern"``.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import numpy as np

from ..checks import normalize_name

__all__ = ["register", "get", "names", "from_config"]

_REGISTRY: dict[str, Callable] = {}


def _jsonable(value):
    """The value as JSON would give it back: tuples become lists, NumPy scalars Python numbers."""
    if isinstance(value, np.random.Generator):
        return None
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def register(name: str):
    """Decorator: make a model builder available as ``get(name)`` and record its config.

    The decorated function keeps its signature; the model it returns gets
    ``model.config = {"name": name, "kwargs": {...all its arguments...}}``.

    Example:
        >>> @register("tiny")           # would stay in the registry  # doctest: +SKIP
        ... def tiny(rng=None, width=8):
        ...     return Tiny(width, rng=rng)
    """
    key = normalize_name(name, "model")

    def decorator(fn: Callable) -> Callable:
        if key in _REGISTRY:
            raise ValueError(f"a model named {key!r} is already registered "
                             f"({_REGISTRY[key].__module__}.{_REGISTRY[key].__name__})")
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def build(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"model {key!r}: {exc}; its arguments are {signature}") from None
            bound.apply_defaults()
            model = fn(*bound.args, **bound.kwargs)
            model.config = {"name": key, "kwargs": _jsonable(dict(bound.arguments))}
            return model

        _REGISTRY[key] = build
        return build
    return decorator


def names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def get(name: str, **kwargs):
    """Build the model registered as ``name`` with the given arguments."""
    key = normalize_name(name, "model")
    if key not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(names())}")
    return _REGISTRY[key](**kwargs)


def from_config(config: dict):
    """Rebuild a model from its ``model.config`` (``{"name": ..., "kwargs": {...}}``)."""
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"from_config expects a dict with 'name' and 'kwargs', got {config!r}")
    return get(config["name"], **dict(config.get("kwargs") or {}))


# The builders register themselves on import; a new model file is added here.
# As in torchvision, the builder functions shadow the submodules of the same name
# (``models.mlp`` is the function; ``from striate.models.mlp import MLP`` still works).
# ``models.lenet`` has no builder of that name: it is the module, re-exported.
from . import lenet as lenet  # noqa: E402
from .alexnet import alexnet, alexnet_small  # noqa: E402
from .lenet import lenet5, lenet5_modern  # noqa: E402
from .mlp import mlp  # noqa: E402
from .neocognitron import neocognitron  # noqa: E402

__all__ += ["lenet5", "lenet5_modern", "mlp", "alexnet", "alexnet_small", "neocognitron"]
