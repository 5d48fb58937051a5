"""Command line: ``python -m rcnn_from_scratch COMMAND``; each command has ``--help``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, seed=args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rcnn_from_scratch",
        description="The R-CNN family in pure NumPy: demo and tools.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="walk generated images through every stage, saving figures as PNG files"
    )
    demo.add_argument("--out", default="rcnn_demo_output", help="folder for the figures")
    demo.add_argument("--seed", type=int, default=0, help="seed of the generated images")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
