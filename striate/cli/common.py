"""What the command families share: the user-error type, the parser class and small helpers.

This module imports no command module: ``runs``, ``see``, ``experiment`` and
``neocognitron`` import from it, and ``main`` imports them all.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..checks import normalize_name

__all__ = ["CLIError", "Parser", "RAW", "model_name", "plural", "out_dir"]

#: help texts keep their line breaks (examples, tables)
RAW = argparse.RawDescriptionHelpFormatter


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the caller prints it), not usage text and exit."""

    def error(self, message):
        raise CLIError(f"{message} (see '{self.prog} --help')")


def model_name(text: str) -> str:
    """A registered model's name from what the user typed ("LeNet5_Modern" -> "lenet5-modern")."""
    from .. import models
    name = normalize_name(text, "model")
    if name not in models.names():
        raise CLIError(f"unknown model {text!r}; choose one of: {', '.join(models.names())}")
    return name


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def out_dir(value: str | None, default: Path) -> Path:
    """The folder named by ``--out`` (or ``default``), created; a file there is a CLIError."""
    out = Path(value) if value else default
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def add_threads_argument(parser) -> None:
    """``--threads N``: striate's threads for the command (default: every core this process may use)."""
    from ..threads import available_cores
    parser.add_argument("--threads", type=int, metavar="N",
                        help=f"threads for striate's ops (default: the cores this process may use, "
                             f"{available_cores()} here; 1 per process under mpiexec or with --workers); "
                             f"the results do not depend on it")
