"""st.load_run: every run `striate train` writes, loaded back; predict on arrays and image files; the run folder's
state; damaged folders and bad input give one clear error.

The runs are trained by the command line on the real MNIST and Fashion-MNIST (200 images, one epoch); without
the data sets on disk those tests are skipped, never downloaded.
"""
import contextlib
import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

import striate as st
from striate import models
from striate.cli import main
from striate.data import DATASETS, DataLoader
from striate.data.images import mnist_style
from striate.train import (
    CHECKPOINT,
    CONFIG,
    FINAL_WEIGHTS,
    METRICS,
    Run,
    RunError,
    free_run_dir,
    load_run,
    preprocess,
    run_state,
)

# the models `striate train` refuses: their inputs cannot be made from 28×28 one-channel images
REFUSED = {"alexnet": "3×227×227", "neocognitron": "1×16×16"}
TRAINABLE = [name for name in models.names() if name not in REFUSED]
DATASET_NAMES = ("mnist", "fashion-mnist")




def striate(*argv):
    """`striate argv...` in this process: (exit code, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in argv])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def runs(real_data, tmp_path_factory):
    """{(model, data set): run folder} for every model `striate train` accepts, on both data sets."""
    base = tmp_path_factory.mktemp("runs")
    folders = {}
    for name in TRAINABLE:
        for dataset in DATASET_NAMES:
            out = base / f"{name}-{dataset}"
            code, stdout = striate("train", name, "--dataset", dataset, "--limit", 200, "--epochs", 1,
                                   "--batch-size", 50, "--out", out, "--quiet")
            assert code == 0, stdout
            folders[name, dataset] = out
    return folders


def test_the_models_train_refuses(tmp_path, capsys):
    assert set(REFUSED) <= set(models.names()) and TRAINABLE
    for name, shape in REFUSED.items():
        assert main(["train", name, "--out", str(tmp_path / name), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"takes {shape} inputs" in err, err


@pytest.mark.parametrize("dataset", DATASET_NAMES)
@pytest.mark.parametrize("name", TRAINABLE)
def test_load_run_on_every_run_train_writes(runs, name, dataset):
    folder = runs[name, dataset]
    run = st.load_run(folder)
    assert isinstance(run, Run) and isinstance(run, st.Run) and run.path == folder
    assert not run.model.training
    assert run.config == json.loads((folder / CONFIG).read_text())
    assert run.config["model"]["name"] == name and run.dataset == dataset
    assert run.classes == list(DATASETS[dataset].classes) == run.config["classes"]      # recorded by train
    assert run.metrics == json.loads((folder / METRICS).read_text()) and run.metrics["finished"]
    assert_same_weights(run.model.state_dict(), st.load(folder / FINAL_WEIGHTS))

    # preprocess: the transform of the run's test loader, bit for bit
    test = DATASETS[dataset](train=False, download=False)
    images, labels = test.images[:70], test.labels[:70]
    loader = DataLoader((images, labels), batch_size=70, transform=preprocess(dataset, run.model.input_shape))
    x, _ = next(iter(loader))
    prepared = run.preprocess(images)
    assert prepared.dtype == np.float32 and prepared.shape == (70,) + tuple(run.model.input_shape)
    np.testing.assert_array_equal(prepared, x)

    # predict: the model on the prepared batch, under no_grad; every form of the same images agrees
    probs = run.predict(images, batch_size=32)                 # three batches, the last one short
    with st.no_grad():
        expected = st.functional.softmax(run.model(st.Tensor(x)), dim=1).data
    assert probs.shape == (70, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    as_float = images.astype(np.float32) / 255
    for same in (images[..., None], as_float, as_float[..., None], as_float.astype(np.float64)):
        np.testing.assert_allclose(run.predict(same), probs, rtol=1e-5, atol=1e-6)
    # the weights file alone (its metadata holds the config), and an unfinished run's checkpoint
    alone = st.load_run(folder / FINAL_WEIGHTS)
    np.testing.assert_array_equal(alone.predict(images[:5]), run.predict(images[:5]))
    assert alone.metrics == run.metrics
    assert_same_weights(st.load_run(folder / CHECKPOINT).model.state_dict(), run.model.state_dict())


@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_predict_on_image_files_agrees_with_striate_predict(runs, dataset, tmp_path):
    test = DATASETS[dataset](train=False, download=False)
    paths = []
    for i in range(4):
        picture = Image.fromarray(255 - test.images[i]).resize((112, 112), Image.BICUBIC)    # dark on light
        paths.append(tmp_path / f"picture{i}.png")
        picture.save(paths[-1])
    for name in TRAINABLE:
        run = st.load_run(runs[name, dataset])
        probs = run.predict(paths)
        assert probs.shape == (4, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
        digits = np.stack([mnist_style(p) for p in paths])
        np.testing.assert_array_equal(probs, run.predict(digits))
        code, stdout = striate("predict", runs[name, dataset], *paths, "--top", 3)
        assert code == 0
        for p, line, row in zip(paths, stdout.strip().splitlines(), probs):
            top = np.argsort(-row, kind="stable")[:3]
            best = ", ".join(f"{run.classes[k]} {100 * row[k]:.1f}%" for k in top)
            assert line == f"{p}: {run.classes[top[0]]}   ({best})"


# -- bad input to predict ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp_run(runs):
    return st.load_run(runs["mlp", "mnist"])


BAD_INPUT = [
    (np.zeros((2, 32, 32), np.uint8), ValueError, r"expects images \(N, 28, 28\) or \(N, 28, 28, 1\) .* "
                                                  r"got shape \(2, 32, 32\)"),
    (np.zeros((2, 28, 28, 3), np.uint8), ValueError, r"1 channel\), got shape \(2, 28, 28, 3\)"),
    (np.zeros((28, 28), np.uint8), ValueError, r"got shape \(28, 28\)"),
    (np.zeros((2, 28, 28), np.int64), TypeError, r"expects uint8 \(0-255\) or float \(\[0, 1\]\) images, "
                                                 r"got dtype int64"),
    (np.zeros((2, 28, 28), bool), TypeError, r"got dtype bool"),
    (np.zeros((0, 28, 28), np.uint8), ValueError, r"expects at least one image .* got shape \(0, 28, 28\)"),
    ([], ValueError, r"expects at least one image .* got an empty list"),
    (np.full((2, 28, 28), 255.0), ValueError, r"takes float images as values in \[0, 1\], got values from "
                                              r"255 to 255"),
    (np.full((1, 28, 28), np.nan, np.float32), ValueError, r"got values from nan to nan"),
    ("digit.png", TypeError, r"got one path 'digit.png': pass \['digit.png'\]"),
    ([[0] * 28] * 28, TypeError, r"expects images as a NumPy array .* got list"),
]


@pytest.mark.parametrize("images, error, pattern", BAD_INPUT,
                         ids=["32x32", "3 channels", "no batch axis", "int64", "bool", "no image", "empty list",
                              "0-255 floats", "nan", "one path", "nested list"])
def test_bad_input_to_predict_names_what_was_expected(mlp_run, images, error, pattern):
    for method in (mlp_run.predict, mlp_run.preprocess):
        with pytest.raises(error, match=pattern):
            method(images)


def test_a_missing_image_file_is_named(mlp_run, tmp_path):
    with pytest.raises(ValueError, match=r"nowhere.png: no such image file"):
        mlp_run.predict([tmp_path / "nowhere.png"])


# -- predict through st.compile ------------------------------------------------------------------------------


def _saved_run(tmp_path, name="lenet5"):
    """A run folder of an untrained model (config.json and model.safetensors): no data set needed."""
    model = models.get(name, rng=0)
    config = {"model": model.config, "dataset": "mnist"}
    (tmp_path / CONFIG).write_text(json.dumps(config))
    st.save(model, tmp_path / FINAL_WEIGHTS, metadata={"config": config})
    return st.load_run(tmp_path)


@pytest.mark.parametrize("name", ["lenet5", "lenet5-modern", "mlp"])
def test_predict_runs_a_compiled_plan_that_the_run_keeps(name, tmp_path):
    run = _saved_run(tmp_path, name)
    images = np.random.default_rng(0).integers(0, 256, (70, 28, 28)).astype(np.uint8)
    eager = run.predict(images, batch_size=32, compiled=False)
    assert run._compiled is None                                # op by op: nothing planned
    probs = run.predict(images, batch_size=32)                  # batches of 32, 32 and 6: two plans
    np.testing.assert_allclose(probs, eager, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(probs.argmax(axis=1), eager.argmax(axis=1))
    compiled = run._compiled
    assert compiled is not None and sorted(shape[0] for shape, _ in compiled.compiled.plans) == [6, 32]
    np.testing.assert_array_equal(run.predict(images, batch_size=32), probs)     # the same plans, the same numbers
    run.predict(images[:1])
    assert run._compiled is compiled and len(compiled.compiled.plans) == 3


def test_predict_sees_new_weights_and_a_new_model(tmp_path):
    run = _saved_run(tmp_path, "lenet5-modern")
    images = np.random.default_rng(1).integers(0, 256, (8, 28, 28)).astype(np.uint8)
    before = run.predict(images)
    for p in run.model.parameters():                            # fine-tuned in place
        p.data *= np.float32(1.5)
    after = run.predict(images)
    assert not np.allclose(after, before, atol=1e-3)
    np.testing.assert_allclose(after, run.predict(images, compiled=False), rtol=1e-5, atol=1e-6)
    run.model = models.get("lenet5-modern", rng=1).eval()       # another model altogether
    np.testing.assert_allclose(run.predict(images), run.predict(images, compiled=False), rtol=1e-5, atol=1e-6)
    assert run._compiled.model is run.model


def test_predict_runs_in_evaluation_mode_either_way(tmp_path):
    run = _saved_run(tmp_path, "alexnet-small")                 # dropout in its classifier
    images = np.random.default_rng(2).integers(0, 256, (4, 28, 28)).astype(np.uint8)
    expected = run.predict(images, compiled=False)
    run.model.train()
    for compiled in (True, False):
        np.testing.assert_allclose(run.predict(images, compiled=compiled), expected, rtol=1e-5, atol=1e-6)
        assert run.model.training


# -- the folder's state --------------------------------------------------------------------------------------


def test_run_state_and_free_run_dir(runs, tmp_path):
    finished = runs["mlp", "mnist"]
    assert run_state(finished) == "finished" and run_state(tmp_path / "nothing") == "empty"
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(finished / CHECKPOINT, unfinished / CHECKPOINT)
    assert run_state(unfinished) == "unfinished"
    base = tmp_path / "mlp-mnist"
    shutil.copytree(finished, base)
    shutil.copytree(finished, tmp_path / "mlp-mnist-2")
    assert free_run_dir(base) == tmp_path / "mlp-mnist-3"
    assert free_run_dir(tmp_path / "fresh") == tmp_path / "fresh"


# -- damaged folders: one clear error ------------------------------------------------------------------------


@pytest.fixture
def damaged(runs, tmp_path):
    """A copy of a finished run, to be damaged."""
    folder = tmp_path / "run"
    shutil.copytree(runs["mlp", "mnist"], folder)
    return folder


def damage(folder, how):
    if how == "no config":
        (folder / CONFIG).unlink()
    elif how == "bad JSON":
        (folder / CONFIG).write_text('{"model": ')
    elif how == "config not an object":
        (folder / CONFIG).write_text("[1, 2]")
    elif how == "no model description":
        (folder / CONFIG).write_text('{"dataset": "mnist"}')
    elif how == "unknown model":
        (folder / CONFIG).write_text('{"model": {"name": "resnet"}}')
    elif how == "wrong weights":
        st.save(models.get("lenet5-modern", rng=0), folder / FINAL_WEIGHTS)
    elif how == "no weights":
        (folder / FINAL_WEIGHTS).unlink()
        (folder / CHECKPOINT).unlink()
    elif how == "garbage weights":
        (folder / FINAL_WEIGHTS).write_bytes(b"\x00" * 100)
    elif how == "bad metrics":
        (folder / METRICS).write_text("{")
    elif how == "too big":
        config = json.loads((folder / CONFIG).read_text())
        config["model"]["kwargs"]["sizes"] = [784, 10 ** 15, 10]      # beyond any address space
        (folder / CONFIG).write_text(json.dumps(config))


DAMAGE = [
    ("no config", r"run: no config.json in this folder \(expected a run folder written by 'striate train'\)"),
    ("bad JSON", r"config.json: not valid JSON \("),
    ("config not an object", r"config.json: expected a JSON object, got list"),
    ("no model description", r"the run's config has no model description"),
    ("unknown model", r"cannot rebuild the model: unknown model 'resnet'"),
    ("wrong weights", r"model.safetensors: these weights do not fit model 'mlp'"),
    ("no weights", r"neither model.safetensors nor checkpoint.safetensors is there: nothing to load"),
    ("garbage weights", r"model.safetensors: .*expected a safetensors checkpoint"),
    ("bad metrics", r"metrics.json: not valid JSON"),
    ("too big", r"cannot rebuild the model: its description .* asks for more memory than this machine has"),
]


@pytest.mark.parametrize("how, pattern", DAMAGE, ids=[how for how, _ in DAMAGE])
def test_a_damaged_folder_gives_one_clear_error(damaged, how, pattern, capsys):
    damage(damaged, how)
    with pytest.raises(ValueError, match=pattern) as info:
        load_run(damaged)
    assert isinstance(info.value, RunError) or how == "garbage weights"       # that one is a CheckpointError
    for command in (["evaluate", damaged], ["predict", damaged, "digit.png"]):
        assert main([str(a) for a in command]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(pattern, err), err


def test_bad_paths(tmp_path):
    with pytest.raises(RunError, match=r"nowhere: no such run folder or weights file"):
        load_run(tmp_path / "nowhere")
    st.save(models.get("mlp", rng=0), tmp_path / "weights.safetensors")          # no config anywhere
    with pytest.raises(RunError, match=r"the file holds weights but no model description; pass the run folder"):
        load_run(tmp_path / "weights.safetensors")


def assert_same_weights(a, b):
    assert list(a) == list(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs"
