"""`striate train MODEL --data-dir DIR` on class folders of your own images, and everything done with that run:
evaluate, predict, show, st.load_run, export.

The folders are written here with Pillow: PNG, JPEG, BMP, GIF and WebP files of mixed sizes, grayscale and
colour, a class name with a space; the class of an image is where its bright band lies.
"""
import os
import re
import signal

import numpy as np
import pytest
from PIL import Image

import striate as st
from striate.cli import main
from striate.data import ImageFolder, prepare_image
from tests.data.test_folders import make_folder


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err, pattern):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("striate: error: "), err
    assert re.search(pattern, lines[0]), lines[0]


CLASSES = ("cat", "hot dog", "zebra")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    make_folder(root / "train", CLASSES, per_class=12, seed=0)
    make_folder(root / "test", CLASSES, per_class=4, seed=1)
    return root


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pictures"
    assert main(["train", "lenet5-modern", "--data-dir", str(data), "--epochs", "1", "--out", str(out),
                 "--quiet"]) == 0
    return out


def test_train_records_what_the_images_were_made_into(run, data):
    config = st.train.read_json(run / "config.json")
    assert config["dataset"] == "folders" and config["classes"] == list(CLASSES)
    assert config["images"] == {"size": [32, 32], "channels": 3, "resize": "stretch", "resize_filter": "bilinear",
                                "mode": "RGB"}
    assert config["model"]["kwargs"]["in_channels"] == 3 and config["model"]["kwargs"]["num_classes"] == 3
    mean, std = config["preprocess"]["normalize"]
    assert len(mean) == len(std) == 3 and "36 training images" in config["preprocess"]["normalize_from"]
    for name in ("model.safetensors", "metrics.json", "curves.png", "confusion.png"):
        assert (run / name).exists()


def test_evaluate_with_the_runs_data_or_another_folder(run, data, capsys):
    code, out, _ = cli(capsys, "evaluate", run)
    assert code == 0 and "(12 images): accuracy" in out and "hot dog" in out
    code, out2, _ = cli(capsys, "evaluate", run, "--data-dir", data)
    assert code == 0 and out2 == out
    code, eager, _ = cli(capsys, "evaluate", run, "--eager")          # op by op: the same figures
    assert code == 0 and eager == out


def test_predict_prints_the_class_name(run, data, capsys):
    files = [data / "test" / "hot dog" / name for name in sorted((data / "test" / "hot dog").iterdir())][:2]
    code, out, _ = cli(capsys, "predict", run, *files)
    assert code == 0
    assert cli(capsys, "predict", run, *files, "--eager")[1] == out
    lines = out.strip().splitlines()
    assert len(lines) == 2
    for line, path in zip(lines, files):
        assert line.startswith(f"{path}: ") and re.search(r": (cat|hot dog|zebra)   \(", line)


def test_load_run_prepares_files_and_arrays_as_in_training(run, data):
    loaded = st.load_run(run)
    assert loaded.classes == list(CLASSES) and loaded.images["resize"] == "stretch"
    test = ImageFolder(data / "test", size=32, channels=3)
    files = [path for path, _ in test.samples]
    images, _ = test.get_batch(np.arange(len(test)))                       # (N, 3, 32, 32) uint8
    assert np.array_equal(loaded.load_images(files), images.transpose(0, 2, 3, 1))
    probs = loaded.predict(files)
    assert probs.shape == (12, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(loaded.predict(images.transpose(0, 2, 3, 1)), probs, atol=1e-6)
    big = np.asarray(Image.open(files[0]).convert("RGB"))                  # any size: resized the same way
    assert np.allclose(loaded.predict(big[None]), probs[:1], atol=1e-6)
    gray = loaded.predict(np.zeros((2, 50, 20), np.uint8))                 # gray arrays become RGB
    assert gray.shape == (2, 3)
    with pytest.raises(ValueError, match="values in \\[0, 1\\]"):
        loaded.predict(np.full((1, 32, 32, 3), 2.0))


def test_show_kernels_and_feature_maps(run, data, tmp_path, capsys):
    picture = sorted((data / "test" / "zebra").iterdir())[0]
    code, out, _ = cli(capsys, "show", run, "--kernels", "--image", picture, "--out", tmp_path)
    assert code == 0 and "6 kernels of 3×5×5" in out and "input (1, 3, 32, 32)" in out
    assert re.search(r"prediction: (cat|hot dog|zebra) ", out)
    assert (tmp_path / "kernels.png").exists() and (tmp_path / f"feature-maps-{picture.stem}.png").exists()


def test_export_onnx(run, tmp_path, capsys):
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    code, text, _ = cli(capsys, "export", run, "--out", out)
    assert code == 0 and "input (N, 3, 32, 32)" in text
    loaded = st.load_run(run)
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    with st.no_grad():
        expected = loaded.model(st.Tensor(x)).data
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], expected,
                               rtol=1e-4, atol=1e-5)


def test_one_set_of_class_folders_split_by_val_split(tmp_path, capsys):
    root = make_folder(tmp_path / "all", CLASSES, per_class=8, colour=False)
    out = tmp_path / "run"
    code, text, _ = cli(capsys, "train", "mlp", "--data-dir", root, "--val-split", "0.25", "--epochs", "1",
                        "--out", out, "--quiet", "--seed", "3", "--resize", "pad")
    assert code == 0, text
    assert "18 training and 6 test images" in text and "grayscale 28×28 (pad, bilinear)" in text
    config = st.train.read_json(out / "config.json")
    assert config["val_split"] == 0.25 and config["images"]["channels"] == 1 and config["images"]["resize"] == "pad"
    loaded = st.load_run(out)
    assert loaded.model.input_shape == (1, 28, 28)
    path = ImageFolder(root).samples[0][0]
    assert np.array_equal(loaded.load_images([path])[0, ..., 0], prepare_image(path, 28, 1, "pad")[0])
    code, text, _ = cli(capsys, "evaluate", out)                 # the same 6 images held out
    assert code == 0 and "(6 images)" in text and "0.25 of each class, stratified, seed 3" in text


def test_the_1998_lenet_is_refused_for_colour_or_other_classes(data, tmp_path, capsys):
    code, _, err = cli(capsys, "train", "lenet5", "--data-dir", data, "--out", tmp_path / "r", "--epochs", "1")
    one_line_error(code, err, r"lenet5 \(1998\) cannot learn these images: its output layer compares F6 with "
                              r"ten fixed bitmaps.* 3 classes and 3 channels")


def test_bad_images_named_or_skipped_and_counted(tmp_path, capsys):
    root = tmp_path / "d"
    make_folder(root / "train", CLASSES, per_class=6, seed=0)
    make_folder(root / "val", CLASSES, per_class=2, seed=1)
    bad = root / "train" / "cat" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code, _, err = cli(capsys, "train", "lenet5-modern", "--data-dir", root, "--out", tmp_path / "r1", "--epochs", 1)
    one_line_error(code, err, re.escape(str(bad)) + ": the image data is damaged or truncated")
    code, out, err = cli(capsys, "train", "lenet5-modern", "--data-dir", root, "--out", tmp_path / "r2",
                         "--epochs", 1, "--skip-bad-images", "--quiet")
    assert code == 0
    assert f"striate: warning: skipped {bad}: the image data is damaged" in err
    assert "18 training and 6 test images" in out and "skipped 1 unreadable image (named in the warnings above)" in out


def test_unusable_folders_are_clear_errors(data, tmp_path, capsys):
    empty = tmp_path / "empty"
    make_folder(empty / "train", CLASSES, per_class=2)
    make_folder(empty / "test", CLASSES, per_class=1)
    (empty / "train" / "nothing here").mkdir()
    code, _, err = cli(capsys, "train", "lenet5-modern", "--data-dir", empty, "--out", tmp_path / "r")
    one_line_error(code, err, r"class folder 'nothing here' holds no images")

    unseen = tmp_path / "unseen"
    make_folder(unseen / "train", ("cat", "zebra"), per_class=2)
    make_folder(unseen / "test", CLASSES, per_class=1)
    code, _, err = cli(capsys, "train", "lenet5-modern", "--data-dir", unseen, "--out", tmp_path / "r")
    one_line_error(code, err, r"class folder 'hot dog' not among the 2 classes the model was trained on")

    no_test = tmp_path / "no-test"
    make_folder(no_test / "train", CLASSES, per_class=2)
    code, _, err = cli(capsys, "train", "lenet5-modern", "--data-dir", no_test, "--out", tmp_path / "r")
    one_line_error(code, err, r"has train/ but neither test/ nor val/")

    code, _, err = cli(capsys, "train", "lenet5-modern", "--data-dir", data, "--dataset", "mnist")
    one_line_error(code, err, r"--dataset names MNIST or Fashion-MNIST, but --data-dir .* holds class folders")
    code, _, err = cli(capsys, "train", "neocognitron", "--data-dir", data)
    one_line_error(code, err, r"no recipe for image folders")
    code, _, err = cli(capsys, "train", "mlp", "--data-dir", data / "train", "--val-split", "1.5")
    one_line_error(code, err, r"--val-split must be a fraction between 0 and 1, got 1.5")
    code, _, err = cli(capsys, "train", "mlp", "--data-dir", data, "--val-split", "0.3")
    one_line_error(code, err, r"--val-split splits DIR/<class> folders, but .* has its own train/ and test/")


def test_evaluate_other_class_folders_whole(run, data, tmp_path, capsys):
    other = make_folder(tmp_path / "other", ("zebra", "cat"), per_class=3, seed=5)      # a subset of the classes
    code, out, _ = cli(capsys, "evaluate", run, "--data-dir", other)
    assert code == 0 and f"on {other} (6 images)" in out
    strange = make_folder(tmp_path / "strange", ("cat", "okapi"), per_class=1)
    code, _, err = cli(capsys, "evaluate", run, "--data-dir", strange)
    one_line_error(code, err, r"class folder 'okapi' not among the 3 classes the model was trained on")


def test_interrupted_and_resumed_gives_the_same_weights(data, tmp_path, monkeypatch, capsys):
    args = ["train", "lenet5-modern", "--data-dir", data, "--epochs", "2", "--batch-size", "8", "--quiet"]
    assert cli(capsys, *args, "--out", tmp_path / "whole")[0] == 0
    calls = []
    original = ImageFolder.get_batch

    def interrupted(self, indices):
        calls.append(len(indices))
        if len(calls) == 10:             # statistics, sample shape, 5 batches, the test set, then epoch 2
            os.kill(os.getpid(), signal.SIGINT)                 # Ctrl-C: the step finishes, then it saves
        return original(self, indices)

    monkeypatch.setattr(ImageFolder, "get_batch", interrupted)
    code, _, err = cli(capsys, *args, "--out", tmp_path / "cut")
    assert code == 130 and "Continue with: striate train lenet5-modern" in err and "--resume" in err
    monkeypatch.setattr(ImageFolder, "get_batch", original)
    code, out, err = cli(capsys, "train", "lenet5-modern", "--data-dir", data, "--out", tmp_path / "cut", "--resume",
                         "--quiet")
    assert code == 0, err
    whole = st.load(tmp_path / "whole" / "model.safetensors")
    cut = st.load(tmp_path / "cut" / "model.safetensors")
    assert whole.keys() == cut.keys() and all(np.array_equal(whole[k], cut[k]) for k in whole)
