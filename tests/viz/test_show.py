"""``striate show``: kernels and feature maps of models trained (for a few steps) by striate.train.fit."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

import striate as st
import striate.functional as F
from striate import cli, models, optim
from striate.data import DataLoader
from striate.train import fit, preprocess
from striate.viz.kernels import (
    LayerMaps,
    feature_maps,
    feature_maps_size,
    first_conv_weight,
    kernels_size,
    plot_kernels,
)


def run_cli(argv) -> int:
    """``striate ARGV`` in-process; returns the exit code."""
    return cli.main(argv)


def _train_tiny(folder, name: str):
    """A run folder as 'striate train' writes it: two SGD steps on random 28×28 'digits'."""
    st.manual_seed(0)
    model = models.get(name, rng=0)
    rng = np.random.default_rng(0)
    images = rng.random((16, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 16)
    loader = DataLoader((images, labels), batch_size=8, seed=0,
                        transform=preprocess("mnist", model.input_shape))
    config = {"model": model.config, "dataset": "mnist", "seed": 0, "title": f"{name} (tiny test run)"}
    fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.01), loader, epochs=1, out_dir=folder,
        progress=False, config=config, log=lambda line: None)
    return model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    return folder, _train_tiny(folder, "lenet5-modern")


@pytest.fixture(scope="module")
def digit(tmp_path_factory):
    """A hand-drawn 7, dark on light, as a user would give it."""
    path = tmp_path_factory.mktemp("img") / "seven.png"
    img = Image.new("L", (60, 80), 255)
    draw = ImageDraw.Draw(img)
    draw.line([(10, 12), (50, 12), (25, 70)], fill=0, width=7)
    img.save(path)
    return path


def test_show_kernels(run, capsys, tmp_path):
    folder, model = run
    assert run_cli(["show", str(folder), "--kernels", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "first convolution c1, 6 kernels of 1×5×5" in out
    name, weight = first_conv_weight(model)
    np.testing.assert_array_equal(weight, model.c1.weight.data)
    with Image.open(tmp_path / "kernels.png") as img:
        assert img.size == kernels_size(weight) and img.size[0] > 400


def test_show_feature_maps_of_an_image(run, digit, capsys):
    folder, model = run
    assert run_cli(["show", str(folder), "--image", str(digit)]) == 0     # written into the run folder
    out = capsys.readouterr().out
    assert "c1         Conv2d         (1, 6, 28, 28)" in out and "s4         MaxPool2d      (1, 16, 5, 5)" in out
    assert "prediction: " in out
    x = np.zeros((1, 1, 32, 32), np.float32)
    layers, logits = feature_maps(model, x)
    assert [(layer.name, layer.maps.shape) for layer in layers] == [("c1", (6, 28, 28)), ("s2", (6, 14, 14)),
                                                                    ("c3", (16, 10, 10)), ("s4", (16, 5, 5))]
    assert logits.shape == (1, 10)
    with Image.open(folder / "feature-maps-seven.png") as img:
        assert img.size == feature_maps_size(layers, 10) and img.size[1] > 500


def test_show_reads_a_checkpoint_and_the_paper_model(tmp_path, digit, capsys):
    model = _train_tiny(tmp_path, "lenet5")
    (tmp_path / "model.safetensors").unlink()                   # an interrupted run: only the checkpoint
    assert run_cli(["show", str(tmp_path), "--kernels", "--image", str(digit)]) == 0
    out = capsys.readouterr().out
    assert "c3         PartialConv2d  (1, 16, 10, 10)" in out and "s2         Subsampling" in out
    assert (tmp_path / "kernels.png").stat().st_size > 5_000
    assert (tmp_path / "feature-maps-seven.png").stat().st_size > 5_000
    layers, _ = feature_maps(model, np.zeros((1, 1, 32, 32), np.float32))
    assert [layer.name for layer in layers] == ["c1", "s2", "c3", "s4", "c5"]      # c5's 1×1 maps are listed, not drawn


def test_plot_kernels_for_colour_and_many_channels(tmp_path, rng):
    for shape in [(2, 3, 3, 3), (2, 4, 3, 3), (12, 3, 5, 5)]:        # colour, many channels, colour-only
        weight = rng.standard_normal(shape).astype(np.float32)
        path = tmp_path / f"k{shape[1]}.png"
        assert plot_kernels(weight, path, "test") == kernels_size(weight)
        with Image.open(path) as img:
            assert img.size == kernels_size(weight)


def test_show_errors(tmp_path, capsys):
    assert run_cli(["show", str(tmp_path)]) == 2
    assert "no config.json in this folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no convolution layer"):
        first_conv_weight(models.get("mlp"))
    assert feature_maps_size([LayerMaps("a", "Conv2d", np.zeros((3, 4, 4)))]) [0] > 0
