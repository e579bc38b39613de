"""No code execution from files: a pickle crafted to run a command, given to ``st.load``, ``striate
evaluate`` or ``striate predict`` in any of the places a checkpoint can come from, is refused without
being unpickled, and the command never runs (its marker file stays absent).

Three levels of proof: the marker file; every unpickling entry point (pickle, numpy, torch) booby-trapped
while the in-process commands run, so that even an attempt would fail the test; and a static check that
no module of the package imports a deserialiser that can run code, or calls eval/exec/os.system.
"""
import ast
import os
import pickle
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import striate as st
from striate.cli import main
from striate.data import write_idx
from striate.data.images import ImageError, load_image
from striate.serialization import CheckpointError

REPO = Path(__file__).resolve().parents[2]


class RunsACommand:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def evil_files(folder: Path, marker: Path) -> dict[str, Path]:
    """The payload in every form a checkpoint file might take."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"model": RunsACommand(marker), "c1.weight": np.zeros(3)}
    files = {}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        files[f"pickle{protocol}"] = folder / f"evil-p{protocol}.pt"
        files[f"pickle{protocol}"].write_bytes(pickle.dumps(payload, protocol=protocol))
    files["torch-zip"] = folder / "evil-torch.pt"                 # torch.save's layout: a zip holding data.pkl
    with zipfile.ZipFile(files["torch-zip"], "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
        z.writestr("archive/version", "3\n")
    files["npy"] = folder / "evil.npy"                            # np.save of an object array pickles it
    np.save(files["npy"], np.array([RunsACommand(marker)], dtype=object), allow_pickle=True)
    files["pickle-named-safetensors"] = folder / "model.safetensors"
    files["pickle-named-safetensors"].write_bytes(pickle.dumps(payload, protocol=4))
    return files


@pytest.fixture
def trap(monkeypatch):
    """Make every unpickling entry point fail the test if it is ever called."""
    import _pickle

    import torch

    def forbidden(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    for module, names in ((pickle, ("load", "loads", "Unpickler")), (_pickle, ("load", "loads", "Unpickler")),
                          (np, ("load",)), (torch, ("load",))):
        for name in names:
            monkeypatch.setattr(module, name, forbidden)


def test_pickles_in_every_form_are_refused_by_st_load(tmp_path, trap):
    marker = tmp_path / "pwned"
    for path in evil_files(tmp_path / "evil", marker).values():
        with pytest.raises(CheckpointError, match=re.escape(str(path)) + r": .*expected a safetensors checkpoint"):
            st.load(path)
    assert not marker.exists()


# ---------------------------------------------------------------------------
# the command line, in this process and in real processes


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny data set, a real run folder (MLP, one epoch) and a digit picture."""
    data = tmp_path_factory.mktemp("toy")
    g = np.random.default_rng(0)
    for split, n in (("train", 64), ("t10k", 100)):
        write_idx(data / f"{split}-images-idx3-ubyte", g.integers(0, 255, (n, 28, 28)).astype(np.uint8))
        write_idx(data / f"{split}-labels-idx1-ubyte", g.integers(0, 10, n).astype(np.uint8))
    run = tmp_path_factory.mktemp("runs") / "mlp"
    assert main(["train", "mlp", "--data-dir", str(data), "--out", str(run), "--epochs", "1", "--quiet"]) == 0
    digit = tmp_path_factory.mktemp("img") / "seven.png"
    picture = np.zeros((40, 30), np.uint8)
    picture[5:35, 12:18] = 255
    Image.fromarray(picture).save(digit)
    return data, run, digit


def poisoned_runs(run: Path, folder: Path, marker: Path):
    """Run folders whose weights or checkpoint are the payload, and the payload files themselves."""
    targets = []
    for name in ("model.safetensors", "checkpoint.safetensors"):
        poisoned = folder / f"run-with-evil-{name.split('.')[0]}"
        shutil.copytree(run, poisoned)
        if name == "checkpoint.safetensors":
            (poisoned / "model.safetensors").unlink()            # so that the checkpoint is what gets read
        (poisoned / name).write_bytes(pickle.dumps({"model": RunsACommand(marker)}, protocol=4))
        targets.append(poisoned)
    files = evil_files(folder / "files", marker)
    shutil.copy(run / "config.json", folder / "files" / "config.json")   # so a bare file has a model description
    return targets + list(files.values())


def test_evaluate_and_predict_refuse_pickles_without_unpickling(setup, tmp_path, trap, capsys):
    data, run, digit = setup
    marker = tmp_path / "pwned"
    capsys.readouterr()
    for target in poisoned_runs(run, tmp_path, marker):
        for argv in (["evaluate", target, "--data-dir", data], ["predict", target, digit]):
            code = main([str(a) for a in argv])
            err = capsys.readouterr().err
            assert code == 2, err
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in err, err
            assert re.match(r"striate: error: .*: (this is a Python pickle|this is a zip archive|this is a NumPy"
                            r"|.*expected a safetensors checkpoint)", lines[0]), lines[0]
    assert not marker.exists()


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("STRIATE_DEBUG", None)
    return env


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_real_striate_process_never_runs_the_payload(setup, tmp_path, command):
    data, run, digit = setup
    marker = tmp_path / "pwned"
    poisoned = tmp_path / "run"
    shutil.copytree(run, poisoned)
    (poisoned / "model.safetensors").write_bytes(pickle.dumps({"model": RunsACommand(marker)}, protocol=2))
    argv = [poisoned, "--data-dir", data] if command == "evaluate" else [poisoned, digit]
    proc = subprocess.run([sys.executable, "-m", "striate", command, *map(str, argv)], cwd=tmp_path,
                          env=child_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"striate: error: {poisoned / 'model.safetensors'}: this is a Python pickle "
                                   f"(e.g. written by torch.save, pickle.dump or np.save with objects); st.load never "
                                   f"unpickles, because unpickling can run arbitrary code; expected a safetensors "
                                   f"checkpoint written by st.save (8-byte header length, JSON header, array data)")
    assert not marker.exists()
    # the same payload, unpickled on purpose, does run: the marker test would have seen it
    pickle.loads((poisoned / "model.safetensors").read_bytes())
    assert marker.exists()


# ---------------------------------------------------------------------------
# pictures and the package itself


def test_postscript_given_as_an_image_is_refused_without_running_ghostscript(tmp_path, monkeypatch):
    """Pillow renders EPS by running Ghostscript on the file; load_image never lets it get that far."""
    from PIL import EpsImagePlugin
    ran = []
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: ran.append(a))
    path = tmp_path / "seven.eps"
    path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n(%pipe%touch pwned) (w) file\nshowpage\n")
    with pytest.raises(ImageError, match=r"seven\.eps: not a readable image"):
        load_image(path)
    assert ran == []


UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve", "yaml",
                  "subprocess"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
# The one process the package starts: `striate train --workers N` runs mpiexec with a fixed argument
# list built from the user's own command line (no shell, nothing read from a file).
ALLOWED = {"striate/dist/launch.py imports subprocess"}


def test_the_package_has_no_code_executing_deserialiser():
    found = []
    for path in sorted((REPO / "striate").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                found += [f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
                found.append(f"{where} imports from {node.module}")
            elif isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id in UNSAFE_CALLS:
                    found.append(f"{where} calls {f.id}")
                elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (
                        (f.value.id in ("np", "numpy", "torch") and f.attr == "load")
                        or (f.value.id == "os" and (f.attr in ("system", "popen") or f.attr.startswith("exec")))):
                    found.append(f"{where} calls {f.value.id}.{f.attr}")
                for kw in node.keywords:
                    if kw.arg == "allow_pickle":
                        found.append(f"{where} passes allow_pickle")
    assert [f for f in found if f.split(":")[0] + " " + f.split(" ", 1)[1] not in ALLOWED] == []
