"""``striate experiment``: the chapter's claims, each tested by one command.

    striate experiment --list                    the experiments and what each tests
    striate experiment shift                     MLP against CNN on shifted digits
    striate experiment pooling --out results/    table, results.json and pooling.png in results/
    striate experiment dropout --quick           a small run (seconds), as the tests do
    striate experiment all --out results         every experiment, one after another

``add_commands(subparsers)`` registers the command on the ``striate`` parser; errors a
user can cause raise :class:`striate.cli.common.CLIError`, printed as one line.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..checks import normalize_name
from .common import RAW, CLIError, add_threads_argument

__all__ = ["add_commands", "cmd_experiment"]


def _listing() -> str:
    from .. import experiments
    width = max(map(len, experiments.EXPERIMENTS))
    return "\n".join(f"  {name:<{width}}  {experiments.get(name).SUMMARY}" for name in experiments.EXPERIMENTS)


def cmd_experiment(args) -> int:
    from .. import experiments

    if args.list or args.name is None:
        print("experiments (striate experiment NAME):\n" + _listing())
        if args.name is None and not args.list:
            print("\nname one of them, or 'all'")
            return 2
        return 0
    name = normalize_name(args.name, "experiment")
    if name != "all" and name not in experiments.EXPERIMENTS:
        raise CLIError(f"unknown experiment {args.name!r}; choose one of: {', '.join(experiments.EXPERIMENTS)}, "
                     f"or all (striate experiment --list says what each tests)")
    if args.seed < 0:
        raise CLIError(f"--seed must be a non-negative integer, got {args.seed}")
    base = Path(args.out) if args.out else Path("runs") / "experiments"
    if base.exists() and not base.is_dir():
        raise CLIError(f"--out {base}: exists and is not a folder")
    chosen = list(experiments.EXPERIMENTS) if name == "all" else [name]
    progress = not args.quiet and sys.stderr.isatty()
    for i, which in enumerate(chosen):
        # one experiment: its files go into --out itself; 'all': one subfolder each
        out = base / which if (name == "all" or not args.out) else base
        if i:
            print()
        experiments.run(which, out, quick=args.quick, seed=args.seed, progress=progress,
                        threads=args.threads)
    return 0


def add_commands(subparsers) -> None:
    """Register ``experiment`` on the ``striate`` sub-command parser."""
    raw = RAW
    e = subparsers.add_parser(
        "experiment", help="test one of the chapter's claims on real data (table, results.json, PNG)",
        formatter_class=raw,
        description="Run one experiment that tests a claim of the chapter: it trains the networks it needs on "
                    "a subset\nof MNIST or Fashion-MNIST (a few minutes on a CPU), prints a table and a finding, "
                    "and writes\nresults.json and NAME.png. Seeded: the same --seed gives the same numbers.",
        epilog="experiments:\n" + _listing() + "\n\nexamples:\n  striate experiment --list\n"
               "  striate experiment shift\n  striate experiment pooling --out results/pooling\n"
               "  striate experiment dropout --quick          (seconds: a tiny budget, numbers not meaningful)\n"
               "  striate experiment all --out results        (one subfolder per experiment)")
    e.add_argument("name", nargs="?", metavar="NAME", help="an experiment (see below), or 'all'")
    e.add_argument("--list", action="store_true", help="list the experiments and exit")
    e.add_argument("--quick", action="store_true", help="the tiny budget the tests use (seconds, not minutes)")
    e.add_argument("--out", metavar="DIR",
                   help="folder for results.json and the PNG (default runs/experiments/NAME; with 'all', "
                        "DIR/NAME for each); earlier results there are replaced")
    e.add_argument("--seed", type=int, default=0, help="fixes initial weights, data order and dropout (default 0)")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads_argument(e)
    e.set_defaults(run=cmd_experiment)
