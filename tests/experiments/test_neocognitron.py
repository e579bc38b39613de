"""The neocognitron's experiments (striate.experiments.neocognitron) and its commands.

The network's own cells are tested in tests/models/test_neocognitron.py.
"""
import json

import numpy as np
import pytest

import striate as st
import striate.models as models
from striate.cli import main
from striate.experiments.neocognitron import (
    deform,
    digit_patterns,
    linear_accuracy,
    load_organised,
    nearest_mean_accuracy,
    run_digits,
    run_mnist,
    shift,
    shrink,
)


def test_the_papers_digit_experiment():
    result = run_digits(rounds=10, seed=0, print_fn=None)
    assert result["distinct"]                            # each of "0"–"4" drives its own UC3 cell
    own = np.array(result["winners"]["original"])
    for name in ("shift (+0,+2)", "shift (+0,-2)", "shift (+2,+0)", "shift (-2,+0)", "shift (+1,+1)"):
        assert result["winners"][name] == own.tolist(), name
    assert result["agreement"] >= 0.85
    model = result["model"]
    # the five patterns used five US3 planes; the others never won
    assert int((model.us3.wins > 0).sum()) == 5


def test_organise_and_save_round_trip(tmp_path):
    net = models.get("neocognitron", rng=0)
    assert net.input_shape == (1, 16, 16) and net.num_parameters() == 0   # nothing learnt by gradient
    patterns = digit_patterns()
    net.organise(patterns, rounds=2, layerwise=False)
    before = net(patterns[:, None]).data
    assert before.shape == (5, 24, 1, 1)
    st.save(net, tmp_path / "n.safetensors")
    again = load_organised(tmp_path / "n.safetensors")
    np.testing.assert_array_equal(again(patterns[:, None]).data, before)
    np.testing.assert_array_equal(again.us2.wins, net.us2.wins)
    rows = st.summary(net, (1, 1, 16, 16), print_fn=None).rows
    assert [r.name for r in rows] == ["us1", "uc1", "us2", "uc2", "us3", "uc3"]


# ---------------------------------------------------------------------------
# helpers for the experiments


def test_patterns_shift_and_deform():
    p = digit_patterns()
    assert p.shape == (5, 16, 16) and set(np.unique(p).tolist()) == {0.0, 1.0}
    assert (p[:, :2].sum(), p[:, -2:].sum(), p[..., :2].sum(), p[..., -2:].sum()) == (0, 0, 0, 0)
    np.testing.assert_array_equal(shift(shift(p, 2, -1), -2, 1), p)
    assert shift(p, 0, 3)[..., :3].sum() == 0
    np.testing.assert_array_equal(deform(p, angle=0, scale=0, shear=0), p)
    d = deform(p, rng=0)
    assert set(np.unique(d).tolist()) <= {0.0, 1.0}
    changed = (d != p).mean(axis=(1, 2))
    assert (changed > 0).sum() >= 3 and (changed < 0.15).all()      # a straight "1" may survive intact


def test_shrink_is_an_area_average():
    x = np.full((2, 28, 28), 255, np.uint8)
    np.testing.assert_allclose(shrink(x), 1.0, rtol=1e-6)
    rng = np.random.default_rng(0)
    y = rng.uniform(size=(3, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(shrink(y).mean(axis=(1, 2)), y.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(shrink(y, 14), y.reshape(3, 14, 2, 14, 2).mean(axis=(2, 4)), rtol=1e-5)


def test_readouts_on_separable_data():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (4, 6))
    labels = rng.integers(0, 4, 400)
    x = (centres[labels] + rng.normal(0, 0.5, (400, 6))).astype(np.float32)
    assert nearest_mean_accuracy(x[:300], labels[:300], x[300:], labels[300:], classes=4) > 0.95
    assert linear_accuracy(x[:300], labels[:300], x[300:], labels[300:], classes=4, epochs=30,
                           lr=0.05, batch_size=32) > 0.95


def test_mnist_run_at_a_tiny_size(tmp_path):
    try:
        result = run_mnist(organise_on=40, train_size=300, test_size=100, print_fn=None, out_dir=tmp_path)
    except FileNotFoundError:
        pytest.skip("MNIST is not available here")
    rows = {row["features"]: row for row in result["rows"]}
    assert rows["UC3 (last C-layer)"]["dims"] == 24 and rows["raw pixels 16×16"]["dims"] == 256
    assert all(0 <= row["nearest_mean"] <= 1 and 0 <= row["linear"] <= 1 for row in result["rows"])
    saved = json.loads((tmp_path / "mnist-readout.json").read_text())
    assert saved["rows"][0]["features"] == "raw pixels 16×16"
    assert (tmp_path / "planes-mnist.png").stat().st_size > 0


def test_command_line(tmp_path, capsys):
    assert main(["neocognitron", "digits", "--rounds", "6", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "each pattern its own UC3 cell: yes" in out
    assert (tmp_path / "digits.png").stat().st_size > 0
    weights = tmp_path / "neocognitron-digits.safetensors"
    assert main(["neocognitron", "planes", str(weights), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0
