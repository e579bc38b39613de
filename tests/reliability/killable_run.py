"""A tiny training run that the kill-and-resume trials start in a subprocess and kill.

    python -m tests.reliability.killable_run OUT_DIR [STAGE:N]

trains a small network (conv → batch norm → ReLU → max pool → dropout → linear, Adam,
a step schedule) for two epochs of ten steps on a toy data set, with a checkpoint
after every step. Without ``STAGE:N`` the run goes on until it ends or the parent
kills it. With it, the process kills itself with SIGKILL at the N-th call of one
step of an atomic write, so that every moment of a checkpoint write is hit:

    write     half-way through writing the temporary file
    fsync     after the data is written, before it is forced to disk
    replace   after fsync, before the temporary file is renamed over the target
    renamed   right after the rename, before the folder itself is synced

``build`` and ``train`` are also used in-process by the tests, so the uninterrupted
reference and the resumed runs are the same computation as the killed one.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np

import striate as st
import striate.functional as F
from striate import nn, optim
from striate.data import DataLoader, RandomTranslate, mnist_preprocess
from striate.optim.lr_scheduler import StepLR
from striate.train import fit

EPOCHS = 2
STAGES = ("write", "fsync", "replace", "renamed")


def toy_data(n: int, seed: int):
    """(n, 12, 12) uint8 images whose class (0..9) is where a bright 3×3 patch sits, plus noise."""
    g = np.random.default_rng(seed)
    labels = g.integers(0, 10, n)
    images = g.integers(0, 60, (n, 12, 12)).astype(np.uint8)
    rows, cols = 1 + 3 * (labels // 4), 3 * (labels % 4)
    for dy in range(3):
        for dx in range(3):
            images[np.arange(n), rows + dy, cols + dx] = 250
    return images, labels.astype(np.uint8)


def build():
    """A fresh model, optimizer, scheduler and loaders; the same every time."""
    st.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Dropout(0.3), nn.Linear(4 * 5 * 5, 10))      # (N, 1, 12, 12) → (N, 10)
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    train = DataLoader(toy_data(160, 0), batch_size=16, shuffle=True, seed=3,
                       transform=mnist_preprocess(pad_to=None, augment=RandomTranslate(1)))
    val = DataLoader(toy_data(48, 1), batch_size=24, transform=mnist_preprocess(pad_to=None))
    return model, opt, sched, train, val


def train(out, resume: bool = False):
    """Train (or resume) in ``out``, a checkpoint after every step; returns the model."""
    model, opt, sched, train_loader, val_loader = build()
    fit(model, F.cross_entropy, opt, train_loader, val_loader, epochs=EPOCHS, scheduler=sched, out_dir=out,
        resume=resume, progress=False, log=lambda line: None, checkpoint_seconds=0, plots=False)
    return model


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(stage: str, n: int) -> None:
    """Replace one os function so that its n-th call kills this process at ``stage``."""
    calls = [0]

    def due() -> bool:
        calls[0] += 1
        return calls[0] == n

    if stage == "write":
        real_fdopen = os.fdopen

        class HalfWritten:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self.f.__exit__(*exc)

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                _die()

            def __getattr__(self, name):
                return getattr(self.f, name)

        def fdopen(fd, *args, **kwargs):
            f = real_fdopen(fd, *args, **kwargs)
            return HalfWritten(f) if due() else f
        os.fdopen = fdopen
    elif stage == "fsync":
        real_fsync = os.fsync

        def fsync(fd):
            if due():
                _die()
            return real_fsync(fd)
        os.fsync = fsync
    elif stage in ("replace", "renamed"):
        real_replace = os.replace

        def replace(src, dst):
            if stage == "replace" and due():
                _die()
            real_replace(src, dst)
            if stage == "renamed" and due():
                _die()
        os.replace = replace
    else:
        raise SystemExit(f"unknown stage {stage!r}; expected one of {STAGES}")


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        raise SystemExit("usage: python -m tests.reliability.killable_run OUT_DIR [STAGE:N]")
    if len(argv) == 2:
        stage, n = argv[1].split(":")
        _arm(stage, int(n))
    print("started", flush=True)
    train(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
