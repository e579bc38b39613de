"""Pictures: training curves, confusion matrices, kernels and feature maps as PNG files.

Everything draws with matplotlib's non-interactive Agg backend, so it works on
machines without a display.
"""
from .training import plot_curves, plot_confusion
from .kernels import plot_kernels, plot_feature_maps
from .images import plot_filter_grid

__all__ = ["plot_curves", "plot_confusion", "plot_kernels", "plot_feature_maps", "plot_filter_grid"]
