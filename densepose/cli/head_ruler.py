"""``densepose add-head-ruler``: add the head ruler (`densepose.modeling.head_ruler`) to a model file.

    densepose add-head-ruler densepose/assets/model_light.pt --data data/synth_a --out model_ruled.pt
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "add-head-ruler", help="count which charts lie how far below the head on renders and add it to a model file",
        description="Count, on the dense ground truth of `densepose synth` folders, which body charts lie how many "
        "head heights below the top of a person's head, and write the model file with head_ruler_on=true: its "
        "DensePose charts are then weighed by each row's place below the head it finds (Bayes' rule, to --power).")
    p.add_argument("model", help="model file to start from")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="`densepose synth` output folders")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--power", type=float, default=1.0,
                   help="the ruler's log ratios are multiplied by this (1: Bayes' rule; default 1)")
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="read at most N images of each folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from densepose.engine.head_ruler_fit import add_head_ruler
    from densepose.errors import UserError

    if args.max_images is not None and args.max_images < 1:
        raise UserError(f"--max-images must be at least 1, not {args.max_images}")
    add_head_ruler(args.model, args.data, args.out, args.power, args.max_images)
    return 0
