"""Layers: modules that hold parameters and call the ops in ``striate.functional``.

``nn.init`` fills weights; every layer that initialises weights takes ``rng``.
"""
from . import init
from .activation import LeakyReLU, LogSoftmax, ReLU, ScaledTanh, Sigmoid, Softmax, Tanh
from .conv import Conv2d, ConvTranspose2d, FusedConv2d
from .dropout import Dropout, Dropout2d
from .linear import Identity, Linear
from .module import Module, ModuleList, Parameter, Sequential
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm, LocalResponseNorm
from .pool import (
                   AdaptiveAvgPool2d,
                   AdaptiveMaxPool2d,
                   AvgPool2d,
                   GlobalAvgPool2d,
                   GlobalMaxPool2d,
                   L2Pool2d,
                   LPPool2d,
                   MaxPool2d,
                   MinPool2d,
                   SumPool2d,
)
from .residual import Concat, Residual
from .shape import ConstantPad2d, Flatten, Unflatten, ZeroPad2d

__all__ = [
    # containers
    "Parameter", "Module", "Sequential", "ModuleList", "Residual", "Concat",
    # convolution
    "Conv2d", "ConvTranspose2d", "FusedConv2d",
    # pooling
    "MaxPool2d", "AvgPool2d", "SumPool2d", "MinPool2d", "LPPool2d", "L2Pool2d",
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "GlobalAvgPool2d", "GlobalMaxPool2d",
    # dense, shape
    "Linear", "Identity", "Flatten", "Unflatten", "ZeroPad2d", "ConstantPad2d",
    # activations
    "ReLU", "LeakyReLU", "Tanh", "ScaledTanh", "Sigmoid", "Softmax", "LogSoftmax",
    # regularisation, normalisation
    "Dropout", "Dropout2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "LocalResponseNorm",
    # initialisation
    "init",
]
