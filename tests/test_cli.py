"""The `striate` command line: train / evaluate / predict / summary, run folders, resuming, and user errors.

Every run here uses a tiny data set the tests write themselves (IDX files passed with --data-dir),
so nothing is downloaded and a training takes a second.
"""
import contextlib
import io
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import striate as st
from striate import models
from striate.cli import main
from striate.data import write_idx
from striate.train import RECIPES
from tests.compile.helpers import record_plan_batches

REPO = Path(__file__).resolve().parents[1]


def toy_digits(n, seed):
    """(n, 28, 28) uint8 images whose class is where a bright 5×5 square sits, on a noisy background."""
    g = np.random.default_rng(seed)
    labels = g.integers(0, 10, n).astype(np.uint8)
    images = g.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    rows, cols = 4 + 6 * (labels // 4), 4 + 6 * (labels % 4)
    for dy in range(5):
        for dx in range(5):
            images[np.arange(n), rows + dy, cols + dx] = 255
    return images, labels


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy-mnist")
    for split, n, seed in (("train", 512, 0), ("t10k", 128, 1)):
        images, labels = toy_digits(n, seed)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)      # compressed or not: both are found
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)
    return folder


def cli(capsys, *argv):
    """Run `striate argv...` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, out, err, pattern, expected_code=2):
    assert code == expected_code, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("striate: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in out + err


def train_quietly(*argv):
    """`striate train ...` in this process, its output kept: (exit code, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["train", *map(str, argv), "--quiet"])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """A finished run of the MLP, two epochs on the toy data."""
    out = tmp_path_factory.mktemp("runs") / "mlp-toy"
    code, stdout = train_quietly("mlp", "--data-dir", data_dir, "--out", out, "--epochs", 2)
    assert code == 0, stdout
    return out, stdout


def load_weights(path):
    return st.load(path)


def assert_same_weights(a, b):
    assert list(a) == list(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs"


# -- train ------------------------------------------------------------------------------------------


def test_train_writes_a_complete_run_folder(trained):
    out, stdout = trained
    lines = stdout.strip().splitlines()
    recipe = RECIPES["mlp"]
    assert lines[0].startswith(f"training mlp (266,610 parameters) on mnist: 512 training and 128 test images, "
                               f"2 epochs, batch {recipe['batch_size']}, {recipe['optimizer']} lr {recipe['lr']:g}")
    assert lines[1].startswith("epoch 1/2  train loss") and lines[2].startswith("epoch 2/2  train loss")
    assert re.match(r"test accuracy: \d+\.\d\d% \(\d+/128\)", lines[3])
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "config.json", "confusion.png",
                                                     "curves.png", "metrics.json", "model.safetensors"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"] and metrics["final_test_acc"] > 0.9        # the toy classes are easy
    lr = RECIPES["mlp"]["lr"]
    assert [e["lr"] for e in metrics["epochs"]] == pytest.approx([lr, lr / 2])      # cosine over 2 epochs
    for e in metrics["epochs"]:
        assert {"train_loss", "train_acc", "test_loss", "test_acc", "seconds", "lr"} <= set(e)
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["name"] == "mlp" and config["dataset"] == "mnist" and config["seed"] == 0
    assert config["recipe"]["epochs"] == 2
    # the folder alone rebuilds the model
    model = models.from_config(config["model"])
    model.load_state_dict(st.load(out / "model.safetensors"))


def test_same_seed_same_weights_and_another_seed_differs(data_dir, tmp_path):
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        code, _ = train_quietly("mlp", "--data-dir", data_dir, "--out", tmp_path / name, "--epochs", 1,
                                "--seed", seed, "--augment", "--limit", 200)
        assert code == 0
        runs[name] = load_weights(tmp_path / name / "model.safetensors")
    assert_same_weights(runs["a"], runs["b"])
    assert not np.array_equal(runs["a"]["fc1.weight"], runs["c"]["fc1.weight"])


def test_the_thread_count_changes_nothing_but_the_speed(data_dir, tmp_path):
    # the ops' tiles are cut by shape, never by thread count: the same weights, bit for bit;
    # the command's thread count holds while it runs and is put back after
    before = st.get_num_threads()
    runs = {}
    for threads in (1, 2, 3):
        code, _ = train_quietly("lenet5-modern", "--data-dir", data_dir, "--out", tmp_path / str(threads),
                                "--epochs", 1, "--limit", 600, "--batch-size", 256, "--threads", threads)
        assert code == 0
        runs[threads] = load_weights(tmp_path / str(threads) / "model.safetensors")
        assert st.get_num_threads() == before
    assert_same_weights(runs[1], runs[2])
    assert_same_weights(runs[1], runs[3])


def test_default_folder_and_a_finished_run_is_never_overwritten(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ("mlp", "--data-dir", data_dir, "--epochs", 1, "--limit", 128)
    assert train_quietly(*args)[0] == 0
    first = load_weights("runs/mlp-mnist/model.safetensors")
    code, stdout = train_quietly(*args, "--seed", 1)
    assert code == 0
    assert stdout.startswith("runs/mlp-mnist holds a finished run; this one goes to runs/mlp-mnist-2\n")
    assert_same_weights(load_weights("runs/mlp-mnist/model.safetensors"), first)       # untouched
    assert (tmp_path / "runs/mlp-mnist-2/model.safetensors").exists()


def test_finished_and_unfinished_folders_are_protected(trained, data_dir, tmp_path, capsys):
    out, _ = trained
    assert_one_line_error(*cli(capsys, "train", "mlp", "--data-dir", data_dir, "--out", out),
                          "holds a finished run, which is never overwritten; choose another --out")
    assert_one_line_error(*cli(capsys, "train", "mlp", "--data-dir", data_dir, "--out", out, "--resume"),
                          "the run in .* is finished, there is nothing to continue")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(out, unfinished)
    metrics = json.loads((unfinished / "metrics.json").read_text())
    (unfinished / "metrics.json").write_text(json.dumps({**metrics, "finished": False}))
    (unfinished / "model.safetensors").unlink()
    assert_one_line_error(*cli(capsys, "train", "mlp", "--data-dir", data_dir, "--out", unfinished),
                          "holds an unfinished run: continue it with --resume")
    lr = RECIPES["mlp"]["lr"]
    assert_one_line_error(*cli(capsys, "train", "mlp", "--out", unfinished, "--resume", "--lr", 2 * lr,
                               "--seed", 3),
                          rf"its own settings; these options differ: --lr {2 * lr} \(the run has {lr}\), "
                          r"--seed 3 \(the run has 0\)")
    assert_one_line_error(*cli(capsys, "train", "lenet5-modern", "--out", unfinished, "--resume"),
                          "holds a run of model 'mlp', not 'lenet5-modern'")
    assert_one_line_error(*cli(capsys, "train", "mlp", "--out", tmp_path / "nothing", "--resume"),
                          r"--resume: no interrupted run in .*nothing \(no checkpoint.safetensors\)")
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(*cli(capsys, "train", "mlp", "--out", tmp_path / "afile"), "is a file, not a run folder")


def test_diverging_training_stops_with_one_line(data_dir, tmp_path, capsys):
    code, out, err = cli(capsys, "train", "mlp", "--data-dir", data_dir, "--out", tmp_path / "run", "--lr", 1e9,
                         "--quiet")
    assert_one_line_error(code, out, err, r"training diverged at epoch 1, step \d+ of 8 \(learning rate 1e\+09\): "
                                          r".*lower the learning rate", expected_code=1)


# -- evaluate, predict, summary ------------------------------------------------------------------------


def test_evaluate_a_run_folder_or_a_weights_file(trained, data_dir, capsys):
    out, _ = trained
    metrics = json.loads((out / "metrics.json").read_text())
    for target in (out, out / "model.safetensors", out / "checkpoint.safetensors"):
        code, stdout, err = cli(capsys, "evaluate", target, "--data-dir", data_dir)
        assert code == 0, err
        lines = stdout.strip().splitlines()
        assert lines[0] == (f"mlp on the mnist test set (128 images): accuracy "
                            f"{100 * metrics['final_test_acc']:.2f}%, loss {metrics['final_test_loss']:.4f}")
        assert len(lines) == 11
        for digit, line in enumerate(lines[1:]):
            assert re.fullmatch(rf"\s*{digit}\s+\d+\.\d\d%\s+\(\d+ images\)", line)
        counts = sum(int(re.search(r"\((\d+) images\)", line).group(1)) for line in lines[1:])
        assert counts == 128


def test_predict_prints_the_class_and_top_probabilities(trained, tmp_path, capsys):
    out, _ = trained
    images, labels = toy_digits(3, 9)
    files = []
    for i, (image, kind) in enumerate(zip(images, ("light-on-dark.png", "dark-on-light.jpg", "grey.bmp"))):
        picture = Image.fromarray(image if i == 0 else 255 - image).resize((200, 200), Image.NEAREST)
        picture.save(tmp_path / kind)
        files.append(tmp_path / kind)
    code, stdout, err = cli(capsys, "predict", out, *files, "--top", 2)
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 3
    for path, line in zip(files, lines):
        match = re.fullmatch(rf"{re.escape(str(path))}: (\d)   \((\d) (\d+\.\d)%, (\d) (\d+\.\d)%\)", line)
        assert match, line
        assert match.group(1) == match.group(2) and float(match.group(3)) >= float(match.group(5))
    code, stdout, _ = cli(capsys, "predict", out, files[0], "--show")
    assert code == 0 and len(stdout.strip("\n").splitlines()) == 1 + 14       # the 28×28 input as text


def test_evaluate_and_predict_run_compiled_unless_eager(trained, data_dir, tmp_path, capsys, monkeypatch):
    """Both print the same with --eager (op by op); without it they run st.compile's plans."""
    runs = record_plan_batches(monkeypatch)
    out, _ = trained
    code, compiled, err = cli(capsys, "evaluate", out, "--data-dir", data_dir)
    assert code == 0, err
    assert runs == [128]                                   # the 128 test images: one batch
    code, eager, err = cli(capsys, "evaluate", out, "--data-dir", data_dir, "--eager")
    assert code == 0, err
    assert eager == compiled and runs == [128]
    images, _ = toy_digits(2, 4)
    files = []
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        files.append(tmp_path / f"{i}.png")
    code, compiled, err = cli(capsys, "predict", out, *files, "--top", 10)
    assert code == 0, err
    assert runs == [128, 1, 1]                             # one image at a time, one plan
    code, eager, err = cli(capsys, "predict", out, *files, "--top", 10, "--eager")
    assert code == 0, err
    assert eager == compiled and runs == [128, 1, 1]


def test_summary(capsys):
    code, stdout, _ = cli(capsys, "summary", "lenet5-modern")
    assert code == 0
    assert "Total params: 61,706" in stdout and "(N, 6, 28, 28)" in stdout and "LeNet5Modern(" in stdout
    code, stdout, _ = cli(capsys, "summary", "LeNet5_Modern")          # case and _ do not matter
    assert code == 0 and "Total params: 61,706" in stdout


@pytest.mark.parametrize("command", [None, "train", "evaluate", "predict", "summary"])
def test_help_with_examples(capsys, command):
    argv = ([command] if command else []) + ["--help"]
    code, stdout, _ = cli(capsys, *argv)
    assert code == 0
    assert "examples:" in stdout and "striate " in stdout


def test_no_command_prints_help_and_version(capsys):
    code, stdout, _ = cli(capsys)
    assert code == 2 and "COMMAND" in stdout
    code, stdout, _ = cli(capsys, "--version")
    assert code == 0 and stdout.strip() == f"striate {st.__version__}"


# -- what a user can get wrong: one line on stderr, a non-zero exit code, no traceback ----------------------


@pytest.fixture(scope="module")
def bad_files(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "garbage.safetensors").write_bytes(np.random.default_rng(0).bytes(1000))
    with open(folder / "model.pt", "wb") as f:
        pickle.dump({"c1.weight": np.zeros(3)}, f)
    (folder / "notes.png").write_text("not a picture\n")
    Image.new("L", (40, 40), 255).save(folder / "blank.png")
    Image.fromarray(toy_digits(1, 3)[0][0]).save(folder / "digit.png")
    whole = (folder / "digit.png").read_bytes()
    (folder / "cut.png").write_bytes(whole[:len(whole) // 2])
    (folder / "empty-data").mkdir()
    swapped = folder / "swapped-run"                     # config says mlp, the weights are LeNet-5's
    swapped.mkdir()
    shutil.copy(trained[0] / "config.json", swapped / "config.json")
    st.save(models.get("lenet5-modern", rng=0), swapped / "model.safetensors")
    no_config = folder / "no-config"
    no_config.mkdir()
    shutil.copy(trained[0] / "model.safetensors", no_config / "model.safetensors")
    return folder


ERRORS = [
    (["frobnicate"], r"invalid choice: 'frobnicate'"),
    (["train"], r"the following arguments are required: model \(see 'striate train --help'\)"),
    (["train", "resnet"], r"unknown model 'resnet'; choose one of: .*lenet5-modern"),
    (["train", "mlp", "--epochs", "two"], r"argument --epochs: invalid int value: 'two'"),
    (["train", "mlp", "--epochs", "0", "--data-dir", "{data}"], r"--epochs must be at least 1, got 0"),
    (["train", "mlp", "--lr", "-1", "--data-dir", "{data}"], r"--lr must be a positive number, got -1"),
    (["train", "mlp", "--lr", "nan"], r"--lr must be a positive number, got nan"),
    (["train", "mlp", "--batch-size", "0", "--momentum", "1.5"], r"--batch-size must be at least 1, got 0; "
                                                                 r"--momentum must be in \[0, 1\)"),
    (["train", "mlp", "--limit", "-5"], r"--limit must be a positive number of images"),
    (["train", "mlp", "--seed", "-1"], r"--seed must be a non-negative integer"),
    (["train", "mlp", "--threads", "0"], r"--threads must be at least 1, got 0"),
    (["experiment", "shift", "--threads", "-2"], r"--threads must be at least 1, got -2"),
    (["train", "mlp", "--dataset", "cifar10"], r"argument --dataset: invalid choice: 'cifar10'"),
    (["train", "mlp", "--augment", "--no-augment"], r"not allowed with argument"),
    (["train", "mlp", "--data-dir", "{bad}/empty-data"], r"no MNIST training files there \(expected "
                                                         r"train-images-idx3-ubyte\[.gz\]"),
    (["train", "mlp", "--data-dir", "{bad}/nowhere"], r"--data-dir .*nowhere: no such folder"),
    (["evaluate", "{bad}/nowhere"], r"nowhere: no such run folder or weights file"),
    (["evaluate", "{bad}/garbage.safetensors"], r"garbage.safetensors: .*expected a safetensors checkpoint"),
    (["evaluate", "{bad}/model.pt"], r"model.pt: this is a Python pickle .*never unpickles"),
    (["evaluate", "{bad}/swapped-run"], r"model.safetensors: these weights do not fit model 'mlp'"),
    (["evaluate", "{bad}/no-config"], r"no-config: no config.json in this folder"),
    (["evaluate", "{run}", "--data-dir", "{bad}/empty-data"], r"no MNIST test files there"),
    (["predict", "{run}", "{bad}/missing.png"], r"missing.png: no such image file"),
    (["predict", "{run}", "{bad}/notes.png"], r"notes.png: not a readable image"),
    (["predict", "{run}", "{bad}/cut.png"], r"cut.png: the image data is damaged or truncated"),
    (["predict", "{run}", "{bad}/blank.png"], r"blank.png: no digit found"),
    (["predict", "{run}", "{bad}"], r"is a folder, not an image file"),
    (["predict", "{run}", "{bad}/digit.png", "--top", "0"], r"--top must be at least 1, got 0"),
    (["predict", "{bad}/model.pt", "{bad}/digit.png"], r"model.pt: this is a Python pickle"),
    (["predict", "{run}"], r"the following arguments are required: IMAGE"),
    (["summary", "lenet6"], r"unknown model 'lenet6'"),
    (["summary", "mlp", "--batch", "8"], r"unrecognized arguments: --batch 8"),
]


@pytest.mark.parametrize("argv, pattern", ERRORS, ids=[" ".join(a)[:50] for a, _ in ERRORS])
def test_user_errors_are_one_line(argv, pattern, trained, data_dir, bad_files, capsys):
    argv = [a.format(run=trained[0], data=data_dir, bad=bad_files) for a in argv]
    assert_one_line_error(*cli(capsys, *argv), pattern)


def test_ctrl_c_before_training_and_the_debug_switch(data_dir, tmp_path, monkeypatch, capsys):
    import striate.cli.runs as cli_module
    from striate.train import RunError

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "_load_dataset", interrupted)
    code, out, err = cli(capsys, "train", "mlp", "--data-dir", data_dir, "--out", tmp_path / "run")
    assert code == 130 and err.strip() == "striate: interrupted" and "Traceback" not in err
    monkeypatch.setenv("STRIATE_DEBUG", "1")
    with pytest.raises(RunError, match="no such run folder"):                # the error itself, not one line
        main(["evaluate", str(tmp_path / "nowhere")])


def test_a_missing_data_set_is_one_line_and_nothing_is_fetched(trained, tmp_path, monkeypatch, capsys):
    import striate.data.datasets as datasets

    def offline(url, timeout):
        raise OSError("no network in the tests")

    monkeypatch.setattr(datasets, "_open_url", offline)
    monkeypatch.setattr(datasets, "_CHECKOUT_PARENT", tmp_path)       # hide the shared copy
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("STRIATE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "evaluate", trained[0])
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1]   # notes on the download come first
    assert re.match(r"striate: error: MNIST test files .* not found\. Looked in: .* no network in the tests", errors[0])


# -- real processes --------------------------------------------------------------------------------------


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"            # small products are fastest on one thread, and the runs are comparable
    env.pop("STRIATE_DEBUG", None)
    return env


def striate_process(*argv, cwd):
    return subprocess.Popen([sys.executable, "-m", "striate", *map(str, argv)], cwd=cwd, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_a_real_process_reports_an_error_in_one_line(tmp_path):
    code, out, err = finish(striate_process("evaluate", tmp_path / "no-such-run", cwd=tmp_path))
    assert_one_line_error(code, out, err, r"no-such-run: no such run folder or weights file")


# A run of lenet5-modern that checkpoints after every step: 256 images, batches of 8, 2 epochs.
RUN = ("lenet5-modern", "--epochs", 2, "--batch-size", 8, "--limit", 256, "--augment", "--quiet")
STEPS = 32


def position(checkpoint):
    _, meta = st.load(checkpoint, with_metadata=True)
    p = meta["striate_checkpoint"]["position"]
    return p["epoch"], p["batch"]


def wait_for_position(proc, checkpoint, reached, timeout=90):
    """Poll the checkpoint until ``reached(epoch, batch)``; the process must still be running."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.communicate()}")
        if checkpoint.exists():
            try:
                if reached(*position(checkpoint)):
                    return
            except (OSError, ValueError):
                pass                         # replaced while we read it: look again
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint appeared in time")
        time.sleep(0.005)


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    code, stdout, err = finish(striate_process("train", *RUN, "--data-dir", data_dir, "--out", out, cwd=out.parent))
    assert code == 0, err
    return load_weights(out / "model.safetensors")


@pytest.mark.slow
def test_killed_mid_epoch_then_resumed_gives_identical_weights(uninterrupted, data_dir, tmp_path):
    out = tmp_path / "run"
    proc = striate_process("train", *RUN, "--data-dir", data_dir, "--out", out, "--checkpoint-every", 0,
                           cwd=tmp_path)
    wait_for_position(proc, out / "checkpoint.safetensors", lambda epoch, batch: epoch == 2 and batch >= 2)
    proc.send_signal(signal.SIGKILL)
    code, _, err = finish(proc)
    assert code == -signal.SIGKILL
    epoch, batch = position(out / "checkpoint.safetensors")
    assert epoch == 2 and 2 <= batch < STEPS                    # killed in the middle of the second epoch
    assert not json.loads((out / "metrics.json").read_text())["finished"]
    code, stdout, err = finish(striate_process("train", "lenet5-modern", "--out", out, "--data-dir", data_dir,
                                               "--resume", "--quiet", cwd=tmp_path))
    assert code == 0, err
    assert f"resumed from {out / 'checkpoint.safetensors'}: epoch 2, batch {batch}/{STEPS}" in stdout
    assert_same_weights(load_weights(out / "model.safetensors"), uninterrupted)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"] and [e["epoch"] for e in metrics["epochs"]] == [1, 2]


@pytest.mark.slow
def test_ctrl_c_saves_exits_130_and_resumes_to_identical_weights(uninterrupted, data_dir, tmp_path):
    out = tmp_path / "run"
    proc = striate_process("train", *RUN, "--data-dir", data_dir, "--out", out, "--checkpoint-every", 0,
                           cwd=tmp_path)
    wait_for_position(proc, out / "checkpoint.safetensors", lambda epoch, batch: (epoch, batch) >= (1, 2))
    proc.send_signal(signal.SIGINT)
    code, stdout, err = finish(proc)
    assert code == 130, err
    assert "Traceback" not in err
    epoch, batch = position(out / "checkpoint.safetensors")
    assert 1 <= batch < STEPS                                     # saved in the middle of an epoch
    assert err.strip().splitlines()[-1] == (
        f"striate: interrupted; checkpoint saved after batch {batch} of epoch {epoch} in "
        f"{out / 'checkpoint.safetensors'}. Continue with: striate train lenet5-modern --out {out} "
        f"--data-dir {data_dir} --resume")
    code, stdout, err = finish(striate_process("train", "lenet5-modern", "--out", out, "--data-dir", data_dir,
                                               "--resume", "--quiet", cwd=tmp_path))
    assert code == 0, err
    assert_same_weights(load_weights(out / "model.safetensors"), uninterrupted)
