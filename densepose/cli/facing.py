"""``densepose train-facing``: add the facing classifier (`densepose.modeling.facing`) to a model file.

    densepose train-facing densepose/assets/model_light.pt --data data/synth_a --out model_facing.pt
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-facing", help="train the facing classifier on renders and add it to a model file",
        description="Cut the annotated people of `densepose synth` folders out of their images, train the "
        "classifier of which way each faces (ImageNet EfficientNet-Lite0 stages, needs densepose[train]), "
        "count the chart ratios, and write the model file with facing_on=true.")
    p.add_argument("model", help="model file to start from")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="`densepose synth` output folders")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--min-height", type=float, default=40.0, help="people shorter than this (pixels) are skipped")
    p.add_argument("--jittered-copies", type=int, default=0, metavar="N",
                   help="besides each person's annotated box, train on N boxes drawn around it as the "
                   "detector's boxes lie (default: %(default)s, the annotated boxes only)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from densepose.engine.facing_train import train_facing

    torch.manual_seed(args.seed)
    train_facing(args.model, args.data, args.out, args.epochs, args.min_height, args.seed, args.jittered_copies)
    return 0
