"""``densepose``: one console script, one subcommand module per job.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its parser and sets
``func`` to the function that runs it. A ``UserError`` (bad input) is printed as one line.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from densepose.errors import UserError

COMMANDS = ("surface", "synth", "evaluate", "train", "facing", "person_check", "head_ruler", "export", "predict", "annotate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="densepose", description="DensePose in pure PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"densepose.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
