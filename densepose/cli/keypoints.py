"""``densepose train-keypoints``: train a model file's keypoint network on renders and count its skeleton prior again;
``densepose average-keypoints``: average the trained network with the one it started from.

    densepose train-keypoints densepose/assets/model_light.pt --data data/synth_d \\
        --prior-data data/synth_a data/synth_b data/synth_c data/synth_portraits --out model_kp.pt --half
    densepose average-keypoints densepose/assets/model_light.pt model_kp.pt \\
        --prior-data data/synth_a data/synth_b data/synth_c data/synth_portraits --out model_avg.pt --half
"""
from __future__ import annotations

import argparse

#: `densepose.modeling.movenet.OWN_TRUNK_STARTS`, written out: the command line loads without torch
OWN_TRUNK_STARTS = (3, 6)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-keypoints", help="train a model file's MoveNet keypoint network on the true keypoints of renders",
        description="Fine-tune the keypoint network after the people trunk (MoveNet Lightning's, added by "
        "`densepose add-skeleton-prior`) on the annotated keypoints of the people of `densepose synth` folders, cut "
        "out at jittered boxes, half of them mirrored; then count the skeleton prior again with the new keypoints on "
        "--prior-data. People of images whose id is a multiple of 10 are held out and reported.")
    p.add_argument("model", help="model file with a skeleton prior (and so a keypoint network)")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="`densepose synth` folders to train on")
    p.add_argument("--prior-data", nargs="+", required=True, metavar="DIR",
                   help="`densepose synth` folders to count the skeleton prior on")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--iterations", type=int, default=2000, help="steps (default: %(default)s)")
    p.add_argument("--batch", type=int, default=32, help="people per step (default: %(default)s)")
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (default: %(default)s)")
    p.add_argument("--min-height", type=float, default=32.0, help="people shorter than this (pixels) are skipped")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--half", action="store_true", help="store every weight as float16 (`densepose export --half`)")
    p.add_argument("--own-trunk", type=int, nargs="?", const=6, choices=OWN_TRUNK_STARTS, metavar="FIRST",
                   help="train the keypoint network's own copy of the people trunk's blocks FIRST..12 too (3 or 6; "
                   "6 when not given: the stride-16 blocks); the facing heads keep reading the trunk's (copied "
                   "from the trunk where the file has none)")
    p.set_defaults(func=run)

    p = subparsers.add_parser(
        "average-keypoints", help="average a train-keypoints output's keypoint network with the one it started from",
        description="Average the weights of the keypoint network of TRAINED (a `densepose train-keypoints` output) "
        "with those of START (the file it was trained from), as WiSE-FT averages a network before and after "
        "fine-tuning; then count the skeleton prior again with the averaged keypoints on --prior-data. The rest "
        "of TRAINED (config, settings, other weights) is kept.")
    p.add_argument("start", help="the model file train-keypoints started from")
    p.add_argument("trained", help="the model file train-keypoints wrote")
    p.add_argument("--prior-data", nargs="+", required=True, metavar="DIR",
                   help="`densepose synth` folders to count the skeleton prior on")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--weight", type=float, default=0.5, help="the start's share of each weight (default: %(default)s)")
    p.add_argument("--data", nargs="+", default=[], metavar="DIR",
                   help="`densepose synth` folders whose held-out people (image id a multiple of 10) the averaged "
                   "keypoints are measured on, as train-keypoints measures its own (the meta's held_out_averaged)")
    p.add_argument("--min-height", type=float, default=32.0, help="people shorter than this (pixels) are skipped")
    p.add_argument("--half", action="store_true", help="store every weight as float16 (`densepose export --half`)")
    p.set_defaults(func=run_average)


def run_average(args: argparse.Namespace) -> int:
    from densepose.engine.keypoints_average import average_keypoints

    average_keypoints(args.start, args.trained, args.prior_data, args.out, weight=args.weight, half=args.half,
                      folders=args.data, min_height=args.min_height)
    return 0


def run(args: argparse.Namespace) -> int:
    from densepose.engine.keypoints_train import train_keypoints

    train_keypoints(args.model, args.data, args.prior_data, args.out, iterations=args.iterations, lr=args.lr,
                    batch=args.batch, seed=args.seed, min_height=args.min_height, half=args.half,
                    own_trunk_from=args.own_trunk)
    return 0
