"""The ``striate`` command line: one module per command family.

    main.py          the parser, the commands' registration and the error handling (``main``)
    common.py        what the families share (CLIError, the parser class, small helpers);
                     it imports no command module
    runs.py          train, evaluate, predict
    see.py           summary, filters, explain, show
    experiment.py    experiment
    neocognitron.py  neocognitron digits | mnist | planes

``striate.cli.main(argv)`` runs a command line and returns its exit code.
"""
from .common import CLIError
from .main import build_parser, main

__all__ = ["main", "build_parser", "CLIError"]
