"""`striate export RUN --out model.onnx [--opset N]`."""
import json

import numpy as np
import pytest

import striate as st
from striate import models
from striate.cli.main import main

from .helpers import forward, session


@pytest.fixture
def run_folder(tmp_path):
    model = models.get("lenet5-modern", rng=3)
    run = tmp_path / "run"
    run.mkdir()
    config = {"model": model.config}
    (run / "config.json").write_text(json.dumps(config))
    st.save(model, run / "model.safetensors", metadata={"config": config})
    return run, model


def test_export_a_run(run_folder, tmp_path, capsys, rng):
    run, model = run_folder
    out = tmp_path / "lenet.onnx"
    assert main(["export", str(run), "--out", str(out), "--opset", "17"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: LeNet5Modern, 61,706 parameters, input (N, 1, 32, 32)")
    x = rng.standard_normal((5, 1, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(session(out).run(None, {"input": x})[0], forward(model, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--opset", "9"], "--opset must be from 13 to 18, got 9"),
    (["--out", "."], "is a folder"),
    (["--out", "/no/such/folder/m.onnx"], "does not exist"),
])
def test_user_errors_are_one_line(run_folder, tmp_path, capsys, args, message):
    run, _ = run_folder
    argv = ["export", str(run), "--out", str(tmp_path / "m.onnx")] + args
    if "--out" in args:
        argv = ["export", str(run)] + args
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_run(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "no such run folder" in capsys.readouterr().err
