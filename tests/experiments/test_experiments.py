"""``striate experiment``: every experiment end to end at its quick size on real MNIST / Fashion-MNIST,
the pieces they are built from, and the command line.

The end-to-end tests need the real data sets (found beside the checkout, in ./data, $STRIATE_DATA or the
download cache); without them they are skipped, never downloaded.
"""
import json

import numpy as np
import pytest
from PIL import Image

from striate import cli, experiments
from striate.experiments import _runner
from striate.experiments._nets import POOLS, small_cnn
from striate.tensor import Tensor, no_grad


def _strict_json(path):
    """Parse a file as JSON, refusing NaN and Infinity (which json.dumps writes by default, invalidly)."""
    def refuse(name):
        raise ValueError(f"{path}: not strict JSON ({name})")
    return json.loads(path.read_text(), parse_constant=refuse)


def _run_quick(name, folder, seed=0):
    lines = []
    result = experiments.run(name, folder, quick=True, seed=seed, progress=False, log=lines.append)
    return result, lines


# ---------------------------------------------------------------------------
# every experiment, end to end


@pytest.mark.parametrize("name", experiments.EXPERIMENTS)
def test_quick_run_writes_json_png_and_table(real_data, tmp_path, name):
    result, lines = _run_quick(name, tmp_path / name)
    folder = tmp_path / name
    stored = _strict_json(folder / "results.json")
    assert stored == result
    assert stored["experiment"] == name and stored["size"] == "quick" and stored["seed"] == 0
    assert stored["claim"] == experiments.get(name).CLAIM
    assert stored["finding"].startswith("(Quick run") and len(stored["finding"]) > 80
    columns, rows = stored["table"]["columns"], stored["table"]["rows"]
    assert rows and all(len(row) == len(columns) for row in rows)
    for extra in stored["more_tables"]:
        assert all(len(row) == len(extra["columns"]) for row in extra["rows"])
    with Image.open(folder / stored["figure"]) as png:
        assert png.format == "PNG" and png.width > 600 and png.height > 300
        # not a blank canvas: a figure has many distinct colours
        assert len(png.convert("RGB").getcolors(1 << 20) or range(1 << 20)) > 20
    printed = "\n".join(lines)
    assert columns[0] in printed and "finding:" in printed and str(folder / "results.json") in printed


def test_same_seed_same_numbers_other_seed_other_numbers(real_data, tmp_path):
    first, _ = _run_quick("dropout", tmp_path / "a")
    again, _ = _run_quick("dropout", tmp_path / "b")
    other, _ = _run_quick("dropout", tmp_path / "c", seed=1)
    assert first["table"] == again["table"] and first["finding"] == again["finding"]
    assert first["results"]["summary"] == again["results"]["summary"]
    assert other["table"] != first["table"]


def test_max_pooling_and_activation_commute_exactly_after_training(real_data, tmp_path):
    result, _ = _run_quick("activation", tmp_path)
    diffs = result["results"]["max_weight_difference"]
    assert all(v == 0.0 for k, v in diffs.items() if k.startswith("relu/max/"))
    assert all(v > 0.0 for k, v in diffs.items() if k.startswith("relu/average/"))


def test_params_arithmetic(real_data, tmp_path):
    result, _ = _run_quick("params", tmp_path)
    layers = {tuple(x["input"]): x for x in result["results"]["layers"]}
    alex = layers[(227, 227, 3)]
    assert alex["conv"] == 96 * (11 * 11 * 3 + 1) == 34_944
    assert alex["dense_k"] == 96 * (227 * 227 * 3 + 1)
    assert alex["dense_full"] == 96 * 55 * 55 * (227 * 227 * 3 + 1)
    assert layers[(28, 28, 1)]["conv"] == 156 and layers[(20, 20, 1)]["built"]["dense_full"] is True
    models_ = result["results"]["models"]
    assert models_["lenet5"]["parameters"] == 60_000
    assert models_["mlp"]["parameters"] == 266_610
    if "alexnet" in models_:
        assert models_["alexnet"]["parameters"] == 60_965_224


# ---------------------------------------------------------------------------
# the pieces


@pytest.mark.parametrize("pool", sorted(POOLS))
@pytest.mark.parametrize("norm", ["none", "after", "before"])
def test_small_cnn_shapes(pool, norm):
    model = small_cnn(np.random.default_rng(0), pool=pool, norm=norm, hidden=(12, 8), dropout=0.5)
    with no_grad():
        assert model(Tensor(np.zeros((3, 1, 28, 28), np.float32))).shape == (3, 10)
    names = list(model._modules)
    if norm == "after":
        assert names.index("act1") < names.index("bn1") < names.index("pool1")
    elif norm == "before":
        assert names.index("bn1") < names.index("act1")


@pytest.mark.parametrize("activation", ["relu", "scaled_tanh"])
def test_activation_commutes_with_max_pooling_not_with_average(activation, rng):
    x = Tensor(rng.standard_normal((4, 1, 28, 28)).astype(np.float32))
    for pool, same in (("max", True), ("average", False)):
        a = small_cnn(np.random.default_rng(1), pool=pool, activation=activation, order="act-pool").eval()
        b = small_cnn(np.random.default_rng(1), pool=pool, activation=activation, order="pool-act").eval()
        with no_grad():
            equal = np.array_equal(a(x).data, b(x).data)
        assert equal is same


def test_small_cnn_errors():
    with pytest.raises(ValueError, match="pool must be one of"):
        small_cnn(0, pool="median")
    with pytest.raises(ValueError, match="order must be one of"):
        small_cnn(0, order="sideways")


@pytest.mark.parametrize("skip", ["plain", "residual", "long skip"])
def test_deep_cnn_variants(skip, rng):
    from striate.experiments.skip import DeepCNN, _signal
    model = DeepCNN(width=8, depth=12, skip=skip, init="he", rng=0)
    x = rng.standard_normal((5, 1, 28, 28)).astype(np.float32)
    out = model(Tensor(x))
    assert out.shape == (5, 10)
    out.sum().backward()
    assert model.stem.weight.grad is not None and np.isfinite(model.stem.weight.grad).all()
    assert len(_signal(model, x)) == 13
    # the long skip reads half of layer 2's maps at layer 10: 8 + 4 input channels
    assert model.convs[8].in_channels == (12 if skip == "long skip" else 8)


def test_deep_cnn_default_init_fades_and_he_keeps_the_signal(rng):
    from striate.experiments.skip import DeepCNN, _signal
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    plain = _signal(DeepCNN(16, 12, "plain", "default", rng=0), x)
    he = _signal(DeepCNN(16, 12, "plain", "he", rng=0), x)
    residual = _signal(DeepCNN(16, 12, "residual", "default", rng=0), x)
    assert plain[-1] < 1e-3 * plain[0]
    assert he[-1] > 0.05 * he[0] and residual[-1] > 0.05 * residual[0]
    with pytest.raises(ValueError, match="skip must be one of"):
        DeepCNN(skip="sideways")


def test_colourise_keeps_colours_apart(rng):
    from striate.experiments.fusion import MIN_DISTANCE, colourise, to_grey
    digits = rng.integers(0, 256, (50, 28, 28)).astype(np.uint8)
    x, fg, bg = colourise(digits, np.random.default_rng(0))
    assert x.shape == (50, 3, 28, 28) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    assert (np.linalg.norm(fg - bg, axis=1) >= MIN_DISTANCE).all()
    full = digits == 255
    n, i, j = np.argwhere(full)[0]
    np.testing.assert_allclose(x[n, :, i, j], fg[n], rtol=1e-6)
    assert to_grey(x).shape == (50, 1, 28, 28)


def test_fcn_runs_on_any_size_and_canvases_place_digits(rng):
    from striate.experiments.fcn import FCN, STRIDE, _cell, make_canvases
    model = FCN(rng=0)
    with no_grad():
        assert model(Tensor(np.zeros((2, 1, 28, 28), np.float32))).shape == (2, 10)
        assert model.score_map(Tensor(np.zeros((1, 1, 84, 168), np.float32))).shape == (1, 10, 84 // 8, 168 // 8)
    images = rng.integers(0, 256, (20, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 20)
    canvases, digits = make_canvases(images, labels, 4, 2, 3, 1.0, np.random.default_rng(0))
    assert canvases.shape == (4, 1, 56, 84) and all(len(d) == 6 for d in digits)
    assert canvases.max() <= 1 and digits[0][0][0] == labels[0]
    assert _cell(0, 10) == 0 and _cell(STRIDE * 3 + 3, 10) == 3 and _cell(10_000, 10) == 9


def test_layer_counts_match_built_layers():
    from striate import nn
    from striate.experiments.params import layer_counts
    c = layer_counts(32, 32, 3, 6, 5, 1)
    assert c["output"] == (6, 28, 28)
    assert c["conv"] == nn.Conv2d(3, 6, 5, rng=0).num_parameters()
    assert c["dense_k"] == nn.Linear(32 * 32 * 3, 6, rng=0).num_parameters()


def test_runner_helpers():
    assert _runner.to_json({"a": np.float32(1.5), "b": [np.nan, np.inf], "c": np.int64(3), "d": (1, 2)}) == \
        {"a": 1.5, "b": [None, None], "c": 3, "d": [1, 2]}
    with pytest.raises(TypeError, match="JSON-friendly"):
        _runner.to_json({"x": object()})
    np.testing.assert_allclose(_runner.smooth([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    table = _runner.format_table(["name", "value"], [["a", 1.5], ["bb", 1234567]])
    assert table.splitlines()[0].startswith("name") and "1,234,567" in table
    assert _runner.pct(0.97314) == "97.3%" and _runner.points(0.95, 0.9) == "5.0 points above"
    assert "| name | value |" in _runner.markdown_table(["name", "value"], [["a", 1.0]])


def test_unknown_experiment():
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        experiments.get("nope")
    assert experiments.names() == sorted(experiments.EXPERIMENTS)


# ---------------------------------------------------------------------------
# the command line


def run_cli(argv) -> int:
    """``striate ARGV`` in-process; returns the exit code."""
    return cli.main([str(a) for a in argv])


def test_cli_list_and_errors(capsys):
    assert run_cli(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in experiments.EXPERIMENTS)
    assert run_cli(["experiment", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown experiment 'nope'" in err
    assert run_cli(["experiment", "shift", "--seed", "-1"]) == 2
    assert "--seed must be" in capsys.readouterr().err


def test_cli_runs_an_experiment(real_data, tmp_path, capsys):
    out = tmp_path / "params-out"
    assert run_cli(["experiment", "params", "--quick", "--out", out, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "finding:" in printed and "conv parameters" in printed
    assert _strict_json(out / "results.json")["command"] == "striate experiment params --quick"
    assert (out / "params.png").exists()


def test_cli_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert run_cli(["experiment", "params", "--quick", "--out", f]) == 2
    assert "not a folder" in capsys.readouterr().err
