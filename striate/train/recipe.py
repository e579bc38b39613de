"""Recipes: how each model is trained by default, the optimizer, and the data's preparation.

Written once, for the command line (``striate train``) and the experiments alike:

* :data:`RECIPES` (and :func:`recipe_for`): per model, the epochs, batch size,
  learning rate, optimizer and augmentation with which it meets the accuracy in
  the README's results table; :data:`DEFAULT_DATASET`, the data set a model trains
  on when none is named.
* :func:`make_optimizer`: "sgd" (Nesterov momentum when momentum > 0) or "adam".
* :func:`preprocess`: the batch transform for MNIST or Fashion-MNIST (optional
  random translation, padding to the model's input size, normalisation with the
  data set's statistics), and :func:`preprocess_config`, its description for a
  run's config.
* For your own images in class folders: :func:`image_preprocess` (augmentation,
  then normalisation with the statistics of the training images, per channel),
  :func:`image_preprocess_config`, and :func:`model_for_images`, the model built
  for the data's channels and classes.
"""
from __future__ import annotations

import math

from .. import models, optim
from ..data import (
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    MNIST_MEAN,
    MNIST_STD,
    Compose,
    Normalize,
    RandomTranslate,
    fashion_mnist_preprocess,
    mnist_preprocess,
)

__all__ = ["RECIPES", "DEFAULT_DATASET", "FALLBACK_RECIPE", "DATASET_NAMES", "recipe_for", "check_recipe",
           "make_optimizer", "preprocess", "preprocess_config", "image_preprocess", "image_preprocess_config",
           "model_for_images", "IMAGE_MODELS"]

# Per-model defaults: what `striate train MODEL` does with no options. Each meets
# the accuracy in the README's results table (measured there with this recipe).
RECIPES = {
    "lenet5": dict(epochs=15, batch_size=32, lr=0.005, optimizer="sgd", momentum=0.9, weight_decay=0.0,
                   augment=True, schedule="cosine"),
    "lenet5-modern": dict(epochs=10, batch_size=64, lr=0.05, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                          augment=True, schedule="cosine"),
    "mlp": dict(epochs=15, batch_size=64, lr=0.05, optimizer="sgd", momentum=0.9, weight_decay=0.0,
                augment=False, schedule="cosine"),
    "alexnet-small": dict(epochs=10, batch_size=128, lr=0.05, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                          augment=False, schedule="cosine"),
}
# the recipe of a model that has none of its own
FALLBACK_RECIPE = dict(epochs=10, batch_size=64, lr=0.01, optimizer="sgd", momentum=0.9, weight_decay=0.0,
                       augment=False, schedule="cosine")
# the data set a model trains on when none is named
DEFAULT_DATASET = {"alexnet-small": "fashion-mnist"}
DATASET_NAMES = ("mnist", "fashion-mnist")

# random translation by up to this many pixels: what "augment" means in a recipe
AUGMENT_SHIFT = 2


def recipe_for(model_name: str) -> dict:
    """A copy of the model's recipe (the fallback recipe for a model without one)."""
    return dict(RECIPES.get(model_name, FALLBACK_RECIPE))


def check_recipe(recipe: dict, names: dict[str, str] | None = None) -> None:
    """Raise ValueError listing every value of ``recipe`` out of its range.

    ``names`` spells the keys in the message (the command line passes its options:
    ``{"lr": "--lr", ...}``); by default the keys themselves.
    """
    def name(key):
        return (names or {}).get(key, key)

    problems = []
    if recipe["epochs"] < 1:
        problems.append(f"{name('epochs')} must be at least 1, got {recipe['epochs']}")
    if recipe["batch_size"] < 1:
        problems.append(f"{name('batch_size')} must be at least 1, got {recipe['batch_size']}")
    if not (math.isfinite(recipe["lr"]) and recipe["lr"] > 0):
        problems.append(f"{name('lr')} must be a positive number, got {recipe['lr']}")
    if not (math.isfinite(recipe["momentum"]) and 0 <= recipe["momentum"] < 1):
        problems.append(f"{name('momentum')} must be in [0, 1), got {recipe['momentum']}")
    if not (math.isfinite(recipe["weight_decay"]) and recipe["weight_decay"] >= 0):
        problems.append(f"{name('weight_decay')} must be >= 0, got {recipe['weight_decay']}")
    if problems:
        raise ValueError("; ".join(problems))


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
    """``optim.SGD`` (Nesterov momentum when ``momentum`` > 0) for "sgd", ``optim.Adam`` for "adam"."""
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose sgd or adam")


def _pad_to(size) -> int | None:
    """The side to pad 28×28 images to: ``size`` an int, a shape (..., H, W) (its last entry) or None."""
    if size is None:
        return None
    side = int(size) if isinstance(size, int) else int(tuple(size)[-1])
    return side if side != 28 else None


def preprocess(dataset: str, size=None, augment=False):
    """The batch transform of ``dataset``'s images for a model taking ``size``×``size`` inputs.

    Args:
        dataset: "mnist" or "fashion-mnist" (any other name gets MNIST's statistics).
        size: the model's input side, or its input shape (C, H, W); the 28×28 images are
            padded to it. None (or 28): no padding.
        augment: True for random translations by up to 2 pixels, or a transform step
            (e.g. ``RandomTranslate(3)``); False or None for none.

    In order: augmentation, padding, normalisation with the data set's mean and std
    (``data.mnist_preprocess``). A run's test loader and ``Run.preprocess`` use
    ``augment=False``.
    """
    step = augment if callable(augment) else (RandomTranslate(AUGMENT_SHIFT) if augment else None)
    make = fashion_mnist_preprocess if dataset == "fashion-mnist" else mnist_preprocess
    return make(pad_to=_pad_to(size), normalize=True, augment=step)


def preprocess_config(dataset: str, size, augment: bool) -> dict:
    """What :func:`preprocess` does, JSON-friendly, for a run's config."""
    mean, std = (FASHION_MNIST_MEAN, FASHION_MNIST_STD) if dataset == "fashion-mnist" else (MNIST_MEAN, MNIST_STD)
    side = int(size) if isinstance(size, int) else int(tuple(size)[-1])
    return {"pad_to": side, "normalize": [mean, std],
            "augment": f"random translation ±{AUGMENT_SHIFT} px" if augment else None}


# ---------------------------------------------------------------------------
# your own images (class folders)

#: the models that train on class folders, and how each is built for C channels and K classes
IMAGE_MODELS = ("lenet5-modern", "alexnet-small", "mlp", "lenet5")


def model_for_images(name: str, channels: int, num_classes: int, size: int | None = None):
    """Model ``name`` built for images of ``channels`` channels and ``num_classes`` classes.

    lenet5-modern and alexnet-small take ``in_channels`` and ``num_classes``; the MLP
    gets an input layer of C·28·28 and an output of K; the 1998 LeNet-5's output is
    an RBF layer with ten fixed 7×12 digit bitmaps, so it is refused unless the data
    are ten classes of grayscale images. ``size`` (alexnet-small) is the input side.
    Raises ValueError naming the reason.
    """
    if name == "lenet5":
        if num_classes != 10 or channels != 1:
            raise ValueError(f"lenet5 (1998) cannot learn these images: its output layer compares F6 with ten "
                             f"fixed bitmaps of the digits 0-9, and its first layer takes one channel; the data "
                             f"have {num_classes} classes and {channels} channel{'s' if channels > 1 else ''}. "
                             f"Use lenet5-modern, which takes any number of classes and channels")
        return models.get("lenet5")
    if name == "mlp":
        return models.get("mlp", sizes=(channels * 28 * 28, 300, 100, num_classes))   # input_shape (C, 28, 28)
    if name == "lenet5-modern":
        return models.get(name, num_classes=num_classes, in_channels=channels)
    if name == "alexnet-small":
        return models.get(name, num_classes=num_classes, in_channels=channels,
                          **({"input_size": size} if size else {}))
    raise ValueError(f"model {name!r} has no recipe for image folders; choose one of {', '.join(IMAGE_MODELS)}")


def image_preprocess(mean, std, augment=False) -> Compose:
    """The batch transform of a class folder's images (already resized, in [0, 1]).

    In order: ``augment`` (True: random translations by up to 2 pixels, shifting in
    black; or a transform step), then normalisation per channel with ``mean`` and
    ``std``, the statistics of the training images.
    """
    step = augment if callable(augment) else (RandomTranslate(AUGMENT_SHIFT) if augment else None)
    return Compose(*([step] if step is not None else []), Normalize(list(mean), list(std)))


def image_preprocess_config(mean, std, augment: bool, images: int) -> dict:
    """What :func:`image_preprocess` does, JSON-friendly, for a run's config."""
    return {"normalize": [list(map(float, mean)), list(map(float, std))],
            "normalize_from": f"per-channel mean and std of {images} training images in [0, 1]",
            "augment": f"random translation ±{AUGMENT_SHIFT} px" if augment else None}
