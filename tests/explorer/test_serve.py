"""``striate serve``: which run it opens, the address it prints, the warning when exposed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from striate.cli import main
from striate.cli.serve import exposure_warning
from striate.explorer import newest_finished_run

ROOT = Path(__file__).resolve().parents[2]


class Serving:
    """``python -m striate serve ARGS`` in a subprocess, until stop(); .url from what it printed."""

    def __init__(self, args, cwd):
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "striate", "serve", *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        deadline = time.monotonic() + 60
        self.url = None
        while self.url is None:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"striate serve ended: {self.proc.stderr.read()}")
            self.lines.append(line.strip())
            if line.startswith("explorer at "):
                self.url = line.split()[2].rstrip("/")
            if time.monotonic() > deadline:
                raise RuntimeError("striate serve printed no address")

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def serving():
    started = []

    def start(args, cwd):
        s = Serving(args, cwd)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def test_serve_a_run_on_a_free_port(serving, trained_run, tmp_path):
    s = serving([str(trained_run), "--port", "0"], tmp_path)
    assert s.url.startswith("http://127.0.0.1:") and not s.url.endswith(":0")
    assert s.get("/api/model")["name"] == "lenet5-modern"
    assert s.lines[0] == f"run: {trained_run}"


def test_without_a_run_it_opens_the_newest_finished_one_under_runs(serving, trained_run, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "unfinished").mkdir()
    (runs / "unfinished" / "checkpoint.safetensors").write_bytes(b"")
    shutil.copytree(trained_run, runs / "old")
    shutil.copytree(trained_run, runs / "new")
    os.utime(runs / "old" / "model.safetensors", (1, 1))
    assert newest_finished_run(runs) == runs / "new"
    s = serving(["--port", "0"], tmp_path)
    assert s.lines[0] == f"run: {Path('runs') / 'new'}"
    assert s.get("/api/run")["available"] is True


def test_without_any_run_the_page_says_how_to_train_one(serving, tmp_path):
    s = serving(["--port", "0"], tmp_path)
    assert "striate train lenet5-modern" in s.lines[0]
    assert s.get("/api/run") == {"available": False, "train": "striate train lenet5-modern"}
    assert s.get("/api/playground?size=7&kernel=3&stride=2&padding=1")["output"] == [4, 4]


@pytest.mark.parametrize("host, address, exposed", [
    ("127.0.0.1", "127.0.0.1", False), ("localhost", "127.0.0.1", False), ("::1", "::1", False),
    ("0.0.0.0", "0.0.0.0", True), ("::", "::", True), ("my-laptop", "192.168.1.20", True)])
def test_a_host_other_than_loopback_is_warned_about(host, address, exposed):
    warning = exposure_warning(host, address)
    assert (warning is not None) == exposed
    if exposed:
        assert "exposed" in warning and host in warning


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be in 0..65535" in capsys.readouterr().err
    assert main(["serve", str(tmp_path)]) == 2                      # a folder that is no run
    assert "no config.json" in capsys.readouterr().err


def test_serve_is_listed_in_the_help(capsys):
    main(["--help"])
    assert "serve" in capsys.readouterr().out
