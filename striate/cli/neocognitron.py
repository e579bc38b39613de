"""``striate neocognitron digits|mnist|planes``: Fukushima's 1980 network organising itself.

    striate neocognitron digits          the paper's experiment with the patterns "0"–"4"
    striate neocognitron mnist           self-organise on MNIST at 16×16, then read UC3 out
    striate neocognitron planes FILE     draw the S-planes of a saved network

The experiments themselves are in :mod:`striate.experiments.neocognitron`.
"""
from __future__ import annotations

from pathlib import Path

from .common import RAW

__all__ = ["add_commands"]


def add_commands(subparsers) -> None:
    """Add ``neocognitron`` (with ``digits``, ``mnist``, ``planes``) to an argparse subparsers object."""
    p = subparsers.add_parser("neocognitron", help="Fukushima's 1980 neocognitron: self-organisation, no labels",
                              formatter_class=RAW,
                              description="Self-organise the 1980 neocognitron and test it.",
                              epilog="examples:\n  striate neocognitron digits\n  striate neocognitron mnist\n"
                                     "  striate neocognitron planes runs/neocognitron/neocognitron-digits.safetensors")
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    d = sub.add_parser("digits", help='the paper\'s experiment with the patterns "0"–"4"')
    d.add_argument("--rounds", type=int, default=20, help="passes over the five patterns per stage")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="runs/neocognitron", help="folder for digits.png and the network")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(run=_cmd_digits)
    m = sub.add_parser("mnist", help="self-organise on MNIST at 16×16, then read out UC3")
    m.add_argument("--organise-on", type=int, default=3000, dest="organise_on",
                   help="how many training digits to organise on")
    m.add_argument("--rounds", type=int, default=1)
    m.add_argument("--train-size", type=int, default=10000, dest="train_size")
    m.add_argument("--test-size", type=int, default=10000, dest="test_size")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--data-dir", dest="data_dir")
    m.add_argument("--out", default="runs/neocognitron")
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(run=_cmd_mnist)
    s = sub.add_parser("planes", help="draw the S-planes of a saved, self-organised network")
    s.add_argument("weights", help="a neocognitron-*.safetensors written by digits or mnist")
    s.add_argument("--out", help="PNG to write (default: beside the weights)")
    s.set_defaults(run=_cmd_planes)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def _cmd_digits(args) -> int:
    from ..experiments.neocognitron import run_digits
    result = run_digits(rounds=args.rounds, seed=args.seed, out_dir=args.out, progress=not args.quiet)
    return 0 if result["distinct"] else 1


def _cmd_mnist(args) -> int:
    from ..experiments.neocognitron import run_mnist
    run_mnist(organise_on=args.organise_on, rounds=args.rounds, train_size=args.train_size,
              test_size=args.test_size, seed=args.seed, data_dir=args.data_dir, out_dir=args.out,
              progress=not args.quiet)
    return 0


def _cmd_planes(args) -> int:
    from ..experiments.neocognitron import load_organised, plot_planes
    model = load_organised(args.weights)
    out = Path(args.out) if args.out else Path(args.weights).with_suffix(".png")
    plot_planes(model, out)
    print(f"wrote {out}")
    return 0
