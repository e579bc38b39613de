"""The ``striate`` command line (also ``python -m striate``): the parser and the error handling.

    striate train lenet5                      train with the model's own recipe
    striate evaluate runs/lenet5-mnist        test accuracy, per class
    striate predict runs/lenet5-mnist my7.png what digit is this?
    striate summary lenet5                    layers, output shapes, parameter counts

Every error a user can cause (a wrong argument, a missing data set, a checkpoint
from another model, an unreadable image) is one line on stderr and exit code 2;
training that diverges exits with 1, Ctrl-C with 130 (after saving a checkpoint).
``STRIATE_DEBUG=1`` shows the traceback instead.

Each command family is one module of this package (``runs``: train, evaluate,
predict; ``see``: summary, filters, explain, show; ``experiment``;
``neocognitron``) with an ``add_commands(subparsers)``; they share ``common``.
"""
from __future__ import annotations

import os
import sys

from . import experiment, export, neocognitron, runs, see, serve
from .common import RAW, CLIError, Parser

__all__ = ["main", "build_parser"]


def build_parser() -> Parser:
    """The ``striate`` parser with every command family's sub-commands."""
    from .. import __version__
    parser = Parser(
        prog="striate", description="Convolutional neural networks from first principles, in NumPy.",
        formatter_class=RAW,
        epilog="examples:\n  striate train lenet5\n  striate evaluate runs/lenet5-mnist\n"
               "  striate predict runs/lenet5-mnist digit.png\n  striate summary lenet5-modern\n\n"
               "'striate COMMAND --help' tells more about each command.")
    parser.add_argument("--version", action="version", version=f"striate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for family in (runs, see, neocognitron, experiment, export, serve):
        family.add_commands(sub)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    from ..data import DatasetNotFoundError, IDXError
    from ..data.images import ImageError
    from ..serialization import CheckpointError
    return (CLIError, DatasetNotFoundError, IDXError, ImageError, CheckpointError, ValueError, OSError)


def _error_text(exc: BaseException) -> str:
    """What to tell the user: without KeyError's quotes and OSError's "[Errno 28]" prefix."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


def _one_line(message: object) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _threads(n):
    """striate's threads for the duration of a command: ``n``, or by default all the cores this
    process may use, one per process when started by mpiexec with several."""
    from .. import threads
    from ..dist import launched_by_mpi
    if n is None and launched_by_mpi() and not os.environ.get("STRIATE_NUM_THREADS", "").strip():
        n = 1                                 # N processes on N cores: more threads would compete
    if n is not None and n < 1:
        raise CLIError(f"--threads must be at least 1, got {n}")
    return threads.using(n)


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    One of several MPI processes that fails ends the whole job (MPI_Abort) after its
    message, so that the others never wait for it in a collective.
    """
    code = _main(argv)
    if code and "mpi4py.MPI" in sys.modules:
        from ..dist import get_communicator, launched_by_mpi
        if launched_by_mpi():
            get_communicator().abort(code)
    return code


def _main(argv) -> int:
    from ..train import TrainingDiverged

    debug = bool(os.environ.get("STRIATE_DEBUG"))
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        if not getattr(args, "run", None):
            parser.print_help()
            return 2
        with _threads(getattr(args, "threads", None)):
            return args.run(args)
    except SystemExit as exc:                 # --help and --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt as exc:
        if debug:
            raise
        print(f"\nstriate: {_one_line(exc) or 'interrupted'}", file=sys.stderr)
        return 130
    except BrokenPipeError:                   # `striate summary lenet5 | head`: stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except TrainingDiverged as exc:
        if debug:
            raise
        print(f"striate: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except MemoryError:
        if debug:
            raise
        print("striate: error: out of memory; try a smaller --batch-size", file=sys.stderr)
        return 1
    except _user_errors() as exc:
        if debug:
            raise
        print(f"striate: error: {_one_line(_error_text(exc))}", file=sys.stderr)
        return 2

