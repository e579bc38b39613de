"""The former name of :mod:`striate.viz.mpl`, kept while striate.models.neocognitron imports it."""
from .mpl import plt, save

__all__ = ["plt", "save"]
