"""``densepose``: one console script, one subcommand module per job.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its parser and sets
``func`` to the function that runs it. A ``UserError`` (bad input) is printed as one line.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from densepose.errors import UserError

COMMANDS = ("surface", "synth", "evaluate", "train", "facing", "person_check", "head_ruler", "skeleton_prior",
            "keypoints", "export", "predict", "annotate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="densepose", description="DensePose in pure PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"densepose.cli.{name}").register(sub)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, except that ``key=value`` overrides of a command that takes them may
    stand on both sides of its options (argparse alone rejects ``a=1 --resume b=2``)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not isinstance(getattr(args, "overrides", None), list) or any(
                a.startswith("-") or "=" not in a for a in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides += extra
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
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
