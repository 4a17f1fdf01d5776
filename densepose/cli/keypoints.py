"""``densepose train-keypoints``: train a model file's keypoint network on renders and count its skeleton prior again.

    densepose train-keypoints densepose/assets/model_light.pt --data data/synth_d \\
        --prior-data data/synth_a data/synth_b data/synth_c data/synth_portraits --out model_kp.pt --half
"""
from __future__ import annotations

import argparse


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
    p.add_argument("--own-trunk", action="store_true",
                   help="train the keypoint network's own copy of the people trunk's stride-16 blocks (6..12) too; "
                   "the facing heads keep reading the trunk's (copied from the trunk when the file has none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from densepose.engine.keypoints_train import train_keypoints

    train_keypoints(args.model, args.data, args.prior_data, args.out, iterations=args.iterations, lr=args.lr,
                    batch=args.batch, seed=args.seed, min_height=args.min_height, half=args.half,
                    own_trunk=args.own_trunk)
    return 0
