"""The chapter's claims, tested on real data: one experiment per claim.

    striate experiment shift          an MLP and a CNN on shifted test digits
    striate experiment params         dense against convolutional parameter counts
    striate experiment pooling        max, average, sum, min and L2 pooling
    striate experiment fusion         sum, concat and product channel fusion on colour digits
    striate experiment dropout        the train/test gap with and without dropout
    striate experiment batchnorm      no batch norm, after the activation, before it
    striate experiment activation     activation before or after pooling; ReLU or scaled tanh
    striate experiment skip           a deep plain CNN against skip connections
    striate experiment fcn            a fully convolutional net reading a canvas of digits

Each writes ``results.json`` and ``NAME.png`` into its output folder and prints a
table and a finding. From Python::

    >>> from striate import experiments
    >>> experiments.names()[:3]
    ['activation', 'batchnorm', 'dropout']
    >>> result = experiments.run("params", "out/params", quick=True)  # trains; needs MNIST  # doctest: +SKIP
    >>> result["finding"]                                               # doctest: +SKIP

The default sizes are deliberately small (subsets of the data, a few epochs) so
that each experiment finishes in minutes on a laptop's CPU; ``quick=True`` is
smaller still, for tests. Every experiment is seeded: the same seed gives the
same numbers (the timings aside).
"""
from __future__ import annotations

import importlib
from types import ModuleType

from ..checks import normalize_name
from ._runner import Context, Report, format_table, markdown_table, run_experiment

__all__ = ["names", "get", "run", "Context", "Report", "format_table", "markdown_table", "EXPERIMENTS"]

#: the experiments, in the order the chapter raises their questions
EXPERIMENTS = ("shift", "params", "pooling", "fusion", "dropout", "batchnorm", "activation", "skip", "fcn")


def names() -> list[str]:
    """The experiments' names, sorted."""
    return sorted(EXPERIMENTS)


def get(name: str) -> ModuleType:
    """The module of experiment ``name`` (its NAME, SUMMARY, CLAIM, SIZES, budget and run)."""
    key = normalize_name(name, "experiment")
    if key not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__name__}.{key}")


def run(name: str, out, quick: bool = False, seed: int = 0, progress: bool | None = None, log=None,
        threads: int | None = None) -> dict:
    """Run experiment ``name``, writing results.json and NAME.png into ``out``; returns the results.

    See :func:`striate.experiments._runner.run_experiment` for the arguments.
    """
    return run_experiment(get(name), out, quick=quick, seed=seed, progress=progress, log=log, threads=threads)
