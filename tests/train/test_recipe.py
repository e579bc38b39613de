"""The recipes, the optimizer and the data's preparation shared by `striate train` and the experiments."""
import numpy as np
import pytest

from striate import models, optim
from striate.data import FASHION_MNIST_MEAN, FASHION_MNIST_STD, MNIST_MEAN, MNIST_STD, DataLoader, RandomTranslate
from striate.train import (
    FALLBACK_RECIPE,
    RECIPES,
    check_recipe,
    format_bytes,
    make_optimizer,
    preprocess,
    preprocess_config,
    recipe_for,
)


def test_every_recipe_names_a_model_and_passes_its_own_check():
    for name, recipe in RECIPES.items():
        assert name in models.names()
        check_recipe(recipe)
    check_recipe(FALLBACK_RECIPE)
    mine = recipe_for("lenet5")
    mine["lr"] = 1.0
    assert RECIPES["lenet5"]["lr"] != 1.0                     # a copy
    assert recipe_for("neocognitron") == FALLBACK_RECIPE


def test_check_recipe_lists_every_problem_in_the_callers_words():
    bad = dict(RECIPES["mlp"], epochs=0, lr=float("nan"), momentum=1.0)
    with pytest.raises(ValueError, match=r"^epochs must be at least 1, got 0; lr must be a positive number, "
                                         r"got nan; momentum must be in \[0, 1\), got 1.0$"):
        check_recipe(bad)
    with pytest.raises(ValueError, match=r"^--epochs must be at least 1, got 0; --lr must"):
        check_recipe(bad, {"epochs": "--epochs", "lr": "--lr"})


def test_make_optimizer():
    params = list(models.get("mlp", rng=0).parameters())
    sgd = make_optimizer("sgd", params, 0.1, momentum=0.9, weight_decay=1e-4)
    assert isinstance(sgd, optim.SGD)
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (0.1, 0.9, True, 1e-4)
    assert make_optimizer("sgd", params, 0.1).param_groups[0]["nesterov"] is False     # no momentum: plain SGD
    adam = make_optimizer("adam", params, 1e-3, weight_decay=0.01)
    assert isinstance(adam, optim.Adam) and adam.param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; choose sgd or adam"):
        make_optimizer("rmsprop", params, 0.1)


@pytest.mark.parametrize("dataset, mean, std", [("mnist", MNIST_MEAN, MNIST_STD),
                                                ("fashion-mnist", FASHION_MNIST_MEAN, FASHION_MNIST_STD)])
def test_preprocess_pads_to_the_models_size_and_normalises_with_the_data_sets_statistics(dataset, mean, std):
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28)).astype(np.uint8)
    x = images[:, None].astype(np.float32) / 255
    for size in (32, (1, 32, 32)):
        out = preprocess(dataset, size)(x, None)
        assert out.shape == (4, 1, 32, 32)
        np.testing.assert_allclose(out[:, :, 2:30, 2:30], (x - mean) / std, rtol=1e-6)
        np.testing.assert_allclose(out[:, :, 0], -mean / std, rtol=1e-6)         # padding is background
    for size in (None, 28, (1, 28, 28)):
        np.testing.assert_allclose(preprocess(dataset, size)(x, None), (x - mean) / std, rtol=1e-6)
    assert preprocess_config(dataset, (1, 32, 32), True) == {"pad_to": 32, "normalize": [mean, std],
                                                            "augment": "random translation ±2 px"}


def test_preprocess_augments_as_asked():
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28)).astype(np.uint8)
    labels = np.zeros(64, np.int64)

    def first_batch(augment):
        loader = DataLoader((images, labels), batch_size=64, seed=0, transform=preprocess("mnist", 32, augment))
        return next(iter(loader))[0]

    plain = first_batch(False)
    np.testing.assert_array_equal(first_batch(None), plain)
    assert not np.array_equal(first_batch(True), plain)
    np.testing.assert_array_equal(first_batch(True), first_batch(RandomTranslate(2)))      # True: ±2 pixels
    assert not np.array_equal(first_batch(RandomTranslate(4)), first_batch(True))


def test_format_bytes():
    assert format_bytes(72 * 2 ** 20) == "72.0 MB"
    assert format_bytes(3 * 2 ** 30) == "3.0 GB"
    assert format_bytes(1536 * 2 ** 20) == "1.5 GB"
