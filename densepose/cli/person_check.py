"""``densepose train-person-check``: add the person check (`densepose.modeling.person_check`) to a model file.

    densepose train-person-check model_facing.pt --data data/synth_a data/synth_b --out model_checked.pt
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-person-check", help="train the check of whether a detection is one whole person, on renders",
        description="Run a model file with a facing classifier on `densepose synth` folders, label its "
        "detections by their overlap with the annotated people, add jittered people and, as no person, "
        "fragments, small parts, shifted boxes, pairs of people and background boxes, train the person check "
        "on the facing classifier's crop features, and write the model file "
        "with person_check_on=true (its scores become score x sqrt(P(one whole person)); checked scores are "
        "lower, so set the file's default_min_score after it: densepose export FILE --out FILE2 --set "
        "default_min_score=S).")
    p.add_argument("model", help="model file to start from (with facing_on: see `densepose train-facing`)")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="`densepose synth` output folders "
                   "(or any folder of images/ and a COCO annotations.json, as `densepose.data.pseudo_labels` writes)")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--max-images", type=int, default=2500, help="images read from each folder (default 2500; "
                   "about 0.2 s each on 2 CPU cores)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--min-height", type=float, default=40.0, help="people shorter than this (pixels) get no "
                   "made-up boxes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--members", type=int, default=1, help="heads the check averages, trained from seeds SEED, "
                   "SEED+1, ... on the same boxes (default 1; a few seconds each once the boxes are read)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from densepose.engine.person_check_train import train_person_check

    train_person_check(args.model, args.data, args.out, args.epochs, args.max_images, args.min_height, args.seed,
                       args.members)
    return 0
