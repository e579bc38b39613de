"""The notebooks and their solutions run from start to end, and are committed without outputs.

Each notebook runs in a fresh kernel of this Python, with striate imported from
this checkout and a temporary folder as the working directory (runs and figures
land there). MNIST is found as striate.data always finds it; ``STRIATE_DATA`` is
set to the checkout's ``../shared/data`` when that folder exists.

Marked ``notebooks``: ``pytest -m "not notebooks"`` leaves them out.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
SOLUTIONS = sorted((FOLDER / "solutions").glob("*.py"))

pytestmark = pytest.mark.notebooks


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
               OPENBLAS_NUM_THREADS="1", PYTHONHASHSEED="0")
    shared = REPO.parent / "shared" / "data"
    if shared.is_dir() and "STRIATE_DATA" not in os.environ:
        env["STRIATE_DATA"] = str(shared)
    return env


def _execute(nb, cwd: Path, timeout: int = 600):
    nbclient = pytest.importorskip("nbclient")
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute(env=_env())
    return nb


def test_there_is_a_notebook_per_part_of_the_chapter():
    assert [p.stem for p in NOTEBOOKS] == [
        "01-history", "02-convolution", "03-pooling", "04-weights", "05-activation-and-pooling-order",
        "06-regularisation", "07-normalisation", "08-lenet5-end-to-end", "09-beyond-the-chain"]
    assert [p.stem for p in SOLUTIONS] == [p.stem for p in NOTEBOOKS]     # every notebook has exercises


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}, cell {i} has outputs"


# a private attribute or module (``obj._x``, ``striate.experiments._nets``) or a private name imported
PRIVATE = re.compile(r"\._(?!_)\w+|\bimport\s+_\w+|\bimport\s+[^\n]*,\s*_\w+")


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS,
                         ids=[f"{p.parent.name}/{p.stem}" for p in NOTEBOOKS + SOLUTIONS])
def test_uses_only_public_names(path):
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    else:
        code = path.read_text()
    assert not PRIVATE.findall(code), f"{path.name} uses private names: {sorted(set(PRIVATE.findall(code)))}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_ends_with_exercises_and_their_check(path):
    cells = json.loads(path.read_text())["cells"]
    headings = [i for i, c in enumerate(cells)
                if c["cell_type"] == "markdown" and "## Exercises" in "".join(c["source"])]
    assert headings, f"{path.name} has no exercises"
    assert any("check" in "".join(c["source"]) for c in cells[headings[-1]:] if c["cell_type"] == "code"), \
        f"{path.name}: no check cell after its exercises"


def test_kernel_imports_this_checkout(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import striate, os\nprint(striate.__file__)\n"
                                                                    "print(os.getcwd())")])
    _execute(nb, tmp_path)
    out = nb.cells[0].outputs[0]["text"].split("\n")
    assert Path(out[0]).resolve().is_relative_to(REPO)
    assert Path(out[1]).resolve() == tmp_path.resolve()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, record_property):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    _execute(nb, tmp_path)                 # a cell that raises fails the test, naming the cell
    record_property("seconds", round(time.perf_counter() - start, 1))


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_runs(path, tmp_path):
    done = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=dict(_env(), MPLBACKEND="Agg"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
