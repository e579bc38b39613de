"""Pictures: training curves, confusion matrices, kernels and feature maps as PNG files.

Everything draws with matplotlib's non-interactive Agg backend, so it works on
machines without a display.
"""
from .images import plot_filter_grid
from .kernels import plot_feature_maps, plot_kernels
from .training import plot_confusion, plot_curves

__all__ = ["plot_curves", "plot_confusion", "plot_kernels", "plot_feature_maps", "plot_filter_grid"]
