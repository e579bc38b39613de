"""Pictures: training curves, confusion matrices, kernels and feature maps as PNG files.

Everything draws with matplotlib's non-interactive Agg backend, so it works on
machines without a display.
"""
from .training import plot_curves, plot_confusion

__all__ = ["plot_curves", "plot_confusion"]
